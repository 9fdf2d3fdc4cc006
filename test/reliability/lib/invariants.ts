// What must hold in a credd state folder whenever no credd process runs, however the last one ended
// (DESIGN.md: "A crash at any point resumes where it stopped, with no key lost and no live pair mismatched").
import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, lstatSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { ReceivedMail } from "../../helpers/smtp.js";
import { messageIdOf, sha256Hex } from "./world.js";

const PENDING = "('created','sent','signed','registered')";

export interface InvariantInput {
  stateDir: string;
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

export function checkInvariants(input: InvariantInput): InvariantReport {
  const v: string[] = [];
  const dbFile = join(input.stateDir, "credd.db");
  const report: InvariantReport = { violations: v, duplicates: 0, queued: 0, sent: 0 };
  if (!existsSync(dbFile)) return report; // killed before the database existed
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 10000");
    const integrity = db.pragma("integrity_check", { simple: true });
    if (integrity !== "ok") v.push(`PRAGMA integrity_check: ${String(integrity)}`);
    const fk = db.pragma("foreign_key_check") as unknown[];
    if (fk.length) v.push(`PRAGMA foreign_key_check: ${JSON.stringify(fk)}`);
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (!tables.has("renewals") || !tables.has("outbox") || !tables.has("certificates")) return report; // mid-migration: nothing recorded yet

    // No credential with two pending renewals.
    const twice = db.prepare(`SELECT credential, COUNT(*) AS n FROM renewals WHERE state IN ${PENDING} GROUP BY credential HAVING n > 1`).all();
    if (twice.length) v.push(`two pending renewals: ${JSON.stringify(twice)}`);

    // Every pending renewal's key is on disk, loadable, and is the key its CSR was made from.
    const pending = db.prepare(`SELECT id, credential, version, state, spki_sha256 FROM renewals WHERE state IN ${PENDING}`).all() as {
      id: number;
      credential: string;
      version: number;
      state: string;
      spki_sha256: string;
    }[];
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

    // Every renewal queued exactly one CSR email, in the same transaction.
    const csrRows = db
      .prepare(
        `SELECT r.id, r.credential, COUNT(o.id) AS n FROM renewals r LEFT JOIN outbox o ON o.renewal_id = r.id AND o.kind = 'csr' GROUP BY r.id HAVING n != 1`,
      )
      .all();
    if (csrRows.length) v.push(`renewals without exactly one CSR email row: ${JSON.stringify(csrRows)}`);

    // At most one live certificate; live/ is a matching pair of a version the database knows.
    const liveTwice = db.prepare("SELECT credential, COUNT(*) AS n FROM certificates WHERE live = 1 GROUP BY credential HAVING n > 1").all();
    if (liveTwice.length) v.push(`two live certificates: ${JSON.stringify(liveTwice)}`);
    for (const name of input.names) {
      const root = join(input.stateDir, "credentials", name);
      const link = join(root, "live");
      const dbLive = db.prepare("SELECT version FROM certificates WHERE credential = ? AND live = 1").get(name) as { version: number } | undefined;
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
      const known = db.prepare("SELECT sha256 FROM certificates WHERE credential = ? AND version = ?").get(name, version) as
        | { sha256: string }
        | undefined;
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
    const rows = db.prepare("SELECT id, message_id, kind, mail_json, sent_at FROM outbox").all() as {
      id: number;
      message_id: string;
      kind: string;
      mail_json: string;
      sent_at: string | null;
    }[];
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
  } finally {
    db.close();
  }
  return report;
}

/** Checks that need the daemon to have caught up: database and disk agree, nothing pending, nothing queued. */
export function checkSettled(input: InvariantInput & { tokenIssuedWith?: (token: string) => string | undefined; runtimeDir?: string }): string[] {
  const v: string[] = [];
  const db = new Database(join(input.stateDir, "credd.db"), { readonly: true, fileMustExist: true });
  try {
    const queued = db.prepare("SELECT id, kind, attempts, last_error FROM outbox WHERE sent_at IS NULL").all();
    if (queued.length) v.push(`emails still queued: ${JSON.stringify(queued)}`);
    for (const name of input.names) {
      const pending = db.prepare(`SELECT id, state FROM renewals WHERE credential = ? AND state IN ${PENDING}`).get(name);
      if (pending) v.push(`${name}: renewal still pending: ${JSON.stringify(pending)}`);
      const live = db.prepare("SELECT version, sha256 FROM certificates WHERE credential = ? AND live = 1").get(name) as
        | { version: number; sha256: string }
        | undefined;
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
        const meta = db.prepare("SELECT cert_version FROM tokens WHERE credential = ?").get(name) as { cert_version: number | null } | undefined;
        if (meta?.cert_version !== live.version) v.push(`${name}: tokens.cert_version ${meta?.cert_version} but version ${live.version} is live`);
      }
    }
  } finally {
    db.close();
  }
  return v;
}
