// `credd sandbox [--dir DIR]`: a local stand-in for Stellantis on loopback, for trying credd and for
// tests; runs until Ctrl-C. Loaded lazily: nothing in `credd run` needs it or its dev dependencies.
import { resolve } from "node:path";
import { CreddError } from "../errors.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const SANDBOX_HELP = `Plays Stellantis on 127.0.0.1 (free ports; nothing listens elsewhere), for
trying credd and for tests. It needs the dev dependencies (npm ci in a clone).
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

function num(v: string | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new CreddError("USAGE", `--${name} needs a number of at least ${min}, not "${v}"`);
  return n;
}

export async function cmdSandbox(p: Parsed, _g: Globals, io: Io): Promise<number> {
  const values = p.values;
  const signDelayMs = num(values["sign-delay"], "sign-delay", 5, 0) * 1000;
  const bindDelayMs = num(values["bind-delay"], "bind-delay", 5, 0) * 1000;
  const validityDays = num(values["validity-days"], "validity-days", 365, 1);
  const tokenLifetimeSec = num(values["token-lifetime"], "token-lifetime", 3600, 1);
  const dir = resolve(values.dir ?? "credd-sandbox");

  // Loaded only now; without the dev dependencies it says "run npm ci in a clone" before making anything.
  const { startSandbox } = await import("../sandbox/sandbox.js");
  const sb = await startSandbox({
    dir,
    signDelayMs,
    bindDelayMs,
    validityDays,
    tokenLifetimeSec,
    acceptAll: p.flags.has("accept-all"),
  });
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
