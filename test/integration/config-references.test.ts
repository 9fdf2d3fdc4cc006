// Every file and folder the config names, checked at load against real files (a real openssl CA):
// one row per broken reference, each showing the exact line a person reads (file:line, key, fix).
import assert from "node:assert/strict";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadCheckedConfig } from "../../src/config/load-checked.js";
import { ConfigInvalidError } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";
import { dnFor, SUBJECT_YAML } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type TestCa } from "../helpers/openssl.js";

let root: string;
let ca: TestCa;
let leafPath: string;
before(() => {
  root = makeTempDir("credd-refs-");
  mkdirSync(join(root, "pki"));
  ca = makeCa(join(root, "pki"));
  leafPath = makeKeyAndCert(join(root, "pki"), dnFor("MZP128745"), { ca, days: 365 }).certPath;
});
after(() => rmSync(root, { recursive: true, force: true }));

const ENV: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin" };
const USER = `user ${userInfo().username} (uid ${process.getuid!()})`;

/** A folder with a good config and every file it names; the config's line numbers are fixed (see below). */
function world(): { dir: string; config: string } {
  const dir = mkdtempSync(join(root, "w-"));
  writeFileSync(join(dir, "smtp.pass"), "smtp-secret\n", { mode: 0o600 });
  writeFileSync(join(dir, "mzp.pass"), "mzp-secret\n", { mode: 0o600 });
  writeFileSync(join(dir, "p12.pass"), "p12-secret\n", { mode: 0o600 });
  writeFileSync(join(dir, "reload-app"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  cpSync(ca.certPath, join(dir, "smtp-ca.pem"));
  cpSync(ca.certPath, join(dir, "stellantis-ca.pem"));
  mkdirSync(join(dir, "metrics"));
  const config = join(dir, "credd.yaml");
  writeFileSync(
    config,
    [
      `state_dir: ${dir}/state`, // 1
      `runtime_dir: ${dir}/run`, // 2
      `inbox_dir: ${dir}/inbox`, // 3
      `metrics_file: ${dir}/metrics/credd.prom`, // 4
      "smtp:", // 5
      "  url: smtp://127.0.0.1:25", // 6
      "  from: credd@partner.example", // 7
      "  user: credd", // 8
      `  password_file: ${dir}/smtp.pass`, // 9
      `  ca_file: ${dir}/smtp-ca.pem`, // 10
      "alerts: { to: [ops@partner.example] }", // 11
      "stellantis:", // 12
      "  contact: connectedcar@stellantis.example", // 13
      `  ca_file: ${dir}/stellantis-ca.pem`, // 14
      "credentials:", // 15
      "  - name: fleet-prod", // 16
      "    mzp: MZP128745", // 17
      `    subject: ${SUBJECT_YAML}`, // 18
      `    basic_auth: { user: MZP128745, password_file: ${dir}/mzp.pass }`, // 19
      `    pkcs12_password_file: ${dir}/p12.pass`, // 20
      `    deploy_hooks: [["true"], ["${dir}/reload-app", "fleet"]]`, // 21
      "",
    ].join("\n"),
  );
  return { dir, config };
}

/** The problem lines of loading `config` (each `FILE:LINE: KEY: PROBLEM (fix: FIX)`). */
function problems(config: string, opts: { now?: Date; env?: NodeJS.ProcessEnv } = {}): string[] {
  try {
    loadCheckedConfig(config, opts.env ?? ENV, opts.now ? { now: opts.now } : {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, `a ConfigInvalidError, got ${String(err)}`);
    assert.equal(err.code, "CONFIG");
    return err.message.split("\n");
  }
  assert.fail("the config was accepted");
}

const STELLANTIS_WANTS = "it should hold the Stellantis CA certificate (PEM): every signed certificate must chain to it";
const STELLANTIS_SAVE =
  "save the Stellantis CA certificate there as PEM (Stellantis sends it with the signed certificate), or correct stellantis.ca_file";
const SMTP_WANTS = "it should hold the CA certificate of the SMTP server (PEM): it signed the server's TLS certificate";
const SMTP_SAVE = "save the CA certificate of the SMTP server there as PEM (the mail server's administrator gives it), or correct smtp.ca_file";
const SECRET_MISSING_FIX = (key: string) =>
  `create it holding only the secret (mode 0640, group of credd's user), or correct ${key}; under systemd, LoadCredential=NAME:/path and ${key}: NAME`;
const HOOK_WANTS = "credd runs it after each new certificate goes live";
const C = "credentials[fleet-prod]";

type Row = { name: string; line: (w: { dir: string; config: string }) => string | string[]; breakIt: (dir: string) => void; now?: Date };

const rows: Row[] = [
  {
    name: "stellantis.ca_file missing",
    breakIt: (d) => rmSync(join(d, "stellantis-ca.pem")),
    line: ({ dir, config }) =>
      `${config}:14: stellantis.ca_file: ${dir}/stellantis-ca.pem does not exist; ${STELLANTIS_WANTS} (fix: ${STELLANTIS_SAVE})`,
  },
  {
    name: "stellantis.ca_file DER, not PEM",
    breakIt: (d) => openssl(["x509", "-in", ca.certPath, "-outform", "DER", "-out", join(d, "stellantis-ca.pem")]),
    line: ({ dir, config }) =>
      `${config}:14: stellantis.ca_file: ${dir}/stellantis-ca.pem is DER (binary), not PEM; ${STELLANTIS_WANTS} ` +
      `(fix: convert it: openssl x509 -inform DER -in ${dir}/stellantis-ca.pem -out ${dir}/stellantis-ca.pem.pem, and point stellantis.ca_file at the .pem)`,
  },
  {
    name: "stellantis.ca_file holds the client certificate, not the CA",
    breakIt: (d) => cpSync(leafPath, join(d, "stellantis-ca.pem")),
    line: ({ dir, config }) =>
      `${config}:14: stellantis.ca_file: ${dir}/stellantis-ca.pem holds no CA certificate: "MZP128745" cannot sign other certificates; ${STELLANTIS_WANTS} ` +
      "(fix: put the certificate of the CA that issued it there instead (Stellantis sends it with the signed certificate))",
  },
  {
    name: "smtp.ca_file and stellantis.ca_file expired (seen twenty years on)",
    breakIt: () => {},
    now: new Date(Date.now() + 20 * 365 * 86_400_000),
    line: ({ dir, config }) => {
      const end = new Date(openssl(["x509", "-in", ca.certPath, "-noout", "-enddate"]).stdout.trim().replace("notAfter=", ""))
        .toISOString()
        .slice(0, 10);
      return [
        `${config}:10: smtp.ca_file: ${dir}/smtp-ca.pem: every CA certificate in it has expired (the last on ${end}); ${SMTP_WANTS} (fix: get the current CA certificate (the mail server's administrator gives it) and save it there)`,
        `${config}:14: stellantis.ca_file: ${dir}/stellantis-ca.pem: every CA certificate in it has expired (the last on ${end}); ${STELLANTIS_WANTS} (fix: get the current CA certificate (Stellantis sends it with the signed certificate) and save it there)`,
      ];
    },
  },
  {
    name: "smtp.ca_file missing",
    breakIt: (d) => rmSync(join(d, "smtp-ca.pem")),
    line: ({ dir, config }) => `${config}:10: smtp.ca_file: ${dir}/smtp-ca.pem does not exist; ${SMTP_WANTS} (fix: ${SMTP_SAVE})`,
  },
  {
    name: "smtp.ca_file is an HTML page",
    breakIt: (d) => writeFileSync(join(d, "smtp-ca.pem"), "<!DOCTYPE html><html><body>Please log in</body></html>\n"),
    line: ({ dir, config }) => `${config}:10: smtp.ca_file: ${dir}/smtp-ca.pem is an HTML page, not a certificate; ${SMTP_WANTS} (fix: ${SMTP_SAVE})`,
  },
  {
    name: "smtp.ca_file with a private key in it",
    breakIt: (d) => writeFileSync(join(d, "smtp-ca.pem"), ca.certPem + readFileSync(ca.keyPath, "utf8")),
    line: ({ dir, config }) =>
      `${config}:10: smtp.ca_file: ${dir}/smtp-ca.pem holds a private key; ${SMTP_WANTS}, and never a key (fix: move the key out of ${dir}/smtp-ca.pem and keep it secret: smtp.ca_file needs only certificates)`,
  },
  {
    name: "smtp.password_file missing",
    breakIt: (d) => rmSync(join(d, "smtp.pass")),
    line: ({ dir, config }) =>
      `${config}:9: smtp.password_file: ${dir}/smtp.pass does not exist; it should hold the SMTP password (fix: ${SECRET_MISSING_FIX("smtp.password_file")})`,
  },
  {
    name: "smtp.password_file empty",
    breakIt: (d) => writeFileSync(join(d, "smtp.pass"), "\n"),
    line: ({ dir, config }) =>
      `${config}:9: smtp.password_file: ${dir}/smtp.pass is empty; it should hold the SMTP password (fix: write the secret into it)`,
  },
  {
    name: "basic_auth.password_file missing",
    breakIt: (d) => rmSync(join(d, "mzp.pass")),
    line: ({ dir, config }) =>
      `${config}:19: ${C}.basic_auth.password_file: ${dir}/mzp.pass does not exist; it should hold the Basic-auth password for the API (fix: ${SECRET_MISSING_FIX(`${C}.basic_auth.password_file`)})`,
  },
  {
    name: "basic_auth.password_file empty",
    breakIt: (d) => writeFileSync(join(d, "mzp.pass"), ""),
    line: ({ dir, config }) =>
      `${config}:19: ${C}.basic_auth.password_file: ${dir}/mzp.pass is empty; it should hold the Basic-auth password for the API (fix: write the secret into it)`,
  },
  {
    name: "pkcs12_password_file missing",
    breakIt: (d) => rmSync(join(d, "p12.pass")),
    line: ({ dir, config }) =>
      `${config}:20: ${C}.pkcs12_password_file: ${dir}/p12.pass does not exist; it should hold the password of live/bundle.p12 (fix: ${SECRET_MISSING_FIX(`${C}.pkcs12_password_file`)})`,
  },
  {
    name: "pkcs12_password_file empty",
    breakIt: (d) => writeFileSync(join(d, "p12.pass"), "\r\n"),
    line: ({ dir, config }) =>
      `${config}:20: ${C}.pkcs12_password_file: ${dir}/p12.pass is empty; it should hold the password of live/bundle.p12 (fix: write the secret into it)`,
  },
  {
    name: "pkcs12_password_file is a folder",
    breakIt: (d) => {
      rmSync(join(d, "p12.pass"));
      mkdirSync(join(d, "p12.pass"));
    },
    line: ({ dir, config }) =>
      `${config}:20: ${C}.pkcs12_password_file: ${dir}/p12.pass is a folder, not a regular file; it should hold the password of live/bundle.p12 (fix: point ${C}.pkcs12_password_file at the file holding the secret)`,
  },
  {
    name: "deploy hook program not in PATH",
    breakIt: (d) => {
      const f = join(d, "credd.yaml");
      writeFileSync(f, readFileSync(f, "utf8").replace('[["true"]', '[["reload-fleet-app"]'));
    },
    line: ({ config }) =>
      `${config}:21: ${C}.deploy_hooks[0][0]: "reload-fleet-app" is not in PATH (/usr/bin:/bin); ${HOOK_WANTS} ` +
      `(fix: install it, or write its full path in ${C}.deploy_hooks[0][0] (e.g. "/usr/local/bin/reload-fleet-app"))`,
  },
  {
    name: "deploy hook program missing at its full path",
    breakIt: (d) => rmSync(join(d, "reload-app")),
    line: ({ dir, config }) =>
      `${config}:21: ${C}.deploy_hooks[1][0]: ${dir}/reload-app does not exist; ${HOOK_WANTS} ` +
      `(fix: install the program there, or correct ${C}.deploy_hooks[1][0] (the program, as a full path or a name found in PATH))`,
  },
  {
    name: "deploy hook program not executable",
    breakIt: (d) => chmodSync(join(d, "reload-app"), 0o644),
    line: ({ dir, config }) =>
      `${config}:21: ${C}.deploy_hooks[1][0]: ${dir}/reload-app is not executable by ${USER}; ${HOOK_WANTS} (fix: chmod +x ${dir}/reload-app, or correct ${C}.deploy_hooks[1][0])`,
  },
  {
    name: "state_dir below a regular file cannot be created",
    breakIt: (d) => {
      writeFileSync(join(d, "a-file"), "x");
      const f = join(d, "credd.yaml");
      writeFileSync(f, readFileSync(f, "utf8").replace(`state_dir: ${d}/state`, `state_dir: ${d}/a-file/state`));
    },
    line: ({ dir, config }) =>
      `${config}:1: state_dir: ${dir}/a-file/state cannot be created: ${dir}/a-file is a file, not a folder; credd keeps its database, keys and certificates there (fix: correct state_dir: a folder cannot be made below a file)`,
  },
  {
    name: "runtime_dir is a file",
    breakIt: (d) => writeFileSync(join(d, "run"), "x"),
    line: ({ dir, config }) =>
      `${config}:2: runtime_dir: ${dir}/run is a file, not a folder; credd writes the access tokens there for applications (fix: point runtime_dir at a folder, or move the file away)`,
  },
  {
    name: "inbox_dir below a regular file cannot be created",
    breakIt: (d) => {
      writeFileSync(join(d, "a-file"), "x");
      const f = join(d, "credd.yaml");
      writeFileSync(f, readFileSync(f, "utf8").replace(`inbox_dir: ${d}/inbox`, `inbox_dir: ${d}/a-file/inbox`));
    },
    line: ({ dir, config }) =>
      `${config}:3: inbox_dir: ${dir}/a-file/inbox cannot be created: ${dir}/a-file is a file, not a folder; credd takes in the signed certificates dropped there and moves them to done/ or refused/ (fix: correct inbox_dir: a folder cannot be made below a file)`,
  },
  {
    name: "metrics_file in a folder that does not exist",
    breakIt: (d) => rmSync(join(d, "metrics"), { recursive: true }),
    line: ({ dir, config }) =>
      `${config}:4: metrics_file: ${dir}/metrics does not exist; credd writes the Prometheus metrics there (a temporary file renamed over metrics_file) ` +
      "(fix: create the folder node_exporter's textfile collector reads (--collector.textfile.directory), or correct metrics_file)",
  },
];

describe("a broken reference is a config error with file:line, key, what was found and the fix", () => {
  test("the good world loads; folders that do not exist yet are only reported, not created", () => {
    const w = world();
    const { config, report } = loadCheckedConfig(w.config, ENV);
    assert.equal(config.credentials.length, 1);
    assert.deepEqual(
      report.checked.map((c) => c.key),
      [
        "state_dir",
        "runtime_dir",
        "inbox_dir",
        "metrics_file",
        "smtp.ca_file",
        "smtp.password_file",
        "stellantis.ca_file",
        `${C}.basic_auth.password_file`,
        `${C}.pkcs12_password_file`,
        `${C}.deploy_hooks[0][0]`,
        `${C}.deploy_hooks[1][0]`,
      ],
    );
    const found = Object.fromEntries(report.checked.map((c) => [c.key, c.found]));
    assert.equal(found.state_dir, `does not exist yet; credd creates it (${w.dir} is writable)`);
    assert.match(found["stellantis.ca_file"]!, /^1 CA certificate \("Test Stellantis CA", valid until \d{4}-\d\d-\d\d\)$/);
    assert.equal(found[`${C}.deploy_hooks[0][0]`], "/usr/bin/true, executable");
    assert.equal(found["smtp.password_file"], "readable, not empty");
    for (const d of ["state", "run", "inbox"]) assert.ok(!existsSync(join(w.dir, d)), `${d} not created`);
  });

  for (const row of rows) {
    test(row.name, () => {
      const w = world();
      row.breakIt(w.dir);
      assert.deepEqual(problems(w.config, row.now ? { now: row.now } : {}), [row.line(w)].flat());
    });
  }

  test("several broken references: every one reported, in file order; secrets never shown", () => {
    const w = world();
    rmSync(join(w.dir, "stellantis-ca.pem"));
    writeFileSync(join(w.dir, "smtp.pass"), "");
    chmodSync(join(w.dir, "reload-app"), 0o600);
    const lines = problems(w.config);
    assert.deepEqual(
      lines.map((l) => l.slice(w.config.length).split(": ").slice(0, 2).join(": ")),
      [":9: smtp.password_file", ":14: stellantis.ca_file", `:21: ${C}.deploy_hooks[1][0]`],
    );
    assert.ok(!lines.join("\n").includes("mzp-secret"));
  });

  test("a default folder that is broken is named without a line (it is not in the file)", () => {
    const w = world();
    writeFileSync(join(w.dir, "a-file"), "x");
    const f = w.config;
    // No inbox_dir: it defaults to state_dir/inbox; state_dir below a file is reported once.
    writeFileSync(
      f,
      readFileSync(f, "utf8").replace(`state_dir: ${w.dir}/state`, `state_dir: ${w.dir}/a-file/state`).replace(`inbox_dir: ${w.dir}/inbox\n`, ""),
    );
    const lines = problems(f);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.ok(lines[0]!.startsWith(`${f}:1: state_dir: `));
  });

  test("two credentials naming the same missing password file: one line each, each fix naming its own key", () => {
    const w = world();
    rmSync(join(w.dir, "mzp.pass"));
    writeFileSync(
      w.config,
      `${readFileSync(w.config, "utf8").trimEnd()}\n  - name: fleet-test\n    mzp: MZP654321\n    subject: ${SUBJECT_YAML}\n    basic_auth: { user: MZP654321, password_file: ${w.dir}/mzp.pass }\n`,
    );
    const lines = problems(w.config);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.ok(
      lines[0]!.startsWith(`${w.config}:19: ${C}.basic_auth.password_file: `) && lines[0]!.includes(`or correct ${C}.basic_auth.password_file;`),
    );
    assert.ok(
      lines[1]!.startsWith(`${w.config}:25: credentials[fleet-test].basic_auth.password_file: `) &&
        lines[1]!.includes("or correct credentials[fleet-test].basic_auth.password_file;"),
      lines[1],
    );
  });

  test("smtp.tls: none never uses smtp.ca_file, so it is not read", () => {
    const w = world();
    const f = w.config;
    writeFileSync(
      f,
      readFileSync(f, "utf8")
        .replace("  user: credd\n", "  tls: none\n")
        .replace(`  password_file: ${w.dir}/smtp.pass\n`, "")
        .replace(`ca_file: ${w.dir}/smtp-ca.pem`, "ca_file: /dev/null"),
    );
    const { report } = loadCheckedConfig(f, ENV);
    assert.deepEqual(
      report.checked.find((c) => c.key === "smtp.ca_file"),
      { key: "smtp.ca_file", path: "/dev/null", found: "not used: smtp.tls is none" },
    );
  });

  test("loading without the check (status, enroll, ...) does not look at the files", async () => {
    const w = world();
    rmSync(join(w.dir, "stellantis-ca.pem"));
    const { loadConfig } = await import("../../src/config/load.js");
    assert.equal(loadConfig(w.config, ENV).stellantis.ca_file, join(w.dir, "stellantis-ca.pem"));
    assert.throws(() => loadCheckedConfig(w.config, ENV), ConfigError);
  });
});
