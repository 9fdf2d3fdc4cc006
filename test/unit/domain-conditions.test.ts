// Persistent conditions are reported when they start, change and clear; repeats report nothing.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Conditions, errorSignature } from "../../src/domain/conditions.js";

const t = (s: number) => new Date(Date.UTC(2026, 2, 1, 10, 0, s));

describe("Conditions", () => {
  test("new, repeat, changed, cleared", () => {
    const c = new Conditions();
    const steps: [string, string, string][] = [
      ["a", "ENOSPC", "new"],
      ["a", "ENOSPC", "repeat"],
      ["a", "ENOSPC", "repeat"],
      ["b", "ENOSPC", "new"],
      ["a", "SQLITE_BUSY", "changed"],
      ["a", "SQLITE_BUSY", "repeat"],
    ];
    for (const [i, [key, sig, want]] of steps.entries()) assert.equal(c.see(key, sig, `${sig} #${i}`, t(i)).report, want, `step ${i}`);
    const a = c.clear("a");
    assert.deepEqual(a, { signature: "SQLITE_BUSY", message: "SQLITE_BUSY #5", since: t(4), attempts: 2 });
    assert.equal(c.clear("a"), undefined, "cleared once");
    assert.deepEqual(c.keys(), ["b"]);
    assert.equal(c.see("a", "SQLITE_BUSY", "again", t(9)).report, "new", "after clearing, a new condition");
  });

  test("changed carries the previous condition", () => {
    const c = new Conditions();
    c.see("f", "ENOSPC", "disk full", t(0));
    c.see("f", "ENOSPC", "disk full", t(1));
    const s = c.see("f", "EACCES", "permission denied", t(2));
    assert.equal(s.report, "changed");
    assert.ok(s.report === "changed" && s.previous.since.getTime() === t(0).getTime() && s.previous.attempts === 2);
  });
});

describe("errorSignature", () => {
  for (const [code, message, want] of [
    ["ENOSPC", "ENOSPC: no space left on device, open '/s/.cert-2.pem.0a1b2c3d4e5f.tmp'", "ENOSPC"],
    [undefined, "cannot write /s/.cert-2.pem.0a1b2c3d4e5f.tmp", "cannot write /s/.cert-N.pem.*.tmp"],
    [undefined, "held by pid 4711", "held by pid N"],
  ] as const) {
    test(`${code ?? "no code"}: ${message} → ${want}`, () => assert.equal(errorSignature(code, message), want));
  }
});
