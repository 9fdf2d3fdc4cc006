// Config loading: the DESIGN.md example, defaults, and one refusal per rule (table-driven).

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { ConfigError } from "../../src/errors.js";
import { ConfigInvalidError, defaultConfigPath, loadConfig, parseConfig, readSecretFile, resolveSecretPath } from "../../src/config/load.js";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "credd-config-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;

/** A fresh folder holding credd.yaml with `text`; returns the file's path. */
function writeConfig(text: string): string {
  const dir = path.join(tmpRoot, `c${dirCount++}`);
  fs.mkdirSync(dir);
  const file = path.join(dir, "credd.yaml");
  fs.writeFileSync(file, text);
  return file;
}

const NO_ENV: NodeJS.ProcessEnv = {};

// The example from DESIGN.md's Interfaces section, verbatim.
const DESIGN_EXAMPLE = `state_dir: /var/lib/credd            # SQLite database, keys, certificates
runtime_dir: /run/credd              # tokens (tmpfs under systemd)
inbox_dir: /var/lib/credd/inbox      # drop signed certificates here
check_schedule: "*/10 * * * *"       # cron expression for the expiry check
smtp:
  url: smtp://mail.partner.example:587   # smtp:// or smtps://; STARTTLS required unless tls: none
  from: "credd <credd@partner.example>"
  user: credd                        # optional
  password_file: /run/credentials/credd.service/smtp   # secrets only ever come from files or env
  ca_file: /etc/ssl/certs/ca-certificates.crt          # optional
alerts:
  to: [ops@partner.example]
stellantis:
  contact: connectedcar@mpsa.com     # where CSRs and new certificates are sent
  ca_file: /etc/credd/stellantis-ca.pem
credentials:
  - name: fleet-prod
    mzp: MZP128745                   # becomes the CN
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    key: { type: rsa, bits: 2048 }   # or { type: ec, curve: P-256 }
    renew_before_days: 30
    remind_after_days: 7
    client_id: 1a2b3c                # application ID from the CA's email
    oauth:                           # absent for Basic-auth credentials
      token_url: https://idfed-preprod.mpsa.com/as/token.oauth2
      client_id: partner-client
      scope: openid
    basic_auth: { user: MZP128745, password_file: /run/credentials/credd.service/mzp }
    api: { base_url: https://api-cert.groupe-psa.com/connectedcar/v3, probe_path: /fleets }
    deploy_hooks: [["systemctl", "reload", "fleet-app"]]
    pkcs12_password_file: /run/credentials/credd.service/p12   # optional: live/bundle.p12 for Java
`;

const MINIMAL = `smtp:
  url: smtp://mail.partner.example
  from: credd@partner.example
alerts:
  to: ops@partner.example
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
`;

// Parsed YAML, edited freely by the table rows below.
// biome-ignore lint/suspicious/noExplicitAny: the rows write values of the wrong type on purpose, at any depth.
type Tree = Record<string, any>;

/** MINIMAL with an edit applied to its parsed tree, as YAML text again. */
function minimalWith(edit: (c: Tree, cred: Tree) => void): string {
  const c = parse(MINIMAL) as Tree;
  edit(c, c.credentials[0]);
  return stringify(c);
}

function refusal(text: string, env: NodeJS.ProcessEnv = NO_ENV): ConfigError {
  const file = writeConfig(text);
  try {
    loadConfig(file, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, "CONFIG");
    assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
    return err;
  }
  assert.fail("the config was accepted");
}

describe("loadConfig: valid files", () => {
  test("the DESIGN.md example loads with its values", () => {
    const file = writeConfig(DESIGN_EXAMPLE);
    const c = loadConfig(file, NO_ENV);
    assert.equal(c.file, file);
    assert.equal(c.state_dir, "/var/lib/credd");
    assert.equal(c.runtime_dir, "/run/credd");
    assert.equal(c.inbox_dir, "/var/lib/credd/inbox");
    assert.equal(c.check_schedule, "*/10 * * * *");
    assert.deepEqual(c.smtp, {
      url: "smtp://mail.partner.example:587",
      secure: false,
      host: "mail.partner.example",
      port: 587,
      from: "credd <credd@partner.example>",
      user: "credd",
      password_file: "/run/credentials/credd.service/smtp",
      ca_file: "/etc/ssl/certs/ca-certificates.crt",
      tls: "starttls",
      timeout_ms: 30000,
    });
    assert.deepEqual(c.alerts, { to: ["ops@partner.example"], critical_to: [], expiry_days: [30, 14, 7, 3, 1] });
    assert.deepEqual(c.stellantis, { contact: "connectedcar@mpsa.com", ca_file: "/etc/credd/stellantis-ca.pem" });
    assert.equal(c.credentials.length, 1);
    const cred = c.credentials[0]!;
    assert.deepEqual(cred, {
      name: "fleet-prod",
      mzp: "MZP128745",
      subject: { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", emailAddress: "it@partner.example" },
      dn: { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", OU: "Programs Partners", CN: "MZP128745", emailAddress: "it@partner.example" },
      key: { type: "rsa", bits: 2048 },
      renew_before_days: 30,
      remind_after_days: 7,
      auto_enroll: false,
      client_id: "1a2b3c",
      oauth: { token_url: "https://idfed-preprod.mpsa.com/as/token.oauth2", client_id: "partner-client", scope: "openid" },
      basic_auth: { user: "MZP128745", password_file: "/run/credentials/credd.service/mzp" },
      api: { base_url: "https://api-cert.groupe-psa.com/connectedcar/v3", probe_path: "/fleets" },
      deploy_hooks: [["systemctl", "reload", "fleet-app"]],
      pkcs12_password_file: "/run/credentials/credd.service/p12",
    });
    // The DN keeps the order Stellantis asks for.
    assert.deepEqual(Object.keys(cred.dn), ["C", "ST", "L", "O", "OU", "CN", "emailAddress"]);
  });

  test("a minimal file gets every default", () => {
    const file = writeConfig(MINIMAL);
    const c = loadConfig(file, NO_ENV);
    assert.equal(c.state_dir, "/var/lib/credd");
    assert.equal(c.runtime_dir, "/run/credd");
    assert.equal(c.inbox_dir, "/var/lib/credd/inbox");
    assert.equal(c.check_schedule, "*/10 * * * *");
    assert.deepEqual(c.smtp, {
      url: "smtp://mail.partner.example",
      secure: false,
      host: "mail.partner.example",
      port: 587,
      from: "credd@partner.example",
      tls: "starttls",
      timeout_ms: 30000,
    });
    assert.deepEqual(c.alerts, { to: ["ops@partner.example"], critical_to: [], expiry_days: [30, 14, 7, 3, 1] });
    assert.deepEqual(c.stellantis, { contact: "connectedcar@mpsa.com" });
    const cred = c.credentials[0]!;
    assert.deepEqual(cred.key, { type: "rsa", bits: 2048 });
    assert.equal(cred.renew_before_days, 30);
    assert.equal(cred.remind_after_days, 7);
    assert.equal(cred.auto_enroll, false);
    assert.deepEqual(cred.deploy_hooks, []);
    for (const k of ["client_id", "oauth", "basic_auth", "api", "pkcs12_password_file"]) assert.ok(!(k in cred), k);
    assert.deepEqual(cred.dn, {
      C: "FR",
      ST: "Ile de France",
      L: "Paris",
      O: "Free2Move",
      OU: "Programs Partners",
      CN: "MZP128745",
      emailAddress: "it@partner.example",
    });
  });

  test("smtps:// defaults to implicit TLS on port 465; tls: none is allowed for smtp://", () => {
    const smtps = parseConfig(
      minimalWith((c) => (c.smtp.url = "smtps://mail.partner.example")),
      "/etc/credd/credd.yaml",
      NO_ENV,
    );
    assert.equal(smtps.smtp.tls, "implicit");
    assert.equal(smtps.smtp.secure, true);
    assert.equal(smtps.smtp.port, 465);
    const plain = parseConfig(
      minimalWith((c) => Object.assign(c.smtp, { url: "smtp://relay:25", tls: "none" })),
      "/etc/credd/credd.yaml",
      NO_ENV,
    );
    assert.equal(plain.smtp.tls, "none");
    assert.equal(plain.smtp.port, 25);
  });

  test("OU and CN are accepted when they equal what credd sets; ST/L/O may be non-ASCII", () => {
    const text = minimalWith((_c, cred) =>
      Object.assign(cred.subject, { OU: "Programs Partners", CN: "MZP128745", ST: "Île-de-France", L: "Besançon", O: "Société Générale" }),
    );
    const c = parseConfig(text, "/etc/credd/credd.yaml", NO_ENV);
    assert.deepEqual(c.credentials[0]!.subject, {
      C: "FR",
      ST: "Île-de-France",
      L: "Besançon",
      O: "Société Générale",
      emailAddress: "it@partner.example",
    });
  });

  test("ec keys, several alert addresses, auto_enroll", () => {
    const text = minimalWith((c, cred) => {
      c.alerts.to = ["ops@partner.example", "oncall@partner.example"];
      cred.key = { type: "ec", curve: "P-384" };
      cred.auto_enroll = true;
    });
    const c = parseConfig(text, "/etc/credd/credd.yaml", NO_ENV);
    assert.deepEqual(c.credentials[0]!.key, { type: "ec", curve: "P-384" });
    assert.equal(c.credentials[0]!.auto_enroll, true);
    assert.deepEqual(c.alerts.to, ["ops@partner.example", "oncall@partner.example"]);
  });

  test("relative paths resolve against the config file's folder", () => {
    const file = writeConfig(
      minimalWith((c, cred) => {
        Object.assign(c, { state_dir: "state", runtime_dir: "./run", inbox_dir: "../inbox" });
        c.smtp.ca_file = "certs/smtp-ca.pem";
        c.stellantis = { ca_file: "stellantis-ca.pem" };
        cred.pkcs12_password_file = "secrets/p12";
      }),
    );
    const dir = path.dirname(file);
    const c = loadConfig(file, NO_ENV);
    assert.equal(c.state_dir, path.join(dir, "state"));
    assert.equal(c.runtime_dir, path.join(dir, "run"));
    assert.equal(c.inbox_dir, path.join(path.dirname(dir), "inbox"));
    assert.equal(c.smtp.ca_file, path.join(dir, "certs/smtp-ca.pem"));
    assert.equal(c.stellantis.ca_file, path.join(dir, "stellantis-ca.pem"));
    assert.equal(c.credentials[0]!.pkcs12_password_file, path.join(dir, "secrets/p12"));
  });

  test("inbox_dir defaults to <state_dir>/inbox", () => {
    const c = parseConfig(
      minimalWith((c) => (c.state_dir = "/srv/credd")),
      "/etc/credd/credd.yaml",
      NO_ENV,
    );
    assert.equal(c.inbox_dir, "/srv/credd/inbox");
  });

  test("metrics_file: absent by default, resolved like other paths, must end in .prom", () => {
    assert.ok(!("metrics_file" in parseConfig(MINIMAL, "/etc/credd/credd.yaml", NO_ENV)), "no metrics unless asked for");
    const abs = parseConfig(
      minimalWith((c) => (c.metrics_file = "/var/lib/prometheus/node-exporter/credd.prom")),
      "/etc/credd/credd.yaml",
      NO_ENV,
    );
    assert.equal(abs.metrics_file, "/var/lib/prometheus/node-exporter/credd.prom");
    const rel = parseConfig(
      minimalWith((c) => (c.metrics_file = "metrics/credd.prom")),
      "/etc/credd/credd.yaml",
      NO_ENV,
    );
    assert.equal(rel.metrics_file, "/etc/credd/metrics/credd.prom");
    const err = refusal(minimalWith((c) => (c.metrics_file = "/var/lib/node-exporter/credd.txt")));
    assert.match(err.message, /metrics_file/);
    assert.match(err.message, /\.prom/);
    assert.match(refusal(minimalWith((c) => (c.metrics_files = "/x/credd.prom"))).message, /did you mean "metrics_file"/);
  });

  test("relative secret files resolve against $CREDENTIALS_DIRECTORY when systemd set it", () => {
    const text = minimalWith((c, cred) => {
      Object.assign(c.smtp, { user: "credd", password_file: "smtp" });
      cred.basic_auth = { user: "MZP128745", password_file: "mzp" };
      cred.pkcs12_password_file = "/etc/credd/p12";
    });
    const env = { CREDENTIALS_DIRECTORY: "/run/credentials/credd.service" };
    const c = parseConfig(text, "/etc/credd/credd.yaml", env);
    assert.equal(c.smtp.password_file, "/run/credentials/credd.service/smtp");
    assert.equal(c.credentials[0]!.basic_auth!.password_file, "/run/credentials/credd.service/mzp");
    assert.equal(c.credentials[0]!.pkcs12_password_file, "/etc/credd/p12", "absolute paths stay as they are");
    const without = parseConfig(text, "/etc/credd/credd.yaml", NO_ENV);
    assert.equal(without.smtp.password_file, "/etc/credd/smtp");
  });

  test("defaultConfigPath: $CREDD_CONFIG, else /etc/credd/credd.yaml", () => {
    assert.equal(defaultConfigPath({ CREDD_CONFIG: "/opt/credd.yaml" }), "/opt/credd.yaml");
    assert.equal(defaultConfigPath({}), "/etc/credd/credd.yaml");
    assert.equal(defaultConfigPath({ CREDD_CONFIG: "" }), "/etc/credd/credd.yaml");
  });
});

describe("loadConfig: refusals name the key and the fix", () => {
  test("a missing file suggests --config and $CREDD_CONFIG", () => {
    const file = path.join(tmpRoot, "nowhere", "credd.yaml");
    assert.throws(
      () => loadConfig(file, NO_ENV),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /not found/);
        assert.ok(err.message.startsWith(`${file}: `));
        assert.match(err.message, /--config FILE/);
        assert.match(err.message, /\$CREDD_CONFIG/);
        return true;
      },
    );
  });

  test("a YAML syntax error gives line and column", () => {
    const err = refusal("smtp:\n  url: smtp://x\n  from: [a@b.example\nalerts: {}\n");
    assert.match(err.message, /YAML syntax error at line \d+, column \d+/);
    assert.match(err.message, /credd\.yaml:\d+: /);
  });

  test("an unquoted cron expression is a YAML alias: the fix says to quote it", () => {
    const err = refusal(`${MINIMAL}check_schedule: */5 * * * *\n`);
    assert.match(err.message, /line 10, column/);
    assert.match(err.message, /quote/);
  });

  test("the top level must be a mapping", () => {
    assert.match(refusal("- smtp\n").message, /top level must be a mapping/);
    assert.match(refusal("# nothing yet\n").message, /empty/);
  });

  test("every problem is reported, in file order, one per line", () => {
    const err = refusal(
      minimalWith((c, cred) => {
        c.smtp.url = "http://mail.partner.example";
        cred.subject.C = "fr";
        cred.renew_before_days = 0;
      }),
    );
    assert.ok(err instanceof ConfigInvalidError);
    assert.deepEqual(
      err.issues.map((i) => i.key),
      ["smtp.url", "credentials[fleet-prod].subject.C", "credentials[fleet-prod].renew_before_days"],
    );
    assert.equal(err.message.split("\n").length, 3);
    assert.equal(err.key, "smtp.url");
  });

  type Row = {
    name: string;
    text: string;
    key: string;
    /** Text the problem or fix must contain. */
    says: (string | RegExp)[];
    env?: NodeJS.ProcessEnv;
    /** Text that must never appear (secrets). */
    never?: string;
  };
  const cred = "credentials[fleet-prod]";
  const rows: Row[] = [
    {
      name: "unknown top-level key, with suggestion",
      text: MINIMAL.replace("credentials:", "credentails:"),
      key: "credentails",
      says: ["unknown key", 'rename it to "credentials"'],
    },
    {
      name: "unknown nested key",
      text: minimalWith((_c, x) => (x.renew_before = 10)),
      key: `${cred}.renew_before`,
      says: ['rename it to "renew_before_days"'],
    },
    {
      name: "unknown key without a close match lists the allowed keys",
      text: minimalWith((c) => (c.smtp.colour = "blue")),
      key: "smtp.colour",
      says: ["remove it", "url, from, user"],
    },
    { name: "subject S means ST", text: minimalWith((_c, x) => (x.subject.S = "Kansas")), key: `${cred}.subject.S`, says: ['rename it to "ST"'] },
    {
      name: "wrong type: quoted number",
      text: minimalWith((_c, x) => (x.renew_before_days = "30")),
      key: `${cred}.renew_before_days`,
      says: ["must be a number", "without quotes: 30"],
    },
    {
      name: "wrong type: number for a string",
      text: minimalWith((_c, x) => (x.client_id = 12345)),
      key: `${cred}.client_id`,
      says: ["must be a string", 'quote it: "12345"'],
    },
    {
      name: "wrong type: list for a mapping",
      text: minimalWith((c) => (c.smtp = ["smtp://x"])),
      key: "smtp",
      says: ["must be a mapping", "e.g. smtp:"],
    },
    { name: "wrong type: boolean", text: minimalWith((_c, x) => (x.auto_enroll = "yes")), key: `${cred}.auto_enroll`, says: ["true or false"] },
    {
      name: "credentials not a list",
      text: minimalWith((c) => (c.credentials = { "fleet-prod": {} })),
      key: "credentials",
      says: ["must be a list", "- name:"],
    },
    { name: "credentials empty", text: minimalWith((c) => (c.credentials = [])), key: "credentials", says: ["at least one credential"] },
    { name: "C lowercase", text: minimalWith((_c, x) => (x.subject.C = "fr")), key: `${cred}.subject.C`, says: ["uppercase", "write FR"] },
    { name: "C three letters", text: minimalWith((_c, x) => (x.subject.C = "FRA")), key: `${cred}.subject.C`, says: ["two-letter", "C: FR"] },
    {
      name: "OU wrong",
      text: minimalWith((_c, x) => (x.subject.OU = "Programs Partner")),
      key: `${cred}.subject.OU`,
      says: ["fixed by Stellantis", "remove subject.OU"],
    },
    {
      name: "CN is not the MZP",
      text: minimalWith((_c, x) => (x.subject.CN = "MZP000001")),
      key: `${cred}.subject.CN`,
      says: ["the CN is always the MZP", "remove subject.CN"],
    },
    { name: "mzp lowercase", text: minimalWith((_c, x) => (x.mzp = "mzp128745")), key: `${cred}.mzp`, says: ["capitals", "write MZP128745"] },
    { name: "mzp with a space", text: minimalWith((_c, x) => (x.mzp = "MZP 128745")), key: `${cred}.mzp`, says: ["write MZP128745"] },
    { name: "mzp of another shape", text: minimalWith((_c, x) => (x.mzp = "ABC123")), key: `${cred}.mzp`, says: ["six digits", "mzp: MZP128745"] },
    {
      name: "DN value with CR LF",
      text: minimalWith((_c, x) => (x.subject.O = "Free2Move\r\nOU=Admins")),
      key: `${cred}.subject.O`,
      says: ["control characters are not allowed", "on one line"],
    },
    {
      name: "DN value with TAB",
      text: minimalWith((_c, x) => (x.subject.L = "Pa\tris")),
      key: `${cred}.subject.L`,
      says: ["TAB", "control characters are not allowed"],
    },
    { name: "DN value empty", text: minimalWith((_c, x) => (x.subject.ST = "")), key: `${cred}.subject.ST`, says: ["is empty", "ST: Ile de France"] },
    { name: "DN value only spaces", text: minimalWith((_c, x) => (x.subject.ST = "   ")), key: `${cred}.subject.ST`, says: ["is empty"] },
    {
      name: "DN value with trailing space",
      text: minimalWith((_c, x) => (x.subject.L = "Paris ")),
      key: `${cred}.subject.L`,
      says: ["whitespace", 'remove it: "Paris"'],
    },
    {
      name: "DN value too long",
      text: minimalWith((_c, x) => (x.subject.O = "O".repeat(65))),
      key: `${cred}.subject.O`,
      says: ["at most 64", "shorten"],
    },
    { name: "DN value missing", text: minimalWith((_c, x) => delete x.subject.L), key: `${cred}.subject.L`, says: ["is missing", "L: Paris"] },
    {
      name: "emailAddress not ASCII",
      text: minimalWith((_c, x) => (x.subject.emailAddress = "élise@partner.example")),
      key: `${cred}.subject.emailAddress`,
      says: ["ASCII", "emailAddress: it@partner.example"],
    },
    {
      name: "emailAddress without @",
      text: minimalWith((_c, x) => (x.subject.emailAddress = "it.partner.example")),
      key: `${cred}.subject.emailAddress`,
      says: ["no @"],
    },
    {
      name: "duplicate credential names",
      text: minimalWith((c, x) => c.credentials.push({ ...x, mzp: "MZP000002" })),
      key: "credentials[1].name",
      says: ["credentials[0]", "unique", "rename credentials[1] or credentials[0]"],
    },
    {
      name: "name not a folder name",
      text: minimalWith((_c, x) => (x.name = "fleet prod")),
      key: "credentials[0].name",
      says: ["folder name", "name: fleet-prod"],
    },
    {
      name: "bad RSA key size",
      text: minimalWith((_c, x) => (x.key = { type: "rsa", bits: 1024 })),
      key: `${cred}.key.bits`,
      says: ["2048, 3072 or 4096", "bits: 2048"],
    },
    { name: "bad curve", text: minimalWith((_c, x) => (x.key = { type: "ec", curve: "P-521" })), key: `${cred}.key.curve`, says: ["P-256 or P-384"] },
    {
      name: "OpenSSL curve name",
      text: minimalWith((_c, x) => (x.key = { type: "ec", curve: "prime256v1" })),
      key: `${cred}.key.curve`,
      says: ["write curve: P-256"],
    },
    {
      name: "unknown key type",
      text: minimalWith((_c, x) => (x.key = { type: "dsa" })),
      key: `${cred}.key.type`,
      says: ["{ type: rsa, bits: 2048 | 3072 | 4096 } or { type: ec, curve: P-256 | P-384 }"],
    },
    {
      name: "smtp.url http://",
      text: minimalWith((c) => (c.smtp.url = "http://mail.partner.example")),
      key: "smtp.url",
      says: ["smtp:// or smtps://"],
    },
    { name: "smtp.url without a host", text: minimalWith((c) => (c.smtp.url = "smtp://")), key: "smtp.url", says: ["host"] },
    {
      name: "smtp.url with a password in it",
      text: minimalWith((c) => (c.smtp.url = "smtp://credd:hunter2@mail.partner.example")),
      key: "smtp.url",
      says: ["secrets only come from files", "smtp.password_file"],
      never: "hunter2",
    },
    {
      name: "tls none with smtps://",
      text: minimalWith((c) => Object.assign(c.smtp, { url: "smtps://mail.partner.example", tls: "none" })),
      key: "smtp.tls",
      says: ["smtps:// is always encrypted"],
    },
    { name: "tls implicit with smtp://", text: minimalWith((c) => (c.smtp.tls = "implicit")), key: "smtp.tls", says: ["smtps://"] },
    {
      name: "tls none with a user",
      text: minimalWith((c) => Object.assign(c.smtp, { tls: "none", user: "credd", password_file: "/run/pw" })),
      key: "smtp.tls",
      says: ["in clear"],
    },
    {
      name: "smtp.from missing",
      text: minimalWith((c) => delete c.smtp.from),
      key: "smtp.from",
      says: ["is missing", "credd <credd@partner.example>"],
    },
    {
      name: "smtp.from bad",
      text: minimalWith((c) => (c.smtp.from = "credd <credd@partner>")),
      key: "smtp.from",
      says: ["not a valid email address"],
    },
    {
      name: "smtp.user without password_file",
      text: minimalWith((c) => (c.smtp.user = "credd")),
      key: "smtp.password_file",
      says: ["is missing", "remove smtp.user"],
    },
    {
      name: "smtp.password_file without user",
      text: minimalWith((c) => (c.smtp.password_file = "/run/pw")),
      key: "smtp.user",
      says: ["is missing", "remove smtp.password_file"],
    },
    {
      name: "smtp.password present",
      text: minimalWith((c) => (c.smtp.password = "hunter2")),
      key: "smtp.password",
      says: ["secrets only come from files: use password_file"],
      never: "hunter2",
    },
    {
      name: "basic_auth.password present",
      text: minimalWith((_c, x) => (x.basic_auth = { user: "MZP128745", password: "hunter2" })),
      key: `${cred}.basic_auth.password`,
      says: ["secrets only come from files: use password_file"],
      never: "hunter2",
    },
    { name: "alerts.to empty", text: minimalWith((c) => (c.alerts.to = [])), key: "alerts.to", says: ["non-empty list"] },
    {
      name: "alerts.expiry_days not a list",
      text: minimalWith((c) => (c.alerts.expiry_days = 7)),
      key: "alerts.expiry_days",
      says: ["list of days"],
    },
    { name: "alerts.expiry_days zero", text: minimalWith((c) => (c.alerts.expiry_days = [30, 0])), key: "alerts.expiry_days[1]", says: ["1"] },
    {
      name: "alerts.critical_to bad address",
      text: minimalWith((c) => (c.alerts.critical_to = ["pager"])),
      key: "alerts.critical_to[0]",
      says: ["no @"],
    },
    {
      name: "alerts.to bad address",
      text: minimalWith((c) => (c.alerts.to = ["ops@partner.example", "oncall"])),
      key: "alerts.to[1]",
      says: ["no @"],
    },
    {
      name: "stellantis.contact bad",
      text: minimalWith((c) => (c.stellantis = { contact: "connectedcar" })),
      key: "stellantis.contact",
      says: ["connectedcar@mpsa.com"],
    },
    {
      name: "deploy_hooks as a string",
      text: minimalWith((_c, x) => (x.deploy_hooks = "systemctl reload app")),
      key: `${cred}.deploy_hooks`,
      says: ["argv", 'deploy_hooks: [["systemctl","reload","app"]]'],
    },
    {
      name: "deploy_hooks as one flat argv",
      text: minimalWith((_c, x) => (x.deploy_hooks = ["systemctl", "reload", "app"])),
      key: `${cred}.deploy_hooks`,
      says: ['deploy_hooks: [["systemctl","reload","app"]]'],
    },
    {
      name: "deploy_hooks with an empty hook",
      text: minimalWith((_c, x) => (x.deploy_hooks = [[]])),
      key: `${cred}.deploy_hooks[0]`,
      says: ["non-empty list"],
    },
    {
      name: "bad cron expression",
      text: minimalWith((c) => (c.check_schedule = "61 * * * *")),
      key: "check_schedule",
      says: ["not a valid cron expression", '"*/10 * * * *"'],
    },
    {
      name: "renew_before_days 0",
      text: minimalWith((_c, x) => (x.renew_before_days = 0)),
      key: `${cred}.renew_before_days`,
      says: ["from 1 to 365"],
    },
    {
      name: "remind_after_days 91",
      text: minimalWith((_c, x) => (x.remind_after_days = 91)),
      key: `${cred}.remind_after_days`,
      says: ["from 1 to 90"],
    },
    {
      name: "renew_before_days fractional",
      text: minimalWith((_c, x) => (x.renew_before_days = 1.5)),
      key: `${cred}.renew_before_days`,
      says: ["whole number"],
    },
    {
      name: "oauth.token_url not https",
      text: minimalWith((_c, x) => (x.oauth = { token_url: "http://idp.example/token", client_id: "c" })),
      key: `${cred}.oauth.token_url`,
      says: ["https://"],
    },
    {
      name: "oauth.client_id missing",
      text: minimalWith((_c, x) => (x.oauth = { token_url: "https://idp.example/token" })),
      key: `${cred}.oauth.client_id`,
      says: ["is missing"],
    },
    {
      name: "api.probe_path without /",
      text: minimalWith((_c, x) => (x.api = { base_url: "https://api.example", probe_path: "fleets" })),
      key: `${cred}.api.probe_path`,
      says: ["write probe_path: /fleets"],
    },
    { name: "path with ~", text: minimalWith((c) => (c.state_dir = "~/credd")), key: "state_dir", says: ["full path"] },
  ];

  for (const row of rows) {
    test(row.name, () => {
      const err = refusal(row.text, row.env);
      assert.ok(err.message.includes(`: ${row.key}: `), `names ${row.key}: ${err.message}`);
      for (const s of row.says) {
        if (typeof s === "string") assert.ok(err.message.includes(s), `says ${JSON.stringify(s)}: ${err.message}`);
        else assert.match(err.message, s);
      }
      assert.match(err.message, /\(fix: .+\)/);
      if (row.never) assert.ok(!err.message.includes(row.never), `never shows ${row.never}: ${err.message}`);
    });
  }

  test("an unknown key's line is the key's own line", () => {
    const err = refusal(MINIMAL.replace("alerts:", "alert:"));
    assert.ok(err.message.includes("credd.yaml:4: alert: unknown key"), err.message);
  });
});

describe("secrets", () => {
  test("resolveSecretPath: absolute stays, relative goes to $CREDENTIALS_DIRECTORY, else the base folder", () => {
    assert.equal(resolveSecretPath("/etc/credd/pw", { CREDENTIALS_DIRECTORY: "/run/credentials/credd.service" }), "/etc/credd/pw");
    assert.equal(resolveSecretPath("smtp", { CREDENTIALS_DIRECTORY: "/run/credentials/credd.service" }), "/run/credentials/credd.service/smtp");
    assert.equal(resolveSecretPath("smtp", {}, "/etc/credd"), "/etc/credd/smtp");
  });

  test("readSecretFile trims one trailing newline", () => {
    const dir = fs.mkdtempSync(path.join(tmpRoot, "s-"));
    fs.writeFileSync(path.join(dir, "a"), "pa ss\n");
    fs.writeFileSync(path.join(dir, "b"), "pass\n\n");
    fs.writeFileSync(path.join(dir, "c"), "pass\r\n");
    fs.writeFileSync(path.join(dir, "d"), "pass");
    assert.equal(readSecretFile(path.join(dir, "a"), "smtp.password_file", {}), "pa ss");
    assert.equal(readSecretFile(path.join(dir, "b"), "smtp.password_file", {}), "pass\n");
    assert.equal(readSecretFile(path.join(dir, "c"), "smtp.password_file", {}), "pass");
    assert.equal(readSecretFile("d", "smtp.password_file", { CREDENTIALS_DIRECTORY: dir }), "pass");
  });

  test("readSecretFile errors name the key and the file, never the content", () => {
    const dir = fs.mkdtempSync(path.join(tmpRoot, "s-"));
    const missing = path.join(dir, "missing");
    assert.throws(
      () => readSecretFile(missing, "credentials[fleet-prod].basic_auth.password_file", {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(err.message.includes(missing));
        assert.ok(err.message.includes("credentials[fleet-prod].basic_auth.password_file"));
        assert.match(err.message, /does not exist/);
        return true;
      },
    );
    const big = path.join(dir, "big");
    fs.writeFileSync(big, "TOPSECRET-".repeat(10_000));
    const empty = path.join(dir, "empty");
    fs.writeFileSync(empty, "\n");
    for (const [file, says] of [
      [big, /bytes/],
      [empty, /empty/],
      [dir, /not a regular file/],
    ] as const) {
      assert.throws(
        () => readSecretFile(file, "smtp.password_file", {}),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, says);
          assert.ok(err.message.includes(file) && err.message.includes("smtp.password_file"), err.message);
          assert.ok(!err.message.includes("TOPSECRET"), err.message);
          assert.ok(!String((err as Error & { cause?: unknown }).cause ?? "").includes("TOPSECRET"));
          return true;
        },
      );
    }
  });

  test("loading does not read secret files", () => {
    const text = minimalWith((c) => Object.assign(c.smtp, { user: "credd", password_file: "/nonexistent/credd/smtp" }));
    assert.equal(parseConfig(text, "/etc/credd/credd.yaml", NO_ENV).smtp.password_file, "/nonexistent/credd/smtp");
  });
});
