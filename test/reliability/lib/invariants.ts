// What must hold in a credd state folder and its store whenever no credd process runs, however the
// last one ended (DESIGN.md: "A crash at any point resumes where it stopped, with no key lost and no
// live pair mismatched"). The store is SQLite (state_dir/credd.db) or PostgreSQL (store: postgres),
// read through lib/store-reader.ts with the same statements; where a rule differs on PostgreSQL the
// comment says why.
import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, lstatSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { readKek, unwrapKey, type Kek } from "../../../src/store/pg/keywrap.js";
import type { ReceivedMail } from "../../helpers/smtp.js";
import { withStore, type StoreReader, type StoreTarget } from "./store-reader.js";
import { messageIdOf, sha256Hex } from "./world.js";

const PENDING = "('created','sent','signed','registered')";

export interface InvariantInput {
  stateDir: string;
  /** Where the store is; SQLite in stateDir by default. */
  store?: StoreTarget;
  /** PostgreSQL: the key-encryption key file the store's private keys are sealed with. */
  kekFile?: string;
  names: string[];
  received: readonly ReceivedMail[];
}

export interface InvariantReport {
  violations: string[];
  /** Message-IDs the SMTP server got more than once (allowed: at-least-once with the same ID). */
  duplicates: number;
  queued: number;
  sent: number;
}

function opensslOk(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function spkiSha256OfKey(pem: string): string {
  const der = createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "der" });
  return sha256Hex(der);
}

const storeOf = (input: InvariantInput): StoreTarget => input.store ?? { kind: "sqlite", stateDir: input.stateDir };

export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const v: string[] = [];
  const report: InvariantReport = { violations: v, duplicates: 0, queued: 0, sent: 0 };
  // No store yet: killed before the database existed (SQLite) or was migrated (PostgreSQL).
  return withStore(storeOf(input), report, async (db) => {
    await storeIntegrity(db, v);
    const tables = await db.tables();
    if (!tables.has("renewals") || !tables.has("outbox") || !tables.has("certificates")) return report; // mid-migration: nothing recorded yet

    // No credential with two pending renewals.
    const twice = await db.all(`SELECT credential, COUNT(*) AS n FROM renewals WHERE state IN ${PENDING} GROUP BY credential HAVING COUNT(*) > 1`);
    if (twice.length) v.push(`two pending renewals: ${JSON.stringify(twice)}`);

    // Every pending renewal's key is on disk, loadable, and is the key its CSR was made from. The same
    // on PostgreSQL: renewal.ts writes the key and CSR files before the store's transaction, so the
    // host that made them has them whatever the store says (a follower would fetch them at its tick).
    const pending = await db.all<{ id: number; credential: string; version: number; state: string; spki_sha256: string }>(
      `SELECT id, credential, version, state, spki_sha256 FROM renewals WHERE state IN ${PENDING}`,
    );
    for (const r of pending) {
      const key = join(input.stateDir, "credentials", r.credential, "archive", `key-${r.version}.pem`);
      const csr = join(input.stateDir, "credentials", r.credential, "archive", `csr-${r.version}.pem`);
      if (!existsSync(key)) {
        v.push(`${r.credential}: renewal #${r.id} (${r.state}) has no key on disk: ${key}`);
        continue;
      }
      const load = opensslOk(["pkey", "-in", key, "-noout"]);
      if (!load.ok) v.push(`${r.credential}: renewal #${r.id} key ${key} does not load: ${load.out.trim()}`);
      else if (spkiSha256OfKey(readFileSync(key, "utf8")) !== r.spki_sha256.toLowerCase())
        v.push(`${r.credential}: renewal #${r.id}: ${key} is not the key of its CSR`);
      if (!existsSync(csr)) v.push(`${r.credential}: renewal #${r.id} has no CSR on disk: ${csr}`);
    }
    if (db.kind === "postgres") await sealedKeys(db, input, pending, v);

    // Every renewal queued exactly one CSR email, in the same transaction.
    const csrRows = await db.all(
      `SELECT r.id, r.credential, COUNT(o.id) AS n FROM renewals r LEFT JOIN outbox o ON o.renewal_id = r.id AND o.kind = 'csr' GROUP BY r.id, r.credential HAVING COUNT(o.id) != 1`,
    );
    if (csrRows.length) v.push(`renewals without exactly one CSR email row: ${JSON.stringify(csrRows)}`);

    // At most one live certificate; live/ is a matching pair of a version the database knows. The
    // same on PostgreSQL: go-live switches live/ before it tells the store (golive.ts), so a kill in
    // between leaves live/ on a version the store has a row for but does not call live. SQLite's
    // database then follows live/ (reconcile.ts); on PostgreSQL live/ follows the store (follow.ts,
    // "The store is the truth" in docs/shared-store.md): either way the pair on disk is whole.
    const liveTwice = await db.all("SELECT credential, COUNT(*) AS n FROM certificates WHERE live = TRUE GROUP BY credential HAVING COUNT(*) > 1");
    if (liveTwice.length) v.push(`two live certificates: ${JSON.stringify(liveTwice)}`);
    for (const name of input.names) {
      const root = join(input.stateDir, "credentials", name);
      const link = join(root, "live");
      const dbLive = await db.get<{ version: number }>("SELECT version FROM certificates WHERE credential = ? AND live = TRUE", [name]);
      let isLink = false;
      try {
        isLink = lstatSync(link).isSymbolicLink();
      } catch {
        /* no live/ yet */
      }
      if (!isLink) {
        if (dbLive) v.push(`${name}: the database has version ${dbLive.version} live but live/ is missing`);
        continue;
      }
      const target = readlinkSync(link);
      const version = Number(/^\.live-(\d+)$/.exec(target)?.[1] ?? NaN);
      const known = await db.get<{ sha256: string }>("SELECT sha256 FROM certificates WHERE credential = ? AND version = ?", [name, version]);
      if (!known) v.push(`${name}: live/ -> ${target}, a version with no certificate row`);
      const keyPath = join(link, "key.pem");
      const certPath = join(link, "cert.pem");
      if (!existsSync(keyPath) || !existsSync(certPath)) {
        v.push(`${name}: live/ -> ${target} lacks ${existsSync(keyPath) ? "cert.pem" : "key.pem"}`);
        continue;
      }
      const k = opensslOk(["pkey", "-in", keyPath, "-pubout"]);
      const c = opensslOk(["x509", "-in", certPath, "-noout", "-pubkey"]);
      if (!k.ok || !c.ok || k.out !== c.out) v.push(`${name}: live/key.pem and live/cert.pem do not match (live/ -> ${target})`);
      if (known && new X509Certificate(readFileSync(certPath)).fingerprint256 !== known.sha256)
        v.push(`${name}: live/cert.pem is not the certificate recorded as version ${version}`);
    }

    // The outbox: one Message-ID per row, and what the SMTP server got is rows' mails (resends keep the ID).
    const rows = await db.all<{ id: number; message_id: string; kind: string; mail_json: string; sent_at: string | null }>(
      "SELECT id, message_id, kind, mail_json, sent_at FROM outbox",
    );
    const byId = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      const bare = r.message_id.replace(/^<|>$/g, "");
      byId.set(bare, r);
      const stored = (JSON.parse(r.mail_json) as { messageId: string }).messageId.replace(/^<|>$/g, "");
      if (stored !== bare) v.push(`outbox #${r.id}: message_id ${r.message_id} but the stored mail says ${stored}`);
      if (r.sent_at) report.sent++;
      else report.queued++;
    }
    const count = new Map<string, number>();
    for (const m of input.received) {
      const id = messageIdOf(m);
      count.set(id, (count.get(id) ?? 0) + 1);
      const row = byId.get(id);
      if (!row) {
        v.push(`the SMTP server got Message-ID <${id}> ("${m.parsed.subject}") that no outbox row holds`);
        continue;
      }
      const subject = (JSON.parse(row.mail_json) as { subject: string }).subject;
      if (m.parsed.subject !== subject)
        v.push(`Message-ID <${id}> arrived with subject "${m.parsed.subject}" but outbox #${row.id} holds "${subject}"`);
    }
    for (const [, n] of count) if (n > 1) report.duplicates += n - 1;
    for (const r of rows) {
      if (r.sent_at && !count.has(r.message_id.replace(/^<|>$/g, "")))
        v.push(`outbox #${r.id} (${r.kind}) is marked sent but the SMTP server never got it`);
    }
    return report;
  });
}

/**
 * The file's own consistency. SQLite: integrity_check and foreign_key_check (a kill mid-write must
 * not corrupt the file). PostgreSQL enforces its foreign keys on every commit and its write-ahead
 * log makes a client's kill harmless to the files, so there is nothing of the kind to ask: a killed
 * client can only leave a transaction that never committed.
 */
async function storeIntegrity(db: StoreReader, v: string[]): Promise<void> {
  if (db.kind !== "sqlite") return;
  const integrity = await db.all<{ integrity_check: string }>("PRAGMA integrity_check");
  const result = integrity.map((r) => r.integrity_check).join("; ");
  if (result !== "ok") v.push(`PRAGMA integrity_check: ${result}`);
  const fk = await db.all("PRAGMA foreign_key_check");
  if (fk.length) v.push(`PRAGMA foreign_key_check: ${JSON.stringify(fk)}`);
}

const keks = new Map<string, Kek>();

/**
 * PostgreSQL only (SQLite keeps keys in archive/ alone): the store holds every private key sealed,
 * never in clear, and the sealed key of a pending renewal is the key of its CSR, committed with the
 * renewal row (renewal.ts), so whichever host takes over can finish the renewal with the key the CSR
 * was made from. Every sealed key opens under the KEK, bound to its credential and version, and is
 * the key archive/ holds for that version when the file exists.
 */
async function sealedKeys(
  db: StoreReader,
  input: InvariantInput,
  pending: { id: number; credential: string; version: number; spki_sha256: string }[],
  v: string[],
) {
  if (!input.kekFile) throw new Error("checkInvariants on PostgreSQL needs kekFile");
  const kek = keks.get(input.kekFile) ?? readKek(input.kekFile);
  keks.set(input.kekFile, kek);
  const rows = await db.all<{ credential: string; version: number; key_envelope: Buffer | null }>(
    "SELECT credential, version, key_envelope FROM archive",
  );
  const opened = new Map<string, string>();
  for (const r of rows) {
    if (!r.key_envelope) continue;
    const where = `${r.credential}: the store's key of version ${r.version}`;
    if (r.key_envelope.toString("latin1").includes("PRIVATE KEY")) {
      v.push(`${where} is in clear`);
      continue;
    }
    let pem: string;
    try {
      pem = unwrapKey(kek, { credential: r.credential, version: r.version }, r.key_envelope).toString("utf8");
    } catch (err) {
      v.push(`${where} does not open under the KEK: ${(err as Error).message}`);
      continue;
    }
    const spki = spkiSha256OfKey(pem);
    opened.set(`${r.credential}/${r.version}`, spki);
    const file = join(input.stateDir, "credentials", r.credential, "archive", `key-${r.version}.pem`);
    if (existsSync(file) && spkiSha256OfKey(readFileSync(file, "utf8")) !== spki) v.push(`${where} is not the key of ${file}`);
  }
  for (const r of pending) {
    const spki = opened.get(`${r.credential}/${r.version}`);
    if (spki === undefined) v.push(`${r.credential}: renewal #${r.id} has no sealed key in the store`);
    else if (spki !== r.spki_sha256.toLowerCase()) v.push(`${r.credential}: renewal #${r.id}: the store's sealed key is not the key of its CSR`);
  }
}

/** Checks that need the daemon to have caught up: database and disk agree, nothing pending, nothing queued. */
export async function checkSettled(
  input: InvariantInput & { tokenIssuedWith?: (token: string) => string | undefined; runtimeDir?: string },
): Promise<string[]> {
  const v: string[] = [];
  const store = storeOf(input);
  return withStore(store, ["no store yet"], async (db) => {
    const queued = await db.all("SELECT id, kind, attempts, last_error FROM outbox WHERE sent_at IS NULL");
    if (queued.length) v.push(`emails still queued: ${JSON.stringify(queued)}`);
    for (const name of input.names) {
      const pending = await db.get(`SELECT id, state FROM renewals WHERE credential = ? AND state IN ${PENDING}`, [name]);
      if (pending) v.push(`${name}: renewal still pending: ${JSON.stringify(pending)}`);
      const live = await db.get<{ version: number; sha256: string }>(
        "SELECT version, sha256 FROM certificates WHERE credential = ? AND live = TRUE",
        [name],
      );
      if (!live) {
        v.push(`${name}: no live certificate`);
        continue;
      }
      const link = join(input.stateDir, "credentials", name, "live");
      const target = existsSync(link) ? readlinkSync(link) : "(none)";
      if (target !== `.live-${live.version}`) v.push(`${name}: database says version ${live.version} is live, live/ -> ${target}`);
      if (input.tokenIssuedWith && input.runtimeDir) {
        const tokenFile = join(input.runtimeDir, name, "token");
        if (!existsSync(tokenFile)) {
          v.push(`${name}: no token file`);
          continue;
        }
        const token = readFileSync(tokenFile, "utf8");
        const cert = input.tokenIssuedWith(token);
        if (cert !== live.sha256)
          v.push(`${name}: the token served was obtained with ${cert ?? "a certificate the IDP never saw"}, not the live certificate ${live.sha256}`);
        // The tokens row is per (credential, host) on PostgreSQL (migration 0011): this host's.
        const meta =
          store.kind === "postgres"
            ? await db.get<{ cert_version: number | null }>("SELECT cert_version FROM tokens WHERE credential = ? AND host = ?", [name, store.host])
            : await db.get<{ cert_version: number | null }>("SELECT cert_version FROM tokens WHERE credential = ?", [name]);
        if (meta?.cert_version !== live.version) v.push(`${name}: tokens.cert_version ${meta?.cert_version} but version ${live.version} is live`);
      }
    }
    return v;
  });
}
