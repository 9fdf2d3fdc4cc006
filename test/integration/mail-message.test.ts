// The pure parts of src/mail: Message-IDs and the nodemailer options built from the SMTP config
// (the TLS rules that a real server cannot show, such as keeping the system roots).
import assert from "node:assert/strict";
import tls from "node:tls";
import { describe, test } from "node:test";
import type { SmtpConfig } from "../../src/config/types.js";
import { newMessageId } from "../../src/mail/message.js";
import { smtpTransportOptions } from "../../src/mail/smtp.js";

describe("newMessageId", () => {
  const uuid = () => "123e4567-e89b-12d3-a456-426614174000";
  for (const [from, want] of [
    ["credd <credd@partner.example>", "<credd.123e4567-e89b-12d3-a456-426614174000@partner.example>"],
    ["credd@Mail.Partner.Example", "<credd.123e4567-e89b-12d3-a456-426614174000@mail.partner.example>"],
    ['"Ops, credd" <credd@partner.example>', "<credd.123e4567-e89b-12d3-a456-426614174000@partner.example>"],
    ["credd", "<credd.123e4567-e89b-12d3-a456-426614174000@localhost>"],
    ["credd <credd@bad domain>", "<credd.123e4567-e89b-12d3-a456-426614174000@localhost>"],
  ] as const) {
    test(`${from} → ${want}`, () => assert.equal(newMessageId(from, uuid), want));
  }

  test("is unique by default", () => {
    const a = newMessageId("credd@partner.example");
    const b = newMessageId("credd@partner.example");
    assert.match(a, /^<credd\.[0-9a-f-]{36}@partner\.example>$/);
    assert.notEqual(a, b);
  });
});

describe("smtpTransportOptions", () => {
  const base: SmtpConfig = {
    url: "smtp://mail.partner.example",
    secure: false,
    host: "mail.partner.example",
    port: 0,
    from: "credd <credd@partner.example>",
    tls: "starttls",
    timeout_ms: 30_000,
  };
  const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

  test("smtp:// requires STARTTLS on port 587 and bounds every wait", () => {
    const o = smtpTransportOptions(base, {});
    assert.equal(o.port, 587);
    assert.equal(o.secure, false);
    assert.equal(o.requireTLS, true);
    assert.equal(o.ignoreTLS, false);
    assert.equal(o.connectionTimeout, 30_000);
    assert.equal(o.greetingTimeout, 30_000);
    assert.ok(o.socketTimeout !== undefined && o.socketTimeout >= 30_000 && o.socketTimeout <= 31_000);
    assert.equal(o.auth, undefined);
    assert.notEqual(o.tls?.rejectUnauthorized, false);
    assert.equal(o.tls?.ca, undefined, "without a CA file Node's own roots apply");
  });

  test("tls: none turns STARTTLS off explicitly", () => {
    const o = smtpTransportOptions({ ...base, tls: "none" }, {});
    assert.equal(o.requireTLS, false);
    assert.equal(o.ignoreTLS, true);
  });

  test("smtps:// is implicit TLS on port 465", () => {
    const o = smtpTransportOptions({ ...base, url: "smtps://mail.partner.example", secure: true, tls: "implicit" }, {});
    assert.equal(o.port, 465);
    assert.equal(o.secure, true);
    assert.equal(o.requireTLS, false);
    assert.equal(o.ignoreTLS, false);
  });

  test("a given CA is trusted beside the system roots, never instead of them", () => {
    const o = smtpTransportOptions({ ...base, port: 2525 }, {}, { ca: CA });
    assert.equal(o.port, 2525);
    const ca = o.tls?.ca;
    assert.ok(Array.isArray(ca));
    assert.equal(ca.length, tls.rootCertificates.length + 1);
    assert.deepEqual(ca.slice(0, -1), [...tls.rootCertificates]);
    assert.equal(ca.at(-1), CA);
    assert.notEqual(o.tls?.rejectUnauthorized, false);
  });

  test("auth only when a user is set", () => {
    assert.equal(smtpTransportOptions(base, { password: "pw" }).auth, undefined);
    assert.deepEqual(smtpTransportOptions({ ...base, user: "credd" }, { password: "pw" }).auth, { user: "credd", pass: "pw" });
  });
});
