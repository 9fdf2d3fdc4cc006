// Typed readers for the parsed YAML tree. Each checks one value, records an issue when it is
// wrong and returns undefined then, so one pass reports every problem in the file.

import path from "node:path";
import { child, type At, type Issues } from "./issues.js";
import { closest } from "./suggest.js";

export type Mapping = Record<string, unknown>;

export function isMapping(v: unknown): v is Mapping {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value's own property only: a config key named `constructor` must not find Object's. */
export function get(m: Mapping, key: string): unknown {
  return Object.hasOwn(m, key) ? m[key] : undefined;
}

/** Absent and `key:` with nothing after it (YAML null) both mean "not set". */
export function isUnset(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

/** What a wrong value is, for messages; strings are JSON-quoted so control characters show as escapes. */
export function describe(v: unknown): string {
  if (isUnset(v)) return "nothing";
  if (typeof v === "string") return `the string ${quote(v)}`;
  if (typeof v === "number") return `the number ${v}`;
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  return "a mapping";
}

export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

export interface MappingSpec {
  known: readonly string[];
  /** Keys refused with their own explanation (e.g. `password`: secrets only come from files). */
  forbidden?: Readonly<Record<string, { problem: string; fix: string }>>;
  /** Common wrong names and the key they mean (`S` → `ST`), tried before edit distance. */
  aliases?: Readonly<Record<string, string>>;
}

/** A mapping whose keys are all known; unknown keys are errors with the closest known key. */
export function mapping(ix: Issues, at: At, v: unknown, spec: MappingSpec, example: string): Mapping | undefined {
  if (!isMapping(v)) {
    ix.add(at, `must be a mapping (key: value pairs), got ${describe(v)}`, example);
    return undefined;
  }
  for (const key of Object.keys(v)) {
    if (spec.known.includes(key)) continue;
    const forbidden = spec.forbidden && Object.hasOwn(spec.forbidden, key) ? spec.forbidden[key] : undefined;
    if (forbidden) {
      ix.addKey(child(at, key), forbidden.problem, forbidden.fix);
      continue;
    }
    const alias = spec.aliases && Object.hasOwn(spec.aliases, key) ? spec.aliases[key] : undefined;
    const guess = alias ?? closest(key, spec.known);
    if (guess) ix.addKey(child(at, key), `unknown key (did you mean "${guess}"?)`, `rename it to "${guess}"`);
    else ix.addKey(child(at, key), "unknown key", `remove it; the keys allowed here are ${spec.known.join(", ")}`);
  }
  return v;
}

/** Records "is missing" and returns false when a required value is unset. */
export function present(ix: Issues, at: At, v: unknown, fix: string): boolean {
  if (!isUnset(v)) return true;
  ix.add(at, "is missing", fix);
  return false;
}

const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const CONTROL_NAMES: Readonly<Record<number, string>> = { 0: "NUL", 9: "TAB", 10: "LF", 13: "CR", 127: "DEL" };

/** The first control character (C0, DEL, C1) in s, described for a message, or undefined. */
export function findControl(s: string): string | undefined {
  const m = CONTROL.exec(s);
  if (!m) return undefined;
  const code = s.charCodeAt(m.index);
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  const name = CONTROL_NAMES[code];
  return `${name ? `${name}, ${hex}` : hex} at position ${m.index + 1}`;
}

/** What is wrong with a piece of text as a config value: empty, control characters, stray spaces. */
export function textProblem(s: string): { problem: string; fix: string } | undefined {
  if (s.trim() === "") return { problem: "is empty", fix: "give it a value, or remove the key if it is optional" };
  const control = findControl(s);
  if (control)
    return {
      problem: `contains a control character (${control}); control characters are not allowed`,
      fix: "write the value on one line without tabs, carriage returns or other control characters",
    };
  if (s !== s.trim()) return { problem: "has leading or trailing whitespace", fix: `remove it: ${quote(s.trim())}` };
  return undefined;
}

/** A string without control characters or surrounding whitespace. */
export function str(ix: Issues, at: At, v: unknown, example: string): string | undefined {
  if (typeof v !== "string") {
    const hint = typeof v === "number" || typeof v === "boolean" ? `quote it: "${String(v)}"` : example;
    ix.add(at, `must be a string, got ${describe(v)}`, hint);
    return undefined;
  }
  const bad = textProblem(v);
  if (bad) {
    ix.add(at, bad.problem, bad.fix);
    return undefined;
  }
  return v;
}

export function int(ix: Issues, at: At, v: unknown, min: number, max: number, unit: string): number | undefined {
  if (typeof v === "string" && /^\s*-?\d+\s*$/.test(v)) {
    ix.add(at, `must be a number, got ${describe(v)}`, `write it without quotes: ${v.trim()}`);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    ix.add(at, `must be a whole number of ${unit} from ${min} to ${max}, got ${describe(v)}`, `use a value from ${min} to ${max}`);
    return undefined;
  }
  return v;
}

export function bool(ix: Issues, at: At, v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  ix.add(at, `must be true or false, got ${describe(v)}`, "write true or false, without quotes");
  return undefined;
}

/** A file system path; a relative one is resolved against `base` (the config file's folder). */
export function filePath(ix: Issues, at: At, v: unknown, base: string, example: string): string | undefined {
  const s = str(ix, at, v, example);
  if (s === undefined) return undefined;
  if (s.startsWith("~")) {
    ix.add(at, `starts with "~", which credd does not expand`, "write the full path, e.g. /home/USER/...");
    return undefined;
  }
  return path.resolve(base, s);
}

/** An https:// URL with a host and no user name or password in it. Never echoes the value. */
export function httpsUrl(ix: Issues, at: At, v: unknown, example: string): string | undefined {
  const s = str(ix, at, v, example);
  if (s === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ix.add(at, "is not a valid URL", example);
    return undefined;
  }
  if (u.protocol !== "https:") {
    ix.add(at, `must be an https:// URL, got ${u.protocol}//`, example);
    return undefined;
  }
  if (u.username || u.password) {
    ix.add(at, "must not contain a user name or password: secrets only come from files", "remove them from the URL");
    return undefined;
  }
  return s;
}
