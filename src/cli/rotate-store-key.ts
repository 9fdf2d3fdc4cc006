// `credd rotate-store-key --previous FILE`: every sealed key of the shared store sealed again under
// the new key-encryption key (docs/shared-store.md, KEK rotation).
import { resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import { rotatePostgresKey } from "../store/open.js";
import type { Parsed } from "./args.js";
import type { Globals, Io } from "./io.js";

export const ROTATE_STORE_KEY_HELP = `Seals every private key in the shared PostgreSQL store again under the new
key-encryption key, the config's store.postgres.key_encryption_key_file.
--previous FILE is the old key file (the key they are sealed under now); the
files of store.postgres.previous_key_encryption_key_files open keys too.

In one transaction: every sealed key is opened with those keys and sealed
under the new one, then every one is checked to open under the new key alone,
to the same bytes, before the commit. A key none of them opens stops it with
nothing changed (a lost key is restored from a backup; credd never re-enrolls
by itself). Running it again is harmless.

The steps for every host (list the old file in
previous_key_encryption_key_files first) are in docs/shared-store.md.

exit: 0 every key is under the new key, 1 refused or failed (nothing
changed), 2 usage`;

export async function cmdRotateStoreKey(p: Parsed, g: Globals, io: Io): Promise<number> {
  const previous = resolve((p.values as { previous: string }).previous);
  const config = loadConfig(g.configPath);
  const r = await rotatePostgresKey(config, [{ file: previous, key: "--previous" }], (line) => io.err(line));
  const was = Object.entries(r.from)
    .map(([id, n]) => `${n} under ${id}`)
    .join(", ");
  io.out(
    `PostgreSQL ${r.where}: ${r.keys} private key(s)${was ? ` (were: ${was})` : ""}, ${r.rewrapped} sealed again; all open under key ${r.kekId} now.`,
  );
  io.out("next: give every host the new key file and drop the old one from previous_key_encryption_key_files (restart credd run).");
  return 0;
}
