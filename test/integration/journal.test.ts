// The daemon's logger under systemd: records as native journal datagrams with credd's own fields
// (CREDD_CREDENTIAL for `journalctl -u credd CREDD_CREDENTIAL=fleet-prod`), stdout when it cannot send.
import assert from "node:assert/strict";
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, test } from "node:test";
import { createLogger } from "../../src/log.js";
import { parseJournalDatagram } from "../helpers/journal.js";
import { makeTempDir } from "../helpers/openssl.js";

/** The listening side of unix-dgram (the library credd sends with; it has no type definitions). */
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram", onMessage: (buf: Buffer) => void): { bind(path: string): void; close(): void };
};

/** A journal socket as journald binds it; `next(n)` resolves with the first n datagrams' fields. */
function journalSocket(dir: string) {
  const path = join(dir, "journal.sock");
  const got: Map<string, string>[] = [];
  let wake: () => void = () => undefined;
  const sock = unixDgram.createSocket("unix_dgram", (buf) => {
    got.push(new Map(parseJournalDatagram(buf)));
    wake();
  });
  sock.bind(path);
  const next = (n: number) =>
    new Promise<Map<string, string>[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${got.length} of ${n} datagrams arrived`)), 10_000);
      const look = () => {
        if (got.length < n) return;
        clearTimeout(timer);
        resolve(got.slice(0, n));
      };
      wake = look;
      look();
    });
  return { path, next, close: () => sock.close() };
}

/** A temp file as stdout, named by JOURNAL_STREAM the way systemd names the journal stream. */
function journalStdout(dir: string) {
  const file = join(dir, "stdout.log");
  const fd = openSync(file, "w");
  const st = fstatSync(fd, { bigint: true });
  return {
    fd,
    env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    lines: () => readFileSync(file, "utf8").split("\n").filter(Boolean),
    close: () => closeSync(fd),
  };
}

const dirs: { close(): void }[] = [];
after(() => {
  for (const d of dirs) d.close();
});

test("records go to the journal socket with MESSAGE, PRIORITY, CREDD_CREDENTIAL; secrets redacted; stdout stays empty", async () => {
  const dir = makeTempDir("credd-int-journal-");
  const j = journalSocket(dir);
  const out = journalStdout(dir);
  dirs.push(j, out);
  const log = createLogger({ fd: out.fd, env: out.env, journalSocket: j.path, level: "debug" });
  log.info({ credential: "fleet-prod", event: "renewal-sent" }, "renewal: CSR emailed");
  log.error({ err: "SMTP refused" }, "outbox: cannot send");
  log.warn({ credential: "fleet-prod" }, "first line\nsecond line");
  log.info({ credential: "fleet-prod", password: "hunter2", tls: { passphrase: "s3cret-pass" } }, "imap login");
  log.debug("tick");
  const [a, b, c, d, e] = await j.next(5);

  assert.equal(a!.get("CREDD_CREDENTIAL"), "fleet-prod");
  assert.equal(a!.get("CREDD_EVENT"), "renewal-sent");
  assert.equal(a!.get("PRIORITY"), "6");
  assert.equal(a!.get("SYSLOG_IDENTIFIER"), "credd");
  const ja = JSON.parse(a!.get("MESSAGE")!);
  assert.equal(ja.msg, "renewal: CSR emailed");
  assert.equal(ja.credential, "fleet-prod");

  assert.equal(b!.get("PRIORITY"), "3");
  assert.equal(b!.has("CREDD_CREDENTIAL"), false, "no credential on the record, no field");
  assert.equal(b!.has("CREDD_EVENT"), false);
  assert.equal(JSON.parse(b!.get("MESSAGE")!).err, "SMTP refused");

  assert.equal(c!.get("PRIORITY"), "4");
  assert.equal(JSON.parse(c!.get("MESSAGE")!).msg, "first line\nsecond line", "a multi-line msg arrives whole, in one record");

  const raw = [...d!.values()].join("\n");
  assert.doesNotMatch(raw, /hunter2|s3cret-pass/);
  const jd = JSON.parse(d!.get("MESSAGE")!);
  assert.equal(jd.password, "[redacted]");
  assert.equal(jd.tls.passphrase, "[redacted]");

  assert.equal(e!.get("PRIORITY"), "7");
  assert.deepEqual(out.lines(), [], "each record went to the journal only");
});

test("no journal socket at the path: stdout lines with the <N> prefix, as before", () => {
  const dir = makeTempDir("credd-int-journal-");
  const out = journalStdout(dir);
  dirs.push(out);
  const log = createLogger({ fd: out.fd, env: out.env, journalSocket: join(dir, "absent.sock") });
  log.info({ credential: "fleet-prod" }, "check done");
  log.error({ credential: "fleet-prod", token: "tok-123" }, "token refused");
  const lines = out.lines();
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^<6>\{"level":30,.*"credential":"fleet-prod"/);
  assert.match(lines[1]!, /^<3>\{"level":50,/);
  assert.doesNotMatch(lines[1]!, /tok-123/);
});

test("the socket goes away, or a record is too big for a datagram: that record goes to stdout, none is lost", async () => {
  const dir = makeTempDir("credd-int-journal-");
  const j = journalSocket(dir);
  const out = journalStdout(dir);
  dirs.push(out);
  const log = createLogger({ fd: out.fd, env: out.env, journalSocket: j.path });
  log.info({ credential: "fleet-prod" }, "before");
  const big = "x".repeat(4 * 1024 * 1024);
  log.info({ credential: "fleet-prod", blob: big }, "too big");
  const [first] = await j.next(1);
  assert.equal(JSON.parse(first!.get("MESSAGE")!).msg, "before");
  j.close(); // journald stops: the bound path stays, nobody reads it
  log.warn({ credential: "fleet-prod" }, "after");
  const lines = out.lines();
  assert.equal(lines.length, 2, lines.map((l) => l.slice(0, 80)).join("\n"));
  assert.match(lines[0]!, /^<6>\{"level":30,.*"msg":"too big"/);
  assert.ok(lines[0]!.includes(big));
  assert.match(lines[1]!, /^<4>\{"level":40,.*"msg":"after"/);
});

test("a stdout that is not the journal stream (JOURNAL_STREAM inherited): plain JSON lines, no datagrams", () => {
  const dir = makeTempDir("credd-int-journal-");
  const j = journalSocket(dir);
  const out = journalStdout(dir);
  dirs.push(j, out);
  const log = createLogger({ fd: out.fd, env: { JOURNAL_STREAM: "1:1" }, journalSocket: j.path });
  log.info({ credential: "fleet-prod" }, "check done");
  assert.match(out.lines()[0]!, /^\{"level":30,/);
});

test("one-shot commands (stream stderr) keep their prefixed lines even beside a journal socket", () => {
  const dir = makeTempDir("credd-int-journal-");
  const j = journalSocket(dir);
  const out = journalStdout(dir);
  dirs.push(j, out);
  const log = createLogger({ stream: "stderr", fd: out.fd, env: out.env, journalSocket: j.path });
  log.warn({ credential: "fleet-prod" }, "renewal refused");
  assert.match(out.lines()[0]!, /^<4>\{"level":40,/);
});
