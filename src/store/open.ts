// Opens the store the config names (`store:`): SQLite in state_dir, or the shared PostgreSQL
// database (migrated first, under its advisory lock) with the leadership every `credd run` host
// takes part in (docs/shared-store.md). cli/ opens stores only through here and sqlite-store.ts.
import { mkdirSync } from "node:fs";
import type { PostgresStoreConfig, StoreConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import { hostNameOf } from "../host.js";
import { openSqliteStore, openSqliteStoreForReading } from "./sqlite-store.js";
import type { Store } from "./store.js";

/** What the daemon needs of leadership; on SQLite there is none (the one host always leads). */
export interface LeaderHandle {
  /** Tries to lead now (connects when needed); true when this host leads. Throws when the server is unreachable. */
  tryAcquire(): Promise<boolean>;
  /** As far as this host knows without asking the server. */
  isLeader(): boolean;
  /** The fence before a side effect: throws (a NotLeaderError) unless the server confirms the lock. */
  confirm(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenedStore {
  store: Store;
  /** "sqlite" or "postgres". */
  kind: "sqlite" | "postgres";
  /** Where the state is, for messages: the database file's folder, or user@host:port/database. */
  where: string;
  /** Makes the leadership of a `credd run` (PostgreSQL only): `onLost` when it ends without our asking. */
  leadership?: (onLost: (message: string) => void) => LeaderHandle;
}

interface StoreSpec {
  store: StoreConfig;
  state_dir: string;
  file: string;
}

/** Opens for writing: SQLite created and migrated in state_dir, or PostgreSQL migrated. */
export async function openStore(config: StoreSpec): Promise<OpenedStore> {
  if (config.store === "sqlite") return { store: openSqliteStore(config.state_dir), kind: "sqlite", where: config.state_dir };
  // state_dir still holds this host's files (lock, keys, live/), as openDb creates it for SQLite.
  mkdirSync(config.state_dir, { recursive: true, mode: 0o700 });
  return await openPostgres(config.store.postgres, true);
}

/** Opens for reading (status, alerts, token): SQLite read-only; PostgreSQL without migrating. */
export async function openStoreForReading(config: StoreSpec): Promise<OpenedStore> {
  if (config.store === "sqlite") return { store: openSqliteStoreForReading(config.state_dir, config.file), kind: "sqlite", where: config.state_dir };
  return await openPostgres(config.store.postgres, false);
}

async function openPostgres(pg: PostgresStoreConfig, migrate: boolean): Promise<OpenedStore> {
  // Loaded only with PostgreSQL, so a SQLite install never loads the driver.
  const [{ pgTarget, describePgError }, { migratePg }, { openPgStore }, { Leadership }, { readKek }] = await Promise.all([
    import("./pg/connect.js"),
    import("./pg/migrate.js"),
    import("./pg/pg-store.js"),
    import("./pg/leader.js"),
    import("./pg/keywrap.js"),
  ]);
  const target = pgTarget({ urlFile: pg.url_file, ...(pg.ca_file ? { caFile: pg.ca_file } : {}) });
  // The current key seals and opens; the previous ones (a rotation in progress) only open.
  const ring = () => ({
    current: readKek(pg.key_encryption_key_file),
    previous: (pg.previous_key_encryption_key_files ?? []).map((f, i) => readKek(f, `store.postgres.previous_key_encryption_key_files[${i}]`)),
  });
  if (!migrate) {
    // Reading (status, alerts, token, doctor): the KEK (0600, credd's user) is read only if a key is
    // sealed or opened, so a member of credd's group can run them; the check below is `credd run`'s.
    const store = openPgStore(target, { kek: ring, host: hostNameOf() });
    return {
      store,
      kind: "postgres",
      where: target.where,
      leadership: (onLost) => new Leadership(target, { onLost: (loss) => onLost(loss.message) }),
    };
  }
  // The KEK is checked at start: a host without the right key file must not run on this store.
  const keys = ring();
  const kek = keys.current;
  await migratePg(target);
  const store = openPgStore(target, { kek: keys, host: hostNameOf() });
  // A host whose key-encryption key is not the one the store's keys are sealed under must not run:
  // it could open none of them and would seal new ones no other host can open. Loud, at once.
  try {
    const ids = (await store.pool.query<{ kek_id: string }>("SELECT DISTINCT kek_id FROM archive WHERE kek_id IS NOT NULL")).rows.map(
      (r) => r.kek_id,
    );
    const others = ids.filter((id) => id !== kek.id && !keys.previous.some((k) => k.id === id));
    if (others.length > 0) {
      throw new CreddError(
        "STATE",
        `${pg.key_encryption_key_file} (store.postgres.key_encryption_key_file) holds key-encryption key ${kek.id}, but the private keys in PostgreSQL ${target.where} are sealed under ${others.join(", ")}: this host could open none of them. credd does not re-enroll by itself (fix: copy the key file from another host of this store, the same on every host, or during a rotation name the other key in store.postgres.previous_key_encryption_key_files; a lost key is restored from your secret backup)`,
      );
    }
    // A key a rotation retired must not seal again, even when this host opens with the new one.
    const { RETIRED_KEKS } = await import("./pg/rotate.js");
    const retired =
      (await store.pool.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [RETIRED_KEKS])).rows[0]?.value.split(",") ?? [];
    if (retired.includes(kek.id)) {
      const now = [...new Set(ids)].filter((id) => id !== kek.id);
      throw new CreddError(
        "STATE",
        `${pg.key_encryption_key_file} (store.postgres.key_encryption_key_file) holds key-encryption key ${kek.id}, which was retired by credd rotate-store-key on PostgreSQL ${target.where}${now.length ? ` (the keys are sealed under ${now.join(", ")} now)` : ""}: keys this host sealed under it could not be opened by the hosts that dropped it (fix: set store.postgres.key_encryption_key_file to the new key's file, the one every other host uses, and list this one in previous_key_encryption_key_files if needed)`,
      );
    }
  } catch (err) {
    await store.close();
    if (err instanceof CreddError) throw err;
    throw describePgError(err, target, "cannot read the sealed keys on");
  }
  return {
    store,
    kind: "postgres",
    where: target.where,
    leadership: (onLost) => new Leadership(target, { onLost: (loss) => onLost(loss.message) }),
  };
}

/** Where `credd migrate-store --to postgres` copies to: the url file, the KEK and the CA, and the keys they came from. */
export interface MigrateTarget {
  url_file: string;
  key_encryption_key_file: string;
  ca_file?: string;
  /** How each was given, for messages: a config key or a command-line option. */
  keys: { url: string; kek: string; ca: string };
}

/**
 * `credd migrate-store --to postgres`: copies state_dir's SQLite state and archive/ into an empty
 * PostgreSQL database (src/store/pg/copy-sqlite.ts). The source is only read.
 */
export async function migrateSqliteToPostgres(
  config: StoreSpec,
  to: MigrateTarget,
  progress: (line: string) => void,
): Promise<import("./pg/copy-sqlite.js").CopyResult> {
  const [{ pgTarget }, { readKek }, { copySqliteToPostgres }] = await Promise.all([
    import("./pg/connect.js"),
    import("./pg/keywrap.js"),
    import("./pg/copy-sqlite.js"),
  ]);
  // Every file is read and checked before anything is opened or written.
  const kek = readKek(to.key_encryption_key_file, to.keys.kek);
  const target = pgTarget({
    urlFile: to.url_file,
    ...(to.ca_file ? { caFile: to.ca_file } : {}),
    keys: { url: to.keys.url, ca: to.keys.ca },
    applicationName: "credd migrate-store",
  });
  return await copySqliteToPostgres({ stateDir: config.state_dir, configFile: config.file, target, kek, host: hostNameOf(), progress });
}

/**
 * `credd rotate-store-key`: every sealed key of the configured PostgreSQL store sealed again under
 * its key_encryption_key_file, opened with the ring (`previous`: the files of the old keys).
 */
export async function rotatePostgresKey(
  config: StoreSpec,
  previous: { file: string; key: string }[],
  progress: (line: string) => void,
): Promise<import("./pg/rotate.js").RotateResult> {
  if (config.store === "sqlite")
    throw new CreddError(
      "STATE",
      `${config.file}: store is sqlite: the private keys are files in state_dir, not sealed (fix: credd rotate-store-key is for store: postgres; name the new key in store.postgres.key_encryption_key_file)`,
    );
  const pg = config.store.postgres;
  const [{ pgTarget }, { readKek }, { rotateStoreKey }] = await Promise.all([
    import("./pg/connect.js"),
    import("./pg/keywrap.js"),
    import("./pg/rotate.js"),
  ]);
  const current = readKek(pg.key_encryption_key_file);
  const ring = {
    current,
    previous: [
      ...previous.map((p) => readKek(p.file, p.key)),
      ...(pg.previous_key_encryption_key_files ?? []).map((f, i) => readKek(f, `store.postgres.previous_key_encryption_key_files[${i}]`)),
    ].filter((k) => k.id !== current.id),
  };
  const target = pgTarget({ urlFile: pg.url_file, ...(pg.ca_file ? { caFile: pg.ca_file } : {}), applicationName: "credd rotate-store-key" });
  return await rotateStoreKey(target, ring, progress);
}
