// Atomic file writes with explicit modes: temp file in the same folder, fsync, rename, fsync the folder.
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The name's start in the temp name: cut so that the temp name (18 bytes more) still fits in 255 bytes. */
function tempBase(name: string): string {
  if (Buffer.byteLength(name) <= 200) return name;
  let cut = "";
  for (const ch of name) {
    if (Buffer.byteLength(cut + ch) > 200) break;
    cut += ch;
  }
  return cut;
}

/**
 * If writing fails, the original file is not modified. The mode is set at creation, not after
 * (the umask may still take bits away; with `exactMode` it is set with fchmod, which the umask does
 * not reduce). With `exclusive`, an existing file is never replaced: the write fails with EEXIST
 * instead (link(2) is atomic and refuses an existing name, where rename(2) would overwrite it).
 * The folder is made (0700) unless `createDir` is false.
 */
export function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode: number,
  opts: { exclusive?: boolean; exactMode?: boolean; createDir?: boolean } = {},
): void {
  const dir = dirname(path);
  if (opts.createDir !== false) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${tempBase(basename(path))}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    if (opts.exactMode) fchmodSync(fd, mode);
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  if (opts.exclusive) {
    try {
      linkSync(tmp, path);
    } finally {
      unlinkSync(tmp);
    }
  } else {
    try {
      renameSync(tmp, path);
    } catch (err) {
      // Left behind, every retry of a lasting failure (a folder in the way) would add a temp file.
      unlinkSync(tmp);
      throw err;
    }
  }
  fsyncDir(dir);
}

/**
 * writeFileAtomic for a folder that already exists, off the main thread: the writes and fsyncs run
 * in libuv's pool, so a slow disk delays this write, not the daemon's timers (the inbox writes a
 * reason per refused file). Same temp name, same guarantees; replaces an existing file.
 */
export async function writeFileAtomicAsync(path: string, data: string | Buffer, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${tempBase(basename(path))}.${randomBytes(6).toString("hex")}.tmp`);
  const file = await open(tmp, "wx", mode);
  try {
    await file.writeFile(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    await file.sync();
  } catch (err) {
    await file.close();
    await unlink(tmp);
    throw err;
  }
  await file.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp);
    throw err;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
