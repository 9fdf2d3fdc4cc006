// `doctor`: the chain a person would run with curl, one step at a time, each with its time and verdict.
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { readSecretFile } from "../config/load.js";
import type { CredentialConfig } from "../config/types.js";
import { daysLeft } from "../domain/timing.js";
import { errorMessage } from "../errors.js";
import { readFileFor } from "../files/file-errors.js";
import { credentialPaths } from "../files/layout.js";
import { callApi, type ApiAuth } from "../oauth/api.js";
import { tlsHandshake, type TlsMaterial } from "../oauth/http.js";
import { stellantisCaPems } from "../oauth/tls-material.js";
import { requestToken } from "../oauth/token-client.js";
import { parseCertificate, splitPemCertificates } from "../pki/certs.js";
import { verifyChain } from "../pki/chain.js";
import { loadPrivateKey } from "../pki/keys.js";
import type { Ctx } from "./context.js";
import type { Store } from "../store/store.js";

export interface DoctorStep {
  name: string;
  ok: boolean | "skipped";
  detail: string;
  ms: number;
}

const TIMEOUT_MS = 15_000;

/** Why there is nothing to check yet, and the command that moves the credential on. */
async function noLiveCertificate(store: Store | undefined, cred: CredentialConfig): Promise<string> {
  const pending = store ? await store.pendingRenewal(cred.name) : undefined;
  if (!pending) return `no live certificate yet: run credd enroll ${cred.name} (or credd import ${cred.name} --cert F --key F for one made by hand)`;
  return (
    `no live certificate yet: renewal #${pending.id} is ${pending.state} since ${pending.state_since}; ` +
    `when Stellantis sends the signed certificate, drop it in the inbox or run credd ingest FILE (credd status ${cred.name} shows where it stands)`
  );
}

/**
 * Reads the config, the live files and (when given, opened read-only) the database: nothing is
 * written or created, and the token it gets is not stored.
 */
export async function doctor(ctx: Pick<Ctx, "config" | "clock"> & { store?: Store }, cred: CredentialConfig): Promise<DoctorStep[]> {
  const steps: DoctorStep[] = [];
  const now = ctx.clock.now();
  let failed = false;
  const step = async (name: string, fn: () => Promise<string> | string, needs = true): Promise<boolean> => {
    if (!needs) {
      steps.push({ name, ok: "skipped", detail: "not configured", ms: 0 });
      return true;
    }
    if (failed) {
      steps.push({ name, ok: "skipped", detail: "an earlier step failed", ms: 0 });
      return false;
    }
    const t0 = performance.now();
    try {
      const detail = await fn();
      steps.push({ name, ok: true, detail, ms: Math.round(performance.now() - t0) });
      return true;
    } catch (err) {
      failed = true;
      steps.push({ name, ok: false, detail: errorMessage(err), ms: Math.round(performance.now() - t0) });
      return false;
    }
  };

  await step("config valid", () => `${ctx.config.file}: ${cred.name} (${cred.mzp})`);
  const live = credentialPaths(ctx.config.state_dir, cred.name).live;
  let tls: TlsMaterial | undefined;
  // live/ holds what `credd status` calls the live certificate: say which step of the lifecycle is
  // missing rather than which file is.
  const liveFile = (name: string, what: string) =>
    readFileFor(
      join(live, name),
      { what, fix: `credd status ${cred.name} shows the live version; credd rollback ${cred.name} or a new certificate rewrites live/` },
      "utf8",
    );
  await step("key matches the live certificate", async () => {
    if (!ctx.store || !(await ctx.store.liveCertificate(cred.name))) throw new Error(await noLiveCertificate(ctx.store, cred));
    const keyPem = liveFile("key.pem", "the live private key");
    const certPem = liveFile("fullchain.pem", "the live certificate and its chain");
    const key = loadPrivateKey(keyPem);
    const leaf = parseCertificate(splitPemCertificates(certPem)[0] ?? "");
    if (leaf.spkiSha256 !== key.spkiSha256) throw new Error(`live/key.pem does not match live/cert.pem (serial ${leaf.serial})`);
    tls = { keyPem, certPem, caPems: stellantisCaPems(ctx.config) };
    return `live/key.pem matches certificate ${leaf.serial}`;
  });
  await step("certificate valid and chains to the Stellantis CA", async () => {
    const certs = splitPemCertificates(liveFile("fullchain.pem", "the live certificate and its chain")).map((p) => parseCertificate(p));
    const leaf = certs[0]!;
    if (leaf.notAfter.getTime() <= now.getTime()) throw new Error(`certificate ${leaf.serial} expired on ${leaf.notAfter.toISOString()}`);
    if (leaf.notBefore.getTime() > now.getTime()) throw new Error(`certificate ${leaf.serial} is not valid before ${leaf.notBefore.toISOString()}`);
    const pinned = stellantisCaPems(ctx.config).map((p) => parseCertificate(p));
    if (pinned.length === 0) throw new Error(`stellantis.ca_file is not set in ${ctx.config.file}`);
    await verifyChain(leaf, certs.slice(1), pinned, now);
    return `valid for ${daysLeft(leaf.notAfter, now)} more days (until ${leaf.notAfter.toISOString()}), chains to ${pinned[0]!.subjectText}`;
  });
  await step(
    "TLS handshake with the token endpoint",
    async () => {
      const h = await tlsHandshake(cred.oauth!.token_url, tls!, TIMEOUT_MS);
      return `${new URL(cred.oauth!.token_url).host}: ${h.protocol}, server ${h.serverSubject} (issuer ${h.serverIssuer}) verified`;
    },
    !!cred.oauth,
  );
  await step(
    "TLS handshake with the API host",
    async () => {
      const h = await tlsHandshake(cred.api!.base_url, tls!, TIMEOUT_MS);
      return `${new URL(cred.api!.base_url).host}: ${h.protocol}, server ${h.serverSubject} (issuer ${h.serverIssuer}) verified`;
    },
    !!cred.api,
  );
  let token: string | undefined;
  const fetchToken = async () => {
    const r = await requestToken(cred.oauth!, tls!, { timeoutMs: TIMEOUT_MS, now: () => ctx.clock.now() });
    token = r.access_token;
    return r;
  };
  await step(
    "token obtained",
    async () => {
      const r = await fetchToken();
      return `${r.token_type} token, scope "${r.scope ?? cred.oauth!.scope}", expires_in ${r.expires_in} s`;
    },
    !!cred.oauth,
  );
  await step(
    "API request",
    async () => {
      const auth: ApiAuth = cred.oauth
        ? { bearer: async (fresh) => (fresh || !token ? (await fetchToken()).access_token : token) }
        : cred.basic_auth
          ? {
              basic: {
                user: cred.basic_auth.user,
                password: readSecretFile(cred.basic_auth.password_file, `credentials[${cred.name}].basic_auth.password_file`),
              },
            }
          : {};
      const r = await callApi(cred, tls!, auth, { timeoutMs: TIMEOUT_MS });
      const retried = r.retriedWithNewToken ? " (after 401 invalid_token: new token, one retry)" : "";
      if (r.error) throw new Error(`GET ${r.url}: ${r.error.message}${retried}`);
      return `GET ${r.url}: HTTP ${r.response.status} ${String(r.response.headers["content-type"] ?? "")}${retried}`;
    },
    !!cred.api,
  );
  return steps;
}
