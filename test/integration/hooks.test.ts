// runHooks with real processes: environment, exit codes, output tail, missing commands, timeouts
// that take the whole process group down, and arguments that never meet a shell.
// `/bin/sh -c` appears below only as the user's own choice of argv, the way a config could say it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hookEnvironment, MAX_OUTPUT_BYTES, runHooks, type HookEnv } from "../../src/files/hooks.js";
import { makeTempDir } from "../helpers/openssl.js";

const ENV: HookEnv = {
  credential: "fleet-prod",
  liveDir: "/var/lib/credd/credentials/fleet-prod/live",
  serial: "80A1B2C3D4E5F60708",
  version: 7,
  notAfter: "2027-03-01T12:00:00.000Z",
};

/** Alive and not a zombie: an orphan nobody reaps still answers kill(pid, 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitFor(file: string, ms = 2000): Promise<string> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const text = readFileSync(file, "utf8");
      if (text.endsWith("\n")) return text;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} was not written`);
}

let dir: string;
before(() => {
  dir = makeTempDir("credd-hooks-");
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("runHooks", () => {
  it("gives a real hook exactly PATH, LANG and the five CREDD_ variables", async () => {
    const out = join(dir, "env.txt");
    const script = join(dir, "dump-env.sh");
    writeFileSync(script, '#!/bin/sh\n# A deploy hook that writes down its whole environment, NUL-separated.\nenv -0 > "$1"\n', { mode: 0o755 });
    const saved = { ...process.env };
    // What credd's own environment holds under systemd: none of it is the hook's business.
    Object.assign(process.env, {
      CREDENTIALS_DIRECTORY: "/run/credentials/credd.service",
      NOTIFY_SOCKET: "/run/systemd/notify",
      WATCHDOG_USEC: "60000000",
      INVOCATION_ID: "0123456789abcdef",
      HOME: "/var/lib/credd",
      CREDD_FAKE_NOW: "2027-01-01T00:00:00Z",
      LANG: "fr_FR.UTF-8",
    });
    let r;
    try {
      [r] = await runHooks([[script, out]], ENV);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    assert.ok(r);
    assert.equal(r.ok, true, r.error ?? r.output);
    // The shell running the script adds its own PWD (and bash SHLVL, _): those do not come from credd.
    const vars = readFileSync(out, "utf8")
      .split("\0")
      .filter((v) => v && !/^(PWD|SHLVL|_)=/.test(v))
      .sort();
    assert.deepEqual(vars, [
      "CREDD_CREDENTIAL=fleet-prod",
      "CREDD_LIVE_DIR=/var/lib/credd/credentials/fleet-prod/live",
      "CREDD_NOT_AFTER=2027-03-01T12:00:00.000Z",
      "CREDD_SERIAL=80A1B2C3D4E5F60708",
      "CREDD_VERSION=7",
      "LANG=fr_FR.UTF-8",
      `PATH=${saved.PATH ?? ""}`,
    ]);
  });

  it("gives PATH and LANG defaults when credd has none, and drops everything else", () => {
    const env = hookEnvironment(ENV, { NOTIFY_SOCKET: "/run/systemd/notify", CREDENTIALS_DIRECTORY: "/run/credentials/x", HOME: "/var/lib/credd" });
    assert.deepEqual(Object.keys(env).sort(), [
      "CREDD_CREDENTIAL",
      "CREDD_LIVE_DIR",
      "CREDD_NOT_AFTER",
      "CREDD_SERIAL",
      "CREDD_VERSION",
      "LANG",
      "PATH",
    ]);
    assert.equal(env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    assert.equal(env.LANG, "C.UTF-8");
  });

  it("records a non-zero exit as not ok and still runs the next hook", async () => {
    const results = await runHooks(
      [
        ["/bin/sh", "-c", "echo failing >&2; exit 3"],
        ["/bin/echo", "second"],
      ],
      ENV,
    );
    assert.equal(results.length, 2);
    const [first, second] = results;
    assert.equal(first?.exitCode, 3);
    assert.equal(first?.ok, false);
    assert.equal(first?.error, undefined);
    assert.equal(first?.output, "failing\n");
    assert.equal(second?.ok, true);
    assert.equal(second?.output, "second\n");
  });

  it("captures stdout and stderr together", async () => {
    const [r] = await runHooks([["/bin/sh", "-c", "echo out; sleep 0.05; echo err >&2; sleep 0.05; echo out2"]], ENV);
    assert.equal(r?.output, "out\nerr\nout2\n");
  });

  it("keeps only the last 4 KiB of output", async () => {
    // About 10.9 KiB of numbered lines.
    const script = 'i=0; while [ $i -lt 1200 ]; do echo "line $i"; i=$((i+1)); done';
    const [r] = await runHooks([["/bin/sh", "-c", script]], ENV);
    assert.equal(r?.ok, true);
    const output = r?.output ?? "";
    assert.ok(Buffer.byteLength(output) <= MAX_OUTPUT_BYTES, `${Buffer.byteLength(output)} bytes`);
    assert.ok(Buffer.byteLength(output) > MAX_OUTPUT_BYTES - 16);
    assert.ok(output.endsWith("line 1198\nline 1199\n"));
    assert.ok(!output.includes("line 0\n"));
  });

  it("does not cut a UTF-8 character in half at the front of the tail", async () => {
    // 3000 × "é" (2 bytes): the 4096-byte cut lands on a character boundary only by luck; then one ASCII byte shifts it.
    const [r] = await runHooks([["/bin/sh", "-c", 'i=0; while [ $i -lt 3000 ]; do printf "é"; i=$((i+1)); done; printf x']], ENV);
    const output = r?.output ?? "";
    assert.ok(!output.includes("\ufffd"));
    assert.ok(output.endsWith("éx"));
    assert.ok(Buffer.byteLength(output) <= MAX_OUTPUT_BYTES);
  });

  it("reports a missing command as not ok with 'command not found', without throwing, and goes on", async () => {
    const results = await runHooks([["credd-no-such-command-x1"], ["/nonexistent/bin/reload"], ["/bin/true"]], ENV);
    assert.equal(results[0]?.ok, false);
    assert.equal(results[0]?.exitCode, null);
    assert.equal(results[0]?.error, "command not found: credd-no-such-command-x1");
    assert.match(results[1]?.error ?? "", /not found: \/nonexistent\/bin\/reload/);
    assert.equal(results[2]?.ok, true);
  });

  it("reports a file that is not executable, and an empty argv, as not ok", async () => {
    const results = await runHooks([[join(dir)], []], ENV);
    assert.equal(results[0]?.ok, false);
    assert.match(results[0]?.error ?? "", /permission denied/);
    assert.equal(results[1]?.ok, false);
    assert.match(results[1]?.error ?? "", /empty hook/);
  });

  it("kills a hook that runs past its timeout, and the processes it started", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const started = Date.now();
    const run = runHooks([["/bin/sh", "-c", 'sleep 30 & echo $! > "$1"; wait', "hook", pidFile]], ENV, { timeoutMs: 300 });
    const grandchild = Number((await waitFor(pidFile)).trim());
    assert.ok(alive(grandchild), "the grandchild sleep should be running before the timeout");
    const [r] = await run;
    assert.ok(Date.now() - started < 3000, "SIGTERM was enough: no wait for the SIGKILL grace period");
    assert.equal(r?.ok, false);
    assert.match(r?.error ?? "", /timed out after 300 ms/);
    assert.equal(r?.signal, "SIGTERM");
    assert.equal(alive(grandchild), false, `grandchild ${grandchild} survived the timeout`);
  });

  it("follows SIGTERM with SIGKILL when the hook ignores it", async () => {
    const pidFile = join(dir, "stubborn.pid");
    const run = runHooks([["/bin/sh", "-c", 'trap "" TERM; sleep 30 & echo $! > "$1"; wait', "hook", pidFile]], ENV, {
      timeoutMs: 200,
      killGraceMs: 300,
    });
    const grandchild = Number((await waitFor(pidFile)).trim());
    const [r] = await run;
    assert.equal(r?.ok, false);
    assert.match(r?.error ?? "", /timed out after 200 ms: sent SIGTERM to its process group, then SIGKILL after 300 ms/);
    assert.equal(r?.signal, "SIGKILL");
    // SIGKILL has been sent; give the kernel a moment to finish the job.
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(alive(grandchild), false);
  });

  it("passes shell metacharacters literally: no shell ever sees them", async () => {
    const pwned = join(dir, "pwned");
    const args = [`$(touch ${pwned})`, `; touch ${pwned}`, `\`touch ${pwned}\``, "| cat", "&& true", "*"];
    const [r] = await runHooks([["/bin/echo", ...args]], ENV);
    assert.equal(r?.ok, true);
    assert.equal(r?.output, `${args.join(" ")}\n`);
    assert.equal(existsSync(pwned), false);
  });

  it("measures duration with the injected clock and copies the argv", async () => {
    const ticks = [1000, 1250];
    const argv = ["/bin/true"];
    const [r] = await runHooks([argv], ENV, { now: () => ticks.shift() ?? 9999 });
    assert.equal(r?.durationMs, 250);
    assert.deepEqual(r?.argv, argv);
    assert.notEqual(r?.argv, argv);
  });

  it("does not wait for a background process the hook leaves holding its output", async () => {
    const pidFile = join(dir, "daemon.pid");
    const started = Date.now();
    const [r] = await runHooks([["/bin/sh", "-c", 'sleep 5 & echo $! > "$1"; echo started', "hook", pidFile]], ENV, { timeoutMs: 10_000 });
    assert.equal(r?.ok, true);
    assert.equal(r?.output, "started\n");
    assert.ok(Date.now() - started < 3000);
    const daemon = Number(readFileSync(pidFile, "utf8").trim());
    // A hook that started something on purpose keeps it: only a timeout kills the group.
    assert.equal(alive(daemon), true);
    process.kill(daemon, "SIGKILL");
  });
});
