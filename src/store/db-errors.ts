// SQLite failures that come from outside credd (locked, disk full, read-only, I/O, damaged) turned
// into errors that name the database file, what happened and what to do; for a lock, who holds it.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CreddError, errorMessage, type ErrorCode } from "../errors.js";

export class DbError extends CreddError {
  constructor(
    code: ErrorCode,
    message: string,
    /** The database file. */
    readonly file: string,
    /** SQLite's own code, e.g. SQLITE_BUSY or SQLITE_FULL. */
    readonly sqliteCode: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = "DbError";
  }
}

/** SQLite's code of `err` (better-sqlite3's SqliteError, or a DbError made from one), else "". */
export function sqliteCodeOf(err: unknown): string {
  if (err instanceof DbError) return err.sqliteCode;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : "";
}

/**
 * `err` as a DbError naming `file` when it is a failure of the environment; anything else (a
 * constraint, an SQL mistake, an error thrown inside a transaction) is returned unchanged.
 */
export function describeDbError(err: unknown, file: string, busyTimeoutMs: number): unknown {
  if (err instanceof DbError) return err;
  const code = sqliteCodeOf(err);
  if (!code) return err;
  const dir = dirname(file);
  const what = `${code}: ${errorMessage(err)}`;
  const make = (c: ErrorCode, message: string) => new DbError(c, message, file, code, { cause: err });
  const base = code.replace(/^(SQLITE_[A-Z]+)_.*$/, "$1");
  switch (base) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return make(
        "LOCKED",
        `database ${file} is locked: another connection kept it busy for more than ${busyTimeoutMs / 1000} s (${what}); ` +
          `${describeHolders(file)}. Fix: let that process finish and try again; if it is stuck (an sqlite3 shell ` +
          `left inside a transaction, a backup or copy of the file), end it. Only one \`credd run\` may use ${dir}`,
      );
    case "SQLITE_FULL":
      return make(
        "IO",
        `database ${file}: the disk is full (${what}). Fix: free space on the file system holding ${dir} (df -h ${dir}); nothing was half-written`,
      );
    case "SQLITE_READONLY":
      return make(
        "IO",
        `database ${file} cannot be written by this process (${what}). Fix: run credd as the user that owns ${dir} ` +
          `(under systemd: sudo -u credd), check the owner and mode of ${file} and its -wal and -shm files, and that the file system is not mounted read-only`,
      );
    case "SQLITE_CANTOPEN":
      return make("IO", `cannot open database ${file} (${what}). Fix: check that ${dir} exists and is writable by this user`);
    case "SQLITE_IOERR":
      return make(
        "IO",
        `database ${file}: input/output error (${what}). Fix: check the disk and the file system holding ${dir} (free space, dmesg for device errors)`,
      );
    case "SQLITE_CORRUPT":
    case "SQLITE_NOTADB":
      return make(
        "IO",
        `database ${file} is damaged or is not a credd database (${what}). Fix: stop credd, keep a copy of the file, ` +
          `check it with sqlite3 ${file} "PRAGMA integrity_check", and restore it from a backup if needed`,
      );
    default:
      return err;
  }
}

/** "pid 4711 (sqlite3) has it open", from /proc; only process names, never command lines (they may hold secrets). */
function describeHolders(file: string): string {
  let real = resolve(file);
  try {
    real = join(realpathSync(dirname(file)), basename(file)); // /proc shows resolved paths
  } catch {
    /* keep the resolved path */
  }
  const holders = processesWithOpen([real, `${real}-wal`, `${real}-shm`, `${real}-journal`]);
  const daemon = pidFileOwner(join(dirname(file), "credd.pid"));
  if (holders === undefined) return "the process holding it could not be looked up here (no /proc); `fuser -v` on the file shows it";
  if (holders.length === 0) {
    return (
      "no other process visible to this user has it open (so it is another connection in this process, or a process " +
      "of another user: `sudo fuser -v` on the file shows it)"
    );
  }
  const named = holders.map((h) => `pid ${h.pid} (${h.pid === daemon ? "credd run" : h.name})`);
  return `${named.length === 1 ? "process" : "processes"} with it open: ${named.join(", ")}`;
}

/** Other processes with one of `paths` open, or undefined where /proc cannot tell. */
function processesWithOpen(paths: string[]): { pid: number; name: string }[] | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const wanted = new Set(paths);
  const found: { pid: number; name: string }[] = [];
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    const has = fds.some((fd) => {
      try {
        return wanted.has(readlinkSync(`/proc/${p}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!has) continue;
    let name = "?";
    try {
      name = readFileSync(`/proc/${p}/comm`, "utf8").trim() || "?";
    } catch {
      /* gone meanwhile */
    }
    found.push({ pid, name });
  }
  return found;
}

function pidFileOwner(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
