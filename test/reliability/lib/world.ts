// One throwaway credd installation for reliability tests: a CA (openssl), a real SMTP server, the
// loopback IDP + API, a config with N credentials, and the test playing the Stellantis CA.
import { createHash, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeCa, makeTempDir, signCsr, type TestCa } from "../../helpers/openssl.js";
import { startSmtpServer, type ReceivedMail, type TestSmtpServer } from "../../helpers/smtp.js";
import { startFakeStellantis, type FakeStellantis } from "../../helpers/stellantis.js";

export interface CredSpec {
  name: string;
  mzp: string;
  key?: "rsa" | "ec";
  oauth?: boolean;
  autoEnroll?: boolean;
  /** YAML lines added to the credential as they are (indented by the writer). */
  extra?: string;
}

export interface World {
  dir: string;
  config: string;
  stateDir: string;
  runtimeDir: string;
  inboxDir: string;
  ca: TestCa;
  /** The pinned stellantis.ca_file: client CA + the IDP's server CA (the token endpoint is trusted through it). */
  caFile: string;
  smtp: TestSmtpServer;
  fake: FakeStellantis;
  creds: CredSpec[];
  close(): Promise<void>;
}

export interface WorldOptions {
  creds: CredSpec[];
  schedule?: string;
  /** Extra YAML under smtp: (indented by the writer). */
  smtpExtra?: string;
  /** Use this SMTP server instead of starting one (its port and CA go into the config). */
  smtpPort?: number;
  smtpCaPath?: string;
  top?: string;
  prefix?: string;
  /** The fake API also takes Basic auth with these. */
  basic?: { user: string; password: string };
}

export async function makeWorld(opts: WorldOptions): Promise<World> {
  const dir = makeTempDir(opts.prefix ?? "credd-rel-");
  const ca = makeCa(dir);
  const smtp = opts.smtpPort === undefined ? await startSmtpServer() : undefined;
  const fake = await startFakeStellantis({ clientCaPem: ca.certPem, ...(opts.basic ? { basic: opts.basic } : {}) });
  const caFile = join(dir, "stellantis-ca.pem");
  writeFileSync(caFile, ca.certPem + fake.serverCaPem);
  const stateDir = join(dir, "state");
  const runtimeDir = join(dir, "run");
  const inboxDir = join(dir, "inbox");
  mkdirSync(inboxDir, { recursive: true });
  const config = join(dir, "credd.yaml");
  const smtpPort = opts.smtpPort ?? smtp!.port;
  const smtpCa = opts.smtpCaPath ?? smtp!.caPath;
  const credYaml = opts.creds
    .map((c) => {
      const lines = [
        `- name: ${c.name}`,
        `  mzp: ${c.mzp}`,
        `  client_id: app-${c.name}`,
        `  subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }`,
        c.key === "ec" ? `  key: { type: ec, curve: P-256 }` : `  key: { type: rsa, bits: 2048 }`,
        ...(c.autoEnroll ? [`  auto_enroll: true`] : []),
        ...(c.oauth
          ? [
              `  oauth: { token_url: "${fake.tokenUrl}", client_id: partner-${c.name}, scope: openid }`,
              `  api: { base_url: "${fake.apiBaseUrl}", probe_path: /fleets }`,
            ]
          : []),
        ...(c.extra
          ? c.extra
              .replaceAll("{{API}}", fake.apiBaseUrl)
              .trimEnd()
              .split("\n")
              .map((l) => `  ${l}`)
          : []),
      ];
      return lines.map((l) => `  ${l}`).join("\n");
    })
    .join("\n");
  writeFileSync(
    config,
    `state_dir: ${stateDir}
runtime_dir: ${runtimeDir}
inbox_dir: ${inboxDir}
check_schedule: "${opts.schedule ?? "*/10 * * * *"}"
smtp:
  url: smtp://127.0.0.1:${smtpPort}
  from: "credd <credd@partner.example>"
  ca_file: ${smtpCa}
  timeout_ms: 3000
${(opts.smtpExtra ?? "")
  .trimEnd()
  .split("\n")
  .filter(Boolean)
  .map((l) => `  ${l}`)
  .join("\n")}
alerts:
  to: [ops@partner.example]
stellantis:
  contact: connectedcar@stellantis.example
  ca_file: ${caFile}
${opts.top ?? ""}
credentials:
${credYaml}
`,
  );
  return {
    dir,
    config,
    stateDir,
    runtimeDir,
    inboxDir,
    ca,
    caFile,
    smtp: smtp!,
    fake,
    creds: opts.creds,
    async close() {
      await smtp?.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const archiveDir = (w: Pick<World, "stateDir">, name: string) => join(w.stateDir, "credentials", name, "archive");
export const liveDir = (w: Pick<World, "stateDir">, name: string) => join(w.stateDir, "credentials", name, "live");

/** The SHA-256 fingerprint as credd and the fake IDP write it: "AB:CD:…". */
export function certFingerprint(pem: string | Buffer): string {
  return new X509Certificate(pem).fingerprint256;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The CSR attached to a CSR email, if the mail carries one. */
export function csrOf(m: ReceivedMail): string | undefined {
  const a = m.parsed.attachments.find((x) => /\.csr$/i.test(x.filename ?? ""));
  return a ? Buffer.from(a.content).toString("utf8") : undefined;
}

export function messageIdOf(m: ReceivedMail): string {
  return (m.parsed.messageId ?? "").replace(/^<|>$/g, "");
}

/**
 * The test as the Stellantis CA: every distinct CSR that arrives by email is signed once
 * (365 days, clientAuth) and handed to `deliver` (the inbox, or a queue for `credd ingest`).
 */
export class CaDesk {
  private readonly seen = new Set<string>();
  private scanned = 0;
  readonly signed: { csrSha: string; certPath: string; mzp: string }[] = [];
  private n = 0;
  constructor(
    private readonly w: World,
    private readonly deliver: (certPath: string, mzp: string) => void,
    /** Every other email (registration requests, alerts), as it arrives. */
    private readonly other: (m: ReceivedMail) => void = () => {},
  ) {}

  /** Signs whatever CSRs came in since the last call. */
  poll(): number {
    let made = 0;
    const mails = this.w.smtp.received;
    for (; this.scanned < mails.length; this.scanned++) {
      const csr = csrOf(mails[this.scanned]!);
      if (!csr) {
        this.other(mails[this.scanned]!);
        continue;
      }
      const sha = sha256Hex(csr);
      if (this.seen.has(sha)) continue;
      this.seen.add(sha);
      const att = mails[this.scanned]!.parsed.attachments.find((x) => /\.csr$/i.test(x.filename ?? ""));
      const mzp = att?.filename?.replace(/\.csr$/i, "") ?? "unknown";
      const work = join(this.w.dir, "ca-desk");
      mkdirSync(work, { recursive: true });
      const csrPath = join(work, `req-${++this.n}.csr`);
      writeFileSync(csrPath, csr);
      const certPath = join(work, `${mzp}-${this.n}.pem`);
      signCsr(this.w.ca, csrPath, certPath, { days: 365 });
      this.signed.push({ csrSha: sha, certPath, mzp });
      this.deliver(certPath, mzp);
      made++;
    }
    return made;
  }
}

/** Drops a file into the inbox the way the README asks: written elsewhere, then renamed in. */
export function dropInInbox(w: Pick<World, "inboxDir" | "dir">, src: string, name: string): void {
  const tmp = join(w.inboxDir, `.${name}.tmp`);
  writeFileSync(tmp, readFileSync(src));
  renameSync(tmp, join(w.inboxDir, name));
}
