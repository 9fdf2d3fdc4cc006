// Plain words for a failed file or folder operation: what was found at the path and who credd runs
// as, so that a person never reads Node's raw "ENOENT: no such file or directory, open ..." text.
import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreddError, errorMessage, type ErrorCode } from "../errors.js";
import { readBounded, type Unread } from "./bounded-read.js";

/** "user credd (uid 998)", or "uid 65534" when the uid has no name: permissions depend on it. */
export function runningUser(): string {
  const uid = process.getuid?.();
  if (uid === undefined) return "this user";
  let name: string | undefined;
  try {
    name = os.userInfo().username;
  } catch {
    /* a uid without a passwd entry (a container, DynamicUser=) */
  }
  return name ? `user ${name} (uid ${uid})` : `uid ${uid}`;
}

/** The first ancestor of `p` that exists but is not a folder (why ENOTDIR), or undefined. */
export function fileAbove(p: string): string | undefined {
  for (let dir = path.dirname(p); ; dir = path.dirname(dir)) {
    let st;
    try {
      st = statSync(dir, { throwIfNoEntry: false });
    } catch {
      /* ENOTDIR: the file is further up */
    }
    if (st && !st.isDirectory()) return dir;
    if (st || dir === path.dirname(dir)) return undefined;
  }
}

/**
 * What a failed call on `p` found there, as the rest of a sentence that starts with the path:
 * "does not exist", "is a folder, not a file", "cannot be read by user credd (uid 998): permission denied".
 * `doing` is the verb for permission problems ("read", "written", "run").
 */
export function fsFound(err: unknown, p: string, doing = "read"): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "does not exist";
    case "EACCES":
    case "EPERM":
      return `cannot be ${doing} by ${runningUser()}: permission denied (on it or on a folder above it)`;
    case "EISDIR":
      return "is a folder, not a file";
    case "ENOTDIR": {
      const file = fileAbove(p);
      return file ? `cannot exist: ${file} is a file, not a folder` : "cannot exist: a part of its path is a file, not a folder";
    }
    case "ELOOP":
      return "is a loop of symbolic links";
    case "ENAMETOOLONG":
      return "is too long a path";
    case "EMFILE":
    case "ENFILE":
      return "cannot be opened now: too many open files";
    case "EIO":
      return `cannot be ${doing}: input/output error (a disk problem)`;
    case "ENOSPC":
      return `cannot be ${doing}: the disk is full`;
    case "EROFS":
      return `cannot be ${doing}: it is on a read-only file system`;
    default:
      return `cannot be ${doing} (${code ?? errorMessage(err)})`;
  }
}

/** The usual fix for what fsFound reported, when the caller has nothing more specific to say. */
export function fsFix(err: unknown, p: string, fixWhenMissing: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EACCES" || code === "EPERM") return `let ${runningUser()} read ${p} (e.g. its group and chmod g+r), or run credd as a user that may`;
  if (code === "EISDIR") return `name the file itself, not the folder ${p}`;
  return fixWhenMissing;
}

export interface Wanted {
  /** What credd wanted from the file, e.g. "the certificate to import (--cert)". */
  what: string;
  /** What to do when it is missing (other causes get the usual fix). */
  fix: string;
  /** The error code thrown; default IO. */
  code?: ErrorCode;
}

/** Reads `p`, or throws a CreddError naming the file, what credd wanted from it and the fix. */
export function readFileFor(p: string, want: Wanted): Buffer;
export function readFileFor(p: string, want: Wanted, encoding: "utf8"): string;
export function readFileFor(p: string, want: Wanted, encoding?: "utf8"): Buffer | string {
  try {
    return encoding ? readFileSync(p, encoding) : readFileSync(p);
  } catch (err) {
    throw new CreddError(want.code ?? "IO", `cannot read ${want.what}: ${p} ${fsFound(err, p)} (fix: ${fsFix(err, p, want.fix)})`, { cause: err });
  }
}

/**
 * Reads `p` as readBounded does (one non-blocking open, checked on the descriptor, never past
 * `maxBytes` plus one byte; a symbolic link the person typed is followed), with readFileFor's
 * errors. A FIFO, a device or a file over the cap comes back as a refusal, unread.
 */
export async function readBoundedFor(p: string, want: Wanted, maxBytes: number): Promise<{ bytes: Buffer } | Unread> {
  const fail = (err: unknown): never => {
    throw new CreddError(want.code ?? "IO", `cannot read ${want.what}: ${p} ${fsFound(err, p)} (fix: ${fsFix(err, p, want.fix)})`, { cause: err });
  };
  let r;
  try {
    r = await readBounded(p, { maxBytes, followSymlink: true });
  } catch (err) {
    return fail(err);
  }
  if (r.outcome === "read") return { bytes: r.bytes };
  if (r.outcome === "young") {
    throw new CreddError(
      want.code ?? "IO",
      `cannot read ${want.what}: ${p} grew while it was read (fix: wait until the copy or download has finished, then run the command again)`,
    );
  }
  if (r.stat?.isDirectory()) return fail(Object.assign(new Error(`EISDIR: ${p}`), { code: "EISDIR" }));
  return r;
}
