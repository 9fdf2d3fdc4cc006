// The `mailbox:` section: the example with its defaults, and one refusal per rule, each
// naming the file, the line, the key and the fix. References (Maildir, secret files) at load.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ConfigInvalidError, parseConfig } from "../../src/config/load.js";
import { checkReferences } from "../../src/config/references.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "credd-mailbox-config-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = path.join(tmp, "credd.yaml");

const BASE = `state_dir: ${tmp}/state
smtp: { url: "smtp://mail.partner.example:587", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@mpsa.com }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;

const parse = (mailbox: string) => parseConfig(`${BASE}mailbox:\n${mailbox}`, file, {});

function problems(mailbox: string): string[] {
  try {
    parse(mailbox);
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.message.split("\n");
  }
  assert.fail("the config was accepted");
}

describe("mailbox config", () => {
  test("absent: the feature is off", () => {
    assert.equal(parseConfig(BASE, file, {}).mailbox, undefined);
  });

  test("the issue's example, with every default", () => {
    const c = parse(`  imap:
    host: imap.partner.example
    port: 993
    user: credd@partner.example
    password_file: /etc/credd/imap-password
    ca_file: /etc/credd/imap-ca.pem
    folder: INBOX
  senders: ["@mpsa.com"]
  download_hosts: []
  done_folder: credd/done
  refused_folder: credd/refused
`);
    assert.deepEqual(c.mailbox, {
      imap: {
        host: "imap.partner.example",
        port: 993,
        user: "credd@partner.example",
        password_file: "/etc/credd/imap-password",
        ca_file: "/etc/credd/imap-ca.pem",
        folder: "INBOX",
      },
      senders: ["@mpsa.com"],
      download_hosts: [],
      done_folder: "credd/done",
      refused_folder: "credd/refused",
    });
    const d = parse("  maildir: /var/mail/credd\n").mailbox;
    assert.deepEqual(d, {
      maildir: "/var/mail/credd",
      senders: ["@mpsa.com"],
      download_hosts: [],
      done_folder: "credd/done",
      refused_folder: "credd/refused",
    });
    const t = parse("  imap: { host: outlook.office365.com, user: credd@partner.example, access_token_file: token }\n").mailbox!.imap!;
    assert.equal(t.port, 993);
    assert.equal(t.folder, "INBOX");
    assert.equal(t.access_token_file, path.join(tmp, "token"), "relative to the config file");
  });

  const cases: Array<[string, string, RegExp]> = [
    ["no source", "  senders: ['@mpsa.com']\n", /credd\.yaml:\d+: mailbox\.imap: is missing: the mailbox section needs a source \(fix: add imap:/],
    [
      "two sources",
      "  maildir: /var/mail/credd\n  imap: { host: h.example, user: u, password_file: /p }\n",
      /mailbox\.maildir: is set beside mailbox\.imap: credd reads one source \(fix: keep either/,
    ],
    [
      "a password in the YAML",
      "  imap: { host: h.example, user: u, password: hunter2 }\n",
      /:\d+: mailbox\.imap\.password: secrets only come from files/,
    ],
    [
      "no password or token",
      "  imap: { host: h.example, user: u }\n",
      /mailbox\.imap\.password_file: is missing: credd needs a password \(or an OAuth2 token\)/,
    ],
    [
      "both password and token",
      "  imap: { host: h.example, user: u, password_file: /p, access_token_file: /t }\n",
      /mailbox\.imap\.access_token_file: is set beside password_file/,
    ],
    [
      "a URL as host",
      "  imap: { host: 'imaps://imap.partner.example:993', user: u, password_file: /p }\n",
      /mailbox\.imap\.host: is not a host name, got "imaps:\/\/imap\.partner\.example:993" \(fix: write the host name alone, e\.g\. "imap\.partner\.example"\)/,
    ],
    [
      "a port out of range",
      "  imap: { host: h.example, port: 99999, user: u, password_file: /p }\n",
      /mailbox\.imap\.port: must be a whole number of port from 1 to 65535/,
    ],
    [
      "a sender that is no address",
      "  maildir: /m\n  senders: [mpsa.com]\n",
      /mailbox\.senders\[0\]: is not an email address: it has no @, got "mpsa\.com"/,
    ],
    [
      "a download host with a scheme",
      "  maildir: /m\n  download_hosts: ['https://dl.example/x']\n",
      /mailbox\.download_hosts\[0\]: is not a host name.*fix: write the host name alone, e\.g\. "dl\.example"/,
    ],
    [
      "one folder for both",
      "  maildir: /m\n  done_folder: credd\n  refused_folder: credd\n",
      /mailbox\.refused_folder: is the same folder as done_folder/,
    ],
    ["a folder climbing out", "  maildir: /m\n  done_folder: ../x\n", /mailbox\.done_folder: is not a usable folder name, got "\.\.\/x"/],
    ["an unknown key", "  maildir: /m\n  download_host: [a.example]\n", /mailbox\.download_host: unknown key \(did you mean "download_hosts"\?\)/],
  ];
  for (const [name, yaml, re] of cases) {
    test(`refused: ${name}`, () => {
      const lines = problems(yaml);
      assert.ok(
        lines.some((l) => re.test(l) && l.startsWith(file)),
        `${re}\n${lines.join("\n")}`,
      );
    });
  }

  test("references: a missing Maildir and a missing password file are named with their fix", () => {
    const c = parse(`  imap: { host: h.example, user: u, password_file: ${tmp}/nope }\n`);
    const r = checkReferences(c);
    const p = r.problems.find((x) => x.at.label === "mailbox.imap.password_file");
    assert.ok(p, JSON.stringify(r.problems));
    assert.match(p.problem, /does not exist; it should hold the IMAP password/);
    const m = checkReferences(parse(`  maildir: ${tmp}/Maildir\n`));
    const q = m.problems.find((x) => x.at.label === "mailbox.maildir");
    assert.ok(q, JSON.stringify(m.problems));
    assert.match(q.fix, /create it .* or correct mailbox\.maildir/);
  });
});
