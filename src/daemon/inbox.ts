// The inbox folder: files dropped there are taken in; each ends in processed/ or rejected/ with a .reason.
// Whoever may drop files there is not trusted (docs/security.md): no symbolic link is followed, each
// entry is opened once without blocking and read from that descriptor up to the size cap, names are
// shown escaped, and the work is done one file at a time with a yield between files, so checks, token
// refreshes, signals and the watchdog keep their timing whatever the inbox holds.
// A failure that lasts (disk full, database locked) is retried at every scan but logged once: when it
// starts, when it changes and when it clears.
import { createHash } from "node:crypto";
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, statSync, type Stats } from "node:fs";
import { lstat, readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { evaluateAlerts } from "../core/alerts.js";
import type { Ctx } from "../core/context.js";
import type { BatchOptions, FileOutcome, InputFile } from "../core/ingest.js";
import { Conditions, errorSignature, type Seen } from "../domain/conditions.js";
import { escapeName } from "../domain/untrusted.js";
import { errorMessage, underlyingCode } from "../errors.js";
import { writeFileAtomicAsync } from "../files/atomic.js";
import { readBounded } from "../files/bounded-read.js";
import { removeStaleTemps } from "../files/leftovers.js";
import { MAX_CERTIFICATE_FILE_BYTES } from "../pki/bundle.js";

export interface InboxOptions {
  /** A file is taken only once it has not changed for this long (a copy may still be running). */
  minAgeMs: number;
  /** Takes in one batch: ingestBatch, or a stand-in that fails on purpose in tests. */
  ingest?: (ctx: Ctx, files: InputFile[], opts: BatchOptions) => Promise<FileOutcome[]>;
  /** Most files taken in by one scan (default 100); the rest wait for the next one (see `backlog`). */
  maxFilesPerScan?: number;
  /** Awaited between two files (default: one turn of the event loop, setImmediate). */
  pace?: () => Promise<void>;
}

export interface Inbox {
  /** Looks at the inbox once; never throws (failures are logged, once while they last). */
  scan(): Promise<FileOutcome[]>;
  /** True when the last scan stopped at its cap with files left: scan again soon. */
  backlog(): boolean;
  /** Why the inbox is no longer used (a sub-folder was replaced), or undefined while it is. */
  unsafe(): string | undefined;
}

const SKIP = /^\.|\.(tmp|part|partial|swp|crdownload|reason)$|~$/;
const SUBFOLDERS = ["processed", "rejected"] as const;
type Sub = (typeof SUBFOLDERS)[number];
/** Longest file name on Linux file systems (bytes). */
const NAME_MAX = 255;

/** What a repeated failure is about: the whole scan, reading one file, taking it in, moving it. */
const SCAN = "scan";
const keyOf = (step: "read" | "take" | "move", file: string) => `${step}:${file}`;

const ONCE = "logged again only when the error changes or clears";

export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The meta keys that carry "the inbox is not used" to the alert rules (core/alerts.ts). */
export const INBOX_UNSAFE_META = "inbox_unsafe";

export function createInbox(ctx: Ctx, opts: InboxOptions): Inbox {
  const conditions = new Conditions();
  // ingest.js is loaded with the first file: it brings the certificate parsing code, which an empty inbox never needs.
  const ingest =
    opts.ingest ?? (async (c: Ctx, files: InputFile[], o: BatchOptions) => (await import("../core/ingest.js")).ingestBatch(c, files, undefined, o));
  const pace = opts.pace ?? nextTurn;
  const maxFiles = opts.maxFilesPerScan ?? 100;
  let unsafe: string | undefined;
  let backlog = false;
  let checkedOnce = false;
  const uid = process.getuid?.();
  /** The entry (its bytes as latin1) behind each name shown, for the files of this scan and those with a failure that lasts. */
  const rawOfShown = new Map<string, string>();

  /** Logs a failure if it is new or different from the last one for `key`; a repeat says nothing. */
  const failed = (key: string, err: { code?: string; message: string }, what: string, fields: Record<string, unknown>): void => {
    const seen: Seen = conditions.see(key, errorSignature(err.code, err.message), err.message, ctx.clock.now());
    if (seen.report === "repeat") return;
    const base = { ...fields, err: err.message, ...(err.code ? { code: err.code } : {}) };
    if (seen.report === "new") ctx.log.error(base, `${what}; retried at every scan (${ONCE})`);
    else {
      ctx.log.error(
        { ...base, previousErr: seen.previous.message, failingSince: seen.previous.since.toISOString() },
        `${what}: the error changed; still retried at every scan (${ONCE})`,
      );
    }
  };
  /** Logs that the failure about `key` is over, if there was one. */
  const cleared = (key: string, what: string, fields: Record<string, unknown>): void => {
    const was = conditions.clear(key);
    if (!was) return;
    ctx.log.info({ ...fields, previousErr: was.message, failingSince: was.since.toISOString(), attempts: was.attempts }, what);
  };

  /** Stops using the inbox for good (until a restart): logged, recorded for the alert rules, alert raised. */
  const refuseInbox = async (reason: string): Promise<void> => {
    if (unsafe) return;
    unsafe = reason;
    ctx.log.error(
      { dir: ctx.config.inbox_dir, reason },
      "the inbox is no longer used: a folder credd writes into is not its own; nothing more is read or moved until credd is restarted (docs/security.md)",
    );
    try {
      await ctx.store.setMeta(INBOX_UNSAFE_META, JSON.stringify({ at: ctx.clock.now().toISOString(), reason }));
      await evaluateAlerts(ctx);
    } catch (err) {
      ctx.log.error({ err: errorMessage(err) }, "cannot record or send the inbox alert");
    }
  };

  /**
   * processed/ and rejected/ as credd made them: real folders (lstat, then an O_DIRECTORY|O_NOFOLLOW
   * open whose fstat must be the same folder), owned by credd, writable by nobody else. Made 0700
   * when missing. Returns each folder's identity, or the reason it is not safe.
   */
  const checkFolders = (): Map<Sub, Stats> | string => {
    const found = new Map<Sub, Stats>();
    for (const sub of SUBFOLDERS) {
      const p = join(ctx.config.inbox_dir, sub);
      let st: Stats;
      try {
        st = lstatSync(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        try {
          mkdirSync(p, { mode: 0o700 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
        st = lstatSync(p);
      }
      if (st.isSymbolicLink()) return `${p} is a symbolic link (to somewhere credd would write into); it must be a folder of credd's own`;
      if (!st.isDirectory()) return `${p} is not a folder`;
      if (uid !== undefined && st.uid !== uid) return `${p} is owned by uid ${st.uid}, not by credd (uid ${uid})`;
      if (st.mode & 0o022) return `${p} may be written by others (mode ${(st.mode & 0o7777).toString(8)}); credd makes it 0700`;
      let fd: number;
      try {
        fd = openSync(p, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ELOOP" || (err as NodeJS.ErrnoException).code === "ENOTDIR") {
          return `${p} was replaced while it was checked`;
        }
        throw err;
      }
      try {
        const opened = fstatSync(fd);
        if (opened.dev !== st.dev || opened.ino !== st.ino) return `${p} was replaced while it was checked`;
      } finally {
        closeSync(fd);
      }
      found.set(sub, st);
    }
    return found;
  };

  /**
   * The inbox itself: made if missing. When credd owns it and others may write it, the sticky bit is
   * set, so that nobody but credd can rename or remove processed/ and rejected/ (docs/security.md).
   */
  const prepareInbox = (): void => {
    const dir = ctx.config.inbox_dir;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const st = statSync(dir);
    if (uid !== undefined && st.uid === uid && st.mode & 0o022 && !(st.mode & 0o1000)) {
      chmodSync(dir, (st.mode & 0o7777) | 0o1000);
      ctx.log.info(
        { dir, mode: ((st.mode & 0o7777) | 0o1000).toString(8) },
        "inbox: set the sticky bit, so that only credd may rename or remove its processed/ and rejected/",
      );
    }
  };

  const scanOnce = async (): Promise<FileOutcome[]> => {
    backlog = false;
    if (unsafe) return [];
    const dir = ctx.config.inbox_dir;
    prepareInbox();
    const folders = checkFolders();
    if (typeof folders === "string") {
      await refuseInbox(folders);
      return [];
    }
    if (!checkedOnce) {
      checkedOnce = true;
      // A start with safe folders ends an alert left by an earlier run (the folders were fixed).
      try {
        await ctx.store.setMeta(INBOX_UNSAFE_META, "");
      } catch {
        /* the scan itself reports a database that does not work */
      }
      const removed = removeStaleTemps(
        SUBFOLDERS.map((sub) => join(dir, sub)),
        Date.now(),
      );
      if (removed.length) ctx.log.info({ removed }, "inbox: removed temp files left by an interrupted write");
    }
    const dirBytes = Buffer.from(`${dir}/`);
    // Names as latin1 strings: one character per byte, so cheap to hold for 10,000 entries and exact
    // to turn back into the bytes (a name need not be UTF-8). Only the files looked at get escaped.
    const entries = (await readdir(dir, { encoding: "latin1" })).filter((n) => !SKIP.test(n) && !(SUBFOLDERS as readonly string[]).includes(n));
    const present = new Set(entries);
    // Files whose last attempt failed come last, so that they never keep new files waiting.
    const failingRaw = new Set<string>();
    for (const key of conditions.keys()) {
      const raw = rawOfShown.get(key.slice(key.indexOf(":") + 1));
      if (raw !== undefined) failingRaw.add(raw);
    }
    const ordered = failingRaw.size ? [...entries.filter((r) => !failingRaw.has(r)), ...entries.filter((r) => failingRaw.has(r))] : entries;

    // Display names: escaped, capped, and made unique within the scan (two long names may share the capped form).
    const shown = new Map<string, Buffer>();
    const files: InputFile[] = [];
    const nowMs = Date.now(); // file ages are wall-clock facts about the file system, not credd's clock
    let looked = 0;
    for (const latin1 of ordered) {
      if (files.length >= maxFiles || looked >= maxFiles * 10) {
        // Scan again at once only for work waiting, not for files still being copied (they wait for the tick).
        backlog = files.length >= maxFiles;
        break;
      }
      looked++;
      const raw = Buffer.from(latin1, "latin1");
      let name = escapeName(raw);
      for (let n = 2; shown.has(name); n++) name = `${escapeName(raw)} #${n}`;
      shown.set(name, raw);
      rawOfShown.set(name, latin1);
      const path = Buffer.concat([dirBytes, raw]);
      try {
        const r = await readBounded(path, { maxBytes: MAX_CERTIFICATE_FILE_BYTES, refuseHardLinks: true, minAgeMs: opts.minAgeMs, nowMs });
        if (r.outcome === "read") files.push({ name, bytes: r.bytes });
        else if (r.stat?.isDirectory())
          present.delete(latin1); // a folder someone made: not a file to take in, left alone
        else if (r.outcome === "refused") files.push({ name, bytes: Buffer.alloc(0), refused: { check: r.check, reason: `${name} ${r.reason}` } });
        cleared(keyOf("read", name), "an inbox file can be read again", { file: name });
      } catch (err) {
        const code = underlyingCode(err);
        if (code === "ENOENT")
          present.delete(latin1); // gone meanwhile
        else failed(keyOf("read", name), { code, message: errorMessage(err) }, "cannot read a file in the inbox", { file: name });
      }
      await pace();
    }
    // Files that left the inbox (moved by a person, or taken meanwhile) end their conditions.
    const withConditions = new Set<string>();
    for (const key of conditions.keys()) {
      if (key === SCAN) continue;
      const file = key.slice(key.indexOf(":") + 1);
      const raw = rawOfShown.get(file);
      if (raw === undefined || !present.has(raw)) cleared(key, "a file that could not be handled is no longer in the inbox", { file });
      else withConditions.add(file);
    }
    // Only names that may still be needed to find a condition's file are remembered.
    for (const file of [...rawOfShown.keys()]) if (!withConditions.has(file) && !shown.has(file)) rawOfShown.delete(file);
    if (files.length === 0) return [];
    const fresh = files.filter((f) => !conditions.has(keyOf("take", f.name)) && !conditions.has(keyOf("move", f.name)));
    if (fresh.length > 0) ctx.log.info({ files: fresh.map((f) => f.name) }, "inbox: taking in");
    const settled = new Set<string>();
    const onOutcome = async (o: FileOutcome): Promise<void> => {
      if (settled.has(o.file)) return;
      settled.add(o.file);
      if (o.outcome === "failed") {
        // Not a verdict on the file (database locked, disk full): it stays for the next scan.
        failed(keyOf("take", o.file), { code: o.code, message: o.reason }, "could not take in a certificate file; it stays in the inbox", {
          file: o.file,
          credential: o.credential,
        });
        return;
      }
      cleared(keyOf("take", o.file), "a certificate file that could not be taken in before has been handled", { file: o.file, outcome: o.outcome });
      const raw = shown.get(o.file);
      if (raw) await settle(o, raw, folders);
    };
    const outcomes = await ingest(ctx, files, { onOutcome, pace });
    // A stand-in that does not call onOutcome: settle what it returned.
    for (const o of outcomes) await onOutcome(o);
    return outcomes;
  };

  /** Moves a file out of the way (rename keeps its mode: a key dropped by mistake is never widened). */
  const settle = async (o: Exclude<FileOutcome, { outcome: "failed" }>, raw: Buffer, folders: Map<Sub, Stats>): Promise<void> => {
    if (unsafe) return;
    const dir = ctx.config.inbox_dir;
    const sub: Sub = o.outcome === "refused" ? "rejected" : "processed";
    const target = join(dir, sub);
    const stamp = ctx.clock.now().toISOString().replace(/[:.]/g, "-");
    let destName = raw;
    try {
      // The folder must still be the one checked at the start of the scan.
      const was = folders.get(sub)!;
      const same = async (): Promise<boolean> => {
        const st = await lstat(target).catch(() => undefined);
        return !!st && st.isDirectory() && !st.isSymbolicLink() && st.dev === was.dev && st.ino === was.ino;
      };
      if (!(await same())) {
        await refuseInbox(`${target} was replaced since the scan checked it`);
        return;
      }
      const targetBytes = Buffer.from(`${target}/`);
      const taken = async (name: Buffer) => (await lstat(Buffer.concat([targetBytes, name])).catch(() => undefined)) !== undefined;
      for (let n = 1; await taken(destName); n++) destName = fitName(Buffer.from(`${stamp}${n > 1 ? `-${n}` : ""}-`), raw);
      await rename(Buffer.concat([Buffer.from(`${dir}/`), raw]), Buffer.concat([targetBytes, destName]));
      if (!(await same())) {
        await refuseInbox(`${target} was replaced while ${o.file} was moved into it`);
        return;
      }
      const shownDest = escapeName(destName, Infinity);
      if (o.outcome === "refused") {
        const reasonName = reasonFileName(destName);
        const text = `${o.check}: ${o.reason}\n${reasonName.startsWith(destName.toString("utf8")) ? "" : `file: ${shownDest}\n`}`;
        await writeFileAtomicAsync(join(target, reasonName), text, 0o644);
      }
      cleared(keyOf("move", o.file), "an inbox file could be moved this time", { file: o.file, to: join(target, shownDest) });
      ctx.log.info({ file: o.file, outcome: o.outcome, to: join(target, shownDest) }, "inbox file moved");
    } catch (err) {
      failed(keyOf("move", o.file), { code: underlyingCode(err), message: errorMessage(err) }, "cannot move a file out of the inbox", {
        file: o.file,
        to: join(target, escapeName(destName)),
      });
    }
  };

  return {
    async scan() {
      try {
        const outcomes = await scanOnce();
        cleared(SCAN, "the inbox scan works again", { dir: ctx.config.inbox_dir });
        return outcomes;
      } catch (err) {
        failed(SCAN, { code: underlyingCode(err), message: errorMessage(err) }, "inbox scan failed", { dir: ctx.config.inbox_dir });
        return [];
      }
    },
    backlog: () => backlog,
    unsafe: () => unsafe,
  };
}

/** `prefix` + `name`, cut to NAME_MAX bytes (a hash of the whole name kept, so two cut names differ). */
export function fitName(prefix: Buffer, name: Buffer): Buffer {
  const whole = Buffer.concat([prefix, name]);
  if (whole.length <= NAME_MAX) return whole;
  const hash = Buffer.from(`~${createHash("sha256").update(name).digest("hex").slice(0, 12)}`);
  return Buffer.concat([whole.subarray(0, NAME_MAX - hash.length), hash]);
}

/**
 * Where a rejected file's reason goes: NAME.reason when that fits in a file name and NAME is text;
 * otherwise a shortened, escaped name with a hash of the whole name (the reason file says which).
 */
export function reasonFileName(name: Buffer): string {
  const text = name.toString("utf8");
  if (Buffer.from(text, "utf8").equals(name) && name.length + ".reason".length <= NAME_MAX) return `${text}.reason`;
  const tail = `~${createHash("sha256").update(name).digest("hex").slice(0, 12)}.reason`;
  let head = "";
  for (const ch of escapeName(name, Infinity).replace(/^\./, "_")) {
    if (Buffer.byteLength(head + ch) + tail.length > NAME_MAX) break;
    head += ch;
  }
  return head + tail;
}
