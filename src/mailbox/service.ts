// The mailbox as the daemon runs it: the configured source (IMAP or Maildir), looked at when it
// changes and on a poll, each look run through the daemon's serial queue (one database step at a
// time). Off unless the config has a `mailbox:` section.
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import type { Ctx } from "../core/context.js";
import { errorMessage } from "../errors.js";
import type { Collectors, Handled } from "./handle.js";

export interface MailboxServiceOptions {
  /** Runs one look at the mailbox in the daemon's serial queue. */
  serial: <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined>;
  /** How often the Maildir is looked at, beside the file-system watch, or the IMAP folder beside IDLE (ms). */
  pollMs?: number;
  /** IMAP reconnect delays (ms). */
  backoff?: { initialMs: number; maxMs: number };
  /** A source failure retrying may cure becomes an ops email after this long (credd's clock). */
  alertAfterMs?: number;
  /** Called after a look that handled something (status, metrics). */
  onHandled?: (handled: Array<Handled & { key: string }>) => void;
  deps?: Collectors;
}

export interface MailboxService {
  /** Looks at the mailbox now (tests, the check). */
  scanNow(): Promise<void>;
  stop(): Promise<void>;
}

/** What the daemon opens besides plain certificate files: ZIP archives, and links on mailbox.download_hosts. */
export async function defaultCollectors(ctx: Ctx): Promise<Collectors> {
  const { unzipCertificates } = await import("./zip.js");
  const { downloadCa, downloadLink } = await import("./download.js");
  return {
    unzip: (name, bytes, cred) => unzipCertificates(name, bytes, cred.name),
    download: async (url, cred) => {
      const ca = downloadCa(ctx.config.stellantis.ca_file);
      return downloadLink(url, cred, ctx.config.mailbox!, ca ? { ca } : {});
    },
  };
}

export async function startMailbox(ctx: Ctx, opts: MailboxServiceOptions): Promise<MailboxService | undefined> {
  const mb = ctx.config.mailbox;
  if (!mb) return undefined;
  const deps = opts.deps ?? (await defaultCollectors(ctx));
  if (mb.maildir) {
    const { createMaildirSource } = await import("./maildir.js");
    const src = createMaildirSource(ctx, { ...mb, maildir: mb.maildir }, deps);
    let lastError = "";
    // A burst of deliveries (one watch event each) asks for one look, not one per event.
    let queued: Promise<void> | undefined;
    const scan = (): Promise<void> => (queued ??= look().finally(() => (queued = undefined)));
    const look = () =>
      opts.serial("mailbox", async () => {
        queued = undefined;
        try {
          const handled = await src.scan();
          if (lastError) ctx.log.info({ source: src.source, previousErr: lastError }, "mailbox: the Maildir can be read again");
          lastError = "";
          if (handled.some((h) => h.folder)) opts.onHandled?.(handled);
        } catch (err) {
          const e = errorMessage(err);
          if (e !== lastError)
            ctx.log.error(
              { source: src.source, err: e },
              "mailbox: cannot read the Maildir; tried again at every poll (logged again only when the error changes)",
            );
          lastError = e;
        }
      });
    // A delivery is a rename into new/: the watch sees it at once; the poll covers what a watch misses.
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(join(mb.maildir, "new"), () => void scan());
    } catch {
      watcher = undefined; // new/ missing or not watchable: the poll alone
    }
    const tick = setInterval(() => void scan(), opts.pollMs ?? 2_000);
    void scan();
    ctx.log.info({ source: src.source }, "mailbox: watching the Maildir for Stellantis' replies");
    return {
      scanNow: () => scan(),
      stop: async () => {
        clearInterval(tick);
        watcher?.close();
      },
    };
  }
  if (mb.imap) {
    const { startImapSource } = await import("./imap.js");
    const src = startImapSource(
      ctx,
      { ...mb, imap: mb.imap },
      {
        serial: opts.serial,
        deps,
        ...(opts.onHandled ? { onHandled: opts.onHandled } : {}),
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
        ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
        ...(opts.alertAfterMs !== undefined ? { alertAfterMs: opts.alertAfterMs } : {}),
      },
    );
    return { scanNow: () => src.scanNow(), stop: () => src.stop() };
  }
  return undefined;
}
