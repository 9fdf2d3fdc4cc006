// Two processes on one state folder. A second `credd run` must refuse to start, with a clear message,
// also while the first is in the middle of a check (a deploy hook running, a token probe hanging),
// and whatever the timing of the starts. Then: two renewals started at the same moment; and a
// SIGTERM or SIGINT at any moment of the start is a clean stop. Linux: reads /proc/PID.
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { dnFor } from "../helpers/credd.js";
import { makeKeyAndCert, signCsr } from "../helpers/openssl.js";
import { checkInvariants } from "./lib/invariants.js";
import { crashSigns, Journal, runCli, spawnCredd, type Proc } from "./lib/proc.js";
import { makeRng, seedFromEnv } from "./lib/rng.js";
import { archiveDir, certFingerprint, dropInInbox, liveDir, makeWorld, type World } from "./lib/world.js";

const journal = new Journal();
// Seeded moments for the signal and race rounds: CREDD_RELIABILITY_SEED=N replays them (timing aside).
const { seed: lockSeed, fromEnv } = seedFromEnv();
console.log(
  `# lock and signal rounds: seed ${lockSeed}${fromEnv ? " (from CREDD_RELIABILITY_SEED)" : ""}; replay with CREDD_RELIABILITY_SEED=${lockSeed}`,
);
const worlds: World[] = [];
after(async () => {
  for (const w of worlds) await w.close();
});

const FAST = { CREDD_OUTBOX_TICK_MS: "100", CREDD_INBOX_POLL_MS: "100", CREDD_INBOX_MIN_AGE_MS: "0", CREDD_TOKEN_TICK_MS: "100" };

async function ok(w: World, ...args: string[]) {
  const r = await runCli(journal, ["--config", w.config, ...args]);
  assert.equal(r.code, 0, `credd ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r;
}

async function refusedSecond(w: World, first: Proc) {
  const second = await runCli(journal, ["--config", w.config, "run"], FAST, { timeoutMs: 20_000 });
  assert.equal(second.code, 1, `the second credd run refuses to start: ${JSON.stringify(second)}`);
  assert.match(second.stderr, new RegExp(`another credd run \\(pid ${first.child.pid}\\) is already using ${w.stateDir.replace(/[/.]/g, "\\$&")}`));
  assert.match(second.stderr, /stop it first/);
  assert.deepEqual(crashSigns(second.stdout + second.stderr), []);
  assert.equal(second.stdout.trim(), "", "it did not start anything (no log lines)");
  assert.equal(readFileSync(join(w.stateDir, "credd.pid"), "utf8").trim(), String(first.child.pid), "the first one's lock is untouched");
  return second;
}

async function stopClean(p: Proc) {
  p.kill("SIGTERM");
  const exit = await p.exited;
  assert.equal(exit.code, 0, `clean stop: ${JSON.stringify(exit)} ${p.entry.stderr}\n${p.entry.stdout.slice(-2000)}`);
}

test("a second `credd run` refuses while the first is mid-check, running a deploy hook after a go-live", async () => {
  const w = await makeWorld({
    creds: [
      {
        name: "hook",
        mzp: "MZP700001",
        key: "ec",
        extra: 'deploy_hooks: [["/bin/sh", "-c", "touch \\"$CREDD_LIVE_DIR/../../../../hook-running\\"; sleep 4"]]',
      },
    ],
    prefix: "credd-rel-lock-",
  });
  worlds.push(w);
  await ok(w, "enroll", "hook", "--no-send");
  const signed = join(w.dir, "signed.pem");
  signCsr(w.ca, join(archiveDir(w, "hook"), "csr-1.pem"), signed, { days: 365 });
  dropInInbox(w, signed, "MZP700001.pem");
  const marker = join(w.dir, "hook-running");
  const first = spawnCredd(journal, ["--config", w.config, "run"], FAST);
  const until = Date.now() + 20_000;
  while (!existsSync(marker)) {
    assert.ok(Date.now() < until && first.running(), `the deploy hook never started\n${first.entry.stdout}\n${first.entry.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(!first.lines.some((l) => l.msg === "check done"), "the first check is still running (the hook sleeps)");
  await refusedSecond(w, first);
  await first.waitForLog((l) => l.msg === "check done", 20_000);
  assert.ok(
    first.lines.some((l) => l.msg === "deploy hook done"),
    "the first run finished its hook",
  );
  await stopClean(first);
  assert.ok(!existsSync(join(w.stateDir, "credd.pid")), "the lock is released at a clean stop");
  assert.equal(certFingerprint(readFileSync(join(liveDir(w, "hook"), "cert.pem"))), certFingerprint(readFileSync(signed)));
  assert.deepEqual((await checkInvariants({ stateDir: w.stateDir, names: ["hook"], received: w.smtp.received })).violations, []);
  // After the first has stopped, a new one starts.
  const third = spawnCredd(journal, ["--config", w.config, "run"], FAST);
  await third.waitForLog((l) => l.msg === "check done");
  await stopClean(third);
});

test("a second `credd run` refuses while the first is mid-check, its registration probe hanging on the token endpoint", async () => {
  const w = await makeWorld({
    creds: [{ name: "probe", mzp: "MZP700002", key: "ec", oauth: true }],
    prefix: "credd-rel-lock-probe-",
    schedule: "*/1 * * * * *",
  });
  worlds.push(w);
  const hand = makeKeyAndCert(w.dir, dnFor("MZP700002"), { ca: w.ca, days: 365, keyType: "ec" });
  w.fake.register(certFingerprint(readFileSync(hand.certPath)));
  await ok(w, "import", "probe", "--cert", hand.certPath, "--key", hand.keyPath);
  await ok(w, "renew", "probe", "--no-send");
  const signed = join(w.dir, "signed.pem");
  signCsr(w.ca, join(archiveDir(w, "probe"), "csr-2.pem"), signed, { days: 365 });
  await ok(w, "ingest", signed); // staged: the IDP does not know it yet
  // The next probe is due a minute later: start the daemon then, with the token endpoint hanging.
  w.fake.failNextTokens(1, "hang");
  const later = new Date(Date.now() + 2 * 60_000).toISOString();
  const first = spawnCredd(journal, ["--config", w.config, "run"], { ...FAST, CREDD_FAKE_NOW: later });
  const until = Date.now() + 20_000;
  while (!w.fake.tokenRequests.some((r) => r.status === "hang")) {
    assert.ok(Date.now() < until && first.running(), `no probe\n${first.entry.stdout}\n${first.entry.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(!first.lines.some((l) => l.msg === "check done"), "the first check hangs in the probe");
  await refusedSecond(w, first);
  // The IDP comes back (connections cut, then accepting the new certificate): the first finishes.
  w.fake.register(certFingerprint(readFileSync(signed)));
  await w.fake.down();
  await w.fake.up();
  await first.waitForLog((l) => l.msg === "check done", 40_000);
  await stopClean(first);
  assert.deepEqual((await checkInvariants({ stateDir: w.stateDir, names: ["probe"], received: w.smtp.received })).violations, []);
});

test("three `credd run` started at the same moment, on a stale lock left by a SIGKILL: exactly one runs, the others name it", async () => {
  const w = await makeWorld({ creds: [{ name: "race", mzp: "MZP700003", key: "ec" }], prefix: "credd-rel-lock-race-" });
  worlds.push(w);
  const hand = makeKeyAndCert(w.dir, dnFor("MZP700003"), { ca: w.ca, days: 365, keyType: "ec" });
  await ok(w, "import", "race", "--cert", hand.certPath, "--key", hand.keyPath);
  const bad: string[] = [];
  const ROUNDS = 8;
  for (let round = 0; round < ROUNDS; round++) {
    // A stale lock: the pid file of a credd that is gone.
    const gone = spawnCredd(journal, ["--config", w.config, "run"], FAST);
    await gone.waitForLog((l) => l.msg === "credd started");
    gone.kill("SIGKILL");
    await gone.exited;
    assert.equal(readFileSync(join(w.stateDir, "credd.pid"), "utf8").trim(), String(gone.child.pid));
    const starters = [0, 1, 2].map(() => spawnCredd(journal, ["--config", w.config, "run"], FAST));
    const settle = (p: Proc) =>
      p
        .waitForLog((l) => l.msg === "credd started", 20_000)
        .then(
          () => "running" as const,
          () => "exited" as const,
        );
    const outcomes = await Promise.all(starters.map(settle));
    const running = starters.filter((_, i) => outcomes[i] === "running");
    if (running.length === 1) {
      const winner = running[0]!;
      for (const p of starters.filter((x) => x !== winner)) {
        const exit = await p.exited;
        assert.equal(exit.code, 1, `round ${round}: a refused start exits 1: ${JSON.stringify(exit)} ${p.entry.stderr}`);
        assert.match(
          p.entry.stderr,
          new RegExp(`another credd run \\(pid ${winner.child.pid}\\) is already using ${w.stateDir.replace(/[/.]/g, "\\$&")}`),
          `round ${round}`,
        );
        assert.deepEqual(crashSigns(p.entry.stdout + p.entry.stderr), []);
      }
      assert.equal(
        readFileSync(join(w.stateDir, "credd.pid"), "utf8").trim(),
        String(winner.child.pid),
        `round ${round}: the pid file names the one running`,
      );
    } else bad.push(`round ${round}: ${running.length} of 3 ran`);
    for (const p of running) {
      await p.waitForLog((l) => l.msg === "check done", 20_000); // past the start-up
      await stopClean(p);
    }
  }
  console.log(`# three simultaneous starts on a stale lock: not exactly one ran in ${bad.length} of ${ROUNDS} rounds`);
  assert.deepEqual(bad, [], "exactly one starts in every round");
});

test("two renewals started at the same moment never leave a pending renewal without its own key", {}, async () => {
  let lost = 0;
  const detail: string[] = [];
  for (let round = 0; round < 8; round++) {
    const w = await makeWorld({ creds: [{ name: "twin", mzp: "MZP700004", key: "ec" }], prefix: "credd-rel-twin-" });
    worlds.push(w);
    const rs = await Promise.all([1, 2, 3, 4].map(() => runCli(journal, ["--config", w.config, "enroll", "twin", "--no-send"])));
    const started = rs.filter((x) => x.code === 0).length;
    assert.ok(started >= 1, `one enroll succeeded: ${rs.map((x) => x.stderr.trim()).join(" | ")}`);
    const d = new Database(join(w.stateDir, "credd.db"), { readonly: true });
    const r = d.prepare("SELECT version, spki_sha256 FROM renewals WHERE state = 'created'").get() as { version: number; spki_sha256: string };
    d.close();
    const key = readFileSync(join(archiveDir(w, "twin"), `key-${r.version}.pem`), "utf8");
    const spki = createHash("sha256")
      .update(createPublicKey(createPrivateKey(key)).export({ type: "spki", format: "der" }))
      .digest("hex");
    if (spki !== r.spki_sha256) {
      lost++;
      detail.push(
        `round ${round}: key-${r.version}.pem is not the key of renewal version ${r.version}; outputs: ${rs.map((x) => x.stderr.trim().split("\n").pop()).join(" | ")}`,
      );
    }
    for (const x of rs) assert.deepEqual(crashSigns(x.stdout + x.stderr), []);
    writeFileSync(join(w.dir, "round"), String(round));
  }
  console.log(`# concurrent enroll: the pending renewal's key was replaced in ${lost} of 8 rounds`);
  assert.equal(lost, 0, detail.join("\n"));
});

/**
 * Has credd's own code begun in this process? Before that node itself is starting, and no program
 * can catch a signal then. Two marks, read from /proc: it catches SIGHUP (SigCgt; node does not by
 * itself, `credd run` traps it in its first step), or it has loaded better-sqlite3's native addon
 * (its modules are loading: true of any build of credd, so a build without the early trap is still
 * signalled while its daemon starts).
 */
function creddCodeRuns(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n) return true;
    return readFileSync(`/proc/${pid}/maps`, "utf8").includes("better_sqlite3.node");
  } catch {
    return false;
  }
}

/** Polls `cond` every millisecond (a light poll: the process watched is starting on the same cores). */
async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const SIGTERM_ROUNDS = Number(process.env.CREDD_RELIABILITY_SIGTERM_ROUNDS ?? 40);

test(`SIGTERM or SIGINT at any moment of \`credd run\`'s start stops it cleanly: exit 0, lock released, clean stop recorded (seed ${lockSeed})`, {
  timeout: 300_000,
}, async () => {
  const w = await makeWorld({ creds: [{ name: "sig", mzp: "MZP700005", key: "ec" }], prefix: "credd-rel-sigterm-" });
  worlds.push(w);
  const rng = makeRng(lockSeed);
  // Calibration, on this machine now: when the first check of `credd run` ends, from spawn. The
  // timed rounds pick a moment from spawn to a little after that.
  let doneAt = 0;
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    const p = spawnCredd(journal, ["--config", w.config, "run"], FAST);
    await p.waitForLog((l) => l.msg === "check done", 30_000);
    doneAt = Math.max(doneAt, performance.now() - t0);
    await stopClean(p);
  }
  const to = Math.round(1.2 * doneAt);
  console.log(`# SIGTERM during the start: credd's first check ends ${Math.round(doneAt)} ms after spawn; timed rounds 0-${to} ms`);
  const bad: string[] = [];
  const kinds: Record<string, number> = {};
  const cleanStop = () => {
    const d = new Database(join(w.stateDir, "credd.db"), { readonly: true });
    try {
      return (d.prepare("SELECT value FROM meta WHERE key = 'clean_stop'").get() as { value: string } | undefined)?.value;
    } finally {
      d.close();
    }
  };
  for (let round = 0; round < SIGTERM_ROUNDS; round++) {
    const sig: NodeJS.Signals = rng.chance(0.25) ? "SIGINT" : "SIGTERM";
    const r = rng.next();
    const kind = r < 0.15 ? "at the trap" : r < 0.3 ? "at 'credd started'" : "timed";
    const delay = rng.int(0, to);
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    const stopBefore = cleanStop();
    const lockBefore = existsSync(join(w.stateDir, "credd.pid"));
    const t0 = performance.now();
    const p = spawnCredd(journal, ["--config", w.config, "run"], FAST);
    let when = kind;
    if (kind === "at the trap") await waitUntil("credd's code runs", () => creddCodeRuns(p.child.pid!) || !p.running(), 20_000);
    else if (kind === "at 'credd started'") await p.waitForLog((l) => l.msg === "credd started", 20_000).catch(() => undefined);
    else {
      await new Promise((res) => setTimeout(res, Math.max(0, delay - (performance.now() - t0))));
      when = `${delay} ms after spawn`;
      // Node still starting: the first moment that is credd's is right after.
      if (!creddCodeRuns(p.child.pid!) && p.running()) {
        await waitUntil("credd's code runs", () => creddCodeRuns(p.child.pid!) || !p.running(), 20_000);
        when += `, deferred to ${Math.round(performance.now() - t0)} ms, when credd's code ran`;
        kinds.deferred = (kinds.deferred ?? 0) + 1;
      }
    }
    p.kill(sig);
    // A signal that is lost leaves the daemon running: give it 10 s, then SIGKILL it.
    const ignored = setTimeout(() => p.kill("SIGKILL"), 10_000);
    const exit = await p.exited;
    clearTimeout(ignored);
    const what = `round ${round} (${sig} ${when}, ${p.lines.some((l) => l.msg === "credd started") ? "after" : "before"} 'credd started')`;
    assert.deepEqual(crashSigns(p.entry.stdout + p.entry.stderr), [], what);
    const problems: string[] = [];
    if (exit.signal === "SIGKILL") problems.push("the signal was lost, still running 10 s later");
    else if (exit.code !== 0) problems.push(`${JSON.stringify(exit)} (killed by the default action) ${p.entry.stderr.trim()}`);
    // Nothing left behind: no lock, the database says the run stopped cleanly, the invariants hold.
    // (After a round that went wrong, compare only what that round could change.)
    if (!lockBefore && existsSync(join(w.stateDir, "credd.pid"))) problems.push("the lock file is left behind");
    const stopAfter = cleanStop();
    if (stopBefore === "1" && stopAfter !== "1") problems.push(`clean_stop is ${stopAfter} in the database`);
    problems.push(...(await checkInvariants({ stateDir: w.stateDir, names: ["sig"], received: w.smtp.received })).violations);
    if (problems.length) bad.push(`${what}: ${problems.join(", ")}`);
  }
  console.log(`# SIGTERM during the start (seed ${lockSeed}, ${JSON.stringify(kinds)}): not a clean stop in ${bad.length} rounds: ${bad.join("; ")}`);
  assert.deepEqual(bad, []);
});
