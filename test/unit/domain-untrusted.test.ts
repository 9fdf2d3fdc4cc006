// escapeName and visible: how names someone else chose are shown (emails, log lines, status). Table-driven.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { escapeName, NAME_MAX_CHARS, visible } from "../../src/domain/untrusted.js";

describe("escapeName", () => {
  const cases: [string, string | Buffer, string][] = [
    ["a plain name stays as it is", "MZP128745.pem", "MZP128745.pem"],
    ["spaces and accents stay", "certificat signé.pem", "certificat signé.pem"],
    ["CR and LF become \\r \\n", "a\r\nBcc: x@evil.example", "a\\r\\nBcc: x@evil.example"],
    ["tab and NUL", "a\tb\0c", "a\\tb\\0c"],
    ["an ANSI escape", "\x1b[2Jx", "\\x1b[2Jx"],
    ["DEL and a C1 control", "a\x7fb\u0085c", "a\\x7fb\\x85c"],
    ["a bidi override (shows .exe as .pem)", "cert\u202Egpj.exe", "cert\\u202egpj.exe"],
    ["zero-width space and line separator", "a\u200bb\u2028c", "a\\u200bb\\u2028c"],
    ["a backslash is doubled, so \\n typed is not a newline shown", "a\\nb", "a\\\\nb"],
    ["bytes that are not UTF-8", Buffer.from([0x61, 0xff, 0x62, 0xc3]), "a\\xffb\\xc3"],
    ["UTF-8 bytes", Buffer.from("é\n", "utf8"), "é\\n"],
  ];
  for (const [what, input, want] of cases) it(what, () => assert.equal(escapeName(input), want));

  it("caps the length with an ellipsis, never cutting an escape", () => {
    const long = escapeName("n".repeat(300));
    assert.equal(long.length, NAME_MAX_CHARS);
    assert.ok(long.endsWith("…"));
    const esc = escapeName(`${"n".repeat(NAME_MAX_CHARS - 3)}\x1b\x1b`);
    assert.equal(esc, `${"n".repeat(NAME_MAX_CHARS - 3)}…`, "the escape that does not fit whole is left out");
    assert.equal(escapeName("abcdef", 4), "abc…");
  });

  it("two different names look different below the cap", () => {
    assert.notEqual(escapeName("a\nb"), escapeName("a\\nb"));
  });
});

describe("visible", () => {
  const cases: [string, string, string][] = [
    ["plain text", "certificate 1A refused", "certificate 1A refused"],
    ["control characters", "x\r\ny\x1b", "x\\r\\ny\\x1b"],
    ["backslashes kept", "C:\\path", "C:\\path"],
  ];
  for (const [what, input, want] of cases) it(what, () => assert.equal(visible(input), want));

  it("is idempotent, and leaves escapeName's output as it is", () => {
    for (const s of ["a\r\nb", "\x1b[1m\u202e", "x\\ny"]) {
      assert.equal(visible(visible(s)), visible(s));
      assert.equal(visible(escapeName(s)), escapeName(s));
    }
  });
});
