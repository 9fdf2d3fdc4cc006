// A real SMTP server on loopback (smtp-server) for tests: STARTTLS, implicit TLS or plaintext with a
// throwaway CA, optional AUTH, scripted refusals, and every message kept raw and parsed.
import { EventEmitter } from "node:events";
import { chmodSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { simpleParser, type AddressObject, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import type { SmtpConfig } from "../../src/config/types.js";
import { makeServerTls, removeTestPki, type ServerTls } from "./tls.js";

export interface ReceivedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  raw: Buffer;
  parsed: ParsedMail;
  /** STARTTLS or implicit TLS was in use when the message came in. */
  secure: boolean;
}

export interface SmtpServerOptions {
  /** "starttls" (default): offers STARTTLS; "none": neither offers nor accepts it; "implicit": TLS from the start. */
  tls?: "starttls" | "none" | "implicit";
  /** Require AUTH (PLAIN/LOGIN) with these credentials. Without it, AUTH is not offered. */
  auth?: { user: string; pass: string };
  /** Listen on this port (e.g. to restart after stop()); 0 (default) picks a free one. */
  port?: number;
  /** Answer 550 to RCPT TO for these addresses. */
  rejectRecipients?: string[];
  /** Answer 451 to the next N messages (after DATA), then accept. */
  failNext?: number;
  /** Answer 554 (refused for good) to every message after DATA. */
  refuseMessages?: boolean;
  /** Server certificate to use; by default one test CA and certificate shared by every server in this process. */
  serverTls?: ServerTls;
}

export interface TestSmtpServer {
  port: number;
  host: "127.0.0.1";
  caPem: string;
  caPath: string;
  received: ReceivedMail[];
  /** Connections whose login failed, for tests that want to see the attempt happened. */
  authFailures: number;
  /** Resolves once `n` messages have arrived in total. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Answer 451 to the next `n` messages. */
  failNext(n: number): void;
  stop(): Promise<void>;
  /** An SmtpConfig pointing at this server (ca_file set, password_file written when auth is on). */
  config(overrides?: Partial<SmtpConfig>): SmtpConfig;
}

// One test CA per process, so a server restarted on the same port keeps the CA its clients trust.
let sharedTls: ServerTls | undefined;
function processTls(): ServerTls {
  if (!sharedTls) {
    const made = makeServerTls();
    sharedTls = made;
    process.once("exit", () => removeTestPki(made.dir));
  }
  return sharedTls;
}

/** A parsed To/Cc header as its display text ("" when absent; one header may parse to several objects). */
export function addressText(header: AddressObject | AddressObject[] | undefined): string {
  return [header ?? []]
    .flat()
    .map((a) => a.text)
    .join(", ");
}

let serverCount = 0;

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

export async function startSmtpServer(opts: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const mode = opts.tls ?? "starttls";
  const pki = opts.serverTls ?? processTls();
  const events = new EventEmitter();
  const received: ReceivedMail[] = [];
  const rejectRecipients = new Set((opts.rejectRecipients ?? []).map((a) => a.toLowerCase()));
  let failNext = opts.failNext ?? 0;
  let authFailures = 0;

  const disabled: string[] = [];
  // hideSTARTTLS only stops advertising it: the command would still work, and a client that
  // sends STARTTLS unasked (nodemailer with requireTLS does) would get TLS. Disable it too.
  if (mode === "none") disabled.push("STARTTLS");
  if (!opts.auth) disabled.push("AUTH");

  let passwordFile: string | undefined;
  if (opts.auth) {
    serverCount += 1;
    passwordFile = join(pki.dir, `smtp-password-${process.pid}-${serverCount}`);
    writeFileSync(passwordFile, opts.auth.pass);
    chmodSync(passwordFile, 0o600);
  }

  const server = new SMTPServer({
    secure: mode === "implicit",
    key: pki.keyPem,
    cert: pki.certPem,
    hideSTARTTLS: mode === "none",
    disabledCommands: disabled,
    authOptional: !opts.auth,
    authMethods: ["PLAIN", "LOGIN"],
    logger: false,
    closeTimeout: 200,
    socketTimeout: 10_000,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        cb(null, { user: auth.username });
        return;
      }
      authFailures += 1;
      cb(smtpError("Authentication credentials invalid", 535));
    },
    onRcptTo(address, _session, cb) {
      if (rejectRecipients.has(address.address.toLowerCase())) {
        cb(smtpError(`<${address.address}>: Recipient address rejected: User unknown`, 550));
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", (err: Error) => cb(err));
      stream.on("end", () => {
        if (opts.refuseMessages) {
          cb(smtpError("Message refused: rejected by local policy", 554));
          return;
        }
        if (failNext > 0) {
          failNext -= 1;
          cb(smtpError("Temporary local problem, try again later", 451));
          return;
        }
        const raw = Buffer.concat(chunks);
        const mailFrom = session.envelope.mailFrom;
        simpleParser(raw).then(
          (parsed) => {
            received.push({
              envelopeFrom: mailFrom ? mailFrom.address : "",
              envelopeTo: session.envelope.rcptTo.map((r) => r.address),
              raw,
              parsed,
              secure: session.secure,
            });
            events.emit("mail");
            cb(null, "OK: queued");
          },
          (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
        );
      });
    },
  });
  // A client hanging up mid-handshake (e.g. refusing our test certificate) must not crash the tests.
  server.on("error", () => {});

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const addr = server.server.address();
  if (!addr || typeof addr === "string") throw new Error("smtp test server: no port");
  const port = addr.port;

  const waitFor = (n: number, timeoutMs = 5000): Promise<ReceivedMail[]> =>
    new Promise((resolve, reject) => {
      if (received.length >= n) {
        resolve(received.slice());
        return;
      }
      const onMail = (): void => {
        if (received.length >= n) {
          cleanup();
          resolve(received.slice());
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const got = received
          .map((m, i) => `  ${i + 1}. from ${m.envelopeFrom} to ${m.envelopeTo.join(", ")}: ${m.parsed.subject ?? "(no subject)"}`)
          .join("\n");
        reject(new Error(`smtp test server: waited ${timeoutMs} ms for ${n} message(s), got ${received.length}${got ? `:\n${got}` : ""}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        events.off("mail", onMail);
      };
      events.on("mail", onMail);
    });

  let stopped = false;
  const api: TestSmtpServer = {
    port,
    host: "127.0.0.1",
    caPem: pki.caPem,
    caPath: pki.caPath,
    received,
    get authFailures() {
      return authFailures;
    },
    waitFor,
    failNext(n: number) {
      failNext = n;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (passwordFile) rmSync(passwordFile, { force: true });
    },
    config(overrides: Partial<SmtpConfig> = {}): SmtpConfig {
      const implicit = mode === "implicit";
      return {
        url: `${implicit ? "smtps" : "smtp"}://127.0.0.1:${port}`,
        secure: implicit,
        host: "127.0.0.1",
        port,
        from: "credd <credd@partner.example>",
        ...(opts.auth ? { user: opts.auth.user, password_file: passwordFile } : {}),
        ca_file: pki.caPath,
        tls: mode,
        timeout_ms: 5000,
        ...overrides,
      };
    },
  };
  return api;
}
