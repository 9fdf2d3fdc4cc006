// One `credd run` per state folder: a lock the kernel holds for the process (state_dir/credd.lock),
// and state_dir/credd.pid naming the holder, for the refusal message and for people.
//
// Why not a pid file as the lock. Taking it is create-exclusive, but a crashed credd leaves it behind,
// and reclaiming it is check-then-act across processes: read the pid, see it dead, remove the file,
// create ours. Two starters that both read the dead pid both remove, and the later removal can
// take away the lock the other has just created: both run. Renaming the stale file away and then
// checking it was the one read narrows that, but a wrong guess must be put back, and a third
// starter can take the name meanwhile; a pid reused by an unrelated process blocks credd for good;
// and a lock caught between its creation and the pid write reads as empty. Every fix of that kind
// decides on what another process may change the next moment.
//
// So the lock itself is one nobody has to reclaim: a POSIX advisory lock (fcntl), which the kernel
// drops when the process ends, however it ends (SIGKILL, OOM, power loss). Node has no fcntl/flock,
// but better-sqlite3, our database, takes exactly these locks on its files: a connection that has
// begun an EXCLUSIVE transaction holds an exclusive lock, and any other connection, in another
// process or this one (SQLite tracks locks per file across its connections), gets SQLITE_BUSY at
// once (timeout 0). Taking the lock is one atomic step in the kernel, so of any number of
// starters exactly one wins, stale or not. The transaction never writes: credd.lock stays empty,
// no journal is made, nothing can be left half-written, and it works on a full disk.
//
// Two rules. POSIX locks belong to the process and are dropped when it closes ANY descriptor of
// that file: nothing in credd may open credd.lock but this connection. And the lock is on the
// file, not the name: removing credd.lock while credd runs lets the next start lock a new file.
//
// credd.pid is written (atomically: temp file, fsync, rename) only once the lock is held, so a pid
// file never decides anything: one left by a SIGKILL is simply replaced by the next holder.
import { readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { CreddError, errorMessage } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";
import { openLockFile, tryLockExclusive } from "../files/kernel-lock.js";

export interface Lock {
  release(): void;
}

export const LOCK_FILE = "credd.lock";
export const PID_FILE = "credd.pid";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Tries the kernel lock once: the open connection holding it, or undefined when another holds it. */
function tryLock(file: string): Database.Database | undefined {
  let db: Database.Database;
  try {
    db = openLockFile(file);
  } catch (err) {
    throw new CreddError("IO", `cannot open the lock file ${file}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return tryLockExclusive(db);
  } catch (err) {
    // SQLITE_NOTADB: something was written into the file credd keeps empty.
    throw new CreddError("IO", `cannot take the lock ${file}: ${errorMessage(err)} (credd keeps it empty: with no credd run running, remove it)`, {
      cause: err,
    });
  }
}

export interface LockOptions {
  /**
   * How long a refused starter waits for the holder's pid to show (the holder writes credd.pid
   * just after taking the lock) or for the lock to come free (a holder on its way out). Default 2 s.
   */
  waitMs?: number;
}

export function acquireLock(stateDir: string, opts: LockOptions = {}): Lock {
  const lockFile = join(stateDir, LOCK_FILE);
  const pidFile = join(stateDir, PID_FILE);
  const until = Date.now() + (opts.waitMs ?? 2_000);
  for (;;) {
    const held = tryLock(lockFile);
    if (held) return holding(held, pidFile);
    // Another process holds it. Name it once it has written its pid; a pid that is not (yet) the
    // holder's, or none, means it has just taken the lock or is just letting it go: look again.
    const pid = readPid(pidFile);
    const known = pid !== undefined && (pid === process.pid || alive(pid));
    if (known || Date.now() >= until) {
      const who = pid === undefined ? "pid unknown" : known ? `pid ${pid}` : `pid ${pid}, not running here: in another container?`;
      throw new CreddError(
        "LOCKED",
        `another credd run (${who}) is already using ${stateDir}; stop it first (systemctl stop credd), or give this one its own state_dir`,
      );
    }
    sleep(50);
  }
}

function holding(db: Database.Database, pidFile: string): Lock {
  try {
    writeFileAtomic(pidFile, `${process.pid}\n`, 0o644);
  } catch (err) {
    db.close();
    throw new CreddError("IO", `cannot write ${pidFile}: ${errorMessage(err)}`, { cause: err });
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // The pid file goes first, while the lock is still held, so it never names a process that let go.
      try {
        if (readPid(pidFile) === process.pid) unlinkSync(pidFile);
      } catch {
        /* already gone */
      }
      db.close();
    },
  };
}
