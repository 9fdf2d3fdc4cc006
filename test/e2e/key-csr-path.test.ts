// The key + CSR path as whole processes (`credd enroll`/`renew --no-send` and the benchmark's
// script): the CSR and key each key type yields, and the modules loaded on the way. Loading
// @peculiar/x509 and its WebCrypto polyfill cost about 150 ms and 22 MiB a run (issue 8), so
// this path must not load them, nor anything else only sending or parsing certificates needs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { readCsr } from "../../src/pki/csr.js";
import { loadPrivateKey } from "../../src/pki/keys.js";
import { CREDD_BIN, credentialYaml, dnFor, runCredd, smallConfigYaml, writeConfig } from "../helpers/credd.js";
import { makeKeyAndCert, makeTempDir, openssl } from "../helpers/openssl.js";

const TRACE = fileURLToPath(new URL("../helpers/trace-modules.mjs", import.meta.url));
const ONCE = fileURLToPath(new URL("../../bench/key-csr-once.mjs", import.meta.url));
const DIST = join(CREDD_BIN, "..");

/** Packages the key + CSR path has no use for: certificate parsing, PKCS#7/#12, and SMTP. */
const NOT_ON_THE_PATH = ["@peculiar/", "reflect-metadata", "tsyringe", "asn1js", "pkijs", "nodemailer"];

const KEYS: Array<{ name: string; key: string; text: RegExp }> = [
  { name: "rsa2048", key: "{ type: rsa, bits: 2048 }", text: /Public-Key: \(2048 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/ },
  { name: "rsa3072", key: "{ type: rsa, bits: 3072 }", text: /Public-Key: \(3072 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/ },
  { name: "rsa4096", key: "{ type: rsa, bits: 4096 }", text: /Public-Key: \(4096 bit\)[\s\S]*Signature Algorithm: sha256WithRSAEncryption/ },
  { name: "ec256", key: "{ type: ec, curve: P-256 }", text: /NIST CURVE: P-256[\s\S]*Signature Algorithm: ecdsa-with-SHA256/ },
  { name: "ec384", key: "{ type: ec, curve: P-384 }", text: /NIST CURVE: P-384[\s\S]*Signature Algorithm: ecdsa-with-SHA256/ },
];
const MZP = (i: number) => `MZP70000${i}`;
/** A credential of its own for `renew`, so the enroll tests above do not decide its state. */
const RENEW = { name: "renewme", mzp: "MZP700009" };

let dir: string;
let config: string;
before(() => {
  dir = makeTempDir("credd-e2e-keycsr-");
  const creds = KEYS.map((k, i) => credentialYaml(k.name, MZP(i), `key: ${k.key}`));
  config = writeConfig(
    dir,
    smallConfigYaml({ top: [`state_dir: ${join(dir, "state")}`, `runtime_dir: ${join(dir, "run")}`], credentials: [...creds, credentialYaml(RENEW.name, RENEW.mzp)] }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every module URL a traced process loaded. */
function readTrace(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter(Boolean);
}

function assertNotLoaded(modules: string[], what: string): void {
  assert.ok(modules.some((m) => m.includes("/pki/csr.js")), `${what}: the trace saw pki/csr.js (is the trace working?)`);
  for (const name of NOT_ON_THE_PATH) {
    const hits = modules.filter((m) => m.includes(`/node_modules/${name}`));
    assert.deepEqual(hits.slice(0, 3), [], `${what} loaded ${name}`);
  }
}

function traceEnv(trace: string): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `--import ${TRACE}`, CREDD_TRACE_MODULES: trace };
}

describe("credd enroll --no-send, every key type", () => {
  KEYS.forEach((k, i) => {
    test(`${k.name}: a CSR openssl verifies with the Stellantis DN, a 0600 key that loads back, and no @peculiar loaded`, async () => {
      const trace = join(dir, `trace-${k.name}`);
      const r = await runCredd(["--config", config, "enroll", k.name, "--no-send"], traceEnv(trace));
      assert.equal(r.code, 0, r.stderr);
      assertNotLoaded(readTrace(trace), `credd enroll (${k.name})`);

      const archive = join(dir, "state/credentials", k.name, "archive");
      const csrPath = join(archive, "csr-1.pem");
      const keyPath = join(archive, "key-1.pem");
      const verified = openssl(["req", "-in", csrPath, "-verify", "-noout", "-text"]);
      assert.match(verified.stderr + verified.stdout, /verify OK/);
      assert.match(verified.stdout, k.text);
      assert.equal(
        openssl(["req", "-in", csrPath, "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.trim(),
        `subject=emailAddress=it@partner.example,CN=${MZP(i)},OU=Programs Partners,O=Free2Move,L=Paris,ST=Ile de France,C=FR`,
      );
      const types = openssl(["asn1parse", "-in", csrPath]).stdout.match(/prim: (PRINTABLESTRING|UTF8STRING|IA5STRING)\s+:/g);
      assert.deepEqual(types?.map((t) => t.split(/\s+/)[1]), [...Array(6).fill("PRINTABLESTRING"), "IA5STRING"]);

      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      openssl(["pkey", "-in", keyPath, "-noout", "-check"]);
      assert.equal(loadPrivateKey(readFileSync(keyPath)).spkiSha256, readCsr(readFileSync(csrPath, "utf8")).spkiSha256);
    });
  });
});

test("credd renew --force --no-send loads no @peculiar module either", async () => {
  const hand = makeKeyAndCert(dir, dnFor(RENEW.mzp), { days: 365 });
  const imported = await runCredd(["--config", config, "import", RENEW.name, "--cert", hand.certPath, "--key", hand.keyPath]);
  assert.equal(imported.code, 0, imported.stderr);
  const trace = join(dir, "trace-renew");
  const r = await runCredd(["--config", config, "renew", RENEW.name, "--force", "--no-send"], traceEnv(trace));
  assert.equal(r.code, 0, r.stderr);
  assertNotLoaded(readTrace(trace), "credd renew");
  const csr = readFileSync(join(dir, "state/credentials", RENEW.name, "archive/csr-2.pem"), "utf8");
  assert.match(openssl(["req", "-verify", "-noout"], { input: csr }).stderr, /verify OK/);
});

test("the benchmark's key-csr-once.mjs loads no package at all, only credd's own modules", () => {
  const trace = join(dir, "trace-once");
  const res = spawnSync(process.execPath, [ONCE, DIST, join(dir, "once.key"), join(dir, "once.csr")], {
    env: { ...process.env, ...traceEnv(trace) },
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  const modules = readTrace(trace);
  assertNotLoaded(modules, "key-csr-once.mjs");
  assert.deepEqual(modules.filter((m) => m.includes("/node_modules/")), []);
  assert.match(openssl(["req", "-in", join(dir, "once.csr"), "-verify", "-noout"]).stderr, /verify OK/);
});
