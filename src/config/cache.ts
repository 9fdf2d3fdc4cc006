// The validated config cached as JSON, so `status` skips the YAML parse and validation on a large
// config. A cache is only ever a copy of what a fresh parse gives: anything doubtful is ignored.
//
// Where: $CREDD_CACHE_DIR, else /var/cache/credd (the unit's CacheDirectory=credd), one file per
// config path. credd never creates that folder, and writes into it only when the folder belongs to
// the user it runs as (the daemon, `sudo -u credd credd ...`): root and group credd read, never
// write, so a reading command leaves no file of theirs behind. The folder is fixed rather than
// under state_dir because state_dir is only known once the config is parsed.
//
// Key: the config's bytes (sha256), its absolute path (relative paths resolve against its folder),
// credd's version (the validation code), and every environment variable validation looked at with
// its value (today CREDENTIALS_DIRECTORY, for relative `*_password_file` names). An entry holds a
// Config per such environment: the daemon's (under LoadCredential=) and, written by the daemon
// too, the one a person running `credd status` without those variables gets. Validation reads no
// other file, so nothing else can change its result. The Config holds paths to secret files,
// never a secret: the config refuses secrets (src/config/validate.ts), and they are read only when
// needed (src/config/secrets.ts).
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { writeFileAtomic } from "../files/atomic.js";
import type { Config } from "./types.js";

export const DEFAULT_CACHE_DIR = "/var/cache/credd";

/** Bump when the entry's shape changes; older entries are then simply rebuilt. */
const FORMAT = 1;

/** A cache file larger than this is not one credd wrote for a config: ignored unread. */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;

/** The Config as a process with these environment variables gets it. */
export interface CacheVariant {
  /** The environment variables validation read, with their values (null: unset). */
  env: Record<string, string | null>;
  config: Config;
}

interface Entry {
  format: number;
  credd: string;
  file: string;
  sha256: string;
  variants: CacheVariant[];
}

export function cacheDir(env: NodeJS.ProcessEnv): string {
  return env.CREDD_CACHE_DIR ? path.resolve(env.CREDD_CACHE_DIR) : DEFAULT_CACHE_DIR;
}

/** One file per config path: a changed config replaces its entry instead of adding one. */
export function cacheFileFor(abs: string, env: NodeJS.ProcessEnv): string {
  const id = createHash("sha256").update(abs).digest("hex").slice(0, 32);
  return path.join(cacheDir(env), `config-${id}.json`);
}

export function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * The cached Config for the config file `abs` whose content is `bytes`, or undefined when there is
 * none to trust: missing, unreadable, a symlink, written by another user, writable by others, not
 * JSON, another format or credd version, another content, path or environment.
 */
export function readCachedConfig(abs: string, bytes: Buffer, env: NodeJS.ProcessEnv): Config | undefined {
  const credd = creddVersion();
  if (credd === undefined) return undefined;
  const file = cacheFileFor(abs, env);
  let text: string;
  try {
    const dirOwner = fs.statSync(path.dirname(file)).uid;
    // O_NONBLOCK: a FIFO in its place must not hang the load.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size > MAX_CACHE_BYTES || (st.mode & 0o022) !== 0) return undefined;
      // Written by this user, root, or the folder's owner (the daemon's user): nobody else.
      if (st.uid !== euid() && st.uid !== 0 && st.uid !== dirOwner) return undefined;
      text = fs.readFileSync(fd, "utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  let e: Partial<Entry>;
  try {
    e = JSON.parse(text) as Partial<Entry>;
  } catch {
    return undefined;
  }
  if (typeof e !== "object" || e === null) return undefined;
  if (e.format !== FORMAT || e.credd !== credd || e.file !== abs || e.sha256 !== sha256(bytes)) return undefined;
  if (!Array.isArray(e.variants)) return undefined;
  for (const v of e.variants as unknown[]) {
    if (typeof v !== "object" || v === null) continue;
    const { env: read, config: c } = v as Partial<CacheVariant>;
    if (typeof read !== "object" || read === null) continue;
    if (!Object.entries(read).every(([k, x]) => (env[k] ?? null) === x)) continue;
    if (typeof c !== "object" || c === null || c.file !== abs || !Array.isArray(c.credentials)) return undefined;
    return c;
  }
  return undefined;
}

/**
 * Stores freshly validated Configs, each with what validation read of the environment. Only into
 * an existing folder owned by this user; any failure leaves the cache as it was.
 */
export function writeCachedConfig(abs: string, bytes: Buffer, variants: CacheVariant[], env: NodeJS.ProcessEnv): void {
  const credd = creddVersion();
  if (credd === undefined) return;
  const file = cacheFileFor(abs, env);
  try {
    const dir = fs.lstatSync(path.dirname(file));
    if (!dir.isDirectory() || dir.uid !== euid()) return;
    const entry: Entry = { format: FORMAT, credd, file: abs, sha256: sha256(bytes), variants };
    // 0640 like credd.yaml (root:credd 0640): group credd may read what it may read in the config.
    writeFileAtomic(file, JSON.stringify(entry), 0o640, { exactMode: true, createDir: false });
  } catch {
    // A cache that cannot be written costs only time on the next load.
  }
}

/** `env` as validation sees it, noting every variable read (and its value) into `read`. */
export function recordingEnv(env: NodeJS.ProcessEnv, read: Record<string, string | null>): NodeJS.ProcessEnv {
  return new Proxy(env, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof key === "string") read[key] = typeof v === "string" ? v : null;
      return v;
    },
  });
}

function euid(): number {
  return process.geteuid?.() ?? -1;
}

/** credd's version (package.json, as `credd --version` reads it); without it, no cache. */
let version: string | null | undefined;
function creddVersion(): string | undefined {
  if (version === undefined) {
    try {
      const v = (createRequire(import.meta.url)("../../package.json") as { version?: unknown }).version;
      version = typeof v === "string" ? v : null;
    } catch {
      version = null;
    }
  }
  return version ?? undefined;
}
