// `credd rotate-store-key` (docs/shared-store.md, KEK rotation): every sealed key of the archive
// table opened with the ring (the new key and the previous ones) and sealed again under the new
// key, in one transaction, then every one checked to open under the new key alone before COMMIT.
// A key the ring cannot open stops it with nothing changed: loud, never a re-enrollment.
import { CreddError } from "../../errors.js";
import { connectClient, describePgError, type PgTarget } from "./connect.js";
import { envelopeKekId, type Keyring, rewrapKey, unwrapKey } from "./keywrap.js";
import { migratePg } from "./migrate.js";

/** The meta key listing, comma-separated, the key-encryption key ids a rotation moved every key away from. */
export const RETIRED_KEKS = "retired_key_encryption_key_ids";

export interface RotateResult {
  where: string;
  /** Sealed keys in the store. */
  keys: number;
  /** Of them, sealed again now (the others were already under the new key). */
  rewrapped: number;
  /** Per previous key id: how many keys were under it. */
  from: Record<string, number>;
  kekId: string;
}

export async function rotateStoreKey(target: PgTarget, ring: Keyring, progress: (line: string) => void): Promise<RotateResult> {
  await migratePg(target);
  const client = await connectClient(target);
  const q = async <R>(sql: string, params: unknown[] = []): Promise<R[]> => {
    try {
      return (await client.query(sql, params)).rows as R[];
    } catch (err) {
      throw describePgError(err, target, "the key rotation failed (rolled back, nothing changed) on");
    }
  };
  try {
    await q("BEGIN");
    try {
      // A host storing a new version meanwhile (an INSERT, which FOR UPDATE does not hold back) waits
      // for the COMMIT: SHARE ROW EXCLUSIVE blocks inserts, updates and deletes but not reads, so its
      // new key is sealed after the rotation (under the new key, by then every host's) and the check
      // below counts what was sealed again. FOR UPDATE is kept for what it says.
      await q("LOCK TABLE archive IN SHARE ROW EXCLUSIVE MODE");
      const rows = await q<{ credential: string; version: number; key_envelope: Buffer }>(
        "SELECT credential, version, key_envelope FROM archive WHERE key_envelope IS NOT NULL ORDER BY credential, version FOR UPDATE",
      );
      const from: Record<string, number> = {};
      const plain = new Map<string, Buffer>();
      let rewrapped = 0;
      for (const r of rows) {
        const ref = { credential: r.credential, version: r.version };
        const id = envelopeKekId(r.key_envelope) ?? "?";
        from[id] = (from[id] ?? 0) + 1;
        // Throws a STATE error naming the key files when no key of the ring opens it.
        plain.set(`${r.credential}\0${r.version}`, unwrapKey(ring, ref, r.key_envelope));
        const sealed = rewrapKey(ring, ref, r.key_envelope);
        if (sealed === r.key_envelope) continue;
        await q("UPDATE archive SET key_envelope = $3, kek_id = $4, updated_at = now() WHERE credential = $1 AND version = $2", [
          r.credential,
          r.version,
          sealed,
          ring.current.id,
        ]);
        rewrapped++;
      }
      progress(`sealed again under ${ring.current.id}: ${rewrapped} of ${rows.length} private key(s)`);
      // The check, before COMMIT: every key opens under the new key alone, to the same bytes.
      const after = await q<{ credential: string; version: number; key_envelope: Buffer; kek_id: string | null }>(
        "SELECT credential, version, key_envelope, kek_id FROM archive WHERE key_envelope IS NOT NULL",
      );
      if (after.length !== rows.length)
        throw new CreddError("INTERNAL", `${rows.length} sealed keys before the rotation, ${after.length} after (rolled back, nothing changed)`);
      for (const r of after) {
        const ref = { credential: r.credential, version: r.version };
        const opened = unwrapKey(ring.current, ref, r.key_envelope);
        const before = plain.get(`${r.credential}\0${r.version}`);
        const same = before !== undefined && opened.equals(before) && r.kek_id === ring.current.id;
        opened.fill(0);
        if (!same)
          throw new CreddError(
            "INTERNAL",
            `the private key of ${r.credential} version ${r.version} does not open to the same key under ${ring.current.id} (rolled back, nothing changed; please report this)`,
          );
      }
      for (const b of plain.values()) b.fill(0);
      progress(`verified: all ${after.length} private key(s) open under ${ring.current.id} (${ring.current.file}) alone`);
      // The old keys are retired: a host that would still seal under one of them (its current key,
      // even with the new one as previous) is refused at start (open.ts), since the hosts that
      // dropped the old key could not open what it seals.
      const had = await q<{ value: string }>("SELECT value FROM meta WHERE key = $1", [RETIRED_KEKS]);
      const retired = new Set([...(had[0]?.value.split(",").filter(Boolean) ?? []), ...ring.previous.map((k) => k.id)]);
      retired.delete(ring.current.id);
      await q("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [
        RETIRED_KEKS,
        [...retired].sort().join(","),
      ]);
      await q("COMMIT");
      return { where: target.where, keys: rows.length, rewrapped, from, kekId: ring.current.id };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
