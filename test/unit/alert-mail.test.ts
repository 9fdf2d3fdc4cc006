// The digest email: subject names the worst severity and credential, body grouped by credential.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import type { Situation } from "../../src/domain/alerts.js";
import { composeAlertDigest } from "../../src/mail/alert-mail.js";

const config = parseConfig(
  `smtp: { url: "smtp://mail.example:587", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example], critical_to: [pager@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`,
  "/etc/credd/credd.yaml",
);
const s = (credential: string | null, kind: string, severity: "warning" | "critical", title: string): Situation => ({
  credential,
  kind,
  stage: "x",
  severity,
  title,
  detail: `${kind} detail`,
  action: `${kind} action`,
});

test("subject: worst severity first, with the count of the rest; critical_to added for critical", () => {
  const m = composeAlertDigest(
    config,
    [
      s("fleet-test", "token-failing", "warning", "token refresh failing"),
      s("fleet-prod", "certificate-expiry", "critical", "certificate expires in 3 days"),
    ],
    [{ credential: "fleet-test", title: "deploy hook failed", opened_at: "2026-01-01T00:00:00Z" }],
    new Date("2026-06-01T00:00:00Z"),
  );
  assert.equal(m.subject, "[credd] CRITICAL fleet-prod: certificate expires in 3 days (+2 more)");
  assert.deepEqual(m.to, ["ops@partner.example", "pager@partner.example"]);
  assert.match(
    m.text,
    /== fleet-test ==\nWARNING: token refresh failing\n {2}token-failing detail\n {2}what to do: token-failing action\n\nRESOLVED: deploy hook failed/,
  );
  assert.match(m.text, /== fleet-prod ==\nCRITICAL: certificate expires in 3 days/);
});

test("a digest of only resolved alerts says RESOLVED and goes to alerts.to only", () => {
  const m = composeAlertDigest(config, [], [{ credential: null, title: "emails are not going out", opened_at: "t" }], new Date());
  assert.equal(m.subject, "[credd] RESOLVED credd: emails are not going out");
  assert.deepEqual(m.to, ["ops@partner.example"]);
});
