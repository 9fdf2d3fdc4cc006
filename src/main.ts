#!/usr/bin/env node
// Entry point: parses the global options, dispatches to a command, maps error codes to exit codes.
// Its static imports stay small: until they are loaded, a SIGTERM to `credd run` has no handler yet.
import { createRequire } from "node:module";
import { setFlagsFromString } from "node:v8";
import { processIo, type Globals, type Io } from "./cli/io.js";
import { defaultConfigPath } from "./config/path.js";
import { trapRunSignals } from "./daemon/signals.js";
import { CreddError, errorMessage, type ErrorCode } from "./errors.js";

export const HELP = `credd: keeps Stellantis B2B API credentials alive (client certificate, CSR by email, OAuth2 tokens)

usage: credd [--config FILE] COMMAND [ARGS]

commands:
  run                          the daemon, in the foreground (what systemd starts)
  status [NAME] [--json]       where every credential stands; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
  import NAME --cert F --key F adopt a certificate and key made by hand as the live version
  enroll NAME                  make the first key + CSR and email it to the Stellantis contact
  renew NAME [--force]         start a renewal now (key + CSR emailed)
  ingest [NAME] FILE...        take in a signed certificate (PEM, DER, PKCS#7) and make it live
  token NAME [--json]          print a valid OAuth2 access token (fetched over mTLS if needed)
  doctor NAME [--json]         live check: key, chain, TLS, token, one API call, step by step
  rollback NAME                make the previous certificate live again
  alerts [test]                list open alerts, or send a test alert email
  check-config                 check the config and every file and folder it names; exit 0 ok, 2 problems
  sandbox [--dir DIR]          a local stand-in for Stellantis (SMTP, CA, IDP, API) on loopback, for trying credd

options:
  --config FILE   the YAML config (default: $CREDD_CONFIG, then /etc/credd/credd.yaml)
  -h, --help      this help; \`credd COMMAND --help\` for a command's own
  --version       print the version

exit codes (unless a command's help says otherwise):
  0 done, 1 refused or failed (the message says why and what to do), 2 bad command line`;

const EXIT: Record<ErrorCode, number> = {
  USAGE: 2,
  CONFIG: 1,
  NOT_FOUND: 1,
  REFUSED: 1,
  STATE: 1,
  LOCKED: 1,
  IO: 1,
  NETWORK: 1,
  INTERNAL: 1,
};

function version(): string {
  const require = createRequire(import.meta.url);
  return (require("../package.json") as { version: string }).version;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const g: Globals = { configPath: defaultConfigPath() };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--config" || a === "-c") {
      const v = argv[++i];
      if (!v) throw new CreddError("USAGE", "--config needs a FILE");
      g.configPath = v;
    } else if (a.startsWith("--config=")) g.configPath = a.slice("--config=".length);
    else if (a === "-h" || a === "--help") {
      io.out(HELP);
      return 0;
    } else if (a === "--version") {
      io.out(`credd ${version()}`);
      return 0;
    } else if (a.startsWith("-")) throw new CreddError("USAGE", `unknown option ${a}; see credd --help`);
    else break;
  }
  const cmd = argv[i];
  const rest = argv.slice(i + 1);
  if (cmd === undefined) {
    io.err(HELP);
    return 2;
  }
  if (cmd === "run") {
    // Trapped before anything else of `run` happens and held to its exit (src/daemon/signals.ts):
    // a SIGTERM while the daemon's modules load, the config is read or the lock is taken is a clean stop.
    const signals = trapRunSignals();
    // The daemon is idle nearly all the time: V8's optimizing compiler would add ~5 MiB of resident
    // code for hot loops that a check every few minutes does not need (the check over 10,000
    // credentials takes about as long without it; README "Benchmark"). Set before any daemon code runs.
    setFlagsFromString("--no-opt");
    return (await import("./cli/run.js")).cmdRun(rest, g, io, signals);
  }
  // The other commands keep the signals' default actions (Ctrl-C ends them). reflect-metadata is
  // loaded by pki/crypto.ts, just before @peculiar/x509, by the commands that need it.
  switch (cmd) {
    case "status": {
      const code = await (await import("./cli/status.js")).cmdStatus(rest, g, io);
      // Nothing is left to finish once stdout and stderr are flushed (a pipe takes 64 KiB at once;
      // the rest of a long report is written as the reader drains it): exiting then skips node's
      // own teardown, about 7 ms of a command that monitoring may run every minute.
      if (io === processIo) {
        await Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write("", done))));
        process.exit(code);
      }
      return code;
    }
    case "import":
      return (await import("./cli/import.js")).cmdImport(rest, g, io);
    case "enroll":
    case "renew":
      return (await import("./cli/enroll.js")).cmdEnroll(cmd, rest, g, io);
    case "ingest":
      return (await import("./cli/ingest.js")).cmdIngest(rest, g, io);
    case "rollback":
      return (await import("./cli/rollback.js")).cmdRollback(rest, g, io);
    case "token":
      return (await import("./cli/token.js")).cmdToken(rest, g, io);
    case "doctor":
      return (await import("./cli/doctor.js")).cmdDoctor(rest, g, io);
    case "alerts":
      return (await import("./cli/alerts.js")).cmdAlerts(rest, g, io);
    case "sandbox":
      return (await import("./cli/sandbox.js")).cmdSandbox(rest, g, io);
    case "check-config":
      return (await import("./cli/check-config.js")).cmdCheckConfig(rest, g, io);
    default:
      throw new CreddError("USAGE", `unknown command "${cmd}"; see credd --help`);
  }
}

async function entry(): Promise<void> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (err) {
    const c = err instanceof CreddError ? err.code : "INTERNAL";
    processIo.err(`credd: ${errorMessage(err)}`);
    if (c === "INTERNAL" && process.env.CREDD_DEBUG && err instanceof Error) processIo.err(err.stack ?? "");
    code = EXIT[c] ?? 1;
  }
  process.exitCode = code;
}

await entry();
