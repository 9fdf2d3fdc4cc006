// The inbox folder: files dropped there are taken in; each ends in processed/ or rejected/ with a .reason.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Ctx } from "../core/context.js";
import type { FileOutcome, InputFile } from "../core/ingest.js";
import { errorMessage } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";

export interface InboxOptions {
  /** A file is taken only once it has not changed for this long (a copy may still be running). */
  minAgeMs: number;
}

const SKIP = /^\.|\.(tmp|part|partial|swp|crdownload|reason)$|~$/;

export async function scanInbox(ctx: Ctx, opts: InboxOptions): Promise<FileOutcome[]> {
  const dir = ctx.config.inbox_dir;
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o750 });
  const files: InputFile[] = [];
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
    if (!st.isFile() || nowMs - st.mtimeMs < opts.minAgeMs) continue;
    try {
      files.push({ name, bytes: readFileSync(path) });
    } catch (err) {
      ctx.log.error({ file: path, err: errorMessage(err) }, "cannot read a file in the inbox");
    }
  }
  if (files.length === 0) return [];
  ctx.log.info({ files: files.map((f) => f.name) }, "inbox: taking in");
  // Loaded with the first file: ingest brings the certificate parsing code, which an empty inbox never needs.
  const { ingestBatch } = await import("../core/ingest.js");
  const outcomes = await ingestBatch(ctx, files);
  // A file we failed on (database locked, disk full) stays in the inbox for the next scan.
  for (const o of outcomes) if (o.outcome !== "failed") settle(ctx, dir, o);
  return outcomes;
}

/** Moves a file out of the way (rename keeps its mode: a key dropped by mistake is never widened). */
function settle(ctx: Ctx, dir: string, o: Exclude<FileOutcome, { outcome: "failed" }>): void {
  const sub = o.outcome === "refused" ? "rejected" : "processed";
  const target = join(dir, sub);
  mkdirSync(target, { recursive: true, mode: 0o750 });
  const stamp = ctx.clock.now().toISOString().replace(/[:.]/g, "-");
  let dest = join(target, o.file);
  if (existsSync(dest)) dest = join(target, `${stamp}-${o.file}`);
  try {
    renameSync(join(dir, o.file), dest);
    if (o.outcome === "refused") {
      writeFileAtomic(`${dest}.reason`, `${o.check}: ${o.reason}\n`, 0o644);
    }
    ctx.log.info({ file: o.file, outcome: o.outcome, to: dest }, "inbox file moved");
  } catch (err) {
    ctx.log.error({ file: o.file, err: errorMessage(err) }, "cannot move a file out of the inbox");
  }
}
