// Atomic writes on a real folder: the mode is set at creation, and a failed write leaves neither
// the target changed nor a temp file behind.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { writeFileAtomic } from "../../src/files/atomic.js";
import { makeTempDir } from "../helpers/openssl.js";

test("writes with the mode given, replacing the file", () => {
  const dir = makeTempDir("credd-int-atomic-");
  const f = join(dir, "key.pem");
  writeFileSync(f, "old");
  writeFileAtomic(f, "new", 0o600);
  assert.equal(readFileSync(f, "utf8"), "new");
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ["key.pem"]);
});

test("a rename that fails (a folder in the way) leaves no temp file, however often it is retried", () => {
  const dir = makeTempDir("credd-int-atomic-");
  mkdirSync(join(dir, "cert-2.pem", "inside"), { recursive: true });
  for (let i = 0; i < 3; i++) assert.throws(() => writeFileAtomic(join(dir, "cert-2.pem"), "x", 0o644), /EISDIR|ENOTEMPTY|EEXIST|directory/i);
  assert.deepEqual(readdirSync(dir), ["cert-2.pem"]);
});
