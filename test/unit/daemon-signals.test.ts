// The signal trap of `credd run`, driven by an EventEmitter standing in for `process` (the real
// process is covered by test/reliability/lock.test.ts, which signals the built binary mid-start).
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { trapRunSignals, type SignalSource } from "../../src/daemon/signals.js";

class FakeProcess extends EventEmitter implements SignalSource {
  readonly pid = 4242;
  readonly killed: [number, NodeJS.Signals][] = [];
  kill(pid: number, sig: NodeJS.Signals) {
    this.killed.push([pid, sig]);
    return true;
  }
  send(sig: NodeJS.Signals) {
    this.emit(sig, sig);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test("a stop signal before anyone listens is kept and handed over once", async () => {
  const p = new FakeProcess();
  const s = trapRunSignals(p);
  assert.equal(s.stop, undefined);
  p.send("SIGINT");
  assert.equal(s.stop, "SIGINT");
  const got: string[] = [];
  s.onStop((sig) => got.push(sig));
  assert.deepEqual(got, [], "not from inside onStop");
  await tick();
  assert.deepEqual(got, ["SIGINT"]);
  assert.deepEqual(p.killed, []);
});

test("a stop signal after onStop goes to the listener at once", () => {
  const p = new FakeProcess();
  const s = trapRunSignals(p);
  const got: string[] = [];
  s.onStop((sig) => got.push(sig));
  p.send("SIGTERM");
  assert.deepEqual(got, ["SIGTERM"]);
  assert.equal(s.stop, "SIGTERM");
});

test("the listeners stay installed from the trap on (no gap), and a second stop signal gets its default action", () => {
  const p = new FakeProcess();
  const s = trapRunSignals(p);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) assert.equal(p.listenerCount(sig), 1, sig);
  const got: string[] = [];
  s.onStop((sig) => got.push(sig));
  p.send("SIGTERM");
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) assert.equal(p.listenerCount(sig), 1, `${sig} still trapped while stopping`);
  p.send("SIGINT");
  assert.deepEqual(got, ["SIGTERM"], "the stop is asked for once");
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) assert.equal(p.listenerCount(sig), 0, `${sig} released`);
  assert.deepEqual(p.killed, [[4242, "SIGINT"]], "re-raised with no handler: the default action");
});

test("SIGHUP: one that came during the start is replayed once; later ones each reload", async () => {
  const p = new FakeProcess();
  const s = trapRunSignals(p);
  p.send("SIGHUP");
  p.send("SIGHUP");
  let reloads = 0;
  s.onReload(() => reloads++);
  await tick();
  assert.equal(reloads, 1, "the config is read again once");
  p.send("SIGHUP");
  assert.equal(reloads, 2);
  assert.equal(s.stop, undefined, "a SIGHUP is no stop");
});

test("release() hands every signal back to its default action", () => {
  const p = new FakeProcess();
  const s = trapRunSignals(p);
  s.release();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) assert.equal(p.listenerCount(sig), 0, sig);
});
