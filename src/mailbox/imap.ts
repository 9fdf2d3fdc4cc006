// The IMAP source, with imapflow: TLS from the start on port 993, STARTTLS required on any other;
// the server checked against the system roots plus mailbox.imap.ca_file; a password (LOGIN/PLAIN)
// or an OAuth2 bearer token (XOAUTH2) read from a file at each connect. IDLE when the server has
// it (imapflow polls with NOOP otherwise), a poll besides, and a lost connection reopened with
// backoff. Each message is handled once, by UIDVALIDITY:UID, flagged \Seen and moved, never deleted.
import { rootCertificates } from "node:tls";
import type { ImapFlow } from "imapflow";
import { readSecretFile } from "../config/load.js";
import { readCaFile } from "../config/references.js";
import type { ImapConfig, MailboxConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { ConfigError, errorMessage } from "../errors.js";
import { handleOrDefer, type Collectors, type Handled, type RawMessage } from "./handle.js";
import { sourceFailed, sourceOk, type SourceFailure } from "./health.js";
import { MAX_MESSAGE_BYTES } from "./parse.js";
import { sourceNameOf } from "./status.js";

export interface ImapSourceOptions {
  serial: <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined>;
  deps: Collectors;
  onHandled?: (handled: Array<Handled & { key: string }>) => void;
  /** Reconnect delays: the first, doubled up to the last (ms). */
  backoff?: { initialMs: number; maxMs: number };
  /** A look at the folder besides IDLE (ms). */
  pollMs?: number;
  /** Per-step network timeout (ms). */
  timeoutMs?: number;
  /** A failure retrying may cure becomes an ops email after this long (credd's clock). */
  alertAfterMs?: number;
}

export interface ImapSource {
  readonly source: string;
  /** Looks at the folder now (when connected). */
  scanNow(): Promise<void>;
  /** Resolves once connected and the folder looked at (tests). */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

const TLS_PERMANENT = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ERR_SSL|ERR_TLS|wrong version number/i;

/** What an imapflow or socket error means for ops, never quoting a secret. */
export function describeImapError(err: unknown, i: ImapConfig): SourceFailure {
  if (err instanceof ConfigError) return { message: err.message, fix: err.fix, permanent: true };
  const e = err as { authenticationFailed?: boolean; responseText?: string; code?: string; message?: string };
  const where = `IMAP ${i.host}:${i.port} as ${i.user}`;
  const secret = i.access_token_file ? "mailbox.imap.access_token_file" : "mailbox.imap.password_file";
  if (e.authenticationFailed) {
    return {
      message: `${where}: the login was refused (${e.responseText ?? "authentication failed"})`,
      fix: `check the user and the ${i.access_token_file ? "token" : "password"} in ${secret} (an OAuth2 token may have expired)`,
      permanent: true,
    };
  }
  const msg = `${e.code ? `${e.code}: ` : ""}${e.message ?? errorMessage(err)}`;
  if (TLS_PERMANENT.test(msg)) {
    return {
      message: `${where}: TLS failed (${msg})`,
      fix:
        i.port === 993
          ? "the server's certificate is not trusted: set mailbox.imap.ca_file to the CA that signed it"
          : "the server's certificate is not trusted (set mailbox.imap.ca_file), or it does not offer STARTTLS on this port",
      permanent: true,
    };
  }
  if (/STARTTLS/i.test(msg)) {
    return {
      message: `${where}: the server does not offer STARTTLS (${msg})`,
      fix: "use port 993 (TLS from the start), or enable STARTTLS on the server; credd never logs in without TLS",
      permanent: true,
    };
  }
  return { message: `${where}: ${msg}`, fix: "check that the server is up and reachable from this host (host, port, firewall)", permanent: false };
}

export function startImapSource(ctx: Ctx, mb: MailboxConfig & { imap: ImapConfig }, opts: ImapSourceOptions): ImapSource {
  const cfg = mb.imap;
  const source = sourceNameOf(mb);
  const backoff = opts.backoff ?? { initialMs: 1_000, maxMs: 5 * 60_000 };
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let stopped = false;
  let client: ImapFlow | undefined;
  /** The client still connecting: a stop closes it rather than wait for its timeout. */
  let connecting: ImapFlow | undefined;
  let wake: (() => void) | undefined;
  let readyResolve!: () => void;
  const readyP = new Promise<void>((r) => (readyResolve = r));
  const created = new Set<string>();
  const failing = new Map<string, string>();

  const makeClient = async (): Promise<ImapFlow> => {
    const { ImapFlow } = await import("imapflow");
    const ca = cfg.ca_file ? readCaFile(ctx.config, "mailbox.imap.ca_file", cfg.ca_file) : undefined;
    const secret = cfg.access_token_file
      ? { accessToken: readSecretFile(cfg.access_token_file, "mailbox.imap.access_token_file").trim() }
      : { pass: readSecretFile(cfg.password_file!, "mailbox.imap.password_file") };
    const implicit = cfg.port === 993;
    return new ImapFlow({
      host: cfg.host,
      port: cfg.port,
      secure: implicit,
      // Required: without it imapflow goes on in plaintext when STARTTLS is not offered.
      ...(implicit ? {} : { doSTARTTLS: true }),
      auth: { user: cfg.user, ...secret },
      tls: { rejectUnauthorized: true, minVersion: "TLSv1.2", ...(ca ? { ca: [...rootCertificates, ca] } : {}) },
      logger: false,
      emitLogs: false,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: 10 * 60_000,
      // IDLE soon after each look, so a reply is seen within a second of landing.
      autoIdleDelay: 200,
      maxIdleTime: 5 * 60_000,
      disableCompression: true,
      clientInfo: { name: "credd" },
    });
  };

  // Config names use "/"; as a list, imapflow joins the parts with the server's own delimiter.
  const folderPath = (name: string): string[] => name.split("/");

  const move = async (c: ImapFlow, uid: string, folder: string): Promise<boolean> => {
    const path = folderPath(folder);
    if (!created.has(folder)) {
      try {
        await c.mailboxCreate(path);
      } catch (err) {
        if ((err as { serverResponseCode?: string }).serverResponseCode !== "ALREADYEXISTS") throw err;
      }
      created.add(folder);
    }
    await c.messageFlagsAdd(uid, ["\\Seen"], { uid: true });
    const r = await c.messageMove(uid, path, { uid: true });
    return r !== false;
  };

  const look = async (c: ImapFlow): Promise<Array<Handled & { key: string }>> => {
    const now = () => ctx.clock.now().toISOString();
    const validity = String(c.mailbox && typeof c.mailbox === "object" ? c.mailbox.uidValidity : "0");
    const uids = ((await c.search({ all: true }, { uid: true })) || []).map(String);
    // Handled before a crash or a lost connection but not moved yet: finish the move, never handle it again.
    for (const row of await ctx.store.unmovedMessages(source)) {
      const [v, uid] = row.message_key.split(":");
      if (v === validity && uid && uids.includes(uid)) await move(c, uid, row.folder === "done" ? mb.done_folder : mb.refused_folder);
      await ctx.store.markMessageMoved(row.id, now());
    }
    const seen = await ctx.store.seenMessageKeys(source);
    const out: Array<Handled & { key: string }> = [];
    for (const uid of uids) {
      const key = `${validity}:${uid}`;
      if (seen.has(key)) continue;
      const meta = await c.fetchOne(uid, { uid: true, size: true }, { uid: true });
      if (!meta) continue; // expunged meanwhile
      const size = meta.size ?? 0;
      const headOnly = size > MAX_MESSAGE_BYTES;
      // BODY.PEEK: reading a message does not mark it seen; only a handled one is flagged.
      const got = await c.fetchOne(uid, headOnly ? { uid: true, headers: true } : { uid: true, source: true }, { uid: true });
      const bytes = got === false ? undefined : headOnly ? got.headers : got.source;
      if (!bytes) continue;
      const msg: RawMessage = { source, key, bytes, size, headOnly, describeFolder: (f) => `the IMAP folder ${f} of ${cfg.user} on ${cfg.host}` };
      const h = await handleOrDefer(ctx, mb, msg, opts.deps ?? {}, failing);
      if (!h) continue;
      if (h.folder) {
        await move(c, uid, h.folder === "done" ? mb.done_folder : mb.refused_folder);
        const row = (await ctx.store.unmovedMessages(source)).find((r) => r.message_key === key);
        if (row) await ctx.store.markMessageMoved(row.id, now());
      }
      out.push({ ...h, key });
    }
    return out;
  };

  // One look at a time; a change seen during a look asks for one more.
  let looking: Promise<void> | undefined;
  let again = false;
  const scan = (): Promise<void> => {
    if (looking) {
      again = true;
      return looking;
    }
    looking = (async () => {
      do {
        again = false;
        const c = client;
        if (!c?.usable) return;
        const handled = await opts.serial("mailbox", () => look(c));
        if (handled?.some((h) => h.folder)) opts.onHandled?.(handled);
      } while (again && !stopped);
    })()
      .catch((err: unknown) => {
        // The connection broke mid-look: the close handler reconnects, and the next look resumes.
        ctx.log.warn({ source, err: errorMessage(err) }, "mailbox: a look at the IMAP folder was cut off; resumed after reconnecting");
      })
      .finally(() => {
        looking = undefined;
      });
    return looking;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  // The store (PostgreSQL restarting, a full disk) may refuse to record the source's health: that is
  // logged once per distinct error and the loop goes on; it must never end the loop (nor the daemon).
  let lastStoreError = "";
  const storeStep = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
      lastStoreError = "";
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== lastStoreError)
        ctx.log.error({ source, err: msg, step: what }, "mailbox: cannot record the mailbox's state in the store; retried at the next attempt");
      lastStoreError = msg;
    }
  };

  const run = async () => {
    let attempt = 0;
    while (!stopped) {
      let c: ImapFlow | undefined;
      try {
        c = await makeClient();
        connecting = c;
        c.on("error", () => {
          /* reported through connect() or "close" */
        });
        await c.connect();
        const lock = await c.getMailboxLock(cfg.folder);
        lock.release(); // the folder stays selected; IDLE watches it
        if (stopped) {
          await c.logout().catch(() => undefined);
          return;
        }
        connecting = undefined;
        client = c;
        attempt = 0;
        await storeStep("sourceOk", () => sourceOk(ctx, source));
        const closed = new Promise<void>((resolve) => c!.once("close", () => resolve()));
        c.on("exists", () => void scan());
        ctx.log.info({ source, idle: c.capabilities.has("IDLE") }, "mailbox: connected to the IMAP folder");
        await scan();
        readyResolve();
        const poll = setInterval(() => void scan(), opts.pollMs ?? 5 * 60_000);
        await closed;
        clearInterval(poll);
        client = undefined;
        if (stopped) return;
        ctx.log.warn({ source }, "mailbox: the IMAP connection was lost; reconnecting");
      } catch (err) {
        client = undefined;
        connecting = undefined;
        c?.close();
        if (stopped) return;
        await storeStep("sourceFailed", () => sourceFailed(ctx, source, describeImapError(err, cfg), opts.alertAfterMs));
      }
      const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 20));
      attempt++;
      await sleep(delay);
    }
  };
  // Last resort: whatever escapes the loop is logged, never an unhandled rejection.
  const running = run().catch((err: unknown) => {
    ctx.log.error({ source, err: errorMessage(err) }, "mailbox: the IMAP source stopped on an error; it starts again at the next reload");
  });

  return {
    source,
    scanNow: () => scan(),
    ready: () => readyP,
    stop: async () => {
      stopped = true;
      wake?.();
      connecting?.close();
      const c = client;
      client = undefined;
      if (c) await c.logout().catch(() => c.close());
      await looking;
      await running;
    },
  };
}
