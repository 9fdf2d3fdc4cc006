// The built binary with broken config references: `check-config` exits 0/2 and creates nothing,
// `run` refuses to start, a SIGHUP with the same mistake keeps the running config; and, as an
// unprivileged user (root reads and writes anything), unreadable files and unwritable folders.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CREDD_BIN, configFor, runCredd, startCreddDaemon, SUBJECT_YAML, type RunResult } from "../helpers/credd.js";
import { makeCa, makeTempDir, type TestCa } from "../helpers/openssl.js";

let ca: TestCa;
const dirs: string[] = [];
before(() => {
  const d = makeTempDir("credd-e2e-refs-ca-");
  dirs.push(d);
  ca = makeCa(d);
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A world every user may walk through: the folder 0755, the config and CA files 0644. */
function world(): { dir: string; config: string } {
  const dir = makeTempDir("credd-e2e-refs-");
  dirs.push(dir);
  chmodSync(dir, 0o755);
  for (const f of ["smtp.pass", "mzp.pass", "p12.pass"]) writeFileSync(join(dir, f), `${f}-secret\n`, { mode: 0o644 });
  writeFileSync(join(dir, "reload-app"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  cpSync(ca.certPath, join(dir, "smtp-ca.pem"));
  cpSync(ca.certPath, join(dir, "stellantis-ca.pem"));
  for (const f of ["smtp-ca.pem", "stellantis-ca.pem"]) chmodSync(join(dir, f), 0o644);
  mkdirSync(join(dir, "metrics"), { mode: 0o755 });
  const config = join(dir, "credd.yaml");
  writeFileSync(
    config,
    [
      `state_dir: ${dir}/state`, // 1
      `runtime_dir: ${dir}/run`, // 2
      `inbox_dir: ${dir}/inbox`, // 3
      `metrics_file: ${dir}/metrics/credd.prom`, // 4
      "smtp:", // 5
      "  url: smtp://127.0.0.1:9", // 6
      "  from: credd@partner.example", // 7
      "  user: credd", // 8
      `  password_file: ${dir}/smtp.pass`, // 9
      `  ca_file: ${dir}/smtp-ca.pem`, // 10
      "alerts: { to: [ops@partner.example] }", // 11
      "stellantis:", // 12
      "  contact: connectedcar@stellantis.example", // 13
      `  ca_file: ${dir}/stellantis-ca.pem`, // 14
      "credentials:", // 15
      "  - name: fleet-prod", // 16
      "    mzp: MZP128745", // 17
      `    subject: ${SUBJECT_YAML}`, // 18
      `    basic_auth: { user: MZP128745, password_file: ${dir}/mzp.pass }`, // 19
      `    pkcs12_password_file: ${dir}/p12.pass`, // 20
      `    deploy_hooks: [["${dir}/reload-app"]]`, // 21
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  return { dir, config };
}

/** Runs the built credd as uid/gid 65534 (setuid through spawn: supplementary groups are dropped). */
function runAsNobody(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CREDD_BIN, ...args], { uid: 65534, gid: 65534, stdio: "pipe", env: { ...process.env, HOME: "/" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Why the unprivileged tests cannot run here, or undefined when they can. */
function cannotDropPrivileges(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root: cannot run credd as another user";
  const r = spawnSync(process.execPath, ["-e", "require('fs').accessSync(process.argv[1])", CREDD_BIN], { uid: 65534, gid: 65534 });
  return r.status === 0 ? undefined : `uid 65534 cannot run ${CREDD_BIN} here (is the checkout readable by everyone?)`;
}

/** The problem lines credd printed (drops its "credd: " prefix and the check-config summary). */
function lines(r: RunResult): string[] {
  return r.stderr
    .trim()
    .split("\n")
    .map((l) => l.replace(/^credd: /, ""))
    .filter((l) => !l.startsWith("credd check-config: "));
}

const C = "credentials[fleet-prod]";
const ME = `user ${userInfo().username} (uid ${process.getuid!()})`;
const meRe = ME.replace(/[()]/g, "\\$&");

describe("credd check-config", () => {
  test("a good config: exit 0, one ok line per reference, and nothing created", async () => {
    const w = world();
    const r = await runCredd(["--config", w.config, "check-config"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.stdout.trim().split("\n");
    assert.equal(out.length, 11, r.stdout);
    assert.match(out[0]!, new RegExp(`^ok  state_dir +${w.dir}/state: does not exist yet; credd creates it \\(${w.dir} is writable\\)$`));
    assert.match(
      r.stdout,
      new RegExp(`ok  stellantis\\.ca_file +${w.dir}/stellantis-ca\\.pem: 1 CA certificate \\("Test Stellantis CA", valid until `),
    );
    assert.match(r.stdout, new RegExp(`ok  ${C.replace(/[[\]]/g, "\\$&")}\\.deploy_hooks\\[0\\]\\[0\\] +${w.dir}/reload-app: executable`));
    assert.equal(out[10], `${w.config}: ok (1 credential, 10 files and folders checked as ${ME})`);
    assert.ok(!r.stdout.includes("secret"), "no secret shown");
    // Read-only: no folder, no database.
    assert.deepEqual(readdirSync(w.dir).sort(), [
      "credd.yaml",
      "metrics",
      "mzp.pass",
      "p12.pass",
      "reload-app",
      "smtp-ca.pem",
      "smtp.pass",
      "stellantis-ca.pem",
    ]);
    assert.deepEqual(readdirSync(join(w.dir, "metrics")), []);
  });

  test("broken references: exit 2, one FILE:LINE: KEY: PROBLEM (fix: FIX) line each, nothing created", async () => {
    const w = world();
    rmSync(join(w.dir, "stellantis-ca.pem"));
    writeFileSync(join(w.dir, "mzp.pass"), "");
    writeFileSync(join(w.dir, "a-file"), "x");
    writeFileSync(w.config, readFileSync(w.config, "utf8").replace(`state_dir: ${w.dir}/state`, `state_dir: ${w.dir}/a-file/state`));
    const r = await runCredd(["--config", w.config, "check-config"]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.deepEqual(lines(r), [
      `${w.config}:1: state_dir: ${w.dir}/a-file/state cannot be created: ${w.dir}/a-file is a file, not a folder; credd keeps its database, keys and certificates there (fix: correct state_dir: a folder cannot be made below a file)`,
      `${w.config}:14: stellantis.ca_file: ${w.dir}/stellantis-ca.pem does not exist; it should hold the Stellantis CA certificate (PEM): every signed certificate must chain to it (fix: save the Stellantis CA certificate there as PEM (Stellantis sends it with the signed certificate), or correct stellantis.ca_file)`,
      `${w.config}:19: ${C}.basic_auth.password_file: ${w.dir}/mzp.pass is empty; it should hold the Basic-auth password for the API (fix: write the secret into it)`,
    ]);
    assert.match(r.stderr, new RegExp(`credd check-config: 3 problems in ${w.config} \\(checked as ${meRe}\\)\n$`));
    for (const d of ["state", "run", "inbox"]) assert.ok(!existsSync(join(w.dir, d)), `${d} not created`);
  });

  test("a missing config file or a YAML error: exit 2; --help: exit 0; an argument: usage, exit 2", async () => {
    const w = world();
    const missing = await runCredd(["--config", join(w.dir, "nope.yaml"), "check-config"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml: config file not found \(fix: create it, or name another file with --config FILE or \$CREDD_CONFIG\)/);
    writeFileSync(w.config, "smtp: [\n");
    const yaml = await runCredd(["--config", w.config, "check-config"]);
    assert.equal(yaml.code, 2);
    assert.match(yaml.stderr, /credd\.yaml:\d+: YAML syntax error/);
    const help = await runCredd(["check-config", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: credd check-config/);
    assert.match(help.stdout, /exit: 0 the config and everything it names is usable, 2 problems found/);
    const extra = await runCredd(["--config", w.config, "check-config", "extra"]);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /check-config takes no arguments/);
    const top = await runCredd(["--help"]);
    assert.match(top.stdout, /\n {2}check-config {17}check the config and every file and folder it names/);
  });
});

describe("credd run with a broken reference", () => {
  test("refuses to start: exit 1, the lines check-config prints, no database or folder created", async () => {
    const w = world();
    chmodSync(join(w.dir, "reload-app"), 0o644);
    rmSync(join(w.dir, "smtp-ca.pem"));
    const r = await runCredd(["--config", w.config, "run"], {}, 20_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(lines(r), [
      `${w.config}:10: smtp.ca_file: ${w.dir}/smtp-ca.pem does not exist; it should hold the CA certificate of the SMTP server (PEM): it signed the server's TLS certificate (fix: save the CA certificate of the SMTP server there as PEM (the mail server's administrator gives it), or correct smtp.ca_file)`,
      `${w.config}:21: ${C}.deploy_hooks[0][0]: ${w.dir}/reload-app is not executable by ${ME}; credd runs it after each new certificate goes live (fix: chmod +x ${w.dir}/reload-app, or correct ${C}.deploy_hooks[0][0])`,
    ]);
    assert.ok(!existsSync(join(w.dir, "state")), "state_dir not created: the database was never opened");
    const check = await runCredd(["--config", w.config, "check-config"]);
    assert.equal(check.code, 2);
    assert.deepEqual(lines(check), lines(r), "check-config and run say the same");
  });

  test("SIGHUP with the same mistake keeps the running config and logs why; the fixed file then loads", { timeout: 60_000 }, async (t) => {
    const dir = makeTempDir("credd-e2e-refs-hup-");
    dirs.push(dir);
    const config = configFor(dir, 9, ca.certPath);
    const everySecond = readFileSync(config, "utf8").replace('check_schedule: "*/10 * * * *"', 'check_schedule: "* * * * * *"');
    const withCa = everySecond.replace(
      "stellantis:\n  contact: connectedcar@stellantis.example",
      `stellantis:\n  contact: connectedcar@stellantis.example\n  ca_file: ${ca.certPath}`,
    );
    writeFileSync(config, withCa);
    const d = startCreddDaemon(["--config", config, "run"]);
    t.after(() => {
      if (d.child.exitCode === null) d.child.kill("SIGKILL");
    });
    await d.waitForLog((l) => l.msg === "check done");

    // A third credential, and stellantis.ca_file pointing at a file that is not there.
    const withNew = `${withCa.trimEnd()}\n  - name: fleet-new\n    mzp: MZP111222\n    subject: ${SUBJECT_YAML}\n`;
    const missingCa = join(dir, "stellantis-ca.pem");
    const broken = withNew.replace(`ca_file: ${ca.certPath}\ncredentials:`, `ca_file: ${missingCa}\ncredentials:`);
    writeFileSync(config, broken);
    const at = broken.split("\n").findIndex((l) => l.includes(missingCa)) + 1;
    let mark = d.lines.length;
    d.child.kill("SIGHUP");
    const refused = await d.waitForLog((l) => l.msg === "config reload refused: the running config is kept", 20_000, mark);
    assert.equal(refused.level, 50);
    const line = `${config}:${at}: stellantis.ca_file: ${missingCa} does not exist; it should hold the Stellantis CA certificate (PEM): every signed certificate must chain to it (fix: save the Stellantis CA certificate there as PEM (Stellantis sends it with the signed certificate), or correct stellantis.ca_file)`;
    assert.equal(refused.err, line);
    assert.deepEqual(refused.issues, [
      {
        key: "stellantis.ca_file",
        problem: line.slice(`${config}:${at}: stellantis.ca_file: `.length, line.indexOf(" (fix: ")),
        fix: line.slice(line.indexOf(" (fix: ") + 7, -1),
        line: at,
      },
    ]);
    // Still running, and still checking the two credentials of the old config every second.
    const later = await d.waitForLog((l) => l.msg === "check done", 10_000, d.lines.indexOf(refused));
    assert.equal(later.checked, 2, "the old config is the one in use");
    assert.equal(d.child.exitCode, null);

    // Fixed: the reload takes, and the daemon checks three credentials.
    writeFileSync(config, withNew);
    mark = d.lines.length;
    d.child.kill("SIGHUP");
    const reloaded = await d.waitForLog((l) => l.msg === "config reloaded", 20_000, mark);
    assert.deepEqual(reloaded.added, ["fleet-new"]);
    const three = await d.waitForLog((l) => l.msg === "check done" && l.checked === 3, 10_000, d.lines.indexOf(reloaded));
    assert.equal(three.failed, 0);
    assert.equal(await d.stop(), 0);
  });
});

describe("as an unprivileged user (root reads and writes anything, so modes do not bite it)", () => {
  test("unreadable password and CA files, unwritable folders, an uncreatable folder, a hook it may not run", async (t) => {
    const why = cannotDropPrivileges();
    if (why) return t.skip(why);
    const w = world();
    const user = `user ${spawnSync("id", ["-nu", "65534"], { encoding: "utf8" }).stdout.trim()} (uid 65534)`;
    const name = user.split(" ")[1]!;
    // Root-owned, so uid 65534 may not read, write or run them.
    for (const f of ["smtp.pass", "mzp.pass", "p12.pass", "stellantis-ca.pem"]) chmodSync(join(w.dir, f), 0o600);
    chmodSync(join(w.dir, "reload-app"), 0o744);
    for (const d of ["state", "inbox", "locked"]) mkdirSync(join(w.dir, d), { mode: 0o755 });
    writeFileSync(w.config, readFileSync(w.config, "utf8").replace(`runtime_dir: ${w.dir}/run`, `runtime_dir: ${w.dir}/locked/run`));

    const secretFix = `let ${user} read it (e.g. chmod 0640 and credd's group), or pass it with systemd LoadCredential=`;
    const denied = `cannot be read by ${user}: permission denied (on it or on a folder above it)`;
    const expected = [
      `${w.config}:1: state_dir: ${w.dir}/state is not writable by ${user}; credd keeps its database, keys and certificates there (fix: chown ${name} ${w.dir}/state (or give credd's group rwx on it), or run credd as the user that owns it)`,
      `${w.config}:2: runtime_dir: ${w.dir}/locked/run does not exist, and ${user} cannot create it: ${w.dir}/locked is not writable; credd writes the access tokens there for applications (fix: create it (install -d -m 0750 -o ${name} ${w.dir}/locked/run), or correct runtime_dir)`,
      `${w.config}:3: inbox_dir: ${w.dir}/inbox is not writable by ${user}; credd takes in the signed certificates dropped there and moves them to done/ or refused/ (fix: chown ${name} ${w.dir}/inbox (or give credd's group rwx on it), or run credd as the user that owns it)`,
      `${w.config}:4: metrics_file: ${w.dir}/metrics is not writable by ${user}; credd writes the Prometheus metrics there (a temporary file renamed over metrics_file) (fix: chown ${name} ${w.dir}/metrics (or give credd's group rwx on it), or run credd as the user that owns it)`,
      `${w.config}:9: smtp.password_file: ${w.dir}/smtp.pass ${denied}; it should hold the SMTP password (fix: ${secretFix})`,
      `${w.config}:14: stellantis.ca_file: ${w.dir}/stellantis-ca.pem ${denied}; it should hold the Stellantis CA certificate (PEM): every signed certificate must chain to it (fix: let ${user} read it (chmod 0644 ${w.dir}/stellantis-ca.pem: a CA certificate is public))`,
      `${w.config}:19: ${C}.basic_auth.password_file: ${w.dir}/mzp.pass ${denied}; it should hold the Basic-auth password for the API (fix: ${secretFix})`,
      `${w.config}:20: ${C}.pkcs12_password_file: ${w.dir}/p12.pass ${denied}; it should hold the password of live/bundle.p12 (fix: ${secretFix})`,
      `${w.config}:21: ${C}.deploy_hooks[0][0]: ${w.dir}/reload-app is not executable by ${user}; credd runs it after each new certificate goes live (fix: chmod +x ${w.dir}/reload-app, or correct ${C}.deploy_hooks[0][0])`,
    ];
    const check = await runAsNobody(["--config", w.config, "check-config"]);
    assert.equal(check.code, 2, check.stdout + check.stderr);
    assert.deepEqual(lines(check), expected);
    assert.ok(!check.stderr.includes("-secret"), "no secret shown");

    const run = await runAsNobody(["--config", w.config, "run"]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.deepEqual(lines(run), expected);
    assert.deepEqual(readdirSync(join(w.dir, "state")), [], "no database created");
    assert.ok(!existsSync(join(w.dir, "locked", "run")));

    // The same files are fine for root: the difference is the user, which the summary names.
    const asRoot = await runCredd(["--config", w.config, "check-config"]);
    assert.equal(asRoot.code, 0, asRoot.stderr);
  });
});
