// The sandbox's mail side: an SMTP server on loopback (STARTTLS with the sandbox server certificate)
// that keeps every message in a mailbox folder (one .eml each, one line in log.txt) and hands it on
// parsed.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { writeFileAtomic } from "../src/files/atomic.js";

export interface Attachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface MailRecord {
  /** 1, 2, ... in order of arrival. */
  n: number;
  /** Virtual time (what credd believes) when it arrived. */
  at: string;
  from: string;
  /** Envelope recipients. */
  to: string[];
  subject: string;
  text: string;
  attachments: Attachment[];
  messageId: string;
  /** The .eml file in the mailbox folder. */
  file: string;
  /** STARTTLS was in use. */
  secure: boolean;
}

export interface SandboxSmtpOptions {
  mailboxDir: string;
  tls: { keyPem: string; certPem: string };
  /** 0 for a free port. */
  port: number;
  now: () => Date;
  onMail: (m: MailRecord) => void;
}

export interface SandboxSmtp {
  port: number;
  readonly isUp: boolean;
  readonly mails: MailRecord[];
  /** Stops listening (an outage); up() listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 60) || "no-subject";

export async function startSandboxSmtp(opts: SandboxSmtpOptions): Promise<SandboxSmtp> {
  mkdirSync(opts.mailboxDir, { recursive: true });
  const logFile = join(opts.mailboxDir, "log.txt");
  const mails: MailRecord[] = [];
  let server: SMTPServer | undefined;
  let port = opts.port;

  const keep = (raw: Buffer, from: string, to: string[], secure: boolean, parsed: Awaited<ReturnType<typeof simpleParser>>) => {
    const n = mails.length + 1;
    const subject = parsed.subject ?? "(no subject)";
    const file = join(opts.mailboxDir, `${String(n).padStart(4, "0")}-${slug(subject)}.eml`);
    writeFileAtomic(file, raw, 0o644);
    const at = opts.now().toISOString();
    const attachments = parsed.attachments.map((a) => ({
      filename: a.filename ?? "(unnamed)",
      contentType: a.contentType,
      content: Buffer.from(a.content),
    }));
    const rec: MailRecord = {
      n,
      at,
      from,
      to,
      subject,
      text: typeof parsed.text === "string" ? parsed.text : "",
      attachments,
      messageId: parsed.messageId ?? "",
      file,
      secure,
    };
    mails.push(rec);
    const att = attachments.length ? `  [${attachments.map((a) => a.filename).join(", ")}]` : "";
    appendFileSync(logFile, `${at}  ${from} -> ${to.join(", ")}  "${subject}"${att}  ${file.slice(opts.mailboxDir.length + 1)}\n`);
    opts.onMail(rec);
  };

  const make = () =>
    new SMTPServer({
      secure: false,
      key: opts.tls.keyPem,
      cert: opts.tls.certPem,
      disabledCommands: ["AUTH"],
      authOptional: true,
      logger: false,
      closeTimeout: 200,
      socketTimeout: 30_000,
      banner: "credd sandbox: Stellantis contact mailbox",
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", (err: Error) => cb(err));
        stream.on("end", () => {
          const raw = Buffer.concat(chunks);
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
          const to = session.envelope.rcptTo.map((r) => r.address);
          simpleParser(raw).then(
            (parsed) => {
              try {
                keep(raw, from, to, session.secure, parsed);
                cb(null, "OK: delivered to the sandbox mailbox");
              } catch (err) {
                cb(err instanceof Error ? err : new Error(String(err)));
              }
            },
            (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
          );
        });
      },
    });

  const listen = async (): Promise<void> => {
    const s = make();
    s.on("error", () => {}); // a client hanging up mid-handshake is not our problem
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.server.off("error", reject);
        resolve();
      });
    });
    const addr = s.server.address();
    if (!addr || typeof addr === "string") throw new Error("sandbox SMTP: no port");
    port = addr.port;
    server = s;
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get isUp() {
      return server !== undefined;
    },
    mails,
    async down() {
      const s = server;
      if (!s) return;
      server = undefined;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async up() {
      if (server) return;
      await listen();
    },
  };
}

/** What an email to the Stellantis contact asks for, from its attachments. */
export function mailKind(m: MailRecord): "csr" | "certificate" | "alert" | "other" {
  const texts = m.attachments.map((a) => a.content.toString("utf8"));
  if (texts.some((t) => /-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(t))) return "csr";
  if (texts.some((t) => /-----BEGIN CERTIFICATE-----/.test(t))) return "certificate";
  if (/^\[credd\]/.test(m.subject)) return "alert";
  return "other";
}
