// The inbox against whoever may write it (docs/security.md): symlinked sub-folders, FIFOs and
// symbolic links dropped in, a flood of files, a 3 GB file, 255-byte and CR/LF names, temp files
// left by a kill. Real folders, FIFOs (mkfifo), symlinks and a real SQLite file; time by a ManualClock.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  chmodSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pino } from "pino";
import { ManualClock } from "../helpers/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { sqliteCtx, type TestCtx } from "../helpers/ctx.js";
import { createInbox, reasonFileName, type InboxOptions } from "../../src/daemon/inbox.js";
import { ownedWriteDirs, removeStaleTemps } from "../../src/files/leftovers.js";
import { makeMailerFactory } from "../../src/mail/factory.js";
import { openDb } from "../../src/store/db.js";
import { queuedMails } from "../../src/store/outbox.js";
import { makeTempDir } from "../helpers/openssl.js";

interface World {
  dir: string;
  inbox: string;
  ctx: TestCtx;
  lines: Record<string, unknown>[];
  clock: ManualClock;
}

function world(): World {
  const dir = makeTempDir("credd-int-inbox-safety-");
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
  mkdirSync(config.inbox_dir, { recursive: true });
  const lines: Record<string, unknown>[] = [];
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  const ctx: TestCtx = sqliteCtx({
    config,
    db: openDb(config.state_dir),
    clock,
    log: pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
    mailer: makeMailerFactory(config),
  });
  return { dir, inbox: config.inbox_dir, ctx, lines, clock };
}

const inboxOf = (w: World, o: Partial<InboxOptions> = {}) => createInbox(w.ctx, { minAgeMs: 0, ...o });
const drop = (w: World, name: string | Buffer, text: string | Buffer = "not a certificate\n") =>
  writeFileSync(Buffer.concat([Buffer.from(`${w.inbox}/`), typeof name === "string" ? Buffer.from(name) : name]), text);
const alertMails = (w: World) =>
  queuedMails(w.ctx.db)
    .filter((m) => m.kind === "alert")
    .map((m) => JSON.parse(m.mail_json) as { subject: string; text: string });

describe("sub-folders credd writes into", () => {
  test("processed/ and rejected/ are made by credd, 0700", async () => {
    const w = world();
    await inboxOf(w).scan();
    for (const sub of ["processed", "rejected"]) {
      const st = lstatSync(join(w.inbox, sub));
      assert.ok(st.isDirectory() && !st.isSymbolicLink());
      assert.equal(st.mode & 0o777, 0o700, sub);
    }
    w.ctx.db.close();
  });

  for (const sub of ["rejected", "processed"]) {
    test(`${sub}/ replaced by a symbolic link: nothing is written through it, the inbox is no longer used, an alert is raised`, async () => {
      const w = world();
      const elsewhere = join(w.dir, "elsewhere");
      mkdirSync(elsewhere);
      const inbox = inboxOf(w);
      await inbox.scan();
      rmSync(join(w.inbox, sub), { recursive: true });
      symlinkSync(elsewhere, join(w.inbox, sub));
      drop(w, "junk.pem");
      assert.deepEqual(await inbox.scan(), []);
      assert.deepEqual(readdirSync(elsewhere), [], "nothing moved or written through the link");
      assert.ok(existsSync(join(w.inbox, "junk.pem")), "the file stays where it was dropped");
      assert.match(inbox.unsafe() ?? "", new RegExp(`${sub} is a symbolic link`));
      const err = w.lines.find((l) => /the inbox is no longer used/.test(String(l.msg)));
      assert.ok(err, "logged");
      const mails = alertMails(w);
      assert.equal(mails.length, 1, "one alert digest queued");
      assert.match(mails[0]!.subject, /CRITICAL credd: the inbox is no longer used/);
      assert.match(mails[0]!.text, /is a symbolic link/);
      // It stays unused: the link removed, a new scan of the same daemon still does nothing.
      rmSync(join(w.inbox, sub));
      assert.deepEqual(await inbox.scan(), []);
      assert.ok(existsSync(join(w.inbox, "junk.pem")));
      // A restart (a new inbox) with safe folders takes the file and ends the alert.
      const again = inboxOf(w);
      assert.equal((await again.scan()).length, 1);
      assert.ok(existsSync(join(w.inbox, "rejected", "junk.pem")));
      w.ctx.db.close();
    });
  }

  test("a rejected/ others may write, or a file in its place, is refused", async () => {
    const w = world();
    mkdirSync(join(w.inbox, "rejected"), { mode: 0o700 });
    chmodSync(join(w.inbox, "rejected"), 0o777);
    drop(w, "junk.pem");
    const inbox = inboxOf(w);
    await inbox.scan();
    assert.match(inbox.unsafe() ?? "", /rejected may be written by others \(mode 777\)/);
    assert.ok(existsSync(join(w.inbox, "junk.pem")));
    const w2 = world();
    writeFileSync(join(w2.inbox, "processed"), "");
    const i2 = inboxOf(w2);
    await i2.scan();
    assert.match(i2.unsafe() ?? "", /processed is not a folder/);
    w.ctx.db.close();
    w2.ctx.db.close();
  });

  test("an inbox others may write gets the sticky bit, so they cannot rename credd's folders", async () => {
    const w = world();
    chmodSync(w.inbox, 0o770);
    await inboxOf(w).scan();
    assert.equal(statSync(w.inbox).mode & 0o7777, 0o1770);
    w.ctx.db.close();
  });
});

describe("entries that are not regular files", () => {
  test("a FIFO is refused from its descriptor, never read: the scan returns and the event loop turns meanwhile", async () => {
    const w = world();
    execFileSync("mkfifo", [join(w.inbox, "pipe.pem")]);
    // A writer-less FIFO blocks a plain open(2) for ever; a timer armed before the scan must fire during it.
    let turns = 0;
    const spin = () => {
      turns++;
      if (turns < 1e6) timer = setImmediate(spin);
    };
    let timer = setImmediate(spin);
    const outcomes = await inboxOf(w).scan();
    clearImmediate(timer);
    assert.ok(turns > 0, "the event loop kept turning");
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]!.outcome, "refused");
    assert.ok(lstatSync(join(w.inbox, "rejected", "pipe.pem")).isFIFO(), "moved (rename does not open it)");
    assert.match(
      readFileSync(join(w.inbox, "rejected", "pipe.pem.reason"), "utf8"),
      /^file-type: pipe\.pem is a named pipe \(FIFO\), not a regular file/,
    );
    w.ctx.db.close();
  });

  test("a symbolic link is refused without being followed (to a FIFO, to a readable file, to /proc/kmsg)", async () => {
    const w = world();
    execFileSync("mkfifo", [join(w.dir, "fifo")]);
    writeFileSync(join(w.dir, "secret.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
    symlinkSync(join(w.dir, "fifo"), join(w.inbox, "to-fifo.pem"));
    symlinkSync(join(w.dir, "secret.pem"), join(w.inbox, "to-file.pem"));
    symlinkSync("/proc/kmsg", join(w.inbox, "kmsg.pem"));
    const outcomes = await inboxOf(w).scan();
    assert.equal(outcomes.length, 3);
    for (const name of ["to-fifo.pem", "to-file.pem", "kmsg.pem"]) {
      assert.ok(lstatSync(join(w.inbox, "rejected", name)).isSymbolicLink(), `${name} moved as the link it is`);
      assert.match(
        readFileSync(join(w.inbox, "rejected", `${name}.reason`), "utf8"),
        /^file-type: \S+ is a symbolic link, which credd does not follow/,
      );
    }
    assert.ok(existsSync(join(w.dir, "secret.pem")), "the target is untouched");
    w.ctx.db.close();
  });

  test("a hard link is refused, a folder someone made is left alone", async () => {
    const w = world();
    writeFileSync(join(w.dir, "mine.pem"), "x");
    execFileSync("ln", [join(w.dir, "mine.pem"), join(w.inbox, "linked.pem")]);
    mkdirSync(join(w.inbox, "a-folder"));
    const outcomes = await inboxOf(w).scan();
    assert.deepEqual(
      outcomes.map((o) => o.file),
      ["linked.pem"],
    );
    assert.match(readFileSync(join(w.inbox, "rejected", "linked.pem.reason"), "utf8"), /has 2 hard links/);
    assert.ok(statSync(join(w.inbox, "a-folder")).isDirectory());
    w.ctx.db.close();
  });
});

describe("a flood of files", () => {
  test("one scan takes at most its cap, yields between files, and moves each file as soon as it has a verdict", async () => {
    const w = world();
    for (let i = 0; i < 250; i++) drop(w, `junk-${String(i).padStart(4, "0")}.pem`);
    let paces = 0;
    const rejectedSeen: number[] = [];
    const pace = () => {
      paces++;
      const r = join(w.inbox, "rejected");
      rejectedSeen.push(existsSync(r) ? readdirSync(r).length : 0);
      return new Promise<void>((resolve) => setImmediate(resolve));
    };
    const inbox = inboxOf(w, { maxFilesPerScan: 100, pace });
    let turns = 0;
    const spin = () => {
      turns++;
      timer = setImmediate(spin);
    };
    let timer = setImmediate(spin);
    const first = await inbox.scan();
    clearImmediate(timer);
    assert.equal(first.length, 100, "the cap");
    assert.ok(inbox.backlog(), "files are left for the next scan");
    assert.ok(paces >= 200, `a yield after each file read and each verdict (${paces})`);
    assert.ok(turns >= 200, `the event loop turned between files (${turns} turns)`);
    // Moved one by one during the scan, not all at its end.
    const growing = rejectedSeen.filter((n, i) => i > 0 && n > rejectedSeen[i - 1]!).length;
    assert.ok(growing >= 90, `rejected/ grew during the scan (${growing} times)`);
    assert.equal((await inbox.scan()).length, 100);
    assert.equal((await inbox.scan()).length, 50);
    assert.ok(!inbox.backlog());
    assert.equal(readdirSync(join(w.inbox, "rejected")).length, 500, "250 files and their reasons");
    w.ctx.db.close();
  });
});

describe("size", () => {
  test("a 3 GB file is refused from its size, unread, and moved to rejected/ (not retried at every scan)", async () => {
    const w = world();
    const big = join(w.inbox, "huge.pem");
    writeFileSync(big, "");
    truncateSync(big, 3 * 1024 ** 3); // sparse: no disk used
    const before = process.memoryUsage().rss;
    const inbox = inboxOf(w);
    const outcomes = await inbox.scan();
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 ** 2, "not read into memory");
    assert.equal(outcomes.length, 1);
    assert.deepEqual(outcomes[0], {
      file: "huge.pem",
      outcome: "refused",
      check: "parse",
      reason: "huge.pem is 3221225472 bytes, too large for a certificate (limit 1 MiB): is it the right file?",
    });
    assert.equal(statSync(join(w.inbox, "rejected", "huge.pem")).size, 3 * 1024 ** 3);
    assert.match(readFileSync(join(w.inbox, "rejected", "huge.pem.reason"), "utf8"), /too large/);
    assert.deepEqual(await inbox.scan(), []);
    w.ctx.db.close();
  });

  test("a file of exactly 1 MiB is read, one byte more is refused", async () => {
    const w = world();
    drop(w, "exact.pem", Buffer.alloc(1024 * 1024, 0x41));
    drop(w, "over.pem", Buffer.alloc(1024 * 1024 + 1, 0x41));
    const outcomes = await inboxOf(w).scan();
    const by = new Map(outcomes.map((o) => [o.file, o]));
    const exact = by.get("exact.pem");
    assert.ok(exact?.outcome === "refused" && !/too large/.test(exact.reason), "parsed, not refused for its size");
    assert.match((by.get("over.pem") as { reason: string }).reason, /is 1048577 bytes, too large/);
    w.ctx.db.close();
  });
});

describe("names", () => {
  test("a 255-byte name keeps its reason in a shortened file, and in the database", async () => {
    const w = world();
    const name = `${"n".repeat(251)}.pem`;
    drop(w, name);
    const outcomes = await inboxOf(w).scan();
    assert.equal(outcomes.length, 1);
    const rejected = join(w.inbox, "rejected");
    assert.ok(existsSync(join(rejected, name)));
    const reasonName = reasonFileName(Buffer.from(name));
    assert.ok(Buffer.byteLength(reasonName) <= 255 && reasonName.endsWith(".reason"));
    const text = readFileSync(join(rejected, reasonName), "utf8");
    assert.match(text, /^parse: /);
    assert.match(text, /\nfile: n{251}\.pem\n$/, "the reason file says which file it is about");
    assert.ok(!w.lines.some((l) => l.code === "ENAMETOOLONG"), "no failure to move");
    // A second file of the same name: stamped and cut to 255 bytes, its reason kept too.
    drop(w, name);
    await inboxOf(w).scan();
    const all = readdirSync(rejected);
    assert.equal(all.length, 4, all.join("\n"));
    assert.ok(all.every((n) => Buffer.byteLength(n) <= 255));
    w.ctx.db.close();
  });

  test("a name with CR/LF and escape sequences is shown escaped in the alert email, the log and the reason", async () => {
    const w = world();
    const name = "evil\r\nBcc: attacker@evil.example\r\n\x1b[2J.pem";
    drop(w, name);
    await inboxOf(w).scan();
    const { evaluateAlerts } = await import("../../src/core/alerts.js");
    await evaluateAlerts(w.ctx);
    const mails = alertMails(w);
    assert.equal(mails.length, 1);
    const shown = "evil\\r\\nBcc: attacker@evil.example\\r\\n\\x1b[2J.pem";
    assert.ok(mails[0]!.text.includes(shown), mails[0]!.text);
    assert.ok(!/\r|\x1b|\nBcc:/.test(mails[0]!.text), "no raw control character, no header-like line");
    assert.ok(!/[\r\n\x1b]/.test(mails[0]!.subject));
    const logged = w.lines.filter((l) => JSON.stringify(l).includes("evil"));
    assert.ok(logged.length > 0);
    for (const l of logged) assert.ok(!JSON.stringify(l).includes("\\r\\n") || JSON.stringify(l).includes("\\\\r\\\\n"), JSON.stringify(l));
    assert.ok(existsSync(join(w.inbox, "rejected", name)), "the file itself keeps its name");
    const reason = readFileSync(join(w.inbox, "rejected", reasonFileName(Buffer.from(name))), "utf8");
    assert.ok(!/[\r\x1b]/.test(reason) && reason.trim().split("\n").length <= 2, reason);
    w.ctx.db.close();
  });

  test("a name that is not UTF-8 is taken and moved like any other", async () => {
    const w = world();
    const raw = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x70, 0x65, 0x6d]);
    drop(w, raw);
    const outcomes = await inboxOf(w).scan();
    assert.equal(outcomes[0]!.file, "bad\\xff\\xfe.pem");
    assert.deepEqual(readdirSync(w.inbox), ["processed", "rejected"]);
    w.ctx.db.close();
  });
});

describe("leftovers", () => {
  test("stale temp files of credd's naming are removed at start; young ones and others' files stay", async () => {
    const w = world();
    const archive = join(w.ctx.config.state_dir, "credentials", "fleet-prod", "archive");
    mkdirSync(archive, { recursive: true });
    const old = new Date(Date.now() - 3_600_000);
    const stale = [
      join(archive, ".chain-3.pem.0123456789ab.tmp"),
      join(archive, ".cert-3.pem.abcdef012345.tmp"),
      join(w.inbox, "rejected", ".junk.pem.reason.00aa11bb22cc.tmp"),
    ];
    mkdirSync(join(w.inbox, "rejected"), { mode: 0o700 });
    for (const f of stale) {
      writeFileSync(f, "x");
      utimesSync(f, old, old);
    }
    const young = join(archive, ".key-3.pem.0123456789ab.tmp");
    writeFileSync(young, "x");
    const foreign = join(archive, "notes.tmp");
    writeFileSync(foreign, "x");
    utimesSync(foreign, old, old);
    const removed = removeStaleTemps(
      ownedWriteDirs({ credentials: join(w.ctx.config.state_dir, "credentials"), runtime: w.ctx.config.runtime_dir }, ["fleet-prod"]),
      Date.now(),
    );
    assert.deepEqual(removed.sort(), stale.slice(0, 2).sort());
    await inboxOf(w).scan();
    for (const f of stale) assert.ok(!existsSync(f), f);
    assert.ok(existsSync(young), "a write may be in progress");
    assert.ok(existsSync(foreign), "not credd's naming");
    w.ctx.db.close();
  });
});
