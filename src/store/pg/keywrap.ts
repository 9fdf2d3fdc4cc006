// Private keys in the shared store are never in clear (issue 17, docs/shared-store.md): each is
// sealed with AES-256-GCM (Node's crypto) under a key-encryption key (KEK) that every credd host
// holds as a file, so the database alone never yields a key.
//
// The KEK file holds 32 random bytes written as base64 on one line (a trailing newline is fine):
//   (umask 077; openssl rand -base64 32 > /etc/credd/store-kek)
// It must be a regular file that neither group nor others may use (0600 or 0400; systemd's
// LoadCredentialEncrypted= makes such a file). Raw binary bytes are not accepted: one format, and
// one that survives copy and paste between hosts.
//
// A sealed key (an "envelope") is bytes:
//   "CKW" 0x01 | key id (8) | nonce (12) | GCM tag (16) | ciphertext
// The key id is the first 8 bytes of HMAC-SHA256(KEK, "credd key-encryption key id"): every host
// with the same KEK computes the same id, and a rotation (a new KEK) gives a new one, so the
// envelope says which KEK opens it. The associated data binds the envelope to its place: the
// header above, then the credential name and key version. A row copied onto another credential
// or version, or altered in any byte, fails authentication.
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { CreddError, errorMessage } from "../../errors.js";

const KEK_KEY = "store.postgres.key_encryption_key_file";
const MAGIC = Buffer.from([0x43, 0x4b, 0x57, 0x01]); // "CKW", format 1
const ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + ID_BYTES + NONCE_BYTES;
const AAD_LABEL = Buffer.from("credd private key\0", "utf8");
const KEK_SHAPE = "32 random bytes as base64 on one line: (umask 077; openssl rand -base64 32 > FILE)";

/** A key-encryption key, read from its file. */
export interface Kek {
  /** 16 hex digits, the same on every host holding this key; not secret. */
  id: string;
  file: string;
  key: KeyObject;
}

/** Where a sealed key belongs: the associated data of its encryption. */
export interface KeyRef {
  credential: string;
  version: number;
}

/** The current KEK (seals) and those of a rotation in progress (open only). */
export interface Keyring {
  current: Kek;
  previous: Kek[];
}

function kekError(file: string, key: string, problem: string, fix: string, cause?: unknown): CreddError {
  return new CreddError("CONFIG", `${file} (${key}): ${problem} (fix: ${fix})`, cause === undefined ? undefined : { cause });
}

/**
 * Reads and checks a KEK file. Errors name the file, the config key and the fix; never a byte of
 * the file.
 */
export function readKek(file: string, key: string = KEK_KEY): Kek {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) return kekThrow(file, key, "is not a regular file", `point ${key} at the key file itself`);
    const mode = st.mode & 0o777;
    if (mode & 0o077)
      return kekThrow(
        file,
        key,
        `may be used by its group or others (mode ${mode.toString(8).padStart(4, "0")}); the key-encryption key opens every private key in the store`,
        `chmod 0600 ${file} (owned by credd's user), or pass it with systemd LoadCredentialEncrypted=`,
      );
    if (st.size > 256) return kekThrow(file, key, `is ${st.size} bytes, too large for a key-encryption key`, `write ${KEK_SHAPE}`);
    text = readFileSync(file, "latin1");
  } catch (err) {
    if (err instanceof CreddError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const fix =
      code === "ENOENT"
        ? `copy the key file from another credd host of this store (the same key on every host), or make the first one: ${KEK_SHAPE}`
        : code === "EACCES" || code === "EPERM"
          ? "let credd's user read it (chown it to that user, mode 0600)"
          : `check ${file}`;
    throw kekError(file, key, `cannot read the key-encryption key: ${errorMessage(err)}`, fix, err);
  }
  const line = text.replace(/\r?\n$/, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(line) || line.length % 4 !== 0)
    return kekThrow(file, key, "does not hold base64 text on one line (raw bytes are not accepted)", `write ${KEK_SHAPE}`);
  const bytes = Buffer.from(line, "base64");
  if (bytes.length !== 32) {
    const n = bytes.length;
    bytes.fill(0);
    return kekThrow(file, key, `holds ${n} bytes, not 32: AES-256 needs a 32-byte key`, `write ${KEK_SHAPE}`);
  }
  const kek = { id: kekId(bytes), file, key: createSecretKey(bytes) };
  bytes.fill(0);
  return kek;
}

function kekThrow(file: string, key: string, problem: string, fix: string): never {
  throw kekError(file, key, problem, fix);
}

function kekId(bytes: Buffer): string {
  return createHmac("sha256", bytes).update("credd key-encryption key id").digest().subarray(0, ID_BYTES).toString("hex");
}

function aad(header: Buffer, ref: KeyRef): Buffer {
  if (!Number.isInteger(ref.version) || ref.version < 0 || ref.version > 0xffffffff)
    throw new CreddError("INTERNAL", `key version ${ref.version} of ${ref.credential} is not a whole number from 0 to 2^32-1`);
  const name = Buffer.from(ref.credential, "utf8");
  const nums = Buffer.alloc(8);
  nums.writeUInt32BE(name.length, 0);
  nums.writeUInt32BE(ref.version, 4);
  return Buffer.concat([header, AAD_LABEL, nums.subarray(0, 4), name, nums.subarray(4)]);
}

/** Seals `plaintext` (a PEM private key) for `ref` under `kek`. */
export function wrapKey(kek: Kek, ref: KeyRef, plaintext: Buffer | string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from(kek.id, "hex"), nonce]);
  const cipher = createCipheriv("aes-256-gcm", kek.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(header, ref));
  const body = Buffer.concat([cipher.update(typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext), cipher.final()]);
  return Buffer.concat([header, cipher.getAuthTag(), body]);
}

/** The key id an envelope was sealed under (to find the KEK it needs), or undefined for bytes that are no envelope. */
export function envelopeKekId(envelope: Buffer): string | undefined {
  if (envelope.length < HEADER_BYTES + TAG_BYTES || !envelope.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  return envelope.subarray(MAGIC.length, MAGIC.length + ID_BYTES).toString("hex");
}

/**
 * Opens an envelope sealed for `ref`. Throws a loud STATE error when it cannot: no KEK of the
 * ring has its id (the key file is not the one of this store), or authentication fails (the row
 * was altered, or belongs to another credential or version). Never re-enrols by itself: a key
 * that cannot be opened is a person's decision.
 */
export function unwrapKey(ring: Keyring | Kek, ref: KeyRef, envelope: Buffer): Buffer {
  const keks = "current" in ring ? [ring.current, ...ring.previous] : [ring];
  const what = `the private key of ${ref.credential} version ${ref.version}`;
  const id = envelopeKekId(envelope);
  if (id === undefined)
    throw new CreddError(
      "STATE",
      `${what} in the store is not a sealed key credd wrote (too short or wrong format) (fix: restore the row from a backup)`,
    );
  const kek = keks.find((k) => k.id === id);
  if (!kek)
    throw new CreddError(
      "STATE",
      `${what} is sealed under key-encryption key ${id}, and ${keks.map((k) => `${k.file} holds ${k.id}`).join(", ")}: this host does not have the key of this store ` +
        `(fix: copy the key file from a host that runs on this store to ${KEK_KEY}, or, during a rotation, name the previous file too; credd does not re-enroll by itself)`,
    );
  const header = envelope.subarray(0, HEADER_BYTES);
  const nonce = envelope.subarray(MAGIC.length + ID_BYTES, HEADER_BYTES);
  const tag = envelope.subarray(HEADER_BYTES, HEADER_BYTES + TAG_BYTES);
  const body = envelope.subarray(HEADER_BYTES + TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", kek.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(header, ref));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (err) {
    throw new CreddError(
      "STATE",
      `${what} fails authentication under key-encryption key ${id} (${kek.file}): the row was altered, was copied from another credential or version, ` +
        `or the key file is not the one it was sealed with (fix: restore the row or the key file from a backup; credd does not re-enroll by itself)`,
      { cause: err },
    );
  }
}

/** For a rotation: the envelope opened with whichever KEK of the ring it needs, sealed again under the current one. */
export function rewrapKey(ring: Keyring, ref: KeyRef, envelope: Buffer): Buffer {
  if (envelopeKekId(envelope) === ring.current.id) return envelope;
  const plain = unwrapKey(ring, ref, envelope);
  try {
    return wrapKey(ring.current, ref, plain);
  } finally {
    plain.fill(0);
  }
}
