// buildPkcs12 against the real readers: OpenSSL 3 (no -legacy) and Java 17's keytool, for RSA and EC keys.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPublicKey, X509Certificate } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildPkcs12, pkcs12Kdf } from "../../src/pki/pkcs12.js";
import { CreddError, RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type KeyAndCert, type TestCa } from "../helpers/openssl.js";

const DN: StellantisDn = dnFor("MZP128745");
// Spaces and shell characters on purpose: the password travels through env, never argv.
const PASS = "correct horse $42 'battery'";
const ALIAS = "fleet-prod";

interface Keytool {
  status: number | null;
  out: string;
}

/** keytool with the store password from the environment (`-storepass:env`), in a UTF-8 locale. */
function keytool(args: string[], env: Record<string, string> = {}): Keytool {
  const res = spawnSync("keytool", args, {
    env: { ...process.env, LC_ALL: "C.UTF-8", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (res.error) throw res.error;
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

function fingerprints(pemText: string): string[] {
  const blocks = pemText.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b).fingerprint256).sort();
}

function spki(keyOrCertPem: string): string {
  const pub = keyOrCertPem.includes("CERTIFICATE") ? new X509Certificate(keyOrCertPem).publicKey : createPublicKey(keyOrCertPem);
  return pub.export({ type: "spki", format: "der" }).toString("hex");
}

let dir: string;
let ca: TestCa;

before(() => {
  dir = makeTempDir("credd-pkcs12-");
  ca = makeCa(dir);
});

after(() => rmSync(dir, { recursive: true, force: true }));

for (const keyType of ["rsa", "ec"] as const) {
  describe(`buildPkcs12 with an ${keyType === "rsa" ? "RSA 2048" : "EC P-256"} key`, () => {
    let kc: KeyAndCert;
    let p12: string;

    before(async () => {
      kc = makeKeyAndCert(dir, DN, { ca, keyType });
      const bundle = await buildPkcs12({
        keyPem: readFileSync(kc.keyPath, "utf8"),
        certPem: kc.certPem,
        chainPems: [ca.certPem],
        password: PASS,
        friendlyName: ALIAS,
      });
      p12 = join(dir, `bundle-${keyType}.p12`);
      writeFileSync(p12, bundle);
    });

    const env = { P12PASS: PASS };

    it("openssl returns the leaf and the CA certificate", () => {
      const { stdout } = openssl(["pkcs12", "-in", p12, "-passin", "env:P12PASS", "-nokeys"], { env });
      assert.deepEqual(fingerprints(stdout), fingerprints(kc.certPem + ca.certPem));
      // The leaf carries the alias; the chain certificate does not.
      assert.match(stdout, new RegExp(`friendlyName: ${ALIAS}\\n\\s+localKeyID: [0-9A-F ]+\\nsubject=.*CN = MZP128745`));
    });

    it("openssl returns the private key of the certificate, with the same localKeyId", () => {
      const { stdout } = openssl(["pkcs12", "-in", p12, "-passin", "env:P12PASS", "-nocerts", "-nodes"], { env });
      const key = stdout.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)?.[0];
      assert.ok(key, stdout);
      assert.equal(spki(key), spki(kc.certPem));
      const keyId = stdout.match(/localKeyID: ([0-9A-F ]+)/)?.[1];
      const certs = openssl(["pkcs12", "-in", p12, "-passin", "env:P12PASS", "-nokeys", "-clcerts"], { env }).stdout;
      assert.equal(certs.match(/localKeyID: ([0-9A-F ]+)/)?.[1], keyId);
    });

    it("openssl 3 verifies the SHA-256 MAC and reads PBES2/AES-256 without -legacy", () => {
      const { stdout, stderr } = openssl(["pkcs12", "-info", "-in", p12, "-passin", "env:P12PASS", "-noout"], { env });
      const info = stdout + stderr;
      assert.match(info, /MAC: sha256, Iteration 10000/);
      assert.match(info, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256/);
      assert.match(info, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256/);
      assert.doesNotMatch(info, /RC2|3DES|DES-EDE|pbeWithSHA1/i);
    });

    it("openssl refuses a wrong password", () => {
      assert.throws(
        () => openssl(["pkcs12", "-in", p12, "-passin", "env:P12PASS", "-noout"], { env: { P12PASS: `${PASS}x` } }),
        /Mac verify error|invalid password/i,
      );
    });

    it("keytool lists one PrivateKeyEntry named by the friendly name, with the chain", () => {
      const res = keytool(["-list", "-v", "-storetype", "PKCS12", "-keystore", p12, "-storepass:env", "P12PASS"], env);
      assert.equal(res.status, 0, res.out);
      assert.match(res.out, /Your keystore contains 1 entry/);
      assert.match(res.out, new RegExp(`Alias name: ${ALIAS}\\n`));
      assert.match(res.out, /Entry type: PrivateKeyEntry/);
      assert.match(res.out, /Certificate chain length: 2\n/);
      assert.match(res.out, /Certificate\[1\]:\nOwner: .*CN=MZP128745/);
      assert.match(res.out, /Certificate\[2\]:\nOwner: CN=Test Stellantis CA/);
    });

    it("Java decrypts the private key too (keytool -importkeystore re-encrypts it)", () => {
      // `-list` never touches the shrouded key bag; copying the entry makes Java decrypt it.
      const copy = join(dir, `copy-${keyType}.p12`);
      const res = keytool(
        [
          "-importkeystore",
          "-noprompt",
          "-srckeystore",
          p12,
          "-srcstoretype",
          "PKCS12",
          "-srcstorepass:env",
          "P12PASS",
          "-destkeystore",
          copy,
          "-deststoretype",
          "PKCS12",
          "-deststorepass:env",
          "P12PASS",
        ],
        env,
      );
      assert.equal(res.status, 0, res.out);
      assert.match(res.out, new RegExp(`Entry for alias ${ALIAS} successfully imported`));
      assert.match(res.out, /1 entries successfully imported, 0 entries failed or cancelled/);
      const key = openssl(["pkcs12", "-in", copy, "-passin", "env:P12PASS", "-nocerts", "-nodes"], { env }).stdout;
      assert.equal(spki(key.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)![0]), spki(kc.certPem));
    });

    it("keytool refuses a wrong store password", () => {
      const res = keytool(["-list", "-storetype", "PKCS12", "-keystore", p12, "-storepass:env", "P12PASS"], { P12PASS: "wrong" });
      assert.notEqual(res.status, 0);
      assert.match(res.out, /password was incorrect/);
    });
  });
}

describe("buildPkcs12 edge cases", () => {
  let kc: KeyAndCert;
  before(() => {
    kc = makeKeyAndCert(dir, DN, { ca, keyType: "ec" });
  });

  it("refuses a password Java cannot use (non-ASCII, control characters), without quoting it", async () => {
    // Java 17 throws "Password is not ASCII" for PBES2 keystores, so such a bundle would never open there.
    const keyPem = readFileSync(kc.keyPath, "utf8");
    for (const password of ["Mot de passe é€ß", "secret\n", "tab\there"]) {
      await assert.rejects(buildPkcs12({ keyPem, certPem: kc.certPem, chainPems: [], password, friendlyName: ALIAS }), (err: unknown) => {
        assert.ok(err instanceof CreddError);
        assert.equal(err.code, "CONFIG");
        assert.match(err.message, /printable ASCII/);
        assert.ok(!err.message.includes(password.trim()));
        return true;
      });
    }
  });

  it("a non-ASCII friendly name survives as a BMPString alias", async () => {
    const p12 = join(dir, "unicode-alias.p12");
    writeFileSync(
      p12,
      await buildPkcs12({
        keyPem: readFileSync(kc.keyPath, "utf8"),
        certPem: kc.certPem,
        chainPems: [ca.certPem],
        password: PASS,
        friendlyName: "flotte-café",
      }),
    );
    const res = keytool(["-list", "-storetype", "PKCS12", "-keystore", p12, "-storepass:env", "P12PASS"], { P12PASS: PASS });
    assert.equal(res.status, 0, res.out);
    assert.match(res.out, /^flotte-café, .*PrivateKeyEntry/m);
  });

  it("an upper-case friendly name (the MZP) is kept in the file; keytool shows Java's lower-cased alias", async () => {
    // Java's PKCS12KeyStore matches aliases case-insensitively and lists them in lower case;
    // KeyStore.getKey("MZP128745") still finds the entry.
    const p12 = join(dir, "mzp.p12");
    writeFileSync(
      p12,
      await buildPkcs12({
        keyPem: readFileSync(kc.keyPath, "utf8"),
        certPem: kc.certPem,
        chainPems: [ca.certPem],
        password: PASS,
        friendlyName: "MZP128745",
      }),
    );
    const info = openssl(["pkcs12", "-in", p12, "-passin", "env:P12PASS", "-nokeys", "-clcerts"], { env: { P12PASS: PASS } }).stdout;
    assert.match(info, /friendlyName: MZP128745\n/);
    const res = keytool(["-list", "-storetype", "PKCS12", "-keystore", p12, "-storepass:env", "P12PASS"], { P12PASS: PASS });
    assert.equal(res.status, 0, res.out);
    assert.match(res.out, /^mzp128745, .*PrivateKeyEntry/m);
  });

  it("an empty chain gives a chain length of 1", async () => {
    const p12 = join(dir, "nochain.p12");
    writeFileSync(
      p12,
      await buildPkcs12({ keyPem: readFileSync(kc.keyPath, "utf8"), certPem: kc.certPem, chainPems: [], password: PASS, friendlyName: ALIAS }),
    );
    const res = keytool(["-list", "-v", "-storetype", "PKCS12", "-keystore", p12, "-storepass:env", "P12PASS"], { P12PASS: PASS });
    assert.equal(res.status, 0, res.out);
    assert.match(res.out, /Certificate chain length: 1\n/);
  });

  it("refuses a key that is not the certificate's key, without quoting the password", async () => {
    const other = makeKeyAndCert(dir, DN, { ca, keyType: "ec" });
    await assert.rejects(
      buildPkcs12({ keyPem: readFileSync(other.keyPath, "utf8"), certPem: kc.certPem, chainPems: [ca.certPem], password: PASS, friendlyName: ALIAS }),
      (err: unknown) => {
        assert.ok(err instanceof RefusedError);
        assert.equal(err.check, "key-match");
        assert.ok(!err.message.includes(PASS));
        return true;
      },
    );
  });

  it("refuses an empty password and a damaged chain certificate, never quoting the password", async () => {
    const keyPem = readFileSync(kc.keyPath, "utf8");
    await assert.rejects(buildPkcs12({ keyPem, certPem: kc.certPem, chainPems: [], password: "", friendlyName: ALIAS }), (err: unknown) => {
      assert.ok(err instanceof CreddError);
      assert.equal(err.code, "CONFIG");
      return true;
    });
    await assert.rejects(
      buildPkcs12({
        keyPem,
        certPem: kc.certPem,
        chainPems: ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
        password: PASS,
        friendlyName: ALIAS,
      }),
      (err: unknown) => {
        assert.ok(err instanceof RefusedError);
        assert.match(err.message, /chain certificate 1/);
        assert.ok(!err.message.includes(PASS));
        return true;
      },
    );
  });
});

describe("pkcs12Kdf", () => {
  it("agrees with OpenSSL's PKCS12KDF (SHA-256), one block and several, MAC and key ids", () => {
    const salt = "0a58cf64530d823f";
    for (const [password, id, length] of [
      ["smeg", 3, 32],
      ["smeg", 1, 70],
      ["é€ pass", 3, 32],
    ] as const) {
      // OpenSSL's KDF takes the password already as a BMPString: UTF-16BE plus a zero terminator.
      const bmp = Buffer.concat([Buffer.from(password, "utf16le").swap16(), Buffer.alloc(2)]).toString("hex");
      const { stdout } = openssl([
        "kdf",
        "-keylen",
        String(length),
        "-kdfopt",
        "digest:SHA256",
        "-kdfopt",
        `hexpass:${bmp}`,
        "-kdfopt",
        `hexsalt:${salt}`,
        "-kdfopt",
        "iter:1000",
        "-kdfopt",
        `id:${id}`,
        "PKCS12KDF",
      ]);
      const expected = stdout.trim().replace(/:/g, "").toLowerCase();
      assert.equal(pkcs12Kdf(password, Buffer.from(salt, "hex"), id, 1000, length).toString("hex"), expected);
    }
  });
});
