// credd as a systemd service: the unit passes systemd-analyze (verify, security ≤ 2.0), the real
// binary speaks the notify protocol over a unix datagram socket, SIGHUP reloads (or refuses) the
// config, SIGTERM lets an in-flight email finish, journald priorities, status by another user,
// and scripts/install.sh into a DESTDIR.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { pino } from "pino";
import { SMTPServer } from "smtp-server";
import { parseConfig } from "../../src/config/load.js";
import { createNotifier, notifyEnvFrom, statusSummary } from "../../src/daemon/notify.js";
import { CreddError } from "../../src/errors.js";
import { createLogger, syslogPriority } from "../../src/log.js";
import { CREDD_BIN, configFor, dnFor, runCredd, startCreddDaemon } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp.js";
import { makeServerTls } from "../helpers/tls.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const UNIT = join(ROOT, "systemd/credd.service");

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

let smtp: TestSmtpServer;
let ca: TestCa;
before(async () => {
  smtp = await startSmtpServer();
  ca = makeCa(makeTempDir("credd-e2e-systemd-ca-"));
});
after(async () => {
  await smtp.stop();
});

type Line = Record<string, unknown>;
const isCheckDone = (l: Line) => l.msg === "check done";

/** A copy of the unit whose ExecStart runs this node and this checkout's build (verify wants the binary to exist). */
function unitCopy(): string {
  const dir = makeTempDir("credd-unit-");
  const text = readFileSync(UNIT, "utf8");
  const exec = /^ExecStart=\/usr\/bin\/node --no-opt \/usr\/lib\/credd\/dist\/main\.js /m;
  assert.match(text, exec, "ExecStart runs /usr/bin/node --no-opt /usr/lib/credd/dist/main.js");
  const file = join(dir, "credd.service");
  writeFileSync(file, text.replace(exec, `ExecStart=${process.execPath} --no-opt ${CREDD_BIN} `));
  return file;
}

describe("the unit file", () => {
  test("has the settings the service relies on", () => {
    const text = readFileSync(UNIT, "utf8");
    for (const line of [
      "Type=notify",
      "ExecStart=/usr/bin/node --no-opt /usr/lib/credd/dist/main.js --config /etc/credd/credd.yaml run",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "Restart=on-failure",
      "Wants=network-online.target",
      "After=network-online.target",
      "User=credd",
      "Group=credd",
      "UMask=0027",
      "StateDirectory=credd",
      "RuntimeDirectory=credd",
      "ConfigurationDirectory=credd",
      "LoadCredential=smtp:credd-smtp",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
      "SystemCallFilter=@system-service",
      "CapabilityBoundingSet=",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}`);
    }
    assert.ok(!/^MemoryDenyWriteExecute=yes/m.test(text), "Node's JIT needs W+X memory");
  });

  test("systemd-analyze verify accepts it", (t) => {
    if (!have("systemd-analyze")) return t.skip("systemd-analyze is not installed");
    const r = spawnSync("systemd-analyze", ["verify", unitCopy()], { encoding: "utf8" });
    // Complaints about other units of the host are not ours; none may name credd.
    const ours = `${r.stdout}${r.stderr}`.split("\n").filter((l) => /credd/.test(l));
    assert.deepEqual(ours, [], `${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  test("systemd-analyze security rates its exposure 2.0 or lower", (t) => {
    if (!have("systemd-analyze")) return t.skip("systemd-analyze is not installed");
    // --threshold is on the internal 0..100 scale: 20 = an exposure of 2.0; above it, exit non-zero.
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--threshold=20", "--no-pager", unitCopy()], { encoding: "utf8" });
    const out = `${r.stdout}${r.stderr}`;
    const m = /Overall exposure level for credd\.service: (\d+\.\d+)/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} > 2.0\n${out}`);
    assert.equal(r.status, 0, out);
  });

  test("the example config is valid, its secrets coming from $CREDENTIALS_DIRECTORY", () => {
    const text = readFileSync(join(ROOT, "systemd/credd.yaml.example"), "utf8");
    const c = parseConfig(text, "/etc/credd/credd.yaml", { CREDENTIALS_DIRECTORY: "/run/credentials/credd.service" });
    assert.equal(c.smtp.password_file, "/run/credentials/credd.service/smtp");
    assert.equal(c.credentials[0]!.pkcs12_password_file, "/run/credentials/credd.service/fleet-prod-p12");
    assert.equal(c.credentials[1]!.basic_auth!.password_file, "/run/credentials/credd.service/fleet-basic");
    assert.equal(c.state_dir, "/var/lib/credd");
    assert.equal(c.runtime_dir, "/run/credd");
  });
});

/** The listening side of unix-dgram (the library credd sends with; it has no type definitions). */
interface DgramListener {
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram", onMessage: (buf: Buffer) => void): DgramListener;
};

/** A NOTIFY_SOCKET as systemd binds it: every datagram's lines, in arrival order. */
function notifySocket(dir: string) {
  const path = join(dir, "notify.sock");
  const datagrams: string[] = [];
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  const sock = unixDgram.createSocket("unix_dgram", (buf: Buffer) => {
    datagrams.push(buf.toString("utf8"));
    messages.push(...buf.toString("utf8").split("\n").filter(Boolean));
    for (const w of waiters.splice(0)) w();
  });
  sock.bind(path);
  const waitFor = (pred: (all: string[]) => boolean, what: string, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} in ${timeoutMs} ms; got:\n${messages.join("\n")}`)), timeoutMs);
      const look = () => {
        if (pred(messages)) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(look);
      };
      look();
    });
  return { path, datagrams, messages, waitFor, close: () => sock.close() };
}

/** Log lines a notifier wrote, parsed (pino JSON). */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

const refusedWith = (re: RegExp) => (err: unknown) => {
  assert.ok(err instanceof CreddError, String(err));
  assert.equal(err.code, "IO");
  assert.match(err.message, re);
  return true;
};

describe("notify and journald helpers", () => {
  test("notifyEnvFrom reads and removes NOTIFY_SOCKET/WATCHDOG_*; WATCHDOG_PID for another process disables the watchdog", () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: "/run/systemd/notify", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42", KEEP: "1" };
    assert.deepEqual(notifyEnvFrom(env, 42), { socket: "/run/systemd/notify", watchdogUsec: 30_000_000 });
    assert.deepEqual(env, { KEEP: "1" }, "children (deploy hooks) do not inherit them");
    assert.deepEqual(notifyEnvFrom({ NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 42), { socket: "@x" });
    assert.deepEqual(notifyEnvFrom({}, 42), {});
  });

  test("a notifier on a socket path sends READY=1 with a one-line STATUS=, then STOPPING=1, one datagram each", async () => {
    const n = notifySocket(makeTempDir("credd-notify-"));
    const notifier = createNotifier({ socket: n.path }, createLogger({ level: "silent" }));
    try {
      notifier.ready("1 credential,\nfirst check running");
      await notifier.stopping();
      await n.waitFor((m) => m.includes("STOPPING=1"), "STOPPING=1");
      assert.deepEqual(n.datagrams, ["READY=1\nSTATUS=1 credential, first check running", "STOPPING=1"]);
    } finally {
      notifier.close();
      n.close();
    }
  });

  test("NOTIFY_SOCKET set but unusable: refused at once with the socket and the reason, not a warning", () => {
    const dir = makeTempDir("credd-notify-bad-");
    const log = createLogger({ level: "silent" });
    assert.throws(
      () => createNotifier({ socket: join(dir, "absent.sock") }, log),
      refusedWith(/cannot reach systemd's notify socket \(NOTIFY_SOCKET=.*absent\.sock\): ENOENT/),
    );
    const plain = join(dir, "plain-file");
    writeFileSync(plain, "");
    assert.throws(() => createNotifier({ socket: plain }, log), refusedWith(/plain-file\): ECONNREFUSED/));
    // unix-dgram copies the address with strncpy: a leading NUL (the abstract namespace) cannot be given.
    assert.throws(
      () => createNotifier({ socket: "@credd-notify" }, log),
      refusedWith(/NOTIFY_SOCKET=@credd-notify is an abstract socket.*unix-dgram.*give a socket path/),
    );
    assert.throws(() => createNotifier({ socket: `/run/${"x".repeat(110)}` }, log), refusedWith(/longer than the 107 bytes/));
    const broken = () => {
      throw new Error("Could not locate the bindings file");
    };
    assert.throws(
      () => createNotifier({ socket: "/run/systemd/notify" }, log, broken),
      refusedWith(/unix-dgram addon does not load \(Could not locate the bindings file\): rebuild it/),
    );
  });

  test("while systemd does not read its queue, datagrams wait and then go out in order", {
    skip: have("python3") ? false : "python3 absent (a receiver that pauses)",
  }, async () => {
    // A receiver that stops reading, as a busy systemd does: past the kernel's max_dgram_qlen
    // (10 by default) unix-dgram reports congestion, and the notifier must hold the rest.
    const dir = makeTempDir("credd-notify-slow-");
    const path = join(dir, "slow.sock");
    const py = spawn(
      "python3",
      [
        "-c",
        [
          "import socket, sys",
          "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
          "s.bind(sys.argv[1])",
          "print('bound', flush=True)",
          "sys.stdin.readline()",
          "s.settimeout(2)",
          "try:",
          "    while True: print(s.recv(4096).decode(), flush=True)",
          "except socket.timeout: pass",
        ].join("\n"),
        path,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    let out = "";
    py.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => py.on("exit", () => r()));
    try {
      while (!out.includes("bound")) await new Promise((r) => setTimeout(r, 20));
      const { lines, log } = captureLog();
      const notifier = createNotifier({ socket: path }, log);
      const sent = Array.from({ length: 40 }, (_, i) => `STATUS=line ${i}`);
      for (const line of sent) notifier.status(line.slice("STATUS=".length));
      const stopped = notifier.stopping();
      py.stdin.end("go\n");
      await stopped;
      await exited;
      notifier.close();
      const got = out.split("\n").filter((l) => l.startsWith("STATUS=") || l === "STOPPING=1");
      assert.deepEqual(got, [...sent, "STOPPING=1"]);
      assert.deepEqual(
        lines.filter((l) => l.level === 50),
        [],
        "no datagram was lost or reported lost",
      );
    } finally {
      if (py.exitCode === null) py.kill("SIGKILL");
    }
  });

  test("statusSummary and syslog priorities", () => {
    const v = { status: "warning", outbox: { queued: 1 }, credentials: [{ renewal: {} }, { renewal: null }, { renewal: null }] };
    assert.equal(statusSummary(v, new Date(2026, 10, 25, 10, 40)), "3 credentials, 1 renewal pending, 1 email queued, next check 10:40 (warning)");
    assert.equal(statusSummary({ status: "ok", outbox: { queued: 0 }, credentials: [{ renewal: null }] }, null), "1 credential, 0 renewals pending");
    assert.deepEqual([60, 50, 40, 30, 20, 10].map(syslogPriority), [3, 3, 4, 6, 7, 7]);
  });
});

describe("credd run under systemd", () => {
  test("notify protocol: READY=1, STATUS=, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1, exit 0; metrics written", { timeout: 60_000 }, async () => {
    const dir = makeTempDir("credd-e2e-notify-");
    const metrics = join(dir, "credd.prom");
    const config = configFor(dir, smtp.port, smtp.caPath, { top: `metrics_file: ${metrics}` });
    const n = notifySocket(dir);
    let d: ReturnType<typeof startCreddDaemon> | undefined;
    try {
      d = startCreddDaemon(["--config", config, "run"], {
        NOTIFY_SOCKET: n.path,
        WATCHDOG_USEC: "400000",
        // Inherited from some unit, but stdout is not that stream: no <N> prefix.
        JOURNAL_STREAM: "1:1",
      });
      await n.waitFor((m) => m.includes("READY=1"), "READY=1");
      await n.waitFor((m) => m.some((l) => /^STATUS=2 credentials, 0 renewals pending, next check \d\d:\d\d/.test(l)), "STATUS= after the check");
      await d.waitForLog(isCheckDone);
      const started = Date.now();
      await n.waitFor((m) => m.filter((l) => l === "WATCHDOG=1").length >= 3, "WATCHDOG=1 pings");
      // Every 200 ms: three pings (one at start) come within well under WATCHDOG_USEC each.
      assert.ok(Date.now() - started < 2_000);
      assert.ok(n.messages.indexOf("READY=1") >= 0);

      const prom = readFileSync(metrics, "utf8");
      assert.match(prom, /^credd_last_check_timestamp_seconds \d+(\.\d+)?$/m);
      assert.match(prom, /^credd_credential_status\{credential="fleet-prod"\} 1$/m, "no certificate yet: warning");
      assert.equal(statSync(metrics).mode & 0o777, 0o644, "node_exporter runs as another user");

      d.child.kill("SIGTERM");
      await n.waitFor((m) => m.includes("STOPPING=1"), "STOPPING=1");
      assert.equal(await d.exited, 0);
      assert.ok(!d.lines.some((l) => "raw" in l), "plain JSON lines when stdout is not the journal");
      assert.ok(n.messages.indexOf("READY=1") < n.messages.indexOf("STOPPING=1"));
    } finally {
      if (d && d.child.exitCode === null) d.child.kill("SIGKILL");
      n.close();
    }
  });

  test("NOTIFY_SOCKET set but unreachable: `credd run` exits 1 at once, naming the socket, instead of running unheard", {
    timeout: 60_000,
  }, async () => {
    const dir = makeTempDir("credd-e2e-notify-gone-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const socket = join(dir, "gone.sock");
    const r = await runCredd(["--config", config, "run"], { NOTIFY_SOCKET: socket }, 30_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`credd: cannot reach systemd's notify socket \\(NOTIFY_SOCKET=${socket.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\): ENOENT`),
    );
    assert.doesNotMatch(r.stdout, /credd started/, "the daemon never started");
  });

  test("SIGHUP: a valid config takes effect (credential added, schedule changed); an invalid one is refused and the old kept", {
    timeout: 90_000,
  }, async (t) => {
    const dir = makeTempDir("credd-e2e-reload-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const original = readFileSync(config, "utf8");
    const withNew = `${original.trimEnd()}
  - name: fleet-new
    mzp: MZP111222
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;
    const d = startCreddDaemon(["--config", config, "run"]);
    t.after(() => {
      if (d.child.exitCode === null) d.child.kill("SIGKILL");
    });
    await d.waitForLog(isCheckDone);

    writeFileSync(config, withNew);
    let mark = d.lines.length;
    d.child.kill("SIGHUP");
    const reloaded = await d.waitForLog((l) => l.msg === "config reloaded", 20_000, mark);
    assert.deepEqual(reloaded.added, ["fleet-new"]);
    assert.deepEqual(reloaded.removed, []);
    assert.equal(reloaded.credentials, 3);
    await d.waitForLog(isCheckDone, 20_000, d.lines.indexOf(reloaded));
    const s = JSON.parse((await runCredd(["--config", config, "status", "--json"])).stdout);
    const added = s.credentials.find((c: { name: string }) => c.name === "fleet-new");
    assert.ok(added, "status lists the new credential");
    assert.ok(added.last_check_at, "and the daemon has checked it, so the reload took effect");

    // Broken: fleet-new removed and an invalid schedule. Refused as a whole, logged at error level.
    writeFileSync(config, original.replace('check_schedule: "*/10 * * * *"', 'check_schedule: "every ten minutes"'));
    mark = d.lines.length;
    d.child.kill("SIGHUP");
    const refused = await d.waitForLog((l) => l.msg === "config reload refused: the running config is kept", 20_000, mark);
    assert.equal(refused.level, 50);
    assert.match(String(refused.err), /check_schedule/);
    assert.match(String(refused.err), new RegExp(config.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.match(String(refused.err), /fix:/);
    assert.equal(d.child.exitCode, null, "still running");

    // Fixed, with the three credentials and a new schedule: nothing added or removed compared to
    // the running config, which shows the refused file changed nothing.
    writeFileSync(config, withNew.replace('check_schedule: "*/10 * * * *"', 'check_schedule: "*/5 * * * *"'));
    mark = d.lines.length;
    d.child.kill("SIGHUP");
    const again = await d.waitForLog((l) => l.msg === "config reloaded", 20_000, mark);
    assert.deepEqual(again.added, []);
    assert.deepEqual(again.removed, []);
    assert.equal(again.schedule, "*/5 * * * *");
    assert.equal(await d.stop(), 0);
  });

  test("SIGTERM while an email is on its way to a slow SMTP server: it completes once, then exit 0", { timeout: 60_000 }, async (t) => {
    const tls = makeServerTls();
    let dataStarted!: () => void;
    const started = new Promise<void>((r) => (dataStarted = r));
    const arrived: string[] = [];
    const slow = new SMTPServer({
      key: tls.keyPem,
      cert: tls.certPem,
      authOptional: true,
      disabledCommands: ["AUTH"],
      logger: false,
      onData(stream, _session, cb) {
        dataStarted();
        let raw = "";
        stream.on("data", (c: Buffer) => (raw += c.toString()));
        stream.on("end", () =>
          setTimeout(() => {
            arrived.push(raw);
            cb(null, "OK: queued");
          }, 1_500),
        );
      },
    });
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
    const port = (slow.server.address() as { port: number }).port;
    try {
      const dir = makeTempDir("credd-e2e-sigterm-");
      const config = configFor(dir, port, tls.caPath, { prodExtra: "renew_before_days: 30" });
      const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 20 });
      const imp = await runCredd(["--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath]);
      assert.equal(imp.code, 0, imp.stderr);

      const d = startCreddDaemon(["--config", config, "run"]);
      t.after(() => {
        if (d.child.exitCode === null) d.child.kill("SIGKILL");
      });
      await started; // the CSR email is being transmitted; the server answers 1.5 s later
      const t0 = Date.now();
      d.child.kill("SIGTERM");
      assert.equal(await d.exited, 0, d.stderr());
      const took = Date.now() - t0;
      assert.ok(took < 10_000, `stopped in ${took} ms`);
      assert.ok(took >= 500, `waited for the server's answer (${took} ms)`);
      assert.ok(d.lines.some((l) => l.msg === "email sent" && l.kind === "csr"));
      assert.ok(d.lines.some((l) => l.msg === "stopped"));

      // The CSR email is marked sent (so it will not go twice) and arrived exactly once. Other
      // emails queued by the same check (alerts) may wait for the next start: queued, not lost.
      const db = new Database(join(dir, "state/credd.db"), { readonly: true });
      const csr = db.prepare("SELECT message_id, sent_at FROM outbox WHERE kind = 'csr'").all() as { message_id: string; sent_at: string | null }[];
      const all = db.prepare("SELECT count(*) AS total, count(sent_at) AS sent FROM outbox").get() as { total: number; sent: number };
      db.close();
      assert.equal(csr.length, 1);
      assert.ok(csr[0]!.sent_at, "the CSR email is recorded as sent");
      assert.equal(arrived.filter((raw) => raw.includes(csr[0]!.message_id)).length, 1, "and arrived once");
      assert.equal(arrived.length, all.sent, "every email marked sent arrived; the others are still queued");
      const s = JSON.parse((await runCredd(["--config", config, "status", "--json"])).stdout);
      assert.equal(s.credentials[0].renewal.state, "sent");
    } finally {
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  // With journald's socket on this machine the records go there instead (test/integration/journal.test.ts).
  const journald = existsSync("/run/systemd/journal/socket") && "journald's socket exists: records go to the journal, not stdout";
  test("JOURNAL_STREAM naming stdout, no journal socket: each line carries its syslog priority (<6> info, <3> error)", {
    timeout: 60_000,
    skip: journald,
  }, async () => {
    const dir = makeTempDir("credd-e2e-journal-");
    const config = configFor(dir, smtp.port, smtp.caPath);
    const outPath = join(dir, "stdout.log");
    const fd = openSync(outPath, "w");
    const st = fstatSync(fd, { bigint: true });
    const child = spawn(process.execPath, [CREDD_BIN, "--config", config, "run"], {
      stdio: ["ignore", fd, "pipe"],
      env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    });
    closeSync(fd);
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    const lines = () => readFileSync(outPath, "utf8").split("\n").filter(Boolean);
    const waitLine = async (pred: (l: string) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const hit = lines().find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no such line:\n${lines().join("\n")}`);
    };
    try {
      const done = await waitLine((l) => l.includes('"msg":"check done"'));
      assert.match(done, /^<6>\{"level":30,/);
      writeFileSync(config, readFileSync(config, "utf8").replace("credentials:", "credentialz:"));
      child.kill("SIGHUP");
      const refused = await waitLine((l) => l.includes("config reload refused"));
      assert.match(refused, /^<3>\{"level":50,/);
      assert.match(JSON.parse(refused.slice(3)).err, /credentialz/);
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      for (const l of lines()) assert.match(l, /^<[3467]>\{"level":\d+,/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  test("status by another user who may read the state but not write its folder (daemon stopped)", { timeout: 60_000 }, async (t) => {
    const dir = makeTempDir("credd-e2e-readonly-");
    chmodSync(dir, 0o755);
    const config = configFor(dir, smtp.port, smtp.caPath);
    const far = makeKeyAndCert(dir, dnFor("MZP128745"), { ca, days: 365 });
    // As systemd would: state_dir 0750 (StateDirectoryMode=), credd under UMask=0027.
    mkdirSync(join(dir, "state"), { recursive: true, mode: 0o750 });
    chmodSync(join(dir, "state"), 0o750);
    const umask = (args: string) => `umask 0027; exec "${process.execPath}" "${CREDD_BIN}" --config "${config}" ${args}`;
    const imp = spawnSync("sh", ["-c", umask(`import fleet-prod --cert "${far.certPath}" --key "${far.keyPath}"`)], { encoding: "utf8" });
    assert.equal(imp.status, 0, imp.stderr);
    const d = spawn("sh", ["-c", umask("run")], { stdio: ["ignore", "pipe", "pipe"] });
    t.after(() => {
      if (d.exitCode === null) d.kill("SIGKILL");
    });
    let out = "";
    d.stdout.on("data", (b: Buffer) => (out += b.toString()));
    for (let i = 0; i < 200 && !out.includes('"msg":"check done"'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /"msg":"check done"/);
    d.kill("SIGTERM");
    assert.equal(await new Promise((r) => d.on("close", r)), 0);

    const state = join(dir, "state");
    const mode = (p: string) => statSync(p).mode & 0o777;
    const live = join(state, "credentials/fleet-prod/live");
    assert.equal(mode(join(state, "credentials")), 0o750, "group may traverse to live/");
    assert.equal(mode(join(state, "credentials/fleet-prod")), 0o750);
    assert.equal(mode(live), 0o750);
    assert.equal(mode(join(live, "cert.pem")), 0o640, "0644 under UMask=0027: group-readable, not world");
    assert.equal(mode(join(live, "fullchain.pem")), 0o640);
    assert.equal(mode(join(live, "key.pem")), 0o600, "the key stays credd's");
    assert.equal(mode(join(state, "credentials/fleet-prod/archive")), 0o700);
    assert.ok(!existsSync(join(state, "credd.db-wal")), "a clean stop leaves no -wal file");

    // A copy of that state whose folder nobody may write (0555), read by another user in its group.
    const copy = join(dir, "copy");
    cpSync(state, copy, { recursive: true });
    chmodSync(copy, 0o555);
    const copyConfig = join(dir, "copy.yaml");
    writeFileSync(copyConfig, readFileSync(config, "utf8").replace(`state_dir: ${state}`, `state_dir: ${copy}`), { mode: 0o640 });
    const root = process.getuid?.() === 0;
    if (root) {
      // The files are root:root with group bits: uid nobody with gid 0 is "someone in the group".
      try {
        execFileSync(process.execPath, ["-e", "0"], { uid: 65534, gid: 0 });
      } catch {
        return t.skip("cannot run a process as uid 65534 here");
      }
    }
    const r = spawnSync(process.execPath, [CREDD_BIN, "--config", copyConfig, "status", "--json"], {
      encoding: "utf8",
      ...(root ? { uid: 65534, gid: 0 } : {}),
    });
    const j = JSON.parse(r.stdout);
    assert.notEqual(j.status, "unknown", r.stdout + r.stderr);
    assert.equal(j.credentials[0].name, "fleet-prod");
    assert.equal(j.credentials[0].certificate.days_left >= 364, true);
    assert.ok(j.daemon.last_check_at);
    assert.equal(r.status, j.exit_code);
    assert.deepEqual(
      readdirSync(copy).filter((f) => f.startsWith("credd.db-")),
      [],
      "nothing written beside the database",
    );
  });
});

describe("scripts/install.sh", () => {
  // npm prune can rebuild better-sqlite3 (70 s on 2 busy cores) when node_modules is not exactly the lock's.
  test("installs into a DESTDIR: the unit, the wrapper, /opt/credd with production node_modules; runs twice", { timeout: 400_000 }, () => {
    const dest = makeTempDir("credd-install-");
    const run = () =>
      execFileSync("bash", [join(ROOT, "scripts/install.sh"), "--no-build"], {
        env: { ...process.env, DESTDIR: dest },
        encoding: "utf8",
        timeout: 180_000,
      });
    const out = run();
    assert.match(out, /DESTDIR set: skipped/);
    const app = join(dest, "opt/credd");
    for (const f of ["dist/main.js", "migrations", "package.json", "node_modules/better-sqlite3", "node_modules/pino"]) {
      assert.ok(existsSync(join(app, f)), f);
    }
    for (const dev of ["typescript", "tsx", "smtp-server", "@types/node"])
      assert.ok(!existsSync(join(app, "node_modules", dev)), `dev dependency ${dev} pruned`);

    const unit = readFileSync(join(dest, "etc/systemd/system/credd.service"), "utf8");
    const node = execFileSync("sh", ["-c", 'readlink -f "$(command -v node)"'], { encoding: "utf8" }).trim();
    assert.match(unit, new RegExp(`^ExecStart=${node} --no-opt /opt/credd/dist/main.js --config /etc/credd/credd.yaml run$`, "m"));
    const wrapper = join(dest, "usr/local/bin/credd");
    assert.equal(statSync(wrapper).mode & 0o777, 0o755);
    assert.match(readFileSync(wrapper, "utf8"), new RegExp(`^exec ${node} /opt/credd/dist/main.js "\\$@"$`, "m"));
    assert.ok(existsSync(join(dest, "etc/credd/credd.yaml.example")));
    assert.equal(statSync(join(dest, "etc/credstore")).mode & 0o777, 0o700);
    // The manual pages and the bash completion, from the build (dist/man, dist/completion).
    for (const f of ["man/man1/credd.1", "man/man5/credd.yaml.5", "bash-completion/completions/credd"]) {
      assert.equal(statSync(join(dest, "usr/local/share", f)).mode & 0o777, 0o644, f);
    }
    assert.equal(readFileSync(join(dest, "usr/local/share/man/man1/credd.1"), "utf8"), readFileSync(join(ROOT, "dist/man/credd.1"), "utf8"));

    // The installed copy runs on its own production node_modules.
    const help = execFileSync(process.execPath, [join(app, "dist/main.js"), "--help"], { encoding: "utf8" });
    assert.match(help, /usage: credd/);
    const ver = execFileSync(process.execPath, [join(app, "dist/main.js"), "--version"], { encoding: "utf8" });
    assert.match(ver, /^credd \d+\.\d+\.\d+/);
    const dbCheck = execFileSync(
      process.execPath,
      [
        "-e",
        "const D=require(process.argv[1]); new D(':memory:').prepare('select 1').get(); console.log('ok')",
        join(app, "node_modules/better-sqlite3"),
      ],
      { encoding: "utf8" },
    );
    assert.equal(dbCheck.trim(), "ok", "the native module came along");

    // Idempotent: a second run replaces the tree and leaves no staging folders behind.
    run();
    assert.ok(existsSync(join(app, "dist/main.js")));
    assert.deepEqual(readdirSync(join(dest, "opt")), ["credd"]);
    // The user and the state folder come from the Debian package's own sysusers.d/tmpfiles.d files.
    assert.equal(readFileSync(join(dest, "etc/sysusers.d/credd.conf"), "utf8"), readFileSync(join(ROOT, "packaging/deb/sysusers.conf"), "utf8"));
    assert.equal(readFileSync(join(dest, "etc/tmpfiles.d/credd.conf"), "utf8"), readFileSync(join(ROOT, "packaging/deb/tmpfiles.conf"), "utf8"));
    // The proxy's socket template, as shipped (docs/proxy.md, "Socket activation").
    assert.equal(
      readFileSync(join(dest, "etc/systemd/system/credd-proxy@.socket"), "utf8"),
      readFileSync(join(ROOT, "systemd/credd-proxy@.socket"), "utf8"),
    );
  });

  test("a failure halfway names what was already written, and its undo commands remove exactly that", { timeout: 400_000 }, () => {
    const dest = makeTempDir("credd-install-fail-");
    // /etc/credd is a file, so `install -d /etc/credd` fails after the tree, the command and the unit are written.
    mkdirSync(join(dest, "etc"));
    writeFileSync(join(dest, "etc/credd"), "in the way\n");
    const r = spawnSync("bash", [join(ROOT, "scripts/install.sh"), "--no-build"], {
      env: { ...process.env, DESTDIR: dest },
      encoding: "utf8",
      timeout: 180_000,
    });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /install\.sh: failed \(exit 1\) at line \d+: install -d -m 0755 "\$DESTDIR\$CONF"/);
    const written = [
      "opt/credd",
      "usr/local/bin/credd",
      "usr/local/share/man/man1/credd.1",
      "usr/local/share/man/man5/credd.yaml.5",
      "usr/local/share/bash-completion/completions/credd",
      "etc/systemd/system/credd.service",
      "etc/systemd/system/credd-proxy@.socket",
      "etc/sysusers.d/credd.conf",
      "etc/tmpfiles.d/credd.conf",
    ].map((p) => join(dest, p));
    const listed = r.stderr.split("before failing it had written:\n")[1]?.split("\ninstall.sh:")[0] ?? "";
    assert.deepEqual(
      listed.split("\n").map((l) => l.trim()),
      written,
      r.stderr,
    );
    for (const p of written) assert.ok(existsSync(p), p);
    const undo =
      r.stderr
        .split("or undo this run with:\n")[1]
        ?.trim()
        .split("\n")
        .map((l) => l.trim()) ?? [];
    assert.equal(undo.length, written.length, r.stderr);
    execFileSync("sh", ["-ec", undo.join("\n")]);
    for (const p of written) assert.ok(!existsSync(p), `${p} removed by the undo commands`);
    assert.equal(readFileSync(join(dest, "etc/credd"), "utf8"), "in the way\n", "what was there before is untouched");
  });
});
