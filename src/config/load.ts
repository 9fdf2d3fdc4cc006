// Loading the config file: find it, read it, parse the YAML with `yaml` (keeping line numbers for
// messages) and validate it into a Config. Every failure is a ConfigError naming file, key and fix.
// A good file's Config is cached by its bytes (src/config/cache.ts), so large configs load fast.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import type { Document, LineCounter } from "yaml";
import { ConfigError } from "../errors.js";
import type { Config } from "./types.js";
import { readCachedConfig, recordingEnv, writeCachedConfig, type CacheVariant } from "./cache.js";
import { ConfigInvalidError, Issues, type Issue, type Locate, type Seg } from "./issues.js";
import { validateConfig } from "./validate.js";

export { readSecretFile, resolveSecretPath } from "./secrets.js";
export { ConfigInvalidError, type Issue } from "./issues.js";

export { DEFAULT_CONFIG_PATH, defaultConfigPath } from "./path.js";

/** Reads, parses and validates the config file (or takes its cached Config); throws ConfigError. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = path.resolve(file);
  return configOfBytes(readConfigBytes(abs), abs, env);
}

/**
 * The Config of the file `abs` whose content is `bytes`: from the cache when it holds this very
 * content, else parsed and validated (and then cached when the cache folder is ours to write).
 */
export function configOfBytes(bytes: Buffer, abs: string, env: NodeJS.ProcessEnv = process.env): Config {
  const cached = readCachedConfig(abs, bytes, env);
  if (cached) return cached;
  const parsed = parseYaml(bytes.toString("utf8"), abs);
  const envRead: Record<string, string | null> = {};
  const config = validated(parsed, abs, env, envRead);
  const variants: CacheVariant[] = [{ env: envRead, config }];
  // The daemon sees CREDENTIALS_DIRECTORY (LoadCredential=), a person running `credd status` does
  // not, and relative secret names resolve differently: store the Config as they get it too.
  const set = Object.keys(envRead).filter((k) => envRead[k] !== null);
  if (set.length > 0) {
    const without = { ...env };
    for (const k of set) delete without[k];
    const read: Record<string, string | null> = {};
    try {
      variants.push({ env: read, config: validated(parsed, abs, without, read) });
    } catch {
      // Valid only with those variables: a reader without them parses and gets the message.
    }
  }
  writeCachedConfig(abs, bytes, variants, env);
  return config;
}

/** The config file's bytes; a missing or unreadable file is a ConfigError naming it and the fix. */
export function readConfigBytes(file: string): Buffer {
  const abs = path.resolve(file);
  try {
    return fs.readFileSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      code === "ENOENT"
        ? "config file not found"
        : code === "EACCES" || code === "EPERM"
          ? "config file cannot be read: permission denied"
          : code === "EISDIR"
            ? "is a folder, not a config file"
            : `config file cannot be read (${code ?? "unknown error"})`;
    const fix =
      code === "EACCES" || code === "EPERM"
        ? "run credd as a user that may read it, or name another file with --config FILE or $CREDD_CONFIG"
        : "create it, or name another file with --config FILE or $CREDD_CONFIG";
    throw new ConfigError(abs, "", problem, fix, { cause: err });
  }
}

/**
 * Parses and validates `text` with the `yaml` Document API, so every problem in the file is named
 * on its line; never cached. `file` is used for messages and to resolve relative paths.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = path.resolve(file);
  return validated(parseYaml(text, abs), abs, env, {});
}

interface Parsed {
  doc: Document;
  lineCounter: LineCounter;
  value: unknown;
}

/** The `yaml` Document parse; a YAML problem is a ConfigInvalidError naming its line. */
function parseYaml(text: string, abs: string): Parsed {
  const { LineCounter, parseDocument } = yamlLib();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  // The first YAML problem only: later ones are usually echoes of it. Warnings (an unknown
  // `!tag`) count too: nothing in the file may be silently ignored.
  const yamlProblem = doc.errors[0] ?? doc.warnings[0];
  if (yamlProblem) {
    const pos = yamlProblem.linePos?.[0];
    const what = yamlProblem.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "invalid YAML";
    const issue = {
      key: "",
      problem: `YAML syntax error${pos ? ` at line ${pos.line}, column ${pos.col}` : ""}: ${what}`,
      fix: /alias/i.test(what)
        ? 'quote values that start with * (a YAML alias), e.g. check_schedule: "*/10 * * * *"'
        : 'correct the YAML there; quote values that start with *, &, !, [, { or contain ": " or " #"',
      ...(pos ? { line: pos.line } : {}),
    };
    throw new ConfigInvalidError(abs, [issue]);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(abs, "", `cannot be read as YAML: ${(err as Error).message}`, "simplify the anchors and aliases", { cause: err });
  }
  return { doc, lineCounter, value };
}

/** The Config of a parsed file, noting into `envRead` each environment variable validation read. */
function validated(p: Parsed, abs: string, env: NodeJS.ProcessEnv, envRead: Record<string, string | null>): Config {
  const ix = new Issues(locator(p.doc, p.lineCounter));
  const config = validateConfig(ix, p.value, abs, recordingEnv(env, envRead));
  if (ix.list.length > 0 || !config) throw new ConfigInvalidError(abs, byLine(ix.list));
  return config;
}

/** In file order, as an editor would show them; problems without a line (missing keys) last. */
export function byLine(issues: readonly Issue[]): Issue[] {
  return [...issues].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

/** `yaml`, loaded on first use (about 25 ms): a config found in the cache never needs it. */
let yamlModule: typeof import("yaml") | undefined;
function yamlLib(): typeof import("yaml") {
  yamlModule ??= createRequire(import.meta.url)("yaml") as typeof import("yaml");
  return yamlModule;
}

/** Finds the line of any key path in `text` (a config that parsed): for problems found after loading. */
export function lineLocator(text: string): Locate {
  const { LineCounter, parseDocument } = yamlLib();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  return locator(doc, lineCounter);
}

/** Line of a path in the document; falls back to the nearest parent that exists. */
function locator(doc: Document, lines: LineCounter): Locate {
  const { isMap, isNode, isScalar } = yamlLib();
  const lineOf = (node: unknown): number | undefined => (isNode(node) && node.range ? lines.linePos(node.range[0]).line : undefined);
  return (raw: readonly Seg[], ofKey: boolean): number | undefined => {
    if (ofKey && raw.length > 0) {
      const parent = raw.length === 1 ? doc.contents : doc.getIn(raw.slice(0, -1), true);
      const key = raw[raw.length - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
        const line = lineOf(pair?.key);
        if (line !== undefined) return line;
      }
    }
    // A missing top-level key has no useful line: the top mapping's first line would mislead.
    for (let n = raw.length; n >= (raw.length === 0 ? 0 : 1); n--) {
      const node = n === 0 ? doc.contents : doc.getIn(raw.slice(0, n), true);
      const line = lineOf(node);
      if (line !== undefined) return line;
    }
    return undefined;
  };
}
