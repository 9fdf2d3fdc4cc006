// The sandbox as a command (`npm run sandbox`, or `credd sandbox` run from a clone): parses its
// options, starts the local Stellantis, prints how to run credd against it and what it sees, until
// Ctrl-C. It answers with its own exit code: `credd sandbox` loads it from the checkout at run time,
// so its errors are not the binary's CreddError class and main.ts could not map them.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { errorMessage } from "../src/errors.js";
import type { Sandbox, SandboxOptions } from "./sandbox.js";

/** Where it writes what it prints: stdout for the instructions and events, stderr for the rest. */
export interface SandboxIo {
  out(line: string): void;
  err(line: string): void;
}

export const SANDBOX_HELP = `usage: npm run sandbox -- [--dir DIR] [--accept-all] [--sign-delay SECONDS]
                          [--bind-delay SECONDS] [--validity-days N] [--token-lifetime SECONDS]
       credd sandbox [same options]     (the same, from a clone of credd)

Plays Stellantis on 127.0.0.1 (free ports; nothing listens elsewhere), for
trying credd and for tests. A development tool: it lives in sandbox/ of a clone
(npm ci first) and is not part of the installed credd.
  - an SMTP server (STARTTLS) for what credd sends; every email is kept in
    DIR/mailbox/ (one .eml each, log.txt) and listed on a small web page;
  - a CA that signs each CSR emailed to the contact after --sign-delay and
    "emails back a link": writes the certificate + CA certificate into
    DIR/inbox/, credd's inbox folder;
  - a token endpoint (RFC 8705 tls_client_auth, tokens bound to the
    certificate) that refuses a new certificate until it arrives by email
    for registration (then bound after --bind-delay), unless --accept-all;
  - the API: GET /connectedcar/v3/fleets with mTLS, Bearer and client_id.
It writes DIR/credd.yaml pointing credd at it, prints how to run credd, then
one line per thing it sees or does, until Ctrl-C. The CA and the server
certificate are kept in DIR, so a restarted sandbox is still trusted.

Time is virtual: DIR/clock holds an offset in milliseconds added to real time
by the sandbox and by credd run with CREDD_CLOCK_FILE=DIR/clock (a test aid).
Write a bigger number to travel forward; both follow within 200 ms.

  --dir DIR                where everything goes (default ./credd-sandbox)
  --accept-all             the IDP accepts every certificate of its CA at once
  --sign-delay SECONDS     how long the CA takes to sign a CSR (default 5)
  --bind-delay SECONDS     how long the IDP takes to bind a certificate (default 5)
  --validity-days N        validity of the certificates it signs (default 365)
  --token-lifetime SECONDS expires_in of its tokens (default 3600)

exit: 0 stopped (Ctrl-C or SIGTERM), 1 could not start, 2 usage`;

class UsageError extends Error {}

function num(v: string | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} needs a number of at least ${min}, not "${v}"`);
  return n;
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      dir: { type: "string" },
      "accept-all": { type: "boolean" },
      "sign-delay": { type: "string" },
      "bind-delay": { type: "string" },
      "validity-days": { type: "string" },
      "token-lifetime": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError("the sandbox takes no arguments");
  const options: SandboxOptions = {
    dir: resolve(values.dir ?? "credd-sandbox"),
    signDelayMs: num(values["sign-delay"], "sign-delay", 5, 0) * 1000,
    bindDelayMs: num(values["bind-delay"], "bind-delay", 5, 0) * 1000,
    validityDays: num(values["validity-days"], "validity-days", 365, 1),
    tokenLifetimeSec: num(values["token-lifetime"], "token-lifetime", 3600, 1),
    acceptAll: values["accept-all"] === true,
  };
  return { help: values.help === true, options };
}

export async function sandboxCommand(argv: string[], io: SandboxIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    // parseArgs throws a TypeError with an ERR_PARSE_ARGS_* code for an unknown or malformed option.
    const usage = err instanceof UsageError || String((err as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    if (!usage) throw err;
    io.err(`credd sandbox: ${errorMessage(err)}\n\n${SANDBOX_HELP}`);
    return 2;
  }
  if (parsed.help) {
    io.out(SANDBOX_HELP);
    return 0;
  }
  const { dir } = parsed.options;
  let sb: Sandbox;
  try {
    // Loaded only now (its servers and their libraries take a second): --help and usage errors answer at once.
    const { startSandbox } = await import("./sandbox.js");
    sb = await startSandbox(parsed.options);
  } catch (err) {
    io.err(`credd sandbox: could not start in ${dir}: ${errorMessage(err)}`);
    return 1;
  }
  const name = sb.credential.name;
  io.out(`credd sandbox: a local Stellantis on 127.0.0.1, kept in ${dir} (Ctrl-C stops it)`);
  for (const l of sb.info()) io.out(`  ${l}`);
  io.out("");
  io.out("Run credd against it from another terminal (in this clone):");
  io.out(`  export CREDD_CONFIG=${sb.configPath} CREDD_CLOCK_FILE=${sb.clockFile}`);
  io.out("  export CREDD_INBOX_POLL_MS=500 CREDD_OUTBOX_TICK_MS=500   # optional: quicker inbox and outbox (test knobs)");
  io.out("  npx credd run                 # the daemon; it checks every 2 s here");
  io.out(`  npx credd enroll ${name}     # then watch: CSR emailed, signed, ingested, live, token`);
  io.out(`  npx credd status; npx credd doctor ${name}`);
  io.out("Travel in time (credd and the sandbox follow within 200 ms):");
  io.out(`  echo $((250*86400000)) > ${sb.clockFile}   # +250 days: the certificate is due for renewal`);
  io.out("");
  sb.log.on((e) => {
    if (e.kind !== "started") io.out(`${e.at.replace("T", " ").slice(0, 19)}  ${e.kind.padEnd(21)} ${e.text}`);
  });

  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once("SIGINT", () => done("SIGINT"));
    process.once("SIGTERM", () => done("SIGTERM"));
  });
  io.err(`${signal}: stopping the sandbox`);
  await sb.stop();
  return 0;
}
