// sd_listen_fds(3) as credd reads it: only for this pid, fds from 3 on, named by LISTEN_FDNAMES,
// the variables removed so deploy hooks do not take the sockets for theirs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { listenFdsFrom } from "../../src/daemon/listen-fds.js";

test("names map to fds from 3 on; each fd is taken once; the variables are removed", () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: "42", LISTEN_FDS: "3", LISTEN_FDNAMES: "fleet-prod:fleet-test:fleet-prod", PATH: "/bin" };
  const fds = listenFdsFrom(env, 42);
  assert.deepEqual(env, { PATH: "/bin" });
  assert.deepEqual(fds.names(), ["fleet-prod", "fleet-test"]);
  assert.equal(fds.taken("fleet-test"), false);
  assert.equal(fds.take("fleet-test"), 4);
  assert.equal(fds.taken("fleet-test"), true);
  assert.equal(fds.take("fleet-test"), undefined, "once");
  assert.equal(fds.take("fleet-prod"), 3);
  assert.equal(fds.take("fleet-prod"), 5, "the second socket of that name");
  assert.equal(fds.take("other"), undefined);
});

test("without LISTEN_FDNAMES a socket is named unknown, as systemd names it", () => {
  const fds = listenFdsFrom({ LISTEN_PID: "7", LISTEN_FDS: "1" }, 7);
  assert.deepEqual(fds.names(), ["unknown"]);
  assert.equal(fds.take("unknown"), 3);
});

test("sockets meant for another pid, or none: no fd, and a reason for the error", () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: "41", LISTEN_FDS: "1", LISTEN_FDNAMES: "fleet-prod" };
  const other = listenFdsFrom(env, 42);
  assert.deepEqual(env, {}, "removed all the same");
  assert.equal(other.take("fleet-prod"), undefined);
  assert.match(other.why, /LISTEN_PID is 41, not credd's pid 42/);
  assert.match(listenFdsFrom({}, 42).why, /LISTEN_FDS is not set/);
  assert.match(listenFdsFrom({ LISTEN_PID: "42", LISTEN_FDS: "x" }, 42).why, /LISTEN_FDS is "x"/);
});
