// The local Stellantis, on loopback only: an SMTP server for what credd sends, a CA desk that signs
// emailed CSRs into credd's inbox, an IDP + API requiring client certificates, a mailbox. Everything
// (CA, server certificate, mailbox, logs, a ready credd.yaml) lives in one folder; time is virtual.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Clock } from "../src/clock.js";
import { writeFileAtomic } from "../src/files/atomic.js";
import { CONTACT, DEFAULT_CREDENTIAL, renderConfig, type SandboxCredential } from "./config.js";
import { startDownloadPage } from "./download.js";
import { Desk, type IssuedCert } from "./desk.js";
import { EventLog } from "./events.js";
import { startFakeStellantis, type FakeStellantis } from "./idp.js";
import { startSandboxSmtp, type MailRecord, type SandboxSmtp } from "./mail.js";
import { loadOrMakeCa, loadOrMakeServerTls } from "./pki.js";
import { fileClock } from "./time.js";
import { startMailboxPage, type MailboxPage } from "./web.js";

export interface SandboxOptions {
  /** Everything is written here; made if missing. */
  dir: string;
  /** The virtual clock's offset file (default DIR/clock); credd must run with CREDD_CLOCK_FILE set to it. */
  clockFile?: string;
  /** How long the CA takes to sign a CSR, real ms (default 5000). */
  signDelayMs?: number;
  /** How long the IDP team takes to bind a certificate emailed for registration, real ms (default 5000). */
  bindDelayMs?: number;
  /** Validity of signed certificates, virtual days (default 365). */
  validityDays?: number;
  /** Token expires_in, seconds of virtual time (default 3600). */
  tokenLifetimeSec?: number;
  /** The IDP accepts every certificate of its CA at once (and binds it on first use); default false: registration email first. */
  acceptAll?: boolean;
  /** check_schedule written to credd.yaml (default every 2 s). */
  checkSchedule?: string;
  credential?: SandboxCredential;
  /** Serve the mailbox page (default true). */
  web?: boolean;
}

export interface Sandbox {
  dir: string;
  configPath: string;
  clockFile: string;
  inboxDir: string;
  mailboxDir: string;
  logFile: string;
  caPath: string;
  smtpPort: number;
  tokenUrl: string;
  apiBaseUrl: string;
  mailboxUrl: string | undefined;
  credential: SandboxCredential;
  contact: string;
  clock: Clock;
  log: EventLog;
  mails: readonly MailRecord[];
  issued: readonly IssuedCert[];
  idp: FakeStellantis;
  readonly acceptAll: boolean;
  setAcceptAll(on: boolean): void;
  smtpDown(): Promise<void>;
  smtpUp(): Promise<void>;
  idpDown(): Promise<void>;
  idpUp(): Promise<void>;
  /** What runs where, one line each. */
  info(): string[];
  stop(): Promise<void>;
}

interface Persisted {
  ports: { smtp?: number; https?: number; web?: number; download?: number };
  bound: string[];
  issued: IssuedCert[];
}

/** Listens on `want` (the port used last time, so credd.yaml stays right) or, if taken, on a free one. */
async function onPort<T>(want: number | undefined, start: (port: number) => Promise<T>): Promise<T> {
  if (!want) return start(0);
  try {
    return await start(want);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    return start(0);
  }
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const dir = resolve(opts.dir);
  const p = {
    ca: join(dir, "ca"),
    issued: join(dir, "ca", "issued"),
    tls: join(dir, "tls"),
    inbox: join(dir, "inbox"),
    mailbox: join(dir, "mailbox"),
    // The Maildir the CA's reply is delivered to and credd's `mailbox:` watches (docs/mailbox.md).
    maildir: join(dir, "Maildir"),
    state: join(dir, "sandbox.json"),
    log: join(dir, "sandbox.log"),
    config: join(dir, "credd.yaml"),
    stellantisCa: join(dir, "stellantis-ca.pem"),
  };
  for (const d of [dir, p.ca, p.issued, p.tls, p.mailbox]) mkdirSync(d, { recursive: true });
  mkdirSync(p.inbox, { recursive: true, mode: 0o750 });
  for (const d of ["tmp", "new", "cur"]) mkdirSync(join(p.maildir, d), { recursive: true, mode: 0o700 });
  const clockFile = resolve(opts.clockFile ?? join(dir, "clock"));
  const clock = fileClock(clockFile);
  const now = () => clock.now();
  const cred = opts.credential ?? DEFAULT_CREDENTIAL;
  const persisted: Persisted = existsSync(p.state)
    ? { ports: {}, bound: [], issued: [], ...(JSON.parse(readFileSync(p.state, "utf8")) as Partial<Persisted>) }
    : { ports: {}, bound: [], issued: [] };
  const save = () => writeFileAtomic(p.state, JSON.stringify(persisted, null, 2) + "\n", 0o644);

  const ca = await loadOrMakeCa(p.ca, now());
  if (ca.made) {
    persisted.bound = []; // a new CA: nothing issued by the old one is trusted any more
    persisted.issued = [];
  }
  const serverTls = await loadOrMakeServerTls(p.tls);
  writeFileAtomic(p.stellantisCa, ca.certPem + serverTls.caPem, 0o644);
  const log = new EventLog(p.log, now);

  const serialOf = (sha256: string) => persisted.issued.find((c) => c.sha256 === sha256)?.serial ?? `(unknown, SHA-256 ${sha256.slice(0, 11)}…)`;
  let idp: FakeStellantis | undefined;
  const bind = (sha256: string, why: string) => {
    idp?.register(sha256);
    if (!persisted.bound.includes(sha256)) persisted.bound.push(sha256);
    save();
    log.add("bound", `IDP bound certificate ${serialOf(sha256)} to OAuth2 client ${cred.oauthClientId} (${why}): tokens can be had with it`, {
      sha256,
      serial: serialOf(sha256),
      why,
    });
  };
  const tokenLifetime = opts.tokenLifetimeSec ?? 3600;
  idp = await onPort(persisted.ports.https, (port) =>
    startFakeStellantis({
      clientCaPem: ca.certPem,
      port,
      now,
      serverTls: { ...serverTls },
      clientCertCheck: "request", // certificates are dated by the virtual clock, which TLS does not know
      onTokenRequest(r, issued) {
        if (issued) {
          if (idp?.acceptAllFromCa && !persisted.bound.includes(r.certSha256))
            bind(r.certSha256, "first use: the IDP accepts every certificate of its CA");
          log.add("token", `IDP issued a token to certificate ${serialOf(r.certSha256)} (client ${r.clientId}, expires in ${tokenLifetime} s)`, {
            sha256: r.certSha256,
            serial: serialOf(r.certSha256),
          });
        } else if (r.status === 401) {
          log.add("token-refused", `IDP refused certificate ${serialOf(r.certSha256)}: invalid_client (${r.error ?? "refused"})`, {
            sha256: r.certSha256,
            serial: serialOf(r.certSha256),
          });
        }
      },
      onApiCall(c) {
        log.add(
          "api",
          `API GET ${c.path}?client_id=${c.query.client_id ?? ""} answered ${c.status}${c.status === 200 ? " application/hal+json" : ""} (certificate ${serialOf(c.certSha256)})`,
          {
            ...c,
            auth: c.auth.split(" ")[0] ?? "",
            serial: serialOf(c.certSha256),
          },
        );
      },
    }),
  );
  const fake = idp;
  fake.expiresIn = tokenLifetime;
  fake.acceptAllFromCa = opts.acceptAll ?? false;
  for (const fp of persisted.bound) fake.register(fp);

  const download = await onPort(persisted.ports.download, (port) => startDownloadPage({ port, issuedDir: p.issued, tls: serverTls }));
  const desk = new Desk({
    reply: { maildir: p.maildir, linkFor: (serial) => download.linkFor(serial), clientId: cred.clientId },
    contact: CONTACT,
    inboxDir: p.inbox,
    issuedDir: p.issued,
    ca,
    now,
    signDelayMs: opts.signDelayMs ?? 5000,
    bindDelayMs: opts.bindDelayMs ?? 5000,
    validityDays: opts.validityDays ?? 365,
    log,
    issued: persisted.issued,
    onIssued: () => save(),
    bind,
  });

  let smtp: SandboxSmtp;
  try {
    smtp = await onPort(persisted.ports.smtp, (port) =>
      startSandboxSmtp({
        mailboxDir: p.mailbox,
        tls: serverTls,
        port,
        now,
        onMail(m) {
          const att = m.attachments.length ? ` [${m.attachments.map((a) => a.filename).join(", ")}]` : "";
          log.add("mail", `mail #${m.n} ${m.from} -> ${m.to.join(", ")}: "${m.subject}"${att}`, {
            n: m.n,
            from: m.from,
            to: m.to,
            subject: m.subject,
            attachments: m.attachments.map((a) => a.filename),
            file: m.file,
          });
          desk.handle(m);
        },
      }),
    );
  } catch (err) {
    await fake.close();
    await download.close();
    throw err;
  }

  let web: MailboxPage | undefined;
  const info = (): string[] => [
    `SMTP (STARTTLS)  127.0.0.1:${smtp.port}   mail to ${CONTACT} reaches the CA desk and the IDP team`,
    `IDP token        ${fake.tokenUrl}   (tls_client_auth; ${fake.acceptAllFromCa ? "accepts every certificate of its CA" : "a new certificate needs the registration email"}; tokens live ${tokenLifetime} s)`,
    `API              ${fake.apiBaseUrl}/fleets`,
    `download page    https://127.0.0.1:${download.port}/download/SERIAL.pem   (the link in the CA's reply, delivered into ${p.maildir}/)`,
    `mailbox          ${web ? `${web.url}  and ` : ""}${p.mailbox}/ (one .eml per email, log.txt)`,
    `CA               ${ca.certPath} (${ca.subject}; signs in ${(opts.signDelayMs ?? 5000) / 1000} s, ${opts.validityDays ?? 365} days)`,
    `clock            ${clockFile} (offset in ms added to real time; credd needs CREDD_CLOCK_FILE=${clockFile})`,
  ];
  if (opts.web ?? true) {
    web = await startMailboxPage({ port: persisted.ports.web ?? 0, mails: () => smtp.mails, events: () => log.events, info });
  }

  persisted.ports = { smtp: smtp.port, https: fake.port, web: web?.port, download: download.port };
  save();
  writeFileAtomic(
    p.config,
    renderConfig(
      {
        smtpPort: smtp.port,
        tokenUrl: fake.tokenUrl,
        apiBaseUrl: fake.apiBaseUrl,
        checkSchedule: opts.checkSchedule ?? "*/2 * * * * *",
        credential: cred,
        smtpCaFile: "tls/server-ca.pem",
        stellantisCaFile: "stellantis-ca.pem",
        maildir: "Maildir",
      },
      now(),
    ),
    0o644,
  );
  log.add(
    "started",
    `sandbox up in ${dir}: SMTP 127.0.0.1:${smtp.port}, IDP + API ${fake.tokenUrl.replace(/\/as\/.*$/, "")}${web ? `, mailbox ${web.url}` : ""}`,
    {
      smtpPort: smtp.port,
      httpsPort: fake.port,
      webPort: web?.port,
    },
  );

  let stopped = false;
  return {
    dir,
    configPath: p.config,
    clockFile,
    inboxDir: p.inbox,
    mailboxDir: p.mailbox,
    logFile: p.log,
    caPath: ca.certPath,
    get smtpPort() {
      return smtp.port;
    },
    tokenUrl: fake.tokenUrl,
    apiBaseUrl: fake.apiBaseUrl,
    mailboxUrl: web?.url,
    credential: cred,
    contact: CONTACT,
    clock,
    log,
    mails: smtp.mails,
    issued: persisted.issued,
    idp: fake,
    get acceptAll() {
      return fake.acceptAllFromCa;
    },
    setAcceptAll(on) {
      fake.acceptAllFromCa = on;
      log.add(
        "mode",
        on
          ? "IDP now accepts every certificate of its CA at once (RFC 8705 by subject DN and CA), binding it on first use"
          : "IDP now strict: a new certificate is refused until it arrives by email for registration (seed step 5)",
        { acceptAll: on },
      );
    },
    async smtpDown() {
      await smtp.down();
      log.add("outage", `SMTP server down (port ${smtp.port} kept for its return)`, { what: "smtp", up: false });
    },
    async smtpUp() {
      await smtp.up();
      log.add("outage", `SMTP server back on 127.0.0.1:${smtp.port}`, { what: "smtp", up: true });
    },
    async idpDown() {
      await fake.down();
      log.add("outage", `IDP + API down (port ${fake.port} kept for its return)`, { what: "idp", up: false });
    },
    async idpUp() {
      await fake.up();
      log.add("outage", `IDP + API back on 127.0.0.1:${fake.port}`, { what: "idp", up: true });
    },
    info,
    async stop() {
      if (stopped) return;
      stopped = true;
      desk.stop();
      await smtp.down();
      await fake.close();
      await download.close();
      await web?.close();
      log.add("stopped", "sandbox stopped");
    },
  };
}
