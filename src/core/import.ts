// Adopting a certificate and key made by hand (the seeds' openssl way) as the live version.
import { readFileSync } from "node:fs";
import type { CredentialConfig } from "../config/types.js";
import { errorMessage, RefusedError } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";
import { credentialPaths, ensureCredentialDirs, maxArchiveVersion } from "../files/layout.js";
import { readCertificateFile } from "../pki/bundle.js";
import { parseCertificate, splitPemCertificates, type CertInfo } from "../pki/certs.js";
import { verifyChain } from "../pki/chain.js";
import { compareDn, formatDn } from "../pki/dn.js";
import { loadPrivateKey } from "../pki/keys.js";
import { checkCertificatePolicy, earliestCaExpiry, type CaExpiry } from "../pki/policy.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import { goLive } from "./golive.js";

export interface ImportInput {
  certText: string;
  certFile: string;
  keyText: string;
  keyFile: string;
  passphrase?: string;
}

export interface ImportResult {
  version: number;
  serial: string;
  notAfter: Date;
  alreadyLive: boolean;
  /**
   * Set when live/chain.pem is empty: the --cert file held the certificate alone and it could not
   * be chained to stellantis.ca_file (not set, unreadable, or another CA); says why.
   */
  chainNote?: string;
}

/** Checks key match, subject and dates; refuses with the failing check's name and changes nothing. */
export function checkImport(cred: CredentialConfig, input: ImportInput, now: Date) {
  const key = loadPrivateKey(input.keyText, input.passphrase);
  const certs = splitPemCertificates(input.certText).map((pem) => parseCertificate(pem));
  if (certs.length === 0) {
    throw new RefusedError("parse", `${input.certFile}: no certificate found (expected a PEM "BEGIN CERTIFICATE" block)`);
  }
  const leaf = certs.find((c) => c.spkiSha256 === key.spkiSha256);
  if (!leaf) {
    throw new RefusedError(
      "key-match",
      `${input.certFile}: the certificate's public key does not match the private key in ${input.keyFile} ` +
        `(certificate ${certs[0]!.serial}); give the key that made this certificate's CSR`,
    );
  }
  const mismatches = compareDn(cred.dn, leaf.subject);
  if (mismatches.length > 0) {
    throw new RefusedError(
      "subject",
      `${input.certFile}: the certificate's subject is not the DN configured for ${cred.name}: ${mismatches.join("; ")} ` +
        `(expected ${formatDn(cred.dn)}; fix the config's subject/mzp if the certificate is right)`,
    );
  }
  if (leaf.notAfter.getTime() <= now.getTime()) {
    throw new RefusedError("validity", `${input.certFile}: certificate ${leaf.serial} expired on ${leaf.notAfter.toISOString()}`);
  }
  if (leaf.notBefore.getTime() > now.getTime()) {
    throw new RefusedError(
      "validity",
      `${input.certFile}: certificate ${leaf.serial} is not valid before ${leaf.notBefore.toISOString()} (check this host's clock)`,
    );
  }
  const chain = certs.filter((c) => c !== leaf);
  // The same policy as ingest on every certificate given; a self-signed last one is the anchor.
  const path = [leaf, ...chain];
  const anchored = chain.length > 0 && chain[chain.length - 1]!.selfSigned;
  const refusal = checkCertificatePolicy(path, anchored);
  if (refusal) throw new RefusedError(refusal.check, `${input.certFile}: ${refusal.reason}`);
  return { key, leaf, chain, ca: earliestCaExpiry(path, anchored) };
}

export async function importCertificate(ctx: Ctx, cred: CredentialConfig, input: ImportInput): Promise<ImportResult> {
  const now = ctx.clock.now();
  const checked = checkImport(cred, input, now);
  const { key, leaf } = checked;
  const current = await ctx.store.liveCertificate(cred.name);
  if (current && current.sha256 === leaf.sha256) {
    return { version: current.version, serial: leaf.serial, notAfter: leaf.notAfter, alreadyLive: true };
  }
  // chain.pem holds the intermediates and the CA (docs/lifecycle.md, "On disk"), as after an
  // ingest: a certificate given alone gets them from stellantis.ca_file, by the same path check.
  let { chain, ca } = checked;
  let chainNote: string | undefined;
  if (chain.length === 0) {
    const fromCa = await chainFromPinnedCa(ctx, leaf, now);
    if ("note" in fromCa) chainNote = `live/chain.pem is empty: ${input.certFile} holds the certificate alone, and ${fromCa.note}`;
    else ({ chain, ca } = fromCa);
  }

  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  ensureCredentialDirs(paths);
  const version = Math.max(await ctx.store.maxVersion(cred.name), maxArchiveVersion(paths)) + 1;
  writeFileAtomic(paths.key(version), key.pkcs8Pem, 0o600);
  writeFileAtomic(paths.cert(version), leaf.pem, 0o644);
  writeFileAtomic(paths.chain(version), chain.map((c) => c.pem).join(""), 0o644);
  // A shared store keeps the key (sealed), certificate and chain for the other hosts; SQLite: nothing.
  await ctx.store.putArchive(cred.name, version, { key: key.pkcs8Pem, cert: leaf.pem, chain: chain.map((c) => c.pem).join("") });
  crashPoint("import-after-archive");
  // A hand-made certificate for the pending renewal's own key completes that renewal.
  const pending = await ctx.store.pendingRenewal(cred.name);
  const renewalId = pending && pending.spki_sha256 === key.spkiSha256 ? pending.id : null;
  await ctx.store.insertInstalledCertificate({ ...certificateRow(cred.name, version, leaf, "import", now, ca), renewal_id: renewalId });
  crashPoint("import-after-db");
  await goLive(ctx, cred, version, `imported from ${input.certFile}`);
  return { version, serial: leaf.serial, notAfter: leaf.notAfter, alreadyLive: false, ...(chainNote ? { chainNote } : {}) };
}

/**
 * The CA certificates above `leaf` up to the Stellantis CA, from stellantis.ca_file (what ingest
 * writes to chain.pem), and the CA among them that expires first; or why there are none. Never a
 * refusal: import adopted certificates before it looked at ca_file, and still does.
 */
async function chainFromPinnedCa(ctx: Ctx, leaf: CertInfo, now: Date): Promise<{ chain: CertInfo[]; ca: CaExpiry | undefined } | { note: string }> {
  const file = ctx.config.stellantis.ca_file;
  if (!file) return { note: `stellantis.ca_file is not set in ${ctx.config.file} to take the CA chain from` };
  let pinned: CertInfo[];
  try {
    pinned = readCertificateFile(readFileSync(file), file).certificates;
  } catch (err) {
    return { note: `stellantis.ca_file ${file} cannot be read: ${errorMessage(err)}` };
  }
  try {
    const path = (await verifyChain(leaf, [], pinned, now)).chain;
    return { chain: path.slice(1), ca: earliestCaExpiry(path, true) };
  } catch (err) {
    if (!(err instanceof RefusedError)) throw err;
    return { note: `it does not chain to stellantis.ca_file ${file}: ${errorMessage(err)}` };
  }
}

export function certificateRow(credential: string, version: number, c: CertInfo, source: "import" | "renewal", now: Date, ca?: CaExpiry) {
  return {
    credential,
    version,
    serial: c.serial,
    not_before: c.notBefore.toISOString(),
    not_after: c.notAfter.toISOString(),
    subject: c.subjectText,
    issuer: c.issuerText,
    spki_sha256: c.spkiSha256,
    sha256: c.sha256,
    source,
    installed_at: now.toISOString(),
    ca_not_after: ca?.notAfter.toISOString() ?? null,
    ca_not_after_role: ca?.role ?? null,
    ca_not_after_subject: ca?.subject ?? null,
    ca_not_after_serial: ca?.serial ?? null,
  };
}
