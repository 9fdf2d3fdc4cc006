// The command line, declared once per command (src/cli/commands.ts) and checked here: options,
// values, arguments, with one clean message and a suggestion for a near miss.
import { parseArgs } from "node:util";
import { closest } from "../config/suggest.js";

export interface OptionSpec {
  /** What the value is called in messages (`FILE`, `DIR`); absent for a flag that takes none. */
  value?: string;
  short?: string;
  /** The command cannot run without it (`import --cert`). */
  required?: boolean;
}

export interface CommandSpec {
  name: string;
  /** The usage line(s) after `credd `, e.g. `status [NAME] [--json]`. */
  usage: readonly string[];
  /** One line for `credd --help`. */
  summary: string;
  options: Readonly<Record<string, OptionSpec>>;
  /**
   * Arguments: how many at least and at most, what they are called in messages (`NAME`, `FILE`),
   * and, for a word from a fixed list (`alerts test`), the words.
   */
  args: { min: number; max: number; what?: string; choices?: readonly string[] };
  /** The exit code of a command-line mistake: 2, or 3 for `status` (monitoring reads it). */
  usageExit: number;
}

/** What a command gets: its arguments and options, the global ones (--config, --help) taken out. */
export interface Parsed {
  args: string[];
  /** The flags given (`json`, `force`). */
  flags: ReadonlySet<string>;
  /** The options given with a value (`cert` → the path). */
  values: Readonly<Record<string, string>>;
  /** The command's own words as typed, without the global options: for a command that parses again. */
  raw: string[];
}

/** Options every command takes, before or after its name. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  config: { value: "FILE", short: "c" },
  help: { short: "h" },
};

/** A command-line mistake: the message, and the command it belongs to (undefined: before any command). */
export class UsageProblem {
  constructor(
    readonly message: string,
    readonly spec?: CommandSpec,
  ) {}
}

export type ParseResult =
  | { ok: true; parsed: Parsed; config?: string; help: boolean }
  | { ok: false; problem: UsageProblem; help: boolean; json: boolean };

/**
 * Checks `argv` (the words after the command name, and any options before it) against `spec`.
 * `--help` anywhere wins over every mistake; the first mistake is the one reported.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParseResult {
  const known: Record<string, OptionSpec> = { ...spec.options, ...GLOBAL_OPTIONS };
  const options = Object.fromEntries(
    Object.entries(known).map(([name, o]) => [
      name,
      { type: o.value ? ("string" as const) : ("boolean" as const), ...(o.short ? { short: o.short } : {}) },
    ]),
  );
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const args: string[] = [];
  const flags = new Set<string>();
  const values: Record<string, string> = {};
  const raw: string[] = [];
  let config: string | undefined;
  let help = false;
  let problem: string | undefined;
  const fail = (msg: string) => {
    problem ??= msg;
  };
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind === "option-terminator") {
      raw.push("--");
      continue;
    }
    if (t.kind === "positional") {
      args.push(t.value);
      raw.push(t.value);
      continue;
    }
    const o = known[t.name];
    if (!o) {
      fail(`unknown option ${t.rawName}${hint(t.rawName, spec)}`);
      continue;
    }
    const shown = `--${t.name}`;
    if (t.name === "help") {
      help = true;
      continue;
    }
    if (o.value) {
      // parseArgs takes the next word as the value whatever it is: `--cert --key k` means a missing FILE.
      const v = t.value;
      if (v === undefined || v === "" || (!t.inlineValue && v.startsWith("-") && v !== "-")) {
        fail(
          `${t.rawName} needs a ${o.value}${v && !t.inlineValue ? ` (got the option ${v}; a value starting with - is written ${shown}=${v})` : ""}`,
        );
        continue;
      }
    }
    if (seen.has(t.name)) fail(`${shown} is given twice`);
    seen.add(t.name);
    if (o.value) {
      const v = t.value!;
      if (t.name === "config") config = v;
      else {
        values[t.name] = v;
        raw.push(`${shown}=${v}`);
      }
    } else {
      if (t.inlineValue) {
        fail(`${shown} takes no value (got ${shown}=${t.value})`);
        continue;
      }
      flags.add(t.name);
      raw.push(shown);
    }
  }
  const a = spec.args;
  if (a.choices && args[0] !== undefined && !a.choices.includes(args[0])) {
    const near = closest(args[0], a.choices);
    fail(`unknown ${spec.name} command "${args[0]}"${near ? ` (did you mean ${near}?)` : ` (expected ${a.choices.join(" or ")})`}`);
  }
  if (args.length < a.min) fail(`missing ${a.what ?? "argument"}`);
  if (args.length > a.max) {
    const extra = args.slice(a.max);
    fail(`unexpected argument${extra.length > 1 ? "s" : ""} ${extra.map((x) => `"${x}"`).join(" ")} (${takes(spec)})`);
  }
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && values[name] === undefined && !seen.has(name)) fail(`missing --${name} ${o.value ?? ""}`.trimEnd());
  }
  if (problem !== undefined) return { ok: false, problem: new UsageProblem(problem, spec), help, json: flags.has("json") };
  return { ok: true, parsed: { args, flags, values, raw }, ...(config !== undefined ? { config } : {}), help };
}

/** " (did you mean --json?)" for a near miss among the command's and the global options. */
function hint(raw: string, spec: CommandSpec): string {
  const name = raw.replace(/^--?/, "").split("=")[0]!;
  const all = { ...spec.options, ...GLOBAL_OPTIONS };
  if (!raw.startsWith("--")) {
    const byShort = Object.entries(all).find(([, o]) => o.short === name)?.[0];
    return byShort ? "" : ` (${Object.keys(spec.options).length ? `options: ${optionList(spec)}` : `${spec.name} takes no options`})`;
  }
  const near = closest(name, Object.keys(all));
  return near
    ? ` (did you mean --${near}?)`
    : Object.keys(spec.options).length
      ? ` (options: ${optionList(spec)})`
      : ` (${spec.name} takes no options)`;
}

const optionList = (spec: CommandSpec) =>
  Object.keys(spec.options)
    .map((k) => `--${k}`)
    .join(", ");

/** "status takes at most one NAME" and the like. */
function takes(spec: CommandSpec): string {
  const { min, max, what } = spec.args;
  if (max === 0) return `${spec.name} takes no arguments`;
  const n = max === 1 ? "one" : String(max);
  return `${spec.name} takes ${min === max ? "" : "at most "}${n} ${what ?? `argument${max === 1 ? "" : "s"}`}`;
}

/** `usage: credd X` lines, the second and later indented under the first. */
export function usageLines(spec: Pick<CommandSpec, "usage">): string {
  return spec.usage.map((u, i) => `${i === 0 ? "usage: " : "       "}credd ${u}`).join("\n");
}

/** The whole text of a usage mistake: what is wrong, the usage line, where to read more. */
export function usageText(p: UsageProblem): string {
  if (!p.spec) return `credd: ${p.message}\nusage: credd [--config FILE] COMMAND [ARGS]\nSee \`credd --help\` for the commands.`;
  return `credd ${p.spec.name}: ${p.message}\n${usageLines(p.spec)}\nSee \`credd help ${p.spec.name}\` for more.`;
}

/** The command word in `argv` (after the global options), its index, or undefined. */
export function findCommand(argv: readonly string[]): { name: string; index: number } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return i + 1 < argv.length ? { name: argv[i + 1]!, index: i + 1 } : undefined;
    if (a === "--config" || a === "-c") i++;
    else if (!a.startsWith("-") || a === "-") return { name: a, index: i };
  }
  return undefined;
}
