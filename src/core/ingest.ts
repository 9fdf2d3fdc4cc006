// Taking in signed certificates: every check in order, then archive/, the database and go-live.
import { readFileSync } from "node:fs";
import type { CredentialConfig } from "../config/types.js";
import { CreddError, errorMessage, RefusedError, underlyingCode } from "../errors.js";
import { writeFileAtomic } from "../files/atomic.js";
import { credentialPaths } from "../files/layout.js";
import { readCertificateFile } from "../pki/bundle.js";
import type { CertInfo } from "../pki/certs.js";
import type { ChainResult } from "../pki/chain.js";
import { compareDn, formatDn } from "../pki/dn.js";
import { checkIssuedCertificate, type CaExpiry } from "../pki/policy.js";
import type { Ctx } from "./context.js";
import { crashPoint } from "./crash.js";
import { goLive, type GoLiveResult } from "./golive.js";
import { certificateRow } from "./import.js";
import { probeRegistration } from "./registration.js";
import type { CertificateRow, RenewalRow } from "../store/store.js";

export interface InputFile {
  /** The name shown in outcomes, logs, the database and emails (for the inbox: escaped, see domain/untrusted.ts). */
  name: string;
  bytes: Buffer;
  /** Already refused before parsing (not a regular file, too large): recorded and reported like any refusal. */
  refused?: { check: string; reason: string };
}

export interface BatchOptions {
  /** Called once per file as soon as its outcome is known and recorded (the inbox moves the file then). */
  onOutcome?: (o: FileOutcome) => void | Promise<void>;
  /** Awaited between files, so that a large batch never holds the event loop (the inbox yields there). */
  pace?: () => Promise<void>;
}

export type FileOutcome =
  | {
      file: string;
      outcome: "installed";
      credential: string;
      serial: string;
      version: number;
      live?: GoLiveResult;
      /** Installed but not live yet: why (awaiting IDP registration). */
      staged?: string;
    }
  | { file: string; outcome: "chain"; credential: string }
  | { file: string; outcome: "already-live"; credential: string; serial: string; version: number; liveSince: string | null }
  | { file: string; outcome: "refused"; check: string; reason: string; credential?: string }
  /** Not a verdict on the file: something failed on our side (database locked, disk full). Try again. */
  | { file: string; outcome: "failed"; reason: string; credential?: string /** e.g. ENOSPC, SQLITE_BUSY */; code?: string };

interface Parsed {
  file: string;
  certs: CertInfo[];
}

/**
 * Takes in one batch of files (the CLI's arguments, or what is in the inbox now): their certificates
 * form one pool, so a leaf in one file may chain through an intermediate in another.
 */
export async function ingestBatch(ctx: Ctx, files: InputFile[], only?: CredentialConfig, opts: BatchOptions = {}): Promise<FileOutcome[]> {
  const out: FileOutcome[] = [];
  const pace = opts.pace ?? (async () => {});
  const emit = async (o: FileOutcome): Promise<void> => {
    out.push(o);
    await record(ctx, o);
    await opts.onOutcome?.(o);
  };
  const parsed: Parsed[] = [];
  for (const f of files) {
    if (f.refused) {
      await emit({ file: f.name, outcome: "refused", check: f.refused.check, reason: f.refused.reason });
    } else {
      try {
        parsed.push({ file: f.name, certs: readCertificateFile(f.bytes, f.name).certificates });
      } catch (err) {
        await emit(refusal(f.name, err));
      }
    }
    await pace();
  }
  const pool = dedupe(parsed.flatMap((p) => p.certs));
  const usedBy = new Map<string, string>(); // cert sha256 → credential whose chain used it
  const leafFiles = parsed.filter((p) => p.certs.some((c) => !c.isCa));
  for (const p of leafFiles) {
    const leaves = p.certs.filter((c) => !c.isCa);
    if (leaves.length > 1) {
      await emit({
        file: p.file,
        outcome: "refused",
        check: "parse",
        reason: `${p.file} holds ${leaves.length} end-entity certificates; give one signed certificate per file`,
      });
      continue;
    }
    const leaf = leaves[0]!;
    let o: FileOutcome;
    try {
      const r = await ingestLeaf(
        ctx,
        p.file,
        leaf,
        pool.filter((c) => c !== leaf),
        only,
      );
      for (const c of r.chainUsed) usedBy.set(c.sha256, r.outcome.credential);
      o = r.outcome;
    } catch (err) {
      o = refusal(p.file, err, err instanceof IngestRefusal ? err.credential : undefined);
    }
    await emit(o);
    await pace();
  }
  for (const p of parsed.filter((x) => !leafFiles.includes(x))) {
    const user = p.certs.map((c) => usedBy.get(c.sha256)).find((c) => c !== undefined);
    if (user) await emit({ file: p.file, outcome: "chain", credential: user });
    else {
      await emit({
        file: p.file,
        outcome: "refused",
        check: "key-match",
        reason: `${p.file} holds only CA certificates (${p.certs.map((c) => c.subjectText).join("; ")}) and no signed certificate; the Stellantis CA comes from stellantis.ca_file`,
      });
    }
  }
  return out;
}

/** Records what became of one file (history, and a warning for a refusal). */
async function record(ctx: Ctx, o: FileOutcome): Promise<void> {
  // A failure on our side is not recorded (the database may be what failed); the caller reports it:
  // the CLI prints it, the inbox logs it once while it lasts (daemon/inbox.ts).
  if (o.outcome === "failed") return;
  await ctx.store.recordIngest({
    at: ctx.clock.now().toISOString(),
    file: o.file,
    credential: "credential" in o ? (o.credential ?? null) : null,
    outcome: o.outcome,
    check_name: o.outcome === "refused" ? o.check : null,
    reason: o.outcome === "refused" ? o.reason : null,
    serial: o.outcome === "installed" || o.outcome === "already-live" ? o.serial : null,
    sha256: null,
  });
  if (o.outcome === "refused")
    ctx.log.warn({ file: o.file, check: o.check, credential: o.credential, event: "certificate-refused", reason: o.reason }, "certificate refused");
}

class IngestRefusal extends RefusedError {
  constructor(
    check: string,
    message: string,
    readonly credential?: string,
  ) {
    super(check, message);
  }
}

function refusal(file: string, err: unknown, credential?: string): FileOutcome {
  if (!(err instanceof RefusedError)) return failedOutcome(file, err, credential);
  return { file, outcome: "refused", check: err.check, reason: errorMessage(err), ...(credential ? { credential } : {}) };
}

/** Something failed on our side while taking in `file`: the outcome that says so, with the error's code. */
export function failedOutcome(file: string, err: unknown, credential?: string): FileOutcome & { outcome: "failed" } {
  const code = underlyingCode(err);
  return { file, outcome: "failed", reason: errorMessage(err), ...(credential ? { credential } : {}), ...(code ? { code } : {}) };
}

function dedupe(certs: CertInfo[]): CertInfo[] {
  const seen = new Map<string, CertInfo>();
  for (const c of certs) if (!seen.has(c.sha256)) seen.set(c.sha256, c);
  return [...seen.values()];
}

/** The credential and pending renewal whose key this certificate was made for. */
async function findRenewal(ctx: Ctx, leaf: CertInfo, only?: CredentialConfig): Promise<{ cred: CredentialConfig; renewal: RenewalRow }> {
  const creds = only ? [only] : ctx.config.credentials;
  for (const cred of creds) {
    const renewal = await ctx.store.pendingRenewal(cred.name);
    if (renewal && renewal.spki_sha256 === leaf.spkiSha256) return { cred, renewal };
  }
  if (only) {
    const r = await ctx.store.pendingRenewal(only.name);
    throw new IngestRefusal(
      "key-match",
      r
        ? `certificate ${leaf.serial} (${leaf.subjectText}) was not made for the key of ${only.name}'s pending renewal #${r.id} (CSR archive/csr-${r.version}.pem)`
        : `${only.name} has no pending renewal, so there is no key for certificate ${leaf.serial}; to adopt a certificate made by hand use \`credd import ${only.name} --cert F --key F\``,
      only.name,
    );
  }
  throw new IngestRefusal(
    "key-match",
    `certificate ${leaf.serial} (${leaf.subjectText}) matches the key of no pending renewal; was it made for another CSR? ` +
      "(`credd status` lists pending renewals)",
  );
}

/**
 * Why a certificate that was live before and has been replaced is not installed again, and how to
 * go back to it if that is what the person wants (`credd rollback` goes back one step only).
 */
async function previouslyLive(ctx: Ctx, cred: CredentialConfig, known: CertificateRow, now: Date): Promise<string> {
  const live = await ctx.store.liveCertificate(cred.name);
  const before = await ctx.store.previousCertificate(cred.name);
  const what =
    `certificate ${known.serial} (version ${known.version}) is already installed: it was ${cred.name}'s live certificate ` +
    `before (first live on ${known.went_live_at}) and was replaced on ${known.retired_at ?? "(date not recorded)"}` +
    (live ? ` (live now: certificate ${live.serial}, version ${live.version})` : "") +
    "; nothing changed";
  if (new Date(known.not_after).getTime() <= now.getTime()) return `${what}. It expired on ${known.not_after}, so it cannot be live again`;
  if (before?.id === known.id) return `${what}. To make it live again, run \`credd rollback ${cred.name}\``;
  return (
    `${what}. \`credd rollback ${cred.name}\` goes back one step only, to certificate ${before?.serial ?? "(none)"}` +
    `${before ? ` (version ${before.version})` : ""}, not to this one`
  );
}

function readPinnedCa(ctx: Ctx): CertInfo[] {
  const file = ctx.config.stellantis.ca_file;
  if (!file) {
    throw new RefusedError(
      "chain",
      `stellantis.ca_file is not set in ${ctx.config.file}: credd checks every certificate against the Stellantis CA (fix: set it to the CA certificate Stellantis sent)`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CreddError("CONFIG", `${ctx.config.file}: stellantis.ca_file: cannot read ${file}: ${errorMessage(err)}`);
  }
  return readCertificateFile(bytes, file).certificates;
}

async function ingestLeaf(
  ctx: Ctx,
  file: string,
  leaf: CertInfo,
  others: CertInfo[],
  only?: CredentialConfig,
): Promise<{ outcome: FileOutcome & { credential: string }; chainUsed: CertInfo[] }> {
  const now = ctx.clock.now();
  // Already taken in (the same file dropped twice, a retry after a crash, an older certificate again)?
  for (const cred of only ? [only] : ctx.config.credentials) {
    const known = await ctx.store.certificateBySha256(cred.name, leaf.sha256);
    if (known?.live === 1) {
      const outcome = {
        file,
        outcome: "already-live" as const,
        credential: cred.name,
        serial: leaf.serial,
        version: known.version,
        liveSince: known.went_live_at,
      };
      return { outcome, chainUsed: [] };
    }
    if (known && known.went_live_at !== null) {
      throw new IngestRefusal("previously-live", await previouslyLive(ctx, cred, known, now), cred.name);
    }
    if (known && known.went_live_at === null && known.renewal_id !== null) {
      // Accepted before but not live: an OAuth2 one waiting for the IDP gets probed, anything
      // else had its go-live interrupted (a crash) and is finished now.
      const base = { file, outcome: "installed" as const, credential: cred.name, serial: known.serial, version: known.version };
      const renewal = await ctx.store.getRenewal(known.renewal_id);
      if (cred.oauth && renewal?.state === "signed") {
        const probe = await probeRegistration(ctx, cred, renewal);
        const outcome = probe.state === "awaiting-registration" ? { ...base, staged: probe.reason } : { ...base, live: probe.live };
        return { outcome, chainUsed: [] };
      }
      const live = await goLive(ctx, cred, known.version, "resumed after an interrupted install");
      return { outcome: { ...base, live }, chainUsed: [] };
    }
  }
  const { cred, renewal } = await findRenewal(ctx, leaf, only);
  const fail = (check: string, msg: string): never => {
    throw new IngestRefusal(check, msg, cred.name);
  };
  const mismatches = compareDn(cred.dn, leaf.subject);
  if (mismatches.length) {
    fail("subject", `certificate ${leaf.serial}: subject is not the DN asked for: ${mismatches.join("; ")} (asked for ${formatDn(cred.dn)})`);
  }
  // Validity, usage, the chain to the pinned CA, the certificate policy and the renewal date
  // (pki/policy.ts): the same sequence the differential test runs against `openssl verify`.
  let chain: ChainResult;
  let ca: CaExpiry | undefined;
  try {
    ({ chain, ca } = await checkIssuedCertificate(leaf, others, readPinnedCa(ctx), now, cred.renew_before_days));
  } catch (err) {
    if (!(err instanceof RefusedError)) throw err;
    return fail(err.check, errorMessage(err));
  }

  // Every check passed: archive, record as installed (renewal → signed), then go live.
  const paths = credentialPaths(ctx.config.state_dir, cred.name);
  const above = chain.chain.slice(1);
  writeFileAtomic(paths.cert(renewal.version), leaf.pem, 0o644);
  writeFileAtomic(paths.chain(renewal.version), above.map((c) => c.pem).join(""), 0o644);
  crashPoint("after-archive");
  const at = now.toISOString();
  await ctx.store.tx(async (s) => {
    // A shared store keeps the certificate and chain for the other hosts (the key is there already).
    await s.putArchive(cred.name, renewal.version, { cert: leaf.pem, chain: above.map((c) => c.pem).join("") });
    await s.insertInstalledCertificate({ ...certificateRow(cred.name, renewal.version, leaf, "renewal", now, ca), renewal_id: renewal.id });
    await s.setRenewalState(renewal.id, "signed", at);
  });
  crashPoint("after-signed");
  ctx.log.info(
    { credential: cred.name, event: "certificate-installed", renewal: renewal.id, serial: leaf.serial, file },
    "signed certificate accepted and installed",
  );
  const base = { file, outcome: "installed" as const, credential: cred.name, serial: leaf.serial, version: renewal.version };
  if (cred.oauth) {
    // Staged: live only once the IDP accepts the new certificate (or the old one runs out).
    const probe = await probeRegistration(ctx, cred, { ...renewal, state: "signed" });
    const outcome = probe.state === "awaiting-registration" ? { ...base, staged: probe.reason } : { ...base, live: probe.live };
    return { outcome, chainUsed: above };
  }
  const previous = await ctx.store.liveCertificate(cred.name);
  const live = await goLive(ctx, cred, renewal.version, previous ? `replaces ${previous.serial}` : "first certificate");
  return { outcome: { ...base, live }, chainUsed: above };
}
