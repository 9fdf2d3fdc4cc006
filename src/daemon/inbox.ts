// The inbox folder: files dropped there are taken in; each ends in processed/ or rejected/ with a .reason.
// A failure that lasts (disk full, database locked) is retried at every scan but logged once: when it
// starts, when it changes and when it clears.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Ctx } from "../core/context.js";
import type { FileOutcome, InputFile } from "../core/ingest.js";
import { Conditions, errorSignature, type Seen } from "../domain/conditions.js";
import { errorMessage, underlyingCode } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";

export interface InboxOptions {
  /** A file is taken only once it has not changed for this long (a copy may still be running). */
  minAgeMs: number;
  /** Takes in one batch: ingestBatch, or a stand-in that fails on purpose in tests. */
  ingest?: (ctx: Ctx, files: InputFile[]) => Promise<FileOutcome[]>;
}

export interface Inbox {
  /** Looks at the inbox once; never throws (failures are logged, once while they last). */
  scan(): Promise<FileOutcome[]>;
}

const SKIP = /^\.|\.(tmp|part|partial|swp|crdownload|reason)$|~$/;

/** What a repeated failure is about: the whole scan, reading one file, taking it in, moving it. */
const SCAN = "scan";
const keyOf = (step: "read" | "take" | "move", file: string) => `${step}:${file}`;

const ONCE = "logged again only when the error changes or clears";

export function createInbox(ctx: Ctx, opts: InboxOptions): Inbox {
  const conditions = new Conditions();
  // ingest.js is loaded with the first file: it brings the certificate parsing code, which an empty inbox never needs.
  const ingest = opts.ingest ?? (async (c: Ctx, files: InputFile[]) => (await import("../core/ingest.js")).ingestBatch(c, files));

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

  const scanOnce = async (): Promise<FileOutcome[]> => {
    const dir = ctx.config.inbox_dir;
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o750 });
    const files: InputFile[] = [];
    const present = new Set<string>();
    const nowMs = Date.now(); // file ages are wall-clock facts about the file system, not credd's clock
    for (const name of readdirSync(dir)) {
      if (SKIP.test(name)) continue;
      const path = join(dir, name);
      let st;
      try {
        st = statSync(path);
      } catch {
        continue; // gone meanwhile
      }
      if (!st.isFile()) continue;
      present.add(name);
      if (nowMs - st.mtimeMs < opts.minAgeMs) continue;
      try {
        files.push({ name, bytes: readFileSync(path) });
        cleared(keyOf("read", name), "an inbox file can be read again", { file: path });
      } catch (err) {
        failed(keyOf("read", name), { code: underlyingCode(err), message: errorMessage(err) }, "cannot read a file in the inbox", { file: path });
      }
    }
    // Files that left the inbox (moved by a person, or taken meanwhile) end their conditions.
    for (const key of conditions.keys()) {
      const file = key.slice(key.indexOf(":") + 1);
      if (key !== SCAN && !present.has(file)) cleared(key, "a file that could not be handled is no longer in the inbox", { file: join(dir, file) });
    }
    if (files.length === 0) return [];
    const fresh = files.filter((f) => !conditions.has(keyOf("take", f.name)) && !conditions.has(keyOf("move", f.name)));
    if (fresh.length > 0) ctx.log.info({ files: fresh.map((f) => f.name) }, "inbox: taking in");
    const outcomes = await ingest(ctx, files);
    for (const o of outcomes) {
      if (o.outcome === "failed") {
        // Not a verdict on the file (database locked, disk full): it stays for the next scan.
        failed(keyOf("take", o.file), { code: o.code, message: o.reason }, "could not take in a certificate file; it stays in the inbox", {
          file: o.file,
          credential: o.credential,
        });
        continue;
      }
      cleared(keyOf("take", o.file), "a certificate file that could not be taken in before has been handled", { file: o.file, outcome: o.outcome });
      settle(o);
    }
    return outcomes;
  };

  /** Moves a file out of the way (rename keeps its mode: a key dropped by mistake is never widened). */
  const settle = (o: Exclude<FileOutcome, { outcome: "failed" }>): void => {
    const dir = ctx.config.inbox_dir;
    const sub = o.outcome === "refused" ? "rejected" : "processed";
    const target = join(dir, sub);
    const stamp = ctx.clock.now().toISOString().replace(/[:.]/g, "-");
    let dest = join(target, o.file);
    try {
      mkdirSync(target, { recursive: true, mode: 0o750 });
      if (existsSync(dest)) dest = join(target, `${stamp}-${o.file}`);
      renameSync(join(dir, o.file), dest);
      if (o.outcome === "refused") {
        writeFileAtomic(`${dest}.reason`, `${o.check}: ${o.reason}\n`, 0o644);
      }
      cleared(keyOf("move", o.file), "an inbox file could be moved this time", { file: o.file, to: dest });
      ctx.log.info({ file: o.file, outcome: o.outcome, to: dest }, "inbox file moved");
    } catch (err) {
      failed(keyOf("move", o.file), { code: underlyingCode(err), message: errorMessage(err) }, "cannot move a file out of the inbox", {
        file: o.file,
        to: dest,
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
  };
}
