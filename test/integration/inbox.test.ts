// The inbox under a failure that lasts (disk full, then another error, then a failing scan): retried
// at every scan, logged once when it starts, once when it changes, once when it clears. Real inbox
// folder and SQLite file; the failures are injected through the inbox's ingest step, time by a ManualClock.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import type { Ctx } from "../../src/core/context.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { failedOutcome, ingestBatch, type FileOutcome, type InputFile } from "../../src/core/ingest.js";
import { createInbox } from "../../src/daemon/inbox.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { makeTempDir } from "../helpers/openssl.js";

test("a failure that lasts is retried at every scan and logged once when it starts, changes and clears", async () => {
  const dir = makeTempDir("credd-int-inbox-");
  const config = parseConfig(
    `state_dir: ${join(dir, "state")}
inbox_dir: ${join(dir, "inbox")}
smtp: { url: "smtp://127.0.0.1:2525", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`,
    join(dir, "credd.yaml"),
  );
  const lines: Record<string, unknown>[] = [];
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
    mailer: makeMailerFactory(config),
  });

  // What the ingest step does at each scan: fail on our side, throw, or really take the file in.
  let mode: "disk-full" | "denied" | "throw" | "real" = "disk-full";
  let calls = 0;
  const ingest = async (c: Ctx, files: InputFile[]): Promise<FileOutcome[]> => {
    calls++;
    const tmp = `${join(config.state_dir, "credentials/fleet-prod/archive")}/.cert-2.pem.${calls.toString(16).padStart(12, "0")}.tmp`;
    if (mode === "disk-full") {
      return files.map((f) =>
        failedOutcome(f.name, Object.assign(new Error(`ENOSPC: no space left on device, open '${tmp}'`), { code: "ENOSPC" }), "fleet-prod"),
      );
    }
    if (mode === "denied")
      return files.map((f) => failedOutcome(f.name, Object.assign(new Error(`EACCES: permission denied, open '${tmp}'`), { code: "EACCES" })));
    if (mode === "throw") throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    return ingestBatch(c, files);
  };
  const inbox = createInbox(ctx, { minAgeMs: 0, ingest });
  mkInbox(config.inbox_dir, "MZP128745.pem", "not a certificate\n");
  const scans = async (n: number) => {
    for (let i = 0; i < n; i++) {
      clock.advance(2_000);
      await inbox.scan();
    }
  };
  const errors = () => lines.filter((l) => (l.level as number) >= 50);

  await scans(5);
  assert.equal(calls, 5, "retried at every scan");
  assert.equal(errors().length, 1, `logged once: ${JSON.stringify(errors())}`);
  assert.match(
    String(errors()[0]!.msg),
    /^could not take in a certificate file; it stays in the inbox; retried at every scan \(logged again only when the error changes or clears\)$/,
  );
  assert.equal(errors()[0]!.code, "ENOSPC");
  assert.equal(errors()[0]!.file, "MZP128745.pem");
  assert.equal(lines.filter((l) => l.msg === "inbox: taking in").length, 1, "'taking in' once, not at every retry");
  assert.ok(existsSync(join(config.inbox_dir, "MZP128745.pem")), "the file stays in the inbox");

  mode = "denied";
  await scans(3);
  assert.equal(errors().length, 2, "once more when the error changes");
  const changed = errors()[1]!;
  assert.match(String(changed.msg), /the error changed; still retried at every scan/);
  assert.equal(changed.code, "EACCES");
  assert.match(String(changed.previousErr), /^ENOSPC/);
  assert.equal(changed.failingSince, "2026-03-01T10:00:02.000Z");

  mode = "throw";
  await scans(4);
  assert.equal(errors().length, 3, "a failing scan: logged once");
  assert.match(String(errors()[2]!.msg), /^inbox scan failed; retried at every scan/);
  assert.equal(errors()[2]!.code, "SQLITE_FULL");

  mode = "real";
  await scans(3);
  assert.equal(errors().length, 3, "no more errors");
  const info = (re: RegExp) => lines.filter((l) => re.test(String(l.msg)));
  assert.equal(info(/^the inbox scan works again$/).length, 1);
  const handled = info(/^a certificate file that could not be taken in before has been handled$/);
  assert.equal(handled.length, 1);
  assert.equal(handled[0]!.outcome, "refused");
  assert.equal(handled[0]!.attempts, 3, "the EACCES attempts");
  assert.deepEqual(readdirSync(join(config.inbox_dir, "rejected")).sort(), ["MZP128745.pem", "MZP128745.pem.reason"]);
  assert.equal(calls, 5 + 3 + 4 + 1, "every scan tried until the file was handled");
  ctx.db.close();
});

function mkInbox(dir: string, name: string, text: string): void {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, name);
  writeFileSync(f, text);
  const old = new Date(Date.now() - 60_000);
  utimesSync(f, old, old);
}
