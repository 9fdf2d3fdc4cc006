// A reader that stops reading early (`credd list | head -1`), with the real binary: credd stops
// writing and exits with the code the command has anyway, with nothing on stderr (no EPIPE stack).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { openDb } from "../../src/store/db.js";
import { CREDD_BIN, creddEnv, runCredd, writeManyCredentialsConfig } from "../helpers/credd.js";
import { makeTempDir } from "../helpers/openssl.js";

/**
 * Runs credd with stdout a pipe whose reader closes it: at once (`firstChunk` false: every write
 * meets the closed pipe), or after the first chunk it reads (as `head -1` does). stderr is read whole.
 */
function runClosingEarly(
  args: string[],
  firstChunk: boolean,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; read: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CREDD_BIN, ...args], { env: creddEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let read = 0;
    let stderr = "";
    if (firstChunk)
      child.stdout.once("data", (d: Buffer) => {
        read = d.length;
        child.stdout.destroy();
      });
    else child.stdout.destroy();
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`credd ${args.join(" ")} did not finish\n${stderr}`));
    }, 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, read, stderr });
    });
  });
}

test("stdout closed early: list, status (text and --json, more than a pipe holds) and doctor exit as usual, quietly", async () => {
  const dir = makeTempDir("credd-e2e-pipe-");
  const config = writeManyCredentialsConfig(dir, 400);
  openDb(join(dir, "state")).close();

  for (const args of [["list"], ["status"], ["status", "--json"], ["doctor", "fleet-000001"]]) {
    const full = await runCredd(["--config", config, ...args]);
    assert.ok(full.stdout.length > 0, `${args.join(" ")} writes something`);
    for (const firstChunk of [false, true]) {
      const what = `${args.join(" ")}, reader closing ${firstChunk ? "after its first chunk" : "at once"}`;
      const r = await runClosingEarly(["--config", config, ...args], firstChunk);
      assert.equal(r.stderr, "", `${what}: nothing on stderr`);
      assert.equal(r.signal, null, what);
      assert.equal(r.code, full.code, `${what}: the exit code of a full run`);
      if (firstChunk && args[0] === "status") assert.ok(r.read < full.stdout.length, `${what}: the reader did stop early`);
    }
  }
});
