// `npm run demo`: the whole lifecycle in about a minute, against the local Stellantis sandbox, with the
// real credd binary. Time travel (a clock file credd and the sandbox both read) stands in for months.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DAY_MS } from "../src/clock.js";
import { errorMessage } from "../src/errors.js";
import { killChildren, runCredd, startCreddDaemon, type CreddDaemon, type LogLine } from "./child.js";
import type { SandboxEvent } from "./events.js";
import { narrateCredd, narrateSandbox, short } from "./narrate.js";
import { startSandbox, type Sandbox } from "./sandbox.js";
import { CLOCK_SETTLE_MS, describeJump, fileClock, travel, writeClockOffset } from "./time.js";
import { Timeline } from "./timeline.js";

const HELP = `usage: npm run demo [-- --keep] [-- --dir DIR]

Starts the local Stellantis sandbox and the real credd daemon, then walks one
credential through its whole life while printing a timeline: enroll, CSR
emailed, signed, ingested, registered, live, token, an API call (credd doctor),
time travel to near expiry, the renewal CSR, the new certificate refused by the
IDP until the registration email arrives, go-live, a fresh token, the ops
emails, and the credd status table. Takes about a minute; Ctrl-C stops it all.

  --keep     keep the demo folder (credd.yaml, mailbox/, credd.log, sandbox.log)
  --dir DIR  use DIR instead of a new temporary folder (kept)

exit: 0 the lifecycle completed, 1 a step did not happen in time, 130 Ctrl-C`;

const PACE = { signDelayMs: 5000, bindDelayMs: 4000, tokenLifetimeSec: 900 };
const STEP_TIMEOUT_MS = 45_000;
/** A moment to read before the clock jumps. */
const BEAT_MS = 2500;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { keep: { type: "boolean" }, dir: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), "credd-demo-"));
  const keep = values.keep === true || values.dir !== undefined;
  const clockFile = join(dir, "clock");
  writeClockOffset(clockFile, 0);
  const clock = fileClock(clockFile);
  const tl = new Timeline(process.stdout, clock);

  let sandbox: Sandbox | undefined;
  let daemon: CreddDaemon | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await Promise.race([daemon?.stop(), new Promise((r) => setTimeout(r, 8000))]);
      await killChildren(2000);
      await sandbox?.stop();
      if (!keep) rmSync(dir, { recursive: true, force: true });
    })());
  let interrupted = false;
  const interrupt = (sig: NodeJS.Signals) => {
    interrupted = true;
    tl.plain(`\n${sig}: stopping credd and the sandbox...`);
    void cleanup().then(() => {
      tl.plain(keep ? `stopped; everything is in ${dir}` : "stopped; the demo folder is removed");
      process.exit(130);
    });
  };
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);

  tl.plain("credd demo: one credential's whole life against a local Stellantis sandbox, on loopback.");
  tl.plain("Columns: real seconds since start, credd's (virtual) date and time, who acts, what happened.");
  tl.plain(`Folder: ${dir}${keep ? "" : " (removed at the end; keep it with: npm run demo -- --keep)"}`);
  tl.plain("");

  try {
    const sb = await tl.wait("the sandbox to start", startSandbox({ dir, clockFile, acceptAll: true, ...PACE }));
    sandbox = sb;
    const cred = sb.credential.name;
    tl.line(
      "sandbox",
      `up: SMTP 127.0.0.1:${sb.smtpPort} (STARTTLS), IDP + API ${sb.tokenUrl.replace(/\/as\/.*$/, "")} (mTLS), mailbox ${sb.mailboxUrl ?? sb.mailboxDir}`,
    );
    tl.line("sandbox", `wrote ${join(dir, "credd.yaml")}; the IDP accepts any certificate of its CA for now`);
    sb.log.on((e) => narrateSandbox(tl, e));

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CREDD_CLOCK_FILE: clockFile,
      CREDD_OUTBOX_TICK_MS: "300",
      CREDD_INBOX_POLL_MS: "300",
      CREDD_INBOX_MIN_AGE_MS: "200",
      CREDD_TOKEN_TICK_MS: "300",
    };
    // Not this demo's business: a fake date, another config, a systemd unit's notify socket and
    // invocation (under which `credd run` refuses the test switches above: src/test-switches.ts).
    for (const k of ["CREDD_FAKE_NOW", "CREDD_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID"]) delete env[k];
    const cli = (...args: string[]) => runCredd(["--config", sb.configPath, ...args], env);

    const d = startCreddDaemon(["--config", sb.configPath, "run"], env, join(dir, "credd.log"));
    daemon = d;
    d.onLine((l) => narrateCredd(tl, l));

    // Each source is read in order: credd's log lines, and the sandbox's own events.
    let dc = 0;
    let sc = 0;
    const log = async (what: string, pred: (l: LogLine) => boolean): Promise<LogLine> => {
      const r = await tl.wait(what, d.waitFor(pred, { from: dc, timeoutMs: STEP_TIMEOUT_MS, what }));
      dc = r.index + 1;
      return r.line;
    };
    const event = async (what: string, pred: (e: SandboxEvent) => boolean): Promise<SandboxEvent> => {
      const e = await tl.wait(
        what,
        sb.log.waitFor((x) => x.seq > sc && pred(x), STEP_TIMEOUT_MS, what),
      );
      sc = e.seq;
      return e;
    };
    const pause = (what: string, ms: number) => tl.wait(what, new Promise((r) => setTimeout(r, ms)));
    const jump = async (ms: number, why: string) => {
      await pause(`time travel (${describeJump(ms)})`, BEAT_MS);
      const offset = travel(clockFile, ms);
      tl.line("time", `>> ${describeJump(ms)}: ${why}`, new Date(Date.now() + offset));
      await new Promise((r) => setTimeout(r, CLOCK_SETTLE_MS));
    };
    const doctor = async () => {
      tl.line("you", `$ credd doctor ${cred}`);
      const r = await tl.wait("credd doctor", cli("doctor", cred, "--json"));
      const out = JSON.parse(r.stdout) as { ok: boolean; steps: { name: string; ok: boolean | null; ms: number; detail: string }[] };
      tl.block(out.steps.map((s) => `${s.ok === true ? "PASS" : s.ok === false ? "FAIL" : "skip"}  ${s.name}: ${s.detail}`));
      if (r.code !== 0) throw new Error(`credd doctor failed (exit ${r.code})`);
    };

    await log("credd run to start", (l) => l.msg === "credd started");
    tl.line("credd", `run started (pid ${d.pid}), checks every 2 s; its JSON log goes to credd.log`);
    await log("credd's first check", (l) => l.msg === "check done");

    // 1. Enroll: key + CSR, emailed; the CA signs; credd takes it in; the IDP accepts it; live; token.
    tl.line("you", `$ credd enroll ${cred}`);
    const enroll = await tl.wait(
      "credd enroll",
      runCredd(["--config", sb.configPath, "enroll", cred], env, 60_000, (line) => {
        if (/^renewal #\d+ started/.test(line)) tl.line("credd", `${line}: RSA 2048 key (0600) and CSR in archive/; emailing the CSR`);
      }),
    );
    if (enroll.code !== 0) throw new Error(`credd enroll failed (exit ${enroll.code}): ${enroll.stderr.trim()}`);
    await event("the CSR email", (e) => e.kind === "mail" && /^CSR for/.test(String(e.data.subject)));
    await event("the Stellantis CA to sign the CSR", (e) => e.kind === "signed");
    await log(
      "credd to read the CA's reply from its mailbox and take the certificate in",
      (l) => l.msg === "signed certificate accepted and installed",
    );
    await log("the IDP to accept the new certificate", (l) => l.msg === "certificate live");
    await log("a token", (l) => l.msg === "token obtained");
    await doctor();

    await jump(11 * 60_000, "the token is past two thirds of its 15-minute life: time to refresh it");
    await log("the token refresh", (l) => l.msg === "token obtained");

    // 2. Renewal: near expiry, a new CSR; the IDP now wants the registration email first.
    sb.setAcceptAll(false);
    await jump(250 * DAY_MS, "certificate v1 has about 115 days left: a third of its life, so renewal is due");
    await log("credd's check to start the renewal", (l) => l.msg === "renewal started: key and CSR stored, CSR email queued");
    await event("the renewal CSR email", (e) => e.kind === "mail" && /^CSR for/.test(String(e.data.subject)));
    const signed = await event("the Stellantis CA to sign the renewal CSR", (e) => e.kind === "signed");
    await log("credd to take the new certificate in", (l) => l.msg === "signed certificate accepted and installed");
    await log("the IDP's answer to the new certificate", (l) => /^IDP refused the new certificate/.test(String(l.msg)));
    await event("the registration email", (e) => e.kind === "mail" && /bind it to OAuth2 client/.test(String(e.data.subject)));
    await event("the IDP team to bind the certificate", (e) => e.kind === "bound" && e.data.serial === signed.data.serial);
    await jump(2 * 60_000, "credd's next registration probe is due (it probes again after 1 min, 2 min, ... up to 1 h)");
    const live = await log("credd's probe and go-live", (l) => l.msg === "certificate live" && l.version === 2);
    await log("a fresh token with the new certificate", (l) => l.msg === "token obtained" && l.certVersion === 2);
    await doctor();

    // Ops emails (the "[credd]" alerts and their "resolved"), if any are still on their way: shown, not awaited long.
    const alerts = () => sb.mails.filter((m) => m.subject.startsWith("[credd]"));
    if (alerts().length > 0 && !alerts().some((m) => /resolved/i.test(m.subject))) {
      await pause("ops emails still on their way", 4000);
    }

    tl.line("you", `$ credd status`);
    const st = await tl.wait("credd status", cli("status"));
    tl.block(st.stdout.trimEnd().split("\n"));
    if (st.code !== 0) tl.line("demo", `credd status exited ${st.code} (${["OK", "WARNING", "CRITICAL", "UNKNOWN"][st.code ?? 3] ?? "?"})`);

    await tl.wait("credd run to stop", d.stop());
    tl.line(
      "demo",
      `done in ${tl.elapsedSeconds()} s: certificate v2 (serial ${short(live.serial)}) live, token fresh; ${sb.mails.length} emails in the mailbox:`,
    );
    tl.block(sb.mails.map((m) => `#${m.n} ${m.to.join(", ")}: ${m.subject}`));
    if (keep) tl.block([`see ${join(dir, "mailbox")}/ (log.txt and .eml files), ${sb.logFile}, ${join(dir, "credd.log")}`]);
    await cleanup();
    return 0;
  } catch (err) {
    if (interrupted) return new Promise<number>(() => {}); // the signal handler finishes and exits
    tl.line("demo", `FAILED: ${errorMessage(err)}`);
    if (daemon) {
      tl.plain("last credd log lines:");
      for (const l of daemon.lines.slice(-15)) tl.plain(`  ${JSON.stringify(l)}`);
    }
    await cleanup();
    return 1;
  }
}

process.exitCode = await main();
