// The `store:` key: where credd keeps its state. `sqlite` (the default: credd.db in state_dir) or
// `{ postgres: { url_file, ca_file?, key_encryption_key_file, previous_key_encryption_key_files? } }`, a PostgreSQL database shared by
// several credd hosts, one leading at a time (docs/shared-store.md).
import { filePath, get, isUnset, mapping, quote } from "./checks.js";
import type { Context } from "./credential.js";
import { child, item, type At, type Issues } from "./issues.js";
import { secretPath } from "./secrets.js";
import type { StoreConfig } from "./types.js";

const EXAMPLE = "e.g. store: sqlite, or store: { postgres: { url_file: /etc/credd/store-url, key_encryption_key_file: /etc/credd/store-kek } }";

/** The store, or undefined when `ix` gained problems. Absent: sqlite. */
export function checkStore(ix: Issues, at: At, v: unknown, ctx: Context): StoreConfig | undefined {
  if (isUnset(v) || v === "sqlite") return "sqlite";
  if (typeof v === "string") {
    ix.add(at, `must be sqlite or a postgres: mapping, got ${quote(v)}`, EXAMPLE);
    return undefined;
  }
  const m = mapping(ix, at, v, { known: ["postgres"] }, EXAMPLE);
  if (!m) return undefined;
  const raw = get(m, "postgres");
  const pAt = child(at, "postgres");
  if (isUnset(raw)) {
    ix.add(pAt, "is missing", EXAMPLE);
    return undefined;
  }
  const p = mapping(ix, pAt, raw, { known: ["url_file", "ca_file", "key_encryption_key_file", "previous_key_encryption_key_files"] }, EXAMPLE);
  if (!p) return undefined;
  const before = ix.list.length;
  const need = (key: string, example: string): string | undefined => {
    const x = get(p, key);
    if (isUnset(x)) {
      ix.add(child(pAt, key), "is missing", example);
      return undefined;
    }
    return secretPath(ix, child(pAt, key), x, ctx.dir, ctx.env);
  };
  const url = need("url_file", "e.g. url_file: /etc/credd/store-url (one line: postgres://USER:PASSWORD@HOST:5432/DATABASE)");
  const kek = need("key_encryption_key_file", "e.g. key_encryption_key_file: /etc/credd/store-kek (made with: head -c 32 /dev/urandom | base64)");
  const rawCa = get(p, "ca_file");
  const ca = isUnset(rawCa) ? undefined : filePath(ix, child(pAt, "ca_file"), rawCa, ctx.dir, "e.g. ca_file: /etc/credd/store-ca.pem");
  const previous = previousFiles(ix, child(pAt, "previous_key_encryption_key_files"), get(p, "previous_key_encryption_key_files"), ctx);
  if (ix.list.length > before || url === undefined || kek === undefined || previous === undefined) return undefined;
  return {
    postgres: {
      url_file: url,
      key_encryption_key_file: kek,
      previous_key_encryption_key_files: previous,
      ...(ca !== undefined ? { ca_file: ca } : {}),
    },
  };
}

const PREVIOUS_EXAMPLE = "e.g. previous_key_encryption_key_files: [/etc/credd/store-kek.old] (during a rotation only: credd rotate-store-key)";

/** The keys of a rotation in progress: a list of files (absent: none). */
function previousFiles(ix: Issues, at: At, v: unknown, ctx: Context): string[] | undefined {
  if (isUnset(v)) return [];
  if (!Array.isArray(v)) {
    ix.add(at, "must be a list of files", PREVIOUS_EXAMPLE);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    const f = secretPath(ix, item(at, i), x, ctx.dir, ctx.env);
    if (f !== undefined) out.push(f);
  });
  return out.length === v.length ? out : undefined;
}
