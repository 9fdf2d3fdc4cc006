// Secret hygiene: every private key, password and token a test used is collected here, then every log
// line, database row and captured email is searched for them (DESIGN.md: "A private key, a password
// or a token never appears in a log line, a database row, an email or an error message").
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { withStore, type StoreTarget } from "./store-reader.js";

interface Secret {
  label: string;
  needle: string;
}

export class SecretBag {
  private readonly items = new Map<string, Secret>();

  add(label: string, value: string): void {
    const v = value.trim();
    if (v.length < 6) throw new Error(`secret ${label} is too short to search for without false hits`);
    this.items.set(v, { label, needle: v });
  }

  /** Every full base64 body line of a PEM private key (the short last line would match by chance). */
  addPrivateKeyPem(label: string, pem: string): void {
    if (!/PRIVATE KEY-----/.test(pem)) return;
    for (const line of pem.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= 40 && /^[A-Za-z0-9+/=]+$/.test(l)) this.items.set(l, { label: `${label} (PEM body line)`, needle: l });
    }
  }

  /** Every *.key / key*.pem file (and anything holding "PRIVATE KEY") under `dir`. */
  addKeysUnder(label: string, dir: string): number {
    let n = 0;
    const walk = (d: string) => {
      let names: string[] = [];
      try {
        names = readdirSync(d);
      } catch {
        return;
      }
      for (const name of names) {
        const p = join(d, name);
        let st;
        try {
          st = statSync(p);
        } catch {
          continue;
        }
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && st.size < 64 * 1024) {
          const text = readFileSync(p, "latin1");
          if (text.includes("PRIVATE KEY-----")) {
            this.addPrivateKeyPem(`${label}: ${p}`, text);
            n++;
          }
        }
      }
    };
    walk(dir);
    return n;
  }

  get size(): number {
    return this.items.size;
  }

  /** "where: label" for each secret found in `text`. */
  scan(where: string, text: string): string[] {
    const hits: string[] = [];
    for (const s of this.items.values()) if (text.includes(s.needle)) hits.push(`${where}: ${s.label}`);
    return hits;
  }
}

/** Every row of every table, as text. */
export function databaseText(dbFile: string): string {
  if (!existsSync(dbFile)) return "";
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    return tables
      .map((t) => {
        const rows = db.prepare(`SELECT * FROM "${t}"`).all() as Record<string, unknown>[];
        return `${t}: ${rows
          .map((r) =>
            Object.values(r)
              .map((x) => (Buffer.isBuffer(x) ? x.toString("latin1") : String(x)))
              .join(" | "),
          )
          .join("\n")}`;
      })
      .join("\n");
  } finally {
    db.close();
  }
}

/** Every row of every table of a store (PostgreSQL too), as text; bytea as latin1. */
export async function storeText(target: StoreTarget): Promise<string> {
  return withStore(target, "", async (db) => {
    const out: string[] = [];
    for (const t of await db.tables()) {
      const rows = await db.all<Record<string, unknown>>(`SELECT * FROM "${t}"`);
      out.push(
        `${t}: ${rows
          .map((r) =>
            Object.values(r)
              .map((x) => (Buffer.isBuffer(x) ? x.toString("latin1") : String(x)))
              .join(" | "),
          )
          .join("\n")}`,
      );
    }
    return out.join("\n");
  });
}

export interface HygieneSources {
  logs: string;
  databases: string[];
  mails: { raw: Buffer; parsed: { text?: string; subject?: string; attachments: { content: Buffer | Uint8Array }[] } }[];
  /** Other text a person reads (status output, .reason files). */
  extra?: { where: string; text: string }[];
}

export function scanAll(bag: SecretBag, src: HygieneSources): string[] {
  const hits: string[] = [];
  hits.push(...bag.scan("log/output", src.logs));
  for (const f of src.databases) hits.push(...bag.scan(`database ${f}`, databaseText(f)));
  src.mails.forEach((m, i) => {
    // Attachments and quoted-printable bodies are encoded in the raw message: scan it and the decoded parts.
    const decoded = [m.parsed.subject ?? "", m.parsed.text ?? "", ...m.parsed.attachments.map((a) => Buffer.from(a.content).toString("latin1"))].join(
      "\n",
    );
    hits.push(...bag.scan(`email #${i + 1}`, `${m.raw.toString("latin1")}\n${decoded}`));
  });
  for (const e of src.extra ?? []) hits.push(...bag.scan(e.where, e.text));
  return hits;
}
