// Reading a file someone else may control (an inbox entry, a path given to `credd ingest`): opened
// once without blocking, checked on the descriptor, read from it asynchronously and never past a cap.
import { constants, type Stats } from "node:fs";
import { lstat, open } from "node:fs/promises";

/** Why a file was not read: its kind, or its size. The reason is the rest of a sentence starting with the file's name. */
export interface Unread {
  outcome: "refused";
  check: "file-type" | "parse";
  reason: string;
  /** What the descriptor's fstat found, when the file was opened. */
  stat?: Stats;
}

export type BoundedRead = { outcome: "read"; bytes: Buffer; stat: Stats } | { outcome: "young"; stat: Stats } | Unread;

export interface BoundedReadOptions {
  /** Largest file taken (bytes); a larger one is refused from its size, unread. */
  maxBytes: number;
  /** Follow a symbolic link at the last component (a path a person typed); never for the inbox. */
  followSymlink?: boolean;
  /** Refuse a file with other hard links (the inbox: a link to a file of credd's is not a drop). */
  refuseHardLinks?: boolean;
  /**
   * A file changed less than this long ago (ms, by `nowMs`) is left for later: a copy may still be
   * running. A file that grows while it is read is left for later too ("young").
   */
  minAgeMs?: number;
  nowMs?: number;
}

/** What a non-regular file is, in words. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

export const tooLarge = (size: number, max: number): string =>
  `is ${size} bytes, too large for a certificate (limit ${max === 1024 * 1024 ? "1 MiB" : `${max} bytes`}): is it the right file?`;

/**
 * Opens `path` once (O_RDONLY|O_NONBLOCK, and O_NOFOLLOW unless told), fstat()s the descriptor and
 * reads at most `maxBytes + 1` bytes from it: a FIFO or a device never blocks the thread (nor a
 * libuv worker), a symbolic link is never followed, a huge file is never read. Errors of the open
 * (ENOENT, EACCES) are thrown as they are; a symbolic link found at `path` is a refusal.
 */
export async function readBounded(path: string | Buffer, opts: BoundedReadOptions): Promise<BoundedRead> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (opts.followSymlink ? 0 : constants.O_NOFOLLOW);
  let handle;
  try {
    handle = await open(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP" && !opts.followSymlink) {
      const st = await lstat(path).catch(() => undefined);
      if (st?.isSymbolicLink())
        return { outcome: "refused", check: "file-type", reason: "is a symbolic link, which credd does not follow; drop the file itself" };
    }
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      return {
        outcome: "refused",
        check: "file-type",
        reason: `is ${kindOf(stat)}, not a regular file; credd reads only regular files (it was not read)`,
        stat,
      };
    }
    if (opts.refuseHardLinks && stat.nlink > 1) {
      return {
        outcome: "refused",
        check: "file-type",
        reason: `has ${stat.nlink} hard links, so it is not a dropped copy: copy the file in (cp) rather than link it (it was not read)`,
      };
    }
    if (opts.minAgeMs !== undefined && (opts.nowMs ?? Date.now()) - stat.mtimeMs < opts.minAgeMs) return { outcome: "young", stat };
    if (stat.size > opts.maxBytes) return { outcome: "refused", check: "parse", reason: tooLarge(stat.size, opts.maxBytes) };
    // Never more than the size seen plus one byte: a file that grows while read is still being
    // written (a copy running), and is left for later.
    const cap = stat.size + 1;
    const buf = Buffer.alloc(cap);
    let got = 0;
    while (got < cap) {
      const { bytesRead } = await handle.read(buf, got, cap - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got > stat.size) return { outcome: "young", stat };
    return { outcome: "read", bytes: buf.subarray(0, got), stat };
  } finally {
    await handle.close();
  }
}
