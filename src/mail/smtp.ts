// The SMTP adapter: sends one OutgoingMail through nodemailer with TLS required and verified,
// every wait bounded, and every failure turned into a CreddError("NETWORK") an ops person can read.
// nodemailer (about 40 modules) is loaded on the first send or verify, not when this file is:
// `credd renew --no-send` and an idle daemon never need it.
import tls from "node:tls";
import type { NodemailerError, SendMailOptions, SMTPTransportOptions } from "nodemailer";
import type { SmtpConfig } from "../config/types.js";
import { CreddError } from "../errors.js";
import type { OutgoingMail } from "./message.js";

export interface SendResult {
  accepted: string[];
  /** The server's final reply, e.g. "250 OK: queued as ...". */
  response: string;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<SendResult>;
  /** Connects, upgrades to TLS and logs in, without sending anything. */
  verify(): Promise<void>;
  close(): void;
}

export interface MailerOptions {
  /** Extra CA certificate(s), PEM text already read from smtp.ca_file; trusted beside the system roots. */
  ca?: string;
  /** The clock for the Date header (defaults to the system clock). */
  now?: () => Date;
}

/**
 * The server accepted the message for some recipients and refused others. The accepted ones
 * have it already: a resend goes to all of them again (with the same Message-ID).
 */
export class SmtpRejectedError extends CreddError {
  constructor(
    message: string,
    readonly accepted: string[],
    readonly rejected: string[],
    options?: { cause?: unknown },
  ) {
    super("NETWORK", message, options);
    this.name = "SmtpRejectedError";
  }
}

/**
 * A failed SMTP attempt. `permanent`: retrying cannot help until a person changes something (the
 * login refused, the server's certificate not trusted, a 5xx reply, TLS not spoken as configured);
 * otherwise it is temporary (down, slow, a 4xx) and the outbox retries it by itself. `fix` says what
 * to look at for a permanent one.
 */
export class SmtpError extends CreddError {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super("NETWORK", message, options);
    this.name = "SmtpError";
  }
}

/** How many per-step timeouts one whole send or verify may take before it is cut off. */
const OVERALL_TIMEOUT_STEPS = 4;

function idleTimeoutMs(timeoutMs: number): number {
  return timeoutMs + Math.min(1000, Math.ceil(timeoutMs / 2));
}

/** The nodemailer transport options for `cfg`; exported so tests can check the TLS settings. */
export function smtpTransportOptions(cfg: SmtpConfig, secrets: { password?: string }, opts: MailerOptions = {}): SMTPTransportOptions {
  const implicit = cfg.secure || cfg.tls === "implicit";
  const plain = !implicit && cfg.tls === "none";
  const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: true, minVersion: "TLSv1.2" };
  // Node's `ca` replaces the system roots: keep them and add the configured CA.
  if (opts.ca) tlsOptions.ca = [...tls.rootCertificates, opts.ca];
  return {
    host: cfg.host,
    port: cfg.port || (implicit ? 465 : 587),
    secure: implicit,
    // Without requireTLS nodemailer silently goes on in plaintext when STARTTLS is not offered.
    requireTLS: !implicit && !plain,
    ignoreTLS: plain,
    tls: tlsOptions,
    auth: cfg.user ? { user: cfg.user, pass: secrets.password } : undefined,
    connectionTimeout: cfg.timeout_ms,
    greetingTimeout: cfg.timeout_ms,
    // A little longer than the setup phases, so a silent server is reported as the phase it hung in.
    socketTimeout: idleTimeoutMs(cfg.timeout_ms),
    dnsTimeout: cfg.timeout_ms,
    socketCloseTimeout: Math.min(cfg.timeout_ms, 5000),
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    debug: false,
  };
}

export function createMailer(cfg: SmtpConfig, secrets: { password?: string }, opts: MailerOptions = {}): Mailer {
  if (cfg.user && !secrets.password) {
    throw new CreddError("CONFIG", `smtp.user is set (${cfg.user}) but no SMTP password was given (set smtp.password_file)`);
  }
  const options = smtpTransportOptions(cfg, secrets, opts);
  let transportPromise: ReturnType<typeof createTransport> | undefined;
  const transport = () => (transportPromise ??= createTransport(options));
  const ctx: Ctx = {
    where: `SMTP ${cfg.host}:${String(options.port)}`,
    host: cfg.host,
    user: cfg.user,
    password: secrets.password,
    timeoutMs: cfg.timeout_ms,
    tls: options.secure ? "implicit" : cfg.tls,
    extraCa: Boolean(opts.ca),
  };
  const now = opts.now ?? (() => new Date());
  const overallMs = cfg.timeout_ms * OVERALL_TIMEOUT_STEPS;

  return {
    async send(mail: OutgoingMail): Promise<SendResult> {
      const deadline = AbortSignal.timeout(overallMs);
      const message: SendMailOptions = {
        messageId: mail.messageId,
        date: now(),
        from: mail.from,
        to: mail.to,
        cc: mail.cc.length > 0 ? mail.cc : undefined,
        subject: mail.subject,
        text: mail.text,
        attachments: mail.attachments.map((a) => ({
          filename: a.filename,
          contentType: a.contentType,
          content: a.content,
        })),
        signal: deadline,
      };
      const t = await transport();
      let info;
      try {
        info = await t.sendMail(message);
      } catch (err) {
        throw toNetworkError(err, ctx, deadline.aborted);
      }
      if (info.rejected.length > 0) {
        const rejected = info.rejected.map(String);
        const reply = info.rejectedErrors?.[0]?.response;
        throw new SmtpRejectedError(
          redact(
            `${ctx.where}: the server refused recipient${rejected.length > 1 ? "s" : ""} ${rejected.join(", ")}` +
              `${reply ? ` (server said: ${short(reply)})` : ""}; the message went only to ${info.accepted.map(String).join(", ")}`,
            ctx.password,
          ),
          info.accepted.map(String),
          rejected,
          { cause: scrubCause(info.rejectedErrors?.[0], ctx.password) },
        );
      }
      return { accepted: info.accepted.map(String), response: redact(String(info.response), ctx.password) };
    },

    async verify(): Promise<void> {
      // transport.verify() takes no signal: race it against the same overall deadline as send().
      const t = await transport();
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      const overall = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error("verify took too long"));
        }, overallMs);
      });
      try {
        await Promise.race([t.verify(), overall]);
      } catch (err) {
        throw toNetworkError(err, ctx, timedOut);
      } finally {
        clearTimeout(timer);
      }
    },

    close(): void {
      // Nothing to close when nothing was sent; a transport still being made is closed once made.
      void transportPromise?.then(
        (t) => t.close(),
        () => undefined,
      );
    },
  };
}

async function createTransport(options: SMTPTransportOptions) {
  const { default: nodemailer } = await import("nodemailer");
  return nodemailer.createTransport(options);
}

interface Ctx {
  where: string;
  host: string;
  user: string | undefined;
  password: string | undefined;
  timeoutMs: number;
  tls: SmtpConfig["tls"];
  extraCa: boolean;
}

const CERT_ERRORS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

const CERT_MESSAGE =
  /self[- ]signed certificate|unable to verify|unable to get (local )?issuer|certificate has expired|certificate is not yet valid|Hostname\/IP does not match/i;

function toNetworkError(err: unknown, ctx: Ctx, overallTimeout: boolean): SmtpError {
  const e = err as NodemailerError;
  const detail = overallTimeout
    ? `timed out after ${seconds(ctx.timeoutMs * OVERALL_TIMEOUT_STEPS)} s in all (the server answers, but too slowly)`
    : describe(e, ctx);
  const fix = overallTimeout ? "" : permanentFix(e, ctx);
  return new SmtpError(redact(`${ctx.where}: ${detail}`, ctx.password), fix !== "", fix, {
    cause: scrubCause(err, ctx.password),
  });
}

/**
 * What a person must change for a failure that retrying cannot cure, or "" when it is temporary
 * (timeouts, a refused or reset connection, DNS, a 4xx reply: the outbox retries those).
 */
function permanentFix(e: NodemailerError, ctx: Ctx): string {
  const sys = e.originalCode ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
  const text = String(e.message ?? e);
  const code = e.responseCode;
  const temporary = code !== undefined && code >= 400 && code < 500;
  if (e.code === "ETIMEDOUT" || e.code === "EDNS" || e.code === "ECONNECTION" || e.code === "EPROTOCOL") return "";
  if (isCertificateError(e, sys, text)) {
    return ctx.extraCa
      ? "check smtp.ca_file (the CA that signed the server's certificate) and the host name in smtp.url"
      : "set smtp.ca_file to the CA that signed the server's certificate, or correct the host name in smtp.url";
  }
  switch (e.code) {
    case "EAUTH":
      return temporary
        ? ""
        : "check smtp.user and the password in smtp.password_file (the server refused the login), then reload credd (systemctl reload credd)";
    case "ENOAUTH":
      return "set smtp.user and smtp.password_file";
    case "ETLS":
      if (temporary) return "";
      return e.command === "STARTTLS"
        ? "use a server that offers STARTTLS, smtps:// for implicit TLS, or tls: none only on a trusted network"
        : "check smtp.url's scheme and port (smtps:// for implicit TLS, usually 465; smtp:// with STARTTLS, usually 587)";
  }
  if (code !== undefined && code >= 500)
    return "the server refused it for good (its reply says why): check smtp.from, the recipients and the server's rules";
  if (sys?.startsWith("ERR_SSL_") || /SSL routines/.test(text))
    return "check smtp.url's scheme and port (smtps:// for implicit TLS, usually 465; smtp:// with STARTTLS, usually 587)";
  return "";
}

/** One sentence saying what went wrong, from nodemailer's error code, reply and cause. */
function describe(e: NodemailerError, ctx: Ctx): string {
  const reply = e.response ? ` (server said: ${short(e.response)})` : "";
  const sys = e.originalCode ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
  const text = String(e.message ?? e);

  if (e.code === "ETIMEDOUT") {
    const s = seconds(ctx.timeoutMs);
    switch (e.timeoutType) {
      case "CONNECT_TIMEOUT":
        return `timed out after ${s} s connecting (no answer to the connection attempt; check host, port and firewall)`;
      case "GREETING_TIMEOUT":
        return `timed out after ${s} s waiting for the server's greeting (is this an SMTP server${ctx.tls === "implicit" ? "" : ", or does it expect implicit TLS (smtps://)"}?)`;
      case "UPGRADE_TIMEOUT":
        return `timed out after ${s} s during the TLS handshake`;
      default:
        return `timed out after ${seconds(idleTimeoutMs(ctx.timeoutMs))} s waiting for the server to answer`;
    }
  }
  if (isCertificateError(e, sys, text)) {
    const why = text.replace(/^Error initiating TLS - /, "");
    return (
      `the server's TLS certificate was not accepted: ${why}` +
      (ctx.extraCa
        ? " (check that smtp.ca_file holds the CA that signed it and that the host name matches the certificate)"
        : " (if the server uses a private CA, set smtp.ca_file to that CA's certificate)")
    );
  }
  switch (e.code) {
    case "ETLS":
      if (e.command === "STARTTLS" && e.response) {
        // 5xx: the server does not know the command (it did not offer it either: nodemailer sends
        // STARTTLS regardless when TLS is required). 4xx: offered but refused for now.
        if (e.responseCode !== undefined && e.responseCode >= 400 && e.responseCode < 500) {
          return `the server refused to start TLS for now and tls is required${reply}`;
        }
        return `STARTTLS not offered by the server and tls is required (set smtp.tls: none only on a trusted network)${reply}`;
      }
      return `the TLS handshake after STARTTLS failed (${opensslReason(text.replace(/^Error initiating TLS - /, ""))})`;
    case "EDNS":
      return `the host name ${ctx.host} could not be resolved${sys ? ` (${sys})` : ""}`;
    case "EAUTH":
      return `authentication failed for user ${ctx.user ?? "(none)"}${reply}`;
    case "ENOAUTH":
      return `the server asked for authentication but no user and password are configured (set smtp.user and smtp.password_file)`;
    case "EENVELOPE": {
      if (e.rejected && e.rejected.length > 0) {
        const who = e.rejected.join(", ");
        return `the server refused recipient${e.rejected.length > 1 ? "s" : ""} ${who}${reply}`;
      }
      if (e.responseCode === 530 || /auth/i.test(e.response ?? "")) {
        return `the server requires authentication before sending (set smtp.user and smtp.password_file)${reply}`;
      }
      if (e.command?.startsWith("MAIL")) return `the server refused the sender address${reply}`;
      return `the server refused the envelope: ${text}${reply === "" ? "" : reply}`;
    }
    case "EMESSAGE":
      if (e.responseCode !== undefined && e.responseCode >= 400 && e.responseCode < 500) {
        return `the server deferred the message (temporary failure, will be retried)${reply}`;
      }
      return `the server rejected the message${reply}`;
    case "EPROTOCOL":
      return `unexpected reply from the server: ${text}`;
    case "ECONNECTION":
      if (e.responseCode === 421) return `the server closed the connection (421, service not available)${reply}`;
      return `the connection was closed unexpectedly${reply}`;
  }
  switch (sys) {
    case "ECONNREFUSED":
      return "connection refused (is the mail server running, and are smtp.url's host and port right?)";
    case "ECONNRESET":
      return `the connection was reset by the server${ctx.tls === "implicit" ? "" : " (does it expect implicit TLS, smtps://?)"}`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "the host is unreachable from here (network or routing problem)";
    case "EPIPE":
      return "the connection was closed by the server while sending";
  }
  if (sys?.startsWith("ERR_SSL_") || /SSL routines/.test(text)) {
    const reason = opensslReason(text);
    if (/wrong version number|packet length too long|unknown protocol|http request/i.test(reason)) {
      return `the server did not answer with TLS (${reason})${
        ctx.tls === "implicit" ? "; it may expect STARTTLS instead (smtp://, usually port 587)" : ""
      }`;
    }
    return `the TLS handshake failed (${reason})`;
  }
  return `sending failed: ${text}${reply}`;
}

function isCertificateError(e: NodemailerError, sys: string | undefined, text: string): boolean {
  const causeCode = (e.cause as NodeJS.ErrnoException | undefined)?.code;
  return CERT_ERRORS.has(sys ?? "") || CERT_ERRORS.has(causeCode ?? "") || CERT_ERRORS.has(e.code ?? "") || CERT_MESSAGE.test(text);
}

/** "…:SSL routines:ssl3_get_record:wrong version number:../ssl3_record.c:350:" → "wrong version number". */
function opensslReason(text: string): string {
  const m = /SSL routines:[^:]*:([^:]+):/.exec(text);
  return m?.[1]?.trim() ?? short(text);
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

function short(s: string): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > 200 ? `${one.slice(0, 200)}…` : one;
}

/** Removes the password from text, in case a server or library echoes it. */
function redact(s: string, password: string | undefined): string {
  return password ? s.split(password).join("***") : s;
}

/** Keeps nodemailer's error as the cause, with the password removed from its text fields. */
function scrubCause(err: unknown, password: string | undefined): unknown {
  if (!password || !(err instanceof Error)) return err;
  const e = err as NodemailerError & Record<string, unknown>;
  for (const key of ["message", "stack", "response", "command"] as const) {
    const v = e[key];
    if (typeof v === "string" && v.includes(password)) e[key] = redact(v, password);
  }
  return err;
}
