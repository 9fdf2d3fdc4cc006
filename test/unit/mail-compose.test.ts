// Every email credd composes carries a Message-ID on the domain of the configured smtp.from address.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import { composeAlertDigest, composeTestAlert } from "../../src/mail/alert-mail.js";
import { composeCsrMail, composeRegistrationMail } from "../../src/mail/compose.js";
import type { OutgoingMail } from "../../src/mail/message.js";
import { smallConfigYaml } from "../helpers/credd.js";

const configFrom = (from: string) => parseConfig(smallConfigYaml({ smtpUrl: "smtp://mail.example:587", from }), "/etc/credd/credd.yaml");

const composers: Record<string, (config: ReturnType<typeof configFrom>) => OutgoingMail> = {
  "CSR email": (config) =>
    composeCsrMail({ config, cred: config.credentials[0]!, csrPem: "-----BEGIN CERTIFICATE REQUEST-----\n", kind: "enroll", reminder: 0 }),
  "CSR reminder": (config) =>
    composeCsrMail({ config, cred: config.credentials[0]!, csrPem: "x", kind: "renew", reminder: 1, firstSentAt: "2026-03-01" }),
  "registration email": (config) =>
    composeRegistrationMail({
      config,
      cred: config.credentials[0]!,
      certPem: "x",
      serial: "01",
      notBefore: "2026-03-01",
      notAfter: "2027-03-01",
      sha256: "ab",
    }),
  "alert digest": (config) =>
    composeAlertDigest(
      config,
      [{ credential: "fleet-prod", kind: "k", stage: "s", severity: "warning", title: "t", detail: "d", action: "a" }],
      [],
      new Date("2026-03-01T00:00:00Z"),
    ),
  "test alert": (config) => composeTestAlert(config, new Date("2026-03-01T00:00:00Z")),
};

describe("Message-IDs use the domain of smtp.from", () => {
  for (const [from, domain] of [
    ["credd <credd@partner.example>", "partner.example"],
    ["credd@Mail.Partner.Example", "mail.partner.example"],
  ] as const) {
    for (const [what, compose] of Object.entries(composers)) {
      test(`${what}, from ${from}: <credd.UUID@${domain}>`, () => {
        const id = compose(configFrom(from)).messageId;
        assert.match(id, /^<credd\.[0-9a-f-]{36}@[^>]+>$/);
        assert.equal(id.slice(id.indexOf("@") + 1, -1), domain, id);
      });
    }
  }
});
