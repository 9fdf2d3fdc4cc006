// `credd migrate-store --to postgres`: copies this host's SQLite state into an empty PostgreSQL
// database (docs/shared-store.md). The source is only read; switching `store:` is the operator's step.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import { acquireLock } from "../daemon/lock.js";
import { CreddError } from "../errors.js";
import { migrateSqliteToPostgres, type MigrateTarget } from "../store/open.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const MIGRATE_STORE_HELP = `Copies this host's SQLite state (state_dir/credd.db, and the private keys, CSRs,
certificates and chains of state_dir/credentials/*/archive/) into an EMPTY
PostgreSQL database, for store: postgres (docs/shared-store.md).

The target is the config's store.postgres (url_file, key_encryption_key_file,
ca_file) when the config names it; each option below replaces its key, so the
config may still say store: sqlite:
  --url-file FILE                  one postgres://USER:PASSWORD@HOST/DB line
  --key-encryption-key-file FILE   32 random bytes as base64, mode 0600
  --ca-file FILE                   the server's CA (optional)
Give the same files the hosts will use: the keys are sealed under that key.

Refused while \`credd run\` uses this state_dir (stop it first), and when the
database holds any credd row already: nothing is written then. The schema is
migrated, every table copied in id order in one transaction, the archive
files stored (private keys sealed under the key-encryption key), and all of
it verified before the commit: row counts, every row field by field, every
file and sealed key byte for byte; any difference rolls it all back, and so
does a credd.db or archive/ that changed meanwhile (credd import, enroll and
ingest take no lock: run none of them during the copy). Token rows, and the
meta keys clean_stop, started_at and stopped_at, become this host's
(CREDD_HOST_NAME, else the host name). The hosts table is not copied: it is
the SQLite host's heartbeat; hosts appear as their credd run heartbeats.

The source is never changed nor deleted. Then set store: postgres in the
config of every host and start credd run.

exit: 0 copied and verified, 1 refused or failed (nothing written), 2 usage`;

function target(p: Parsed, g: Globals, config: ReturnType<typeof loadConfig>): MigrateTarget {
  const v = p.values as { "url-file"?: string; "key-encryption-key-file"?: string; "ca-file"?: string };
  const pg = config.store === "sqlite" ? undefined : config.store.postgres;
  const pick = (option: string, given: string | undefined, key: string, fromConfig: string | undefined) =>
    given !== undefined ? { file: resolve(given), key: `--${option}` } : fromConfig !== undefined ? { file: fromConfig, key } : undefined;
  const url = pick("url-file", v["url-file"], "store.postgres.url_file", pg?.url_file);
  const kek = pick("key-encryption-key-file", v["key-encryption-key-file"], "store.postgres.key_encryption_key_file", pg?.key_encryption_key_file);
  const ca = pick("ca-file", v["ca-file"], "store.postgres.ca_file", pg?.ca_file);
  const missing = [url ? "" : "--url-file FILE", kek ? "" : "--key-encryption-key-file FILE"].filter(Boolean);
  if (!url || !kek) throw new CreddError("USAGE", `${missing.join(" and ")} needed: ${g.configPath} names no store.postgres to copy to`);
  return {
    url_file: url.file,
    key_encryption_key_file: kek.file,
    ...(ca ? { ca_file: ca.file } : {}),
    keys: { url: url.key, kek: kek.key, ca: ca?.key ?? "--ca-file" },
  };
}

export async function cmdMigrateStore(p: Parsed, g: Globals, io: Io): Promise<number> {
  const to = (p.values as { to: string }).to;
  if (to !== "postgres") throw new CreddError("USAGE", `--to ${to}: the only target is postgres (--to postgres)`);
  const config = loadConfig(g.configPath);
  const where = target(p, g, config);
  // A running daemon would write credd.db and archive/ during the copy: refused, as a second `credd run` is.
  const lock = existsSync(config.state_dir) ? acquireLock(config.state_dir, { waitMs: 500 }) : undefined;
  try {
    const r = await migrateSqliteToPostgres(config, where, (line) => io.err(line));
    const rows = r.tables.reduce((n, t) => n + t.rows, 0);
    io.out(`copied ${r.source} to PostgreSQL ${r.where} and verified it:`);
    for (const t of r.tables) io.out(`  ${t.table.padEnd(18)} ${t.rows} row${t.rows === 1 ? "" : "s"}`);
    for (const t of r.notCopied) io.out(`  ${t.table.padEnd(18)} not copied (${t.rows} row${t.rows === 1 ? "" : "s"} in SQLite): ${t.why}`);
    if (r.hostMeta.length) io.out(`  ${"meta".padEnd(18)} ${r.hostMeta.join(", ")} stored as this host's (KEY@host, as credd run keeps them)`);
    io.out(`  ${"archive".padEnd(18)} ${r.versions} version(s), ${r.files} file(s), ${r.keys} private key(s) sealed under key ${r.kekId}`);
    io.out(`${rows} rows in ${r.tables.length} tables; the source was only read.`);
    io.out(
      "next: set store: postgres (url_file, key_encryption_key_file" +
        `${where.ca_file ? ", ca_file" : ""}) in the config of every host, copy the key file to each, and start credd run`,
    );
    return 0;
  } finally {
    lock?.release();
  }
}
