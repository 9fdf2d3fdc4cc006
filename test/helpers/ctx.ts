// A Ctx for tests on SQLite: the store core/ uses, and beside it the same connection (`db`), so a test
// can set up and inspect rows with the synchronous functions of src/store/ (the SQLite implementation).
import type { Ctx } from "../../src/core/context.js";
import type { Db } from "../../src/store/db.js";
import { sqliteStore, type SqliteStore } from "../../src/store/sqlite-store.js";

export type TestCtx = Ctx & { db: Db; store: SqliteStore };

/** Adds `store` over `c.db` to `c` itself (the same object, so a test may keep changing its fields). */
export function sqliteCtx(c: Omit<Ctx, "store"> & { db: Db }): TestCtx {
  return Object.assign(c, { store: sqliteStore(c.db) });
}
