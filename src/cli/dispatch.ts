// The command line as a whole: finds the command, checks its words against its spec
// (src/cli/commands.ts), answers --help, help and --version, reports every mistake the same way.
import { createRequire } from "node:module";
import { defaultConfigPath } from "../config/path.js";
import { closest } from "../config/suggest.js";
import { CreddError } from "../errors.js";
import { findCommand, parseCommand, usageLines, usageText, UsageProblem, type CommandSpec } from "./args.js";
import { COMMANDS, commandNamed, HELP_COMMAND, type Command } from "./commands.js";
import { processIo, type Globals, type Io } from "./io.js";

/** The command list of `credd --help`, from the table, so a new command shows up by itself. */
export function globalHelp(): string {
  const rows = [...COMMANDS, HELP_COMMAND as Command].map((c) => `  ${(c.synopsis ?? c.usage[0]!).padEnd(29)}${c.summary}`);
  return `credd: keeps Stellantis B2B API credentials alive (client certificate, CSR by email, OAuth2 tokens)

usage: credd [--config FILE] COMMAND [ARGS]

commands:
${rows.join("\n")}

options (also after the command):
  -c, --config FILE  the YAML config (default: $CREDD_CONFIG, then /etc/credd/credd.yaml)
  -h, --help         this help; \`credd COMMAND --help\` or \`credd help COMMAND\` for a command's own
  --version          print the version

exit codes (unless a command's help says otherwise):
  0 done, 1 refused or failed (the message says why and what to do),
  2 a command-line mistake (3 for status, which monitoring reads)`;
}

/** What `credd COMMAND --help` and `credd help COMMAND` print. */
export async function commandHelp(c: Command): Promise<string> {
  return `${usageLines(c)}\n\n${await c.help()}`;
}

/** Before any command: only the global options and --version. */
const TOP: CommandSpec = {
  name: "credd",
  usage: ["[--config FILE] COMMAND [ARGS]"],
  summary: "",
  options: { version: {} },
  args: { min: 0, max: 0 },
  usageExit: 2,
};

function version(): string {
  const require = createRequire(import.meta.url);
  return (require("../../package.json") as { version: string }).version;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const g: Globals = { configPath: defaultConfigPath() };
  const found = findCommand(argv);
  if (!found) {
    const r = parseCommand(TOP, argv);
    if (r.help) {
      io.out(globalHelp());
      return 0;
    }
    if (!r.ok) {
      io.err(usageText(new UsageProblem(r.problem.message)));
      return 2;
    }
    if (r.parsed.flags.has("version")) {
      io.out(`credd ${version()}`);
      return 0;
    }
    io.err(globalHelp());
    return 2;
  }
  const rest = [...argv.slice(0, found.index), ...argv.slice(found.index + 1)];
  if (found.name === "help") return help(rest, io);
  const cmd = commandNamed(found.name);
  if (!cmd) {
    const near = closest(found.name, [...COMMANDS.map((c) => c.name), "help"]);
    const list = COMMANDS.map((c) => c.name).join(", ");
    io.err(usageText(new UsageProblem(`unknown command "${found.name}"${near ? ` (did you mean ${near}?)` : ""}; the commands are ${list}, help`)));
    return 2;
  }
  const r = parseCommand(cmd, rest);
  if (r.help) {
    io.out(await commandHelp(cmd));
    return 0;
  }
  if (!r.ok) return usageError(cmd, r.problem, r.json, io);
  if (r.config !== undefined) g.configPath = r.config;
  try {
    return await cmd.run(r.parsed, g, io);
  } catch (err) {
    // A mistake only the command can see (a number that is not one): reported like the others.
    if (err instanceof CreddError && err.code === "USAGE") return usageError(cmd, new UsageProblem(err.message, cmd), r.parsed.flags.has("json"), io);
    throw err;
  }
}

function usageError(cmd: Command, p: UsageProblem, json: boolean, io: Io): number {
  io.err(usageText(p));
  // `status --json` answers in JSON whatever happens: the monitoring side parses stdout.
  if (json && cmd.name === "status")
    io.out(JSON.stringify({ version: 1, status: "unknown", exit_code: cmd.usageExit, error: `usage: ${p.message}` }, null, 2));
  return cmd.usageExit;
}

async function help(rest: string[], io: Io): Promise<number> {
  const r = parseCommand(HELP_COMMAND, rest);
  if (!r.ok) {
    io.err(usageText(r.problem));
    return HELP_COMMAND.usageExit;
  }
  const name = r.parsed.args[0];
  const cmd = name === undefined || name === "help" ? undefined : commandNamed(name);
  io.out(cmd ? await commandHelp(cmd) : globalHelp());
  return 0;
}
