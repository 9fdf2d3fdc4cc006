// A lock the kernel holds for this process and drops when it ends, however it ends: SQLite's
// exclusive lock on an empty file, taken through better-sqlite3 (Node has no fcntl/flock). Why
// this and not a pid file: src/daemon/lock.ts. Used for the state folder (one `credd run`) and
// for token requests (one per credential across processes).
//
// Rules: nothing may open a lock file except through here (POSIX locks are dropped when the process
// closes any descriptor of the file; SQLite defers such a close while one of its connections holds
// a lock), and the file must stay empty (the transaction never writes).
import Database from "better-sqlite3";
import { NATIVE } from "../store/db.js";

/** Opens (creating it empty if missing) a lock file; throws as better-sqlite3 does. */
export function openLockFile(file: string): Database.Database {
  return new Database(file, { timeout: 0, ...NATIVE });
}

/**
 * Takes the lock at once: the connection, which holds it until closed, or undefined (connection
 * closed) when another connection, in this process or another, holds it. Any other failure (the
 * file is not empty: SQLITE_NOTADB) is thrown, the connection closed.
 */
export function tryLockExclusive(db: Database.Database): Database.Database | undefined {
  try {
    db.exec("BEGIN EXCLUSIVE");
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") return undefined;
    throw err;
  }
}
