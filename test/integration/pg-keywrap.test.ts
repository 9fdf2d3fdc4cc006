// Private keys sealed for the shared store (src/store/pg/keywrap.ts): AES-256-GCM under a
// key-encryption key file, bound to credential and version; every way to open one wrongly fails
// loudly, and a KEK file of the wrong size, format or mode is refused naming the file.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { CreddError } from "../../src/errors.js";
import { envelopeKekId, type Kek, readKek, rewrapKey, unwrapKey, wrapKey } from "../../src/store/pg/keywrap.js";

const work = mkdtempSync(join(tmpdir(), "credd-kek-"));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function kekFile(content: string | Buffer, mode = 0o600): string {
  const f = join(work, `kek-${++n}`);
  writeFileSync(f, content, { mode });
  chmodSync(f, mode);
  return f;
}
const newKek = (): Kek => readKek(kekFile(`${randomBytes(32).toString("base64")}\n`));
const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
const ref = { credential: "mzp128745", version: 3 };

function throwsLoud(fn: () => unknown, pattern: RegExp, mustNotHold: string[] = []): CreddError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CreddError, `expected a CreddError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  for (const s of mustNotHold) assert.ok(!caught.message.includes(s), `the message holds secret material: ${caught.message}`);
  return caught;
}

describe("sealing and opening private keys", () => {
  test("round trip; the envelope holds no plaintext and names its KEK; two seals differ (fresh nonce)", () => {
    const kek = newKek();
    const env = wrapKey(kek, ref, pem);
    assert.equal(unwrapKey(kek, ref, env).toString("utf8"), pem);
    assert.equal(envelopeKekId(env), kek.id);
    assert.match(kek.id, /^[0-9a-f]{16}$/);
    assert.ok(!env.includes(Buffer.from("PRIVATE KEY")) && !env.includes(Buffer.from(pem.split("\n")[1]!)));
    assert.notDeepEqual(wrapKey(kek, ref, pem), env);
  });

  test("the key id is the same on every host holding the same key file content", () => {
    const b64 = randomBytes(32).toString("base64");
    const one = readKek(kekFile(`${b64}\n`));
    const two = readKek(kekFile(b64));
    assert.equal(one.id, two.id);
    assert.equal(unwrapKey(two, ref, wrapKey(one, ref, pem)).toString(), pem);
  });

  test("a wrong KEK fails loudly: as a missing key file, and, forged id and all, as an authentication failure", () => {
    const right = newKek();
    const wrong = newKek();
    const env = wrapKey(right, ref, pem);
    const e = throwsLoud(
      () => unwrapKey(wrong, ref, env),
      /sealed under key-encryption key [0-9a-f]{16}, and .* holds [0-9a-f]{16}: this host does not have the key of this store .*does not re-enroll/,
      [pem],
    );
    assert.equal(e.code, "STATE");
    assert.ok(e.message.includes(wrong.file));
    // The envelope's id rewritten to the wrong key's: GCM refuses.
    const forged = Buffer.from(env);
    Buffer.from(wrong.id, "hex").copy(forged, 4);
    throwsLoud(() => unwrapKey(wrong, ref, forged), /fails authentication/, [pem]);
  });

  test("tampering fails: any byte of the envelope, and the associated data (another credential or version)", () => {
    const kek = newKek();
    const env = wrapKey(kek, ref, pem);
    // Every byte after the key id: nonce, tag, ciphertext.
    for (const at of [12, 20, 24, 39, 40, env.length - 1]) {
      const bad = Buffer.from(env);
      bad[at]! ^= 0x01;
      throwsLoud(() => unwrapKey(kek, ref, bad), /fails authentication/, [pem]);
    }
    throwsLoud(() => unwrapKey(kek, ref, env.subarray(0, env.length - 1)), /fails authentication/);
    throwsLoud(
      () => unwrapKey(kek, { ...ref, credential: "mzp999999" }, env),
      /mzp999999 version 3 fails authentication.*copied from another credential/,
    );
    throwsLoud(() => unwrapKey(kek, { ...ref, version: 4 }, env), /version 4 fails authentication/);
    // A name that differs only by a trailing NUL is another credential (the name is length-prefixed).
    const short = wrapKey(kek, { credential: "a", version: 1 }, pem);
    throwsLoud(() => unwrapKey(kek, { credential: "a\u0000", version: 1 }, short), /fails authentication/);
    throwsLoud(() => unwrapKey(kek, ref, Buffer.from("not an envelope")), /not a sealed key credd wrote/);
  });

  test("rotation: a ring opens envelopes of the previous KEK and rewraps them under the current one", () => {
    const old = newKek();
    const cur = newKek();
    const env = wrapKey(old, ref, pem);
    const ring = { current: cur, previous: [old] };
    assert.equal(unwrapKey(ring, ref, env).toString(), pem);
    const moved = rewrapKey(ring, ref, env);
    assert.equal(envelopeKekId(moved), cur.id);
    assert.equal(unwrapKey(cur, ref, moved).toString(), pem);
    assert.equal(rewrapKey(ring, ref, moved), moved, "already under the current key: unchanged");
    throwsLoud(() => unwrapKey(old, ref, moved), /this host does not have the key of this store/);
  });
});

describe("the key-encryption key file", () => {
  const secretB64 = randomBytes(32).toString("base64");
  const refused = (f: string, pattern: RegExp) => {
    const e = throwsLoud(() => readKek(f, "store.postgres.key_encryption_key_file"), pattern, [secretB64]);
    assert.equal(e.code, "CONFIG");
    assert.ok(e.message.includes(f), `names the file: ${e.message}`);
    assert.ok(e.message.includes("store.postgres.key_encryption_key_file"));
    assert.match(e.message, /fix: /);
  };

  test("the wrong size: 16 or 33 bytes of base64", () => {
    refused(kekFile(`${randomBytes(16).toString("base64")}\n`), /holds 16 bytes, not 32.*openssl rand -base64 32/);
    refused(kekFile(`${randomBytes(33).toString("base64")}\n`), /holds 33 bytes, not 32/);
  });

  test("not base64 text: raw bytes, two lines, spaces", () => {
    refused(kekFile(randomBytes(32)), /does not hold base64 text on one line \(raw bytes are not accepted\)/);
    refused(kekFile(`${secretB64}\n${secretB64}\n`), /does not hold base64 text/);
    refused(kekFile(` ${secretB64}`), /does not hold base64 text/);
  });

  test("group- or world-readable (or any group/other bit) is refused; 0600 and 0400 are taken", () => {
    for (const mode of [0o640, 0o644, 0o604, 0o620, 0o610])
      refused(kekFile(`${secretB64}\n`, mode), /may be used by its group or others.*chmod 0600/);
    assert.ok(readKek(kekFile(`${secretB64}\n`, 0o600)).id);
    assert.ok(readKek(kekFile(`${secretB64}\n`, 0o400)).id);
  });

  test("missing, a folder, too large", () => {
    refused(join(work, "nope"), /cannot read the key-encryption key.*copy the key file from another credd host/);
    const dir = join(work, "a-folder");
    mkdirSync(dir, { mode: 0o700 });
    refused(dir, /is not a regular file/);
    refused(kekFile("A".repeat(400)), /too large/);
  });
});
