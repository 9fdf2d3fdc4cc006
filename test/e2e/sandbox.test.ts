// The sandbox (sandbox/) with the real credd binary, at test speed: the whole lifecycle in order,
// an SMTP outage and a token endpoint outage survived with nothing lost; and the virtual clock file.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { DAY_MS } from "../../src/clock.js";
import { clockFromEnv } from "../../src/test-switches.js";
import type { SandboxEvent } from "../../sandbox/events.js";
import { startSandbox, type Sandbox } from "../../sandbox/sandbox.js";
import { CLOCK_SETTLE_MS, travel, writeClockOffset } from "../../sandbox/time.js";
import { CREDD_BIN, runCredd, startCreddDaemon, type Daemon } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (p: string) => {
  const d = makeTempDir(p);
  dirs.push(d);
  return d;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("CREDD_CLOCK_FILE", () => {
  test("adds the file's offset to now, follows changes within 200 ms, and composes with CREDD_FAKE_NOW", async () => {
    const file = join(tempDir("credd-clock-"), "clock");
    const plain = clockFromEnv({ CREDD_CLOCK_FILE: file });
    assert.ok(Math.abs(plain.now().getTime() - Date.now()) < 1000, "no file: no offset");
    writeClockOffset(file, 300 * DAY_MS);
    await sleep(CLOCK_SETTLE_MS);
    assert.ok(Math.abs(plain.now().getTime() - (Date.now() + 300 * DAY_MS)) < 1000, "the new offset is seen without a restart");
    writeFileSync(file, ""); // caught mid-write (`echo N > file` truncates first): keep the last offset
    await sleep(CLOCK_SETTLE_MS);
    assert.ok(plain.now().getTime() - Date.now() > 299 * DAY_MS);
    writeFileSync(file, "60000\n");
    const fake = clockFromEnv({ CREDD_CLOCK_FILE: file, CREDD_FAKE_NOW: "2030-01-01T00:00:00Z" });
    assert.ok(Math.abs(fake.now().getTime() - Date.parse("2030-01-01T00:01:00Z")) < 1000);
    writeFileSync(file, "soon");
    assert.throws(() => clockFromEnv({ CREDD_CLOCK_FILE: file }), /does not hold a number of milliseconds/);
  });
});

/** Asserts the predicates match items in this order (each after the previous one's match). */
function inOrder<T>(items: T[], steps: [string, (x: T) => boolean][], show: (x: T) => string): number[] {
  const at: number[] = [];
  let from = 0;
  for (const [name, pred] of steps) {
    const i = items.findIndex((x, k) => k >= from && pred(x));
    assert.ok(i >= 0, `step "${name}" did not happen after step ${at.length}; saw:\n${items.slice(from).map(show).join("\n")}`);
    at.push(i);
    from = i + 1;
  }
  return at;
}

describe("credd against the sandbox", () => {
  test("enroll, CSR, signed, ingested, live, token, doctor; SMTP and IDP outages; renewal refused until registered, then live with a fresh token", async () => {
    const sb: Sandbox = await startSandbox({
      dir: tempDir("credd-sandbox-e2e-"),
      signDelayMs: 200,
      bindDelayMs: 200,
      tokenLifetimeSec: 900,
      acceptAll: true,
      checkSchedule: "* * * * * *",
    });
    const env = {
      CREDD_CLOCK_FILE: sb.clockFile,
      CREDD_OUTBOX_TICK_MS: "100",
      CREDD_INBOX_POLL_MS: "100",
      CREDD_INBOX_MIN_AGE_MS: "0",
      CREDD_TOKEN_TICK_MS: "100",
    };
    const cfg = ["--config", sb.configPath];
    const name = sb.credential.name;
    const tokenFile = join(sb.dir, "run", name, "token");
    let d: Daemon | undefined;
    try {
      const daemon = startCreddDaemon([...cfg, "run"], env);
      d = daemon;
      /** The first matching log line from index `from` on (taken before the action that causes it). */
      const next = (from: number, pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs = 15_000) =>
        daemon.waitForLog(pred, timeoutMs, from).catch((err: Error) => {
          throw new Error(`${what}: ${err.message}`);
        });
      const mark = () => daemon.lines.length;
      await daemon.waitForLog((l) => l.msg === "credd started");

      // SMTP is down while the CSR email is due; it comes back on the same port: the email arrives once.
      await sb.smtpDown();
      const enroll = await runCredd([...cfg, "enroll", name, "--no-send"], env);
      assert.equal(enroll.code, 0, enroll.stdout + enroll.stderr);
      await daemon.waitForLog((l) => l.msg === "email not sent, will retry" && l.kind === "csr");
      await sb.smtpUp();
      travel(sb.clockFile, 2 * 60_000); // the retry is due a minute later
      await daemon.waitForLog((l) => l.msg === "email sent" && l.kind === "csr");
      await daemon.waitForLog((l) => l.msg === "certificate live" && l.version === 1);
      // The CA answered as Stellantis does: a reply email with a download link, read from the Maildir.
      const reply = await daemon.waitForLog((l) => l.msg === "mailbox: reply handled");
      assert.equal(reply.matchedBy, "in-reply-to");
      assert.match(String((reply.files as string[])[0]), /^127\.0\.0\.1\/[0-9A-F]+\.pem: installed$/);
      await daemon.waitForLog((l) => l.msg === "token obtained" && l.certVersion === 1);
      const doctor1 = await runCredd([...cfg, "doctor", name], env);
      assert.equal(doctor1.code, 0, doctor1.stdout + doctor1.stderr);
      assert.match(doctor1.stdout, /PASS {2}API request .*HTTP 200 application\/hal\+json/);

      // The token endpoint goes down when the token is due for refresh: the old token is served meanwhile.
      const token1 = readFileSync(tokenFile, "utf8").trim();
      await sb.idpDown();
      let from = mark();
      travel(sb.clockFile, 700_000); // past 2/3 of 900 s (600 s +/- 45 s of jitter), with over 30 s left to serve it
      await next(from, (l) => /^token refresh fail/.test(String(l.msg)), "the refresh fails while the IDP is down");
      const during = await runCredd([...cfg, "token", name], env);
      assert.equal(during.code, 0, during.stderr);
      assert.equal(during.stdout.trim(), token1, "the old token is served while the IDP is down");
      from = mark();
      await sb.idpUp();
      await next(from, (l) => l.msg === "token obtained", "a new token once the IDP is back");
      const token2 = readFileSync(tokenFile, "utf8").trim();
      assert.notEqual(token2, token1);
      assert.equal(sb.idp.tokensIssued.at(-1)!.token, token2);

      // Near expiry: renewal; the IDP refuses the new certificate until it is emailed for registration.
      sb.setAcceptAll(false);
      from = mark();
      travel(sb.clockFile, 250 * DAY_MS);
      await next(from, (l) => l.msg === "renewal started: key and CSR stored, CSR email queued" && l.kind === "renew", "the renewal starts");
      await next(from, (l) => l.msg === "email sent" && l.kind === "registration", "the registration email goes out");
      await sb.log.waitFor((e) => e.kind === "bound" && /registration email/.test(String(e.data.why)), 10_000, "the IDP binding the certificate");
      const liveBefore = new X509Certificate(readFileSync(join(sb.dir, "state/credentials", name, "live/cert.pem")));
      assert.equal(liveBefore.serialNumber.toUpperCase(), sb.issued[0]!.serial, "the old certificate stays live until the IDP accepts the new one");
      from = mark();
      travel(sb.clockFile, 2 * 60_000); // the next registration probe is due a minute after the refusal
      await next(from, (l) => l.msg === "certificate live" && l.version === 2, "the new certificate goes live");
      await daemon.waitForLog((l) => l.msg === "token obtained" && l.certVersion === 2);
      const doctor2 = await runCredd([...cfg, "doctor", name], env);
      assert.equal(doctor2.code, 0, doctor2.stdout + doctor2.stderr);
      const call = sb.idp.apiCalls.at(-1)!;
      assert.equal(call.status, 200);
      assert.equal(call.certSha256, sb.issued[1]!.sha256, "the API was called with the new certificate");
      assert.equal(call.query.client_id, sb.credential.clientId);

      // credd's log, in order.
      const L = daemon.lines;
      const msg =
        (m: string, more: Record<string, unknown> = {}) =>
        (l: Record<string, unknown>) =>
          l.msg === m && Object.entries(more).every(([k, v]) => l[k] === v);
      inOrder(
        L,
        [
          ["CSR email refused by the dead SMTP server", msg("email not sent, will retry", { kind: "csr" })],
          ["CSR email sent", msg("email sent", { kind: "csr" })],
          ["certificate 1 ingested", msg("signed certificate accepted and installed", { renewal: 1 })],
          ["certificate 1 live", msg("certificate live", { version: 1 })],
          ["token with certificate 1", msg("token obtained", { certVersion: 1 })],
          ["refresh fails while the IDP is down", (l) => /^token refresh fail/.test(String(l.msg))],
          ["a new token once it is back", msg("token obtained", { certVersion: 1 })],
          ["renewal started", msg("renewal started: key and CSR stored, CSR email queued", { kind: "renew" })],
          ["renewal CSR email sent", msg("email sent", { kind: "csr" })],
          ["certificate 2 ingested", msg("signed certificate accepted and installed", { renewal: 2 })],
          ["the IDP refused it", msg("IDP refused the new certificate: emailed it to the contact for registration")],
          ["registration email sent", msg("email sent", { kind: "registration" })],
          ["certificate 2 live", msg("certificate live", { version: 2 })],
          ["token with certificate 2", msg("token obtained", { certVersion: 2 })],
        ],
        (l) => JSON.stringify(l),
      );
      assert.equal(L.filter(msg("email sent", { kind: "csr" })).length, 2, "one CSR email per renewal, none twice");
      assert.equal(L.filter(msg("email sent", { kind: "registration" })).length, 1);

      // The sandbox's own record, in order.
      const E = sb.log.events;
      const ev =
        (kind: SandboxEvent["kind"], pred: (e: SandboxEvent) => boolean = () => true) =>
        (e: SandboxEvent) =>
          e.kind === kind && pred(e);
      const subject = (re: RegExp) => (e: SandboxEvent) => re.test(String(e.data.subject));
      inOrder(
        E,
        [
          ["SMTP down", ev("outage", (e) => e.data.what === "smtp" && e.data.up === false)],
          ["SMTP back", ev("outage", (e) => e.data.what === "smtp" && e.data.up === true)],
          ["the enrollment CSR arrives", ev("mail", subject(/^CSR for MZP128745: new client certificate/))],
          ["the CA signs it", ev("signed")],
          ["the IDP binds it on first use", ev("bound", (e) => /first use/.test(String(e.data.why)))],
          ["a token for it", ev("token")],
          ["IDP down", ev("outage", (e) => e.data.what === "idp" && e.data.up === false)],
          ["IDP back", ev("outage", (e) => e.data.what === "idp" && e.data.up === true)],
          ["a new token", ev("token")],
          ["IDP strict", ev("mode", (e) => e.data.acceptAll === false)],
          ["the renewal CSR arrives", ev("mail", subject(/^CSR for MZP128745: client certificate renewal/))],
          ["the CA signs it", ev("signed")],
          ["the IDP refuses the new certificate", ev("token-refused", (e) => e.data.sha256 === sb.issued[1]!.sha256)],
          ["the registration email arrives", ev("mail", subject(/^Certificate for MZP128745: please bind it to OAuth2 client partner-client/))],
          ["the IDP binds it", ev("bound", (e) => e.data.sha256 === sb.issued[1]!.sha256)],
          ["a token for the new certificate", ev("token", (e) => e.data.sha256 === sb.issued[1]!.sha256)],
          ["an API call with it", ev("api", (e) => e.data.status === 200 && e.data.certSha256 === sb.issued[1]!.sha256)],
        ],
        (e) => `${e.kind}: ${e.text}`,
      );
      const mails = (re: RegExp) => sb.mails.filter((m) => re.test(m.subject));
      assert.equal(mails(/^CSR for MZP128745: new client certificate/).length, 1, "the CSR delayed by the outage arrived once");
      assert.equal(mails(/^CSR for MZP128745: client certificate renewal/).length, 1);
      assert.equal(mails(/please bind it to OAuth2 client/).length, 1);
      const reg = mails(/please bind it to OAuth2 client/)[0]!;
      assert.deepEqual(reg.to.slice().sort(), [sb.contact, "ops@partner.example"]);
      assert.ok(
        sb.mails.every((m) => m.secure),
        "every email came over STARTTLS",
      );
      assert.ok(sb.mails.every((m) => !m.attachments.some((a) => a.content.toString().includes("PRIVATE KEY"))));
      // The mailbox folder and its log, one line per email.
      const logLines = readFileSync(join(sb.mailboxDir, "log.txt"), "utf8").trim().split("\n");
      assert.equal(logLines.length, sb.mails.length);
      assert.ok(sb.mails.every((m) => existsSync(m.file)));
      const page = await (await fetch(sb.mailboxUrl!)).text();
      assert.match(page, /please bind it to OAuth2 client/);

      const st = await runCredd([...cfg, "status", "--json"], env);
      const view = JSON.parse(st.stdout);
      const c = view.credentials[0];
      assert.equal(c.certificate.version, 2);
      assert.equal(c.renewal, null);
      assert.equal(c.token.state, "valid");
      assert.equal(c.token.cert_version, 2);
      assert.equal(view.outbox.queued, 0, "nothing left in the outbox");
      assert.equal(st.code, 0, st.stdout);
      assert.equal(await daemon.stop(), 0);
    } finally {
      await d?.stop();
      await sb.stop();
    }
  });
});

const ROOT = dirname(dirname(CREDD_BIN));
const NO_SANDBOX = "the sandbox is a development tool: in a clone of credd run `npm ci`, then `npm run sandbox`";

/** Every file under `dir`, relative to it. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));

describe("the sandbox is not in the product", () => {
  test("the build (dist/) holds no sandbox module, no code of it, and nothing that loads its dependencies", () => {
    const files = filesUnder(join(ROOT, "dist"));
    assert.ok(files.includes("main.js"), "dist/ is built");
    const modules = readdirSync(join(ROOT, "sandbox"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => f.replace(/\.ts$/, ""));
    assert.ok(modules.includes("idp") && modules.includes("demo"));
    assert.deepEqual(
      files.filter((f) => f.startsWith("sandbox/")),
      [],
      "no dist/sandbox/",
    );
    // What only the sandbox defines or loads: its entry points, servers and dev dependencies
    // (mailparser is not one any more: the mailbox reads replies with it, docs/mailbox.md).
    const marks = [
      "startSandbox",
      "startFakeStellantis",
      "startSandboxSmtp",
      "startMailboxPage",
      "startDownloadPage",
      "loadOrMakeCa",
      "SANDBOX_HELP",
      "smtp-server",
    ];
    for (const f of files.filter((x) => x.endsWith(".js"))) {
      const text = readFileSync(join(ROOT, "dist", f), "utf8");
      for (const m of marks) assert.ok(!text.includes(m), `dist/${f} holds ${m}`);
    }
  });

  test("nothing in src/ imports sandbox/", () => {
    for (const f of filesUnder(join(ROOT, "src")).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(ROOT, "src", f), "utf8");
      assert.doesNotMatch(text, /(from|import)\s*\(?\s*["'][^"']*\/sandbox\//, `src/${f} imports the sandbox`);
    }
  });

  test("an installed credd (dist/ and node_modules, no sandbox/ beside them) says where the sandbox lives and exits 1, making nothing", () => {
    const root = tempDir("credd-installed-");
    cpSync(join(ROOT, "dist"), join(root, "dist"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(root, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    const dir = join(root, "sb");
    const r = spawnSync(process.execPath, [join(root, "dist", "main.js"), "sandbox", "--dir", dir], { encoding: "utf8", cwd: root });
    assert.equal(r.status, 1, `sandbox --dir: ${r.stdout}${r.stderr}`);
    assert.ok(r.stderr.includes(NO_SANDBOX), r.stderr);
    // Its help (from the command table) says where the sandbox lives, and loads nothing of it.
    const h = spawnSync(process.execPath, [join(root, "dist", "main.js"), "sandbox", "--help"], { encoding: "utf8", cwd: root });
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /an installed credd has none of it/);
    assert.ok(!existsSync(dir), "nothing made");
  });
});

describe("credd sandbox (the command)", () => {
  test("from a clone: --help prints its usage (0); a bad option or value is a usage error (2)", async () => {
    const help = await runCredd(["sandbox", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: credd sandbox \[--dir DIR\]/);
    assert.match(help.stdout, /npm run sandbox -- \[OPTIONS\]/);
    const bad = await runCredd(["sandbox", "--no-such-option"]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /--no-such-option[\s\S]*usage: credd sandbox/);
    const value = await runCredd(["sandbox", "--sign-delay", "soon", "--dir", join(tempDir("credd-sandbox-bad-"), "sb")]);
    assert.equal(value.code, 2, value.stdout + value.stderr);
    assert.match(value.stderr, /--sign-delay needs a number of at least 0, not "soon"/);
  });

  test("writes a ready credd.yaml under --dir, prints how to run credd, stops on SIGINT freeing its ports; a restart keeps the CA and the ports", async () => {
    const dir = join(tempDir("credd-sandbox-cli-"), "sb");
    const run = async () => {
      const child = spawn(process.execPath, [CREDD_BIN, "sandbox", "--dir", dir, "--accept-all"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (b: Buffer) => (out += b.toString()));
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      const exited = new Promise<number | null>((r) => child.on("close", r));
      const t0 = Date.now();
      while (!/Travel in time/.test(out) && Date.now() - t0 < 20_000 && child.exitCode === null) await sleep(50);
      assert.match(out, /Run credd against it/, out + err);
      const ports = JSON.parse(readFileSync(join(dir, "sandbox.json"), "utf8")).ports as Record<string, number>;
      const ca = readFileSync(join(dir, "ca/ca.pem"), "utf8");
      return {
        out,
        ports,
        ca,
        async stop() {
          child.kill("SIGINT");
          assert.equal(await exited, 0, err);
          assert.match(out + err, /sandbox stopped/);
        },
      };
    };
    const first = await run();
    assert.match(first.out, new RegExp(`CREDD_CONFIG=${dir}/credd.yaml CREDD_CLOCK_FILE=${dir}/clock`));
    const yaml = readFileSync(join(dir, "credd.yaml"), "utf8");
    assert.match(yaml, /check_schedule: "\*\/2 \* \* \* \* \*"/);
    assert.match(yaml, new RegExp(`url: smtp://127\\.0\\.0\\.1:${first.ports.smtp}`));
    // credd reads the written config: status finds no database yet (it creates none) in the sandbox's state_dir.
    const st = await runCredd(["--config", join(dir, "credd.yaml"), "status", "--json"], {});
    assert.equal(st.code, 3, st.stdout + st.stderr);
    assert.match(JSON.parse(st.stdout).error, new RegExp(`no credd database at ${dir}/\\S+/credd\\.db`));
    await first.stop();
    for (const port of Object.values(first.ports)) {
      await new Promise<void>((resolve, reject) => {
        const s = net.createServer().once("error", reject);
        s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
      });
    }
    const second = await run();
    assert.deepEqual(second.ports, first.ports, "the same ports again, so credd.yaml stays right");
    assert.equal(second.ca, first.ca, "the same CA, so credd keeps trusting what it signed");
    await second.stop();
  });
});
