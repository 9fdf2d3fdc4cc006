// Every command's command line in one table: usage, options, arguments, exit code of a mistake,
// and how to load and run it. A command's module is loaded only when that command runs.
import { trapRunSignals } from "../daemon/signals.js";
import type { CommandSpec, Parsed } from "./args.js";
import { processIo, type Globals, type Io } from "./io.js";

export interface Command extends CommandSpec {
  /** The left column of `credd --help` (default: the first usage line). */
  synopsis?: string;
  /** The help text after the usage line(s), from the command's own file. */
  help(): Promise<string>;
  run(p: Parsed, g: Globals, io: Io): Promise<number>;
}

const NAME = { min: 1, max: 1, what: "NAME" };
const USAGE_EXIT = 2;

export const COMMANDS: readonly Command[] = [
  {
    name: "run",
    usage: ["run"],
    summary: "the daemon, in the foreground (what systemd starts)",
    options: {},
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./run.js")).RUN_HELP,
    run: async (p, g, io) => {
      // Trapped before anything else of `run` happens and held to its exit (src/daemon/signals.ts):
      // a SIGTERM while the daemon's modules load, the config is read or the lock is taken is a clean stop.
      const signals = trapRunSignals();
      return (await import("./run.js")).cmdRun(p, g, io, signals);
    },
  },
  {
    name: "status",
    usage: ["status [NAME] [--json]"],
    summary: "where every credential stands; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    options: { json: {} },
    args: { min: 0, max: 1, what: "NAME" },
    // Monitoring reads the exit code: a mistake in the check's command line is UNKNOWN, not CRITICAL.
    usageExit: 3,
    help: async () => (await import("./status.js")).STATUS_HELP,
    run: async (p, g, io) => {
      const code = await (await import("./status.js")).cmdStatus(p, g, io);
      // Nothing is left to finish once stdout and stderr are flushed (a pipe takes 64 KiB at once;
      // the rest of a long report is written as the reader drains it): exiting then skips node's
      // own teardown, about 7 ms of a command that monitoring may run every minute.
      if (io === processIo) {
        await Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write("", done))));
        process.exit(code);
      }
      return code;
    },
  },
  {
    name: "import",
    usage: ["import NAME --cert FILE --key FILE [--passphrase-file FILE]"],
    synopsis: "import NAME --cert F --key F",
    summary: "adopt a certificate and key made by hand as the live version",
    options: { cert: { value: "FILE", required: true }, key: { value: "FILE", required: true }, "passphrase-file": { value: "FILE" } },
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./import.js")).IMPORT_HELP,
    run: async (p, g, io) => (await import("./import.js")).cmdImport(p, g, io),
  },
  {
    name: "enroll",
    usage: ["enroll NAME [--no-send]"],
    synopsis: "enroll NAME",
    summary: "make the first key + CSR and email it to the Stellantis contact",
    options: { "no-send": {} },
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./enroll.js")).ENROLL_HELP,
    run: async (p, g, io) => (await import("./enroll.js")).cmdEnroll("enroll", p, g, io),
  },
  {
    name: "renew",
    usage: ["renew NAME [--force] [--no-send]"],
    synopsis: "renew NAME [--force]",
    summary: "start a renewal now (key + CSR emailed)",
    options: { force: {}, "no-send": {} },
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./enroll.js")).RENEW_HELP,
    run: async (p, g, io) => (await import("./enroll.js")).cmdEnroll("renew", p, g, io),
  },
  {
    name: "ingest",
    usage: ["ingest [NAME] FILE..."],
    summary: "take in a signed certificate (PEM, DER, PKCS#7) and make it live",
    options: {},
    args: { min: 1, max: Infinity, what: "FILE" },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./ingest.js")).INGEST_HELP,
    run: async (p, g, io) => (await import("./ingest.js")).cmdIngest(p, g, io),
  },
  {
    name: "token",
    usage: ["token NAME [--json]"],
    summary: "print a valid OAuth2 access token (fetched over mTLS if needed)",
    options: { json: {} },
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./token.js")).TOKEN_HELP,
    run: async (p, g, io) => (await import("./token.js")).cmdToken(p, g, io),
  },
  {
    name: "doctor",
    usage: ["doctor NAME [--json]"],
    summary: "live check: key, chain, TLS, token, one API call, step by step",
    options: { json: {} },
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./doctor.js")).DOCTOR_HELP,
    run: async (p, g, io) => (await import("./doctor.js")).cmdDoctor(p, g, io),
  },
  {
    name: "rollback",
    usage: ["rollback NAME"],
    summary: "make the previous certificate live again",
    options: {},
    args: NAME,
    usageExit: USAGE_EXIT,
    help: async () => (await import("./rollback.js")).ROLLBACK_HELP,
    run: async (p, g, io) => (await import("./rollback.js")).cmdRollback(p, g, io),
  },
  {
    name: "alerts",
    usage: ["alerts", "alerts test"],
    synopsis: "alerts [test]",
    summary: "list open alerts, or send a test alert email",
    options: {},
    args: { min: 0, max: 1, what: "word (test)", choices: ["test"] },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./alerts.js")).ALERTS_HELP,
    run: async (p, g, io) => (await import("./alerts.js")).cmdAlerts(p, g, io),
  },
  {
    name: "check-config",
    usage: ["check-config"],
    summary: "check the config and every file and folder it names; exit 0 ok, 2 problems",
    options: {},
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./check-config.js")).CHECK_CONFIG_HELP,
    run: async (p, g, io) => (await import("./check-config.js")).cmdCheckConfig(p, g, io),
  },
  {
    name: "migrate-store",
    usage: ["migrate-store --to postgres [--url-file FILE] [--key-encryption-key-file FILE] [--ca-file FILE]"],
    synopsis: "migrate-store --to postgres",
    summary: "copy this host's SQLite state into an empty PostgreSQL store, verified",
    options: {
      to: { value: "STORE", required: true },
      "url-file": { value: "FILE" },
      "key-encryption-key-file": { value: "FILE" },
      "ca-file": { value: "FILE" },
    },
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./migrate-store.js")).MIGRATE_STORE_HELP,
    run: async (p, g, io) => (await import("./migrate-store.js")).cmdMigrateStore(p, g, io),
  },
  {
    name: "rotate-store-key",
    usage: ["rotate-store-key --previous FILE"],
    synopsis: "rotate-store-key --previous F",
    summary: "seal every key of the PostgreSQL store again under the new key-encryption key",
    options: { previous: { value: "FILE", required: true } },
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./rotate-store-key.js")).ROTATE_STORE_KEY_HELP,
    run: async (p, g, io) => (await import("./rotate-store-key.js")).cmdRotateStoreKey(p, g, io),
  },
  {
    name: "list",
    usage: ["list"],
    summary: "the credential names in the config, one per line (for completion and scripts)",
    options: {},
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./list.js")).LIST_HELP,
    run: async (p, g, io) => (await import("./list.js")).cmdList(p, g, io),
  },
  {
    name: "sandbox",
    usage: [
      "sandbox [--dir DIR] [--accept-all] [--sign-delay SECONDS] [--bind-delay SECONDS]",
      "        [--validity-days N] [--token-lifetime SECONDS]",
    ],
    synopsis: "sandbox [--dir DIR]",
    summary: "a local stand-in for Stellantis (SMTP, CA, IDP, API) on loopback, for trying credd",
    options: {
      dir: { value: "DIR" },
      "accept-all": {},
      "sign-delay": { value: "SECONDS" },
      "bind-delay": { value: "SECONDS" },
      "validity-days": { value: "N" },
      "token-lifetime": { value: "SECONDS" },
    },
    args: { min: 0, max: 0 },
    usageExit: USAGE_EXIT,
    help: async () => (await import("./sandbox.js")).LOADER_HELP,
    run: async (p, g, io) => (await import("./sandbox.js")).cmdSandbox(p, g, io),
  },
];

/** `help [COMMAND]`: answered by the dispatcher itself (src/cli/dispatch.ts). */
export const HELP_COMMAND: CommandSpec = {
  name: "help",
  usage: ["help [COMMAND]"],
  summary: "the same text as `credd COMMAND --help` (or this list)",
  options: {},
  args: { min: 0, max: 1, what: "COMMAND", choices: [...COMMANDS.map((c) => c.name), "help"] },
  usageExit: USAGE_EXIT,
};

export function commandNamed(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
