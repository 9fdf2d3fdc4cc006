// The Maildir source: a local folder a mail server delivers to (new/, cur/, tmp/). Each message is
// handled once, by its file's unique name; a handled one is flagged seen and moved to the done or
// refused folder (Maildir++: `credd/done` is `.credd.done/`), never deleted.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MailboxConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { errorMessage } from "../errors.js";
import { handleOrDefer, type Collectors, type Folder, type Handled, type RawMessage } from "./handle.js";
import { MAX_MESSAGE_BYTES } from "./parse.js";
import { sourceNameOf } from "./status.js";

/** Enough of a too-large message to read its header (who, what, which thread). */
const HEAD_BYTES = 256 * 1024;

export interface MaildirSource {
  readonly source: string;
  /** Handles every message not handled yet; returns what became of each. */
  scan(): Promise<Array<Handled & { key: string }>>;
}

/** The unique part of a Maildir file name (flags after ":2," change; this does not). */
export const uniqueOf = (file: string): string => file.split(":")[0]!;

/** The Maildir++ folder for an IMAP-style name: `credd/done` → `.credd.done`. */
export const maildirFolder = (root: string, name: string): string => join(root, `.${name.replace(/\//g, ".")}`);

export function createMaildirSource(ctx: Ctx, mb: MailboxConfig & { maildir: string }, deps: Collectors = {}): MaildirSource {
  const root = mb.maildir;
  const source = sourceNameOf(mb);

  const list = (): Array<{ key: string; path: string }> => {
    const out: Array<{ key: string; path: string }> = [];
    for (const sub of ["new", "cur"]) {
      const dir = join(root, sub);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        if (f.startsWith(".")) continue;
        out.push({ key: uniqueOf(f), path: join(dir, f) });
      }
    }
    return out;
  };

  const move = (path: string, key: string, folder: string): void => {
    const dest = maildirFolder(root, folder);
    for (const d of ["cur", "new", "tmp"]) mkdirSync(join(dest, d), { recursive: true, mode: 0o700 });
    if (!existsSync(join(dest, "maildirfolder"))) writeFileSync(join(dest, "maildirfolder"), "", { mode: 0o600 });
    const flags = /:2,([A-Za-z]*)$/.exec(path)?.[1] ?? "";
    const withSeen = [...new Set([...flags, "S"])].sort().join("");
    renameSync(path, join(dest, "cur", `${key}:2,${withSeen}`));
  };

  const failing = new Map<string, string>();
  const folderName = (f: Folder) => (f === "done" ? mb.done_folder : mb.refused_folder);

  const read = (path: string): { bytes: Buffer; size: number; headOnly: boolean } => {
    const size = statSync(path).size;
    if (size <= MAX_MESSAGE_BYTES) return { bytes: readFileSync(path), size, headOnly: false };
    const fd = openSync(path, "r");
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
      const head = buf.subarray(0, n);
      const end = head.indexOf("\r\n\r\n") >= 0 ? head.indexOf("\r\n\r\n") + 4 : head.indexOf("\n\n") >= 0 ? head.indexOf("\n\n") + 2 : n;
      return { bytes: Buffer.from(head.subarray(0, end)), size, headOnly: true };
    } finally {
      closeSync(fd);
    }
  };

  return {
    source,
    async scan() {
      const now = () => ctx.clock.now().toISOString();
      const present = list();
      // Handled before a crash but not moved yet: finish the move, never handle it again.
      for (const row of await ctx.store.unmovedMessages(source)) {
        const file = present.find((p) => p.key === row.message_key);
        if (file) move(file.path, file.key, row.folder === "done" ? mb.done_folder : mb.refused_folder);
        await ctx.store.markMessageMoved(row.id, now());
      }
      const seen = await ctx.store.seenMessageKeys(source);
      const out: Array<Handled & { key: string }> = [];
      for (const { key, path } of list()) {
        if (seen.has(key)) continue;
        let m;
        try {
          m = read(path);
        } catch (err) {
          ctx.log.warn({ source, message: key, err: errorMessage(err) }, "mailbox: cannot read a message; tried again at the next scan");
          continue;
        }
        const msg: RawMessage = { source, key, ...m, describeFolder: (f) => `the Maildir folder ${maildirFolder(root, f)}` };
        // Database locked, disk full: the message stays and is tried at the next scan; said once.
        const h = await handleOrDefer(ctx, mb, msg, deps, failing);
        if (!h) continue;
        if (h.folder) {
          move(path, key, folderName(h.folder));
          const row = (await ctx.store.unmovedMessages(source)).find((r) => r.message_key === key);
          if (row) await ctx.store.markMessageMoved(row.id, now());
        }
        out.push({ ...h, key });
      }
      return out;
    },
  };
}
