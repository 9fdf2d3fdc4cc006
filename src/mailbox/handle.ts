// Handles one message from any source: match it to a credential, take every certificate it
// brings through the same ingest as `credd ingest`, record what became of it in SQLite and, when
// credd cannot finish by itself, queue the one ops email, in the same transaction as the record.
import type { CredentialConfig, MailboxConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import type { FileOutcome, InputFile } from "../core/ingest.js";
import { crashPoint } from "../core/crash.js";
import { CreddError, errorMessage } from "../errors.js";
import { composeOpsMail, type StopReason } from "./ops-mail.js";
import { MAX_MESSAGE_BYTES, parseReply } from "./parse.js";
import {
  attachmentKind,
  detailLines,
  findLinks,
  isAutoReply,
  linkAllowed,
  matchReply,
  pastedPem,
  referencedIds,
  replyDetails,
  type Reply,
} from "./reply.js";
import type { MailboxOutcome } from "../store/store.js";

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** A message as a source hands it over: all of it, or only its header when it is too large. */
export interface RawMessage {
  source: string;
  key: string;
  /** The whole message, or (headOnly) its header section. */
  bytes: Buffer;
  size: number;
  headOnly: boolean;
  /** For the ops email: where the message will be once moved, e.g. "IMAP folder credd/refused". */
  describeFolder(folder: string): string;
}

export type Folder = "done" | "refused";

export interface Handled {
  outcome: MailboxOutcome;
  credential?: string;
  /** Where the source moves it; undefined: left where it is, untouched. */
  folder?: Folder;
  reason?: string;
}

/** Expands what is not a certificate itself (ZIP archives, links): files to ingest, or why not. */
export interface Collectors {
  unzip?: (name: string, bytes: Buffer, cred: CredentialConfig) => { files: InputFile[]; stops: StopReason[] };
  download?: (url: URL, cred: CredentialConfig) => Promise<{ file?: InputFile; stop?: StopReason }>;
  ingest?: (ctx: Ctx, files: InputFile[], only?: CredentialConfig) => Promise<FileOutcome[]>;
}

/** A failure on credd's side (database locked, disk full): the message stays and is tried again. */
export class TryAgainLater extends CreddError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("IO", message, options);
    this.name = "TryAgainLater";
  }
}

/**
 * `handleMessage`, for a source's look at its folder: a failure on credd's side (database locked,
 * disk full) leaves the message where it is, to be tried at the next look, and is logged once per
 * distinct error (`failing` remembers the last error of each message key). Undefined when deferred.
 */
export async function handleOrDefer(
  ctx: Ctx,
  mb: MailboxConfig,
  msg: RawMessage,
  deps: Collectors,
  failing: Map<string, string>,
): Promise<Handled | undefined> {
  try {
    const h = await handleMessage(ctx, mb, msg, deps);
    failing.delete(msg.key);
    return h;
  } catch (err) {
    const e = errorMessage(err);
    if (failing.get(msg.key) !== e)
      ctx.log.error(
        { source: msg.source, message: msg.key, err: e },
        "mailbox: cannot handle a message now; tried again at the next look (logged again only when the error changes)",
      );
    failing.set(msg.key, e);
    return undefined;
  }
}

export async function handleMessage(ctx: Ctx, mb: MailboxConfig, msg: RawMessage, deps: Collectors = {}): Promise<Handled> {
  const now = ctx.clock.now();
  const reply = await parseReply(msg.bytes);
  const threads = await ctx.store.sentThreads(referencedIds(reply));
  const match = matchReply(reply, threads, ctx.config.credentials, mb.senders);
  const base = {
    source: msg.source,
    message_key: msg.key,
    message_id: reply.messageId ?? null,
    sender: reply.from ?? null,
    subject: reply.subject.slice(0, 300),
    handled_at: now.toISOString(),
  };
  if (match.credential === undefined) {
    await ctx.store.recordMailboxMessage({
      ...base,
      credential: null,
      matched_by: null,
      outcome: "ignored",
      reason: match.why,
      details_json: null,
      folder: null,
    });
    ctx.log.info({ source: msg.source, message: msg.key, from: reply.from, why: match.why }, "mailbox: a message for no credential, left untouched");
    return { outcome: "ignored", reason: match.why };
  }
  const cred = ctx.config.credentials.find((c) => c.name === match.credential)!;
  const rec = async (
    outcome: MailboxOutcome,
    folder: Folder,
    reason: string | null,
    details: object | null = null,
    store = ctx.store,
  ): Promise<void> => {
    await store.recordMailboxMessage({
      ...base,
      credential: cred.name,
      matched_by: match.by,
      outcome,
      reason,
      details_json: details && Object.keys(details).length > 0 ? JSON.stringify(details) : null,
      folder,
    });
  };

  // The same message delivered twice (a second copy, a re-sent forward): handled once.
  const copy = reply.messageId ? await ctx.store.handledCopy(reply.messageId) : undefined;
  if (copy) {
    const folder: Folder = copy.outcome === "needs-person" ? "refused" : "done";
    await rec("duplicate", folder, `a copy of message ${copy.message_key}, handled on ${copy.handled_at} (${copy.outcome})`);
    ctx.log.info({ credential: cred.name, message: msg.key, copyOf: copy.message_key }, "mailbox: a second copy of a message already handled");
    return { outcome: "duplicate", credential: cred.name, folder, reason: "duplicate" };
  }

  ctx.log.info(
    { credential: cred.name, message: msg.key, matchedBy: match.by, from: reply.from, subject: reply.subject },
    "mailbox: a reply for a credential",
  );
  const attachmentsText = reply.attachments.map((a) => `${a.name} (${a.contentType}, ${a.size} bytes)`);
  const links = findLinks(reply);
  const details = replyDetails(reply);
  const configLines = detailLines(cred, details);
  const stops: StopReason[] = [];
  const files: InputFile[] = [];

  if (msg.headOnly) {
    stops.push({
      why: `the message is ${msg.size} bytes, more than the ${MAX_MESSAGE_BYTES} bytes credd reads from a mailbox`,
      fix: `open it in ${msg.describeFolder(mb.refused_folder)}, save the certificate it brings and run \`credd ingest ${cred.name} FILE\``,
    });
  } else {
    const certAttachments = reply.attachments.filter((a) => attachmentKind(a) !== "other");
    if (isAutoReply(reply) && certAttachments.length === 0) {
      await rec("auto-reply", "done", "an automatic reply (out of office or similar); nothing to take in", details);
      ctx.log.info({ credential: cred.name, message: msg.key, subject: reply.subject }, "mailbox: an automatic reply, nothing to take in");
      return { outcome: "auto-reply", credential: cred.name, folder: "done" };
    }
    collectAttachments(reply, deps, files, stops, cred);
  }

  let outcomes: FileOutcome[] = [];
  let downloaded = false;
  const linkStops: StopReason[] = [];
  if (!msg.headOnly) {
    for (const link of links) {
      const allowed = linkAllowed(link, mb.download_hosts);
      if (!allowed.ok) {
        linkStops.push({
          why: `the link ${link} was not fetched: ${allowed.why}`,
          fix: allowed.why.includes("download_hosts")
            ? `add its host under mailbox: (download_hosts: [${new URL(link).hostname}]) and reload credd, or download it and run \`credd ingest ${cred.name} FILE\``
            : `download it yourself and run \`credd ingest ${cred.name} FILE\``,
        });
        continue;
      }
      if (!deps.download) {
        linkStops.push({
          why: `the link ${link} was not fetched: this credd does not download links`,
          fix: `download it and run \`credd ingest ${cred.name} FILE\``,
        });
        continue;
      }
      const got = await deps.download(allowed.url, cred);
      if (got.stop) stops.push(got.stop);
      if (!got.file) continue;
      downloaded = true;
      if (got.file.bytes.subarray(0, 4).equals(ZIP_MAGIC) && deps.unzip) {
        const z = deps.unzip(got.file.name, got.file.bytes, cred);
        files.push(...z.files);
        stops.push(...z.stops);
      } else files.push(got.file);
    }
  }
  // A crash here (tests: CREDD_CRASH_AT) leaves nothing recorded: the next look downloads again.
  if (downloaded) crashPoint("mailbox-after-download");
  if (files.length > 0) {
    const ingest =
      deps.ingest ?? (async (c: Ctx, f: InputFile[], only?: CredentialConfig) => (await import("../core/ingest.js")).ingestBatch(c, f, only));
    outcomes = await ingest(ctx, uniqueNames(files), cred);
  }
  const taken = outcomes.filter((o) => o.outcome === "installed" || o.outcome === "already-live");
  const failed = outcomes.filter((o) => o.outcome === "failed");
  if (taken.length === 0 && failed.length > 0) {
    const f = failed[0]!;
    throw new TryAgainLater(`${f.file}: ${f.reason}`);
  }
  for (const o of outcomes) {
    if (o.outcome === "refused") {
      stops.push({
        why: `${o.file} was refused (${o.check}): ${o.reason}`,
        fix: `ask the Stellantis contact (${ctx.config.stellantis.contact}) for the certificate signed for the CSR credd sent; then \`credd ingest ${cred.name} FILE\``,
      });
    }
  }

  const installed = taken.find((o) => o.outcome === "installed");
  if (taken.length > 0) {
    const what =
      installed && installed.outcome === "installed"
        ? `certificate ${installed.serial} (version ${installed.version}) was taken in${installed.staged ? ` and waits: ${installed.staged}` : " and is live"}`
        : "its certificate was already live";
    const outcome: MailboxOutcome = installed ? "installed" : "already-live";
    await ctx.store.tx(async (s) => {
      await rec(outcome, "done", stops.length ? stops.map((st) => st.why).join("; ") : null, details, s);
      if (configLines.length > 0) {
        await queueOps({ ...ctx, store: s }, cred, reply, msg, mb.done_folder, attachmentsText, links, match.by, [], configLines, what);
      }
    });
    ctx.log.info(
      { credential: cred.name, message: msg.key, matchedBy: match.by, outcome, files: outcomes.map((o) => `${o.file}: ${o.outcome}`) },
      "mailbox: reply handled",
    );
    return { outcome, credential: cred.name, folder: "done" };
  }

  if (files.length === 0 && stops.length === 0 && linkStops.length === 0) {
    stops.push({
      why: "the reply brings no certificate: no PEM, DER, PKCS#7 or ZIP attachment and no link",
      fix: `read it in ${msg.describeFolder(mb.refused_folder)}; when the certificate comes, \`credd ingest ${cred.name} FILE\``,
    });
  }
  const all = [...stops, ...linkStops];
  const reason = all.map((s) => s.why).join("; ");
  await ctx.store.tx(async (s) => {
    await rec("needs-person", "refused", reason, details, s);
    await queueOps({ ...ctx, store: s }, cred, reply, msg, mb.refused_folder, attachmentsText, links, match.by, all, configLines);
  });
  ctx.log.warn(
    { credential: cred.name, message: msg.key, matchedBy: match.by, reason },
    "mailbox: a reply credd cannot finish by itself; ops emailed",
  );
  return { outcome: "needs-person", credential: cred.name, folder: "refused", reason };
}

function collectAttachments(reply: Reply, deps: Collectors, files: InputFile[], stops: StopReason[], cred: CredentialConfig): void {
  for (const a of reply.attachments) {
    const kind = attachmentKind(a);
    if (kind === "certificate") files.push({ name: a.name, bytes: a.content });
    else if (kind === "zip") {
      if (!deps.unzip) {
        stops.push({
          why: `${a.name} is a ZIP archive, which this credd does not open`,
          fix: `unzip it and run \`credd ingest ${cred.name} FILE...\``,
        });
        continue;
      }
      const r = deps.unzip(a.name, a.content, cred);
      files.push(...r.files);
      stops.push(...r.stops);
    }
  }
  // No certificate attached: one pasted into the body (or a forwarded body) is taken as a file.
  if (files.length > 0) return;
  const pem = pastedPem(reply.text);
  if (pem) files.push({ name: "message-body.pem", bytes: Buffer.from(pem) });
}

/** Names as the ingest log shows them; two attachments with one name are told apart. */
function uniqueNames(files: InputFile[]): InputFile[] {
  const seen = new Map<string, number>();
  return files.map((f) => {
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    return n === 1 ? f : { name: `${f.name} (${n})`, bytes: f.bytes };
  });
}

async function queueOps(
  ctx: Ctx,
  cred: CredentialConfig,
  reply: Reply,
  msg: RawMessage,
  folder: string,
  attachments: string[],
  links: string[],
  matchedBy: string,
  stops: StopReason[],
  configLines: string[],
  installed?: string,
): Promise<void> {
  const now = ctx.clock.now();
  const mail = composeOpsMail({
    config: ctx.config,
    cred,
    reply,
    where: msg.describeFolder(folder),
    attachments,
    links,
    matchedBy,
    stops,
    configLines,
    ...(installed ? { installed } : {}),
    now,
  });
  await ctx.store.enqueueMail({ mail, kind: "mailbox", credential: cred.name, now });
}
