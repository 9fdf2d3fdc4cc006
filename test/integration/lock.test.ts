// The state folder's lock (src/daemon/lock.ts) on real files and real processes: exactly one holder
// however many start at once, stale or not; released by the kernel when the holder is SIGKILLed;
// the refusal names the folder and the holder's pid.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { acquireLock } from "../../src/daemon/lock.js";
import { CreddError } from "../../src/errors.js";
import { makeTempDir } from "../helpers/openssl.js";

const HOLDER = fileURLToPath(new URL("../helpers/lock-holder.ts", import.meta.url));

/** A lock-holder process (test/helpers/lock-holder.ts): send it "go" or "release", read what it says. */
interface Holder {
  child: ChildProcess;
  /** The next line it prints. */
  next(): Promise<string>;
  send(cmd: "go" | "release"): void;
  exited: Promise<void>;
}

async function startHolder(stateDir: string): Promise<Holder> {
  const child = spawn(process.execPath, ["--import", "tsx", HOLDER, stateDir], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const exited = new Promise<void>((r) =>
    child.on("close", () => {
      closed = true;
      wake?.();
      r();
    }),
  );
  const next = async (): Promise<string> => {
    while (lines.length === 0) {
      if (closed) throw new Error(`lock holder ${child.pid} exited`);
      await new Promise<void>((r) => (wake = r));
    }
    return lines.shift()!;
  };
  const h: Holder = { child, next, send: (cmd) => child.stdin!.write(`${cmd}\n`), exited };
  assert.equal(await h.next(), "ready");
  return h;
}

test("held: a second taker in this process is refused with the folder and the pid; released, the next one takes it", () => {
  const dir = makeTempDir("credd-lock-");
  const a = acquireLock(dir);
  assert.equal(readFileSync(join(dir, "credd.pid"), "utf8"), `${process.pid}\n`);
  assert.throws(
    () => acquireLock(dir, { waitMs: 0 }),
    (err: unknown) =>
      err instanceof CreddError &&
      err.code === "LOCKED" &&
      err.message.includes(`another credd run (pid ${process.pid}) is already using ${dir}`) &&
      /stop it first/.test(err.message),
  );
  a.release();
  assert.ok(!existsSync(join(dir, "credd.pid")), "the pid file goes with the lock");
  const b = acquireLock(dir);
  b.release();
  b.release(); // twice is harmless
});

test("a pid file left behind (a dead pid, garbage, empty) decides nothing: the lock is free, the pid file replaced", () => {
  for (const left of ["999999999\n", "not a pid", ""]) {
    const dir = makeTempDir("credd-lock-stale-");
    writeFileSync(join(dir, "credd.pid"), left);
    const l = acquireLock(dir);
    assert.equal(readFileSync(join(dir, "credd.pid"), "utf8"), `${process.pid}\n`, JSON.stringify(left));
    l.release();
  }
});

test("a pid file naming a live process that does not hold the lock (a reused pid) does not block the start", () => {
  const dir = makeTempDir("credd-lock-reused-");
  writeFileSync(join(dir, "credd.pid"), "1\n"); // init: alive, and no credd
  const l = acquireLock(dir, { waitMs: 0 });
  l.release();
});

test("another process holds it: refused naming that pid; SIGKILL it and the lock is free at once", { timeout: 60_000 }, async () => {
  const dir = makeTempDir("credd-lock-proc-");
  const h = await startHolder(dir);
  h.send("go");
  assert.equal(await h.next(), "locked");
  assert.throws(
    () => acquireLock(dir, { waitMs: 0 }),
    (err: unknown) => err instanceof CreddError && err.code === "LOCKED" && err.message.includes(`(pid ${h.child.pid}) is already using ${dir}`),
  );
  h.child.kill("SIGKILL");
  await h.exited;
  assert.equal(readFileSync(join(dir, "credd.pid"), "utf8").trim(), String(h.child.pid), "its pid file is left behind");
  const l = acquireLock(dir, { waitMs: 0 });
  assert.equal(readFileSync(join(dir, "credd.pid"), "utf8").trim(), String(process.pid));
  l.release();
});

test("processes taking the lock at the same moment, over a pid file left by a dead holder: exactly one holds it, every time", {
  timeout: 120_000,
}, async () => {
  const dir = makeTempDir("credd-lock-race-");
  // The pid of a process that is gone, as a SIGKILLed credd leaves it.
  const gone = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => gone.on("close", r));
  const holders = await Promise.all(Array.from({ length: 6 }, () => startHolder(dir)));
  try {
    for (let round = 0; round < 60; round++) {
      writeFileSync(join(dir, "credd.pid"), `${gone.pid}\n`);
      for (const h of holders) h.send("go"); // one tick: they all take it at once
      const said = await Promise.all(holders.map((h) => h.next()));
      const winners = holders.filter((_, i) => said[i] === "locked");
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(said)}`);
      const pid = winners[0]!.child.pid;
      for (const [i, line] of said.entries()) {
        if (line !== "locked")
          assert.match(line, new RegExp(`^refused: another credd run \\(pid ${pid}\\) is already using `), `round ${round}, holder ${i}`);
      }
      assert.equal(readFileSync(join(dir, "credd.pid"), "utf8"), `${pid}\n`);
      winners[0]!.send("release");
      assert.equal(await winners[0]!.next(), "released");
      assert.ok(!existsSync(join(dir, "credd.pid")));
    }
  } finally {
    for (const h of holders) h.child.kill("SIGKILL");
    await Promise.all(holders.map((h) => h.exited));
  }
});
