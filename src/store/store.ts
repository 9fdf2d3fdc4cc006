// The store as core/, daemon/, cli/, mailbox/ and proxy/ see it: every read and write of credd's
// state, asynchronous, so that a PostgreSQL implementation (issue 17, docs/shared-store.md) can
// stand beside the SQLite one (sqlite-store.ts) without the callers changing. Each member has the
// signature of the synchronous SQLite function of the same name in this folder, minus its `db`
// argument and with a Promise around the result: those functions are the SQLite implementation, and
// their row types are the rows every implementation returns.
import type * as alerts from "./alerts.js";
import type * as certificates from "./certificates.js";
import type * as checks from "./checks.js";
import type { Db } from "./db.js";
import type * as facts from "./facts.js";
import type * as history from "./history.js";
import type * as hosts from "./hosts.js";
import type * as mailbox from "./mailbox.js";
import type * as outbox from "./outbox.js";
import type * as renewals from "./renewals.js";
import type * as snapshot from "./snapshot.js";
import type * as tokens from "./tokens.js";

/** A store query: the synchronous function's arguments after `db`, its result as a Promise. */
export type Query<F> = F extends (db: Db, ...args: infer A) => infer R ? (...args: A) => Promise<R> : never;

export interface Store {
  // certificates: one row per installed version, at most one live per credential.
  liveCertificate: Query<typeof certificates.liveCertificate>;
  previousCertificate: Query<typeof certificates.previousCertificate>;
  certificateByVersion: Query<typeof certificates.certificateByVersion>;
  certificateBySha256: Query<typeof certificates.certificateBySha256>;
  maxVersion: Query<typeof certificates.maxVersion>;
  insertInstalledCertificate: Query<typeof certificates.insertInstalledCertificate>;
  makeLive: Query<typeof certificates.makeLive>;
  /** Inside `tx`: the live version and the renewal's state, locked until the commit (PostgreSQL: FOR UPDATE). */
  lockForGoLive: Query<typeof certificates.lockForGoLive>;

  // renewals: a new key's way from CSR to live.
  pendingRenewal: Query<typeof renewals.pendingRenewal>;
  getRenewal: Query<typeof renewals.getRenewal>;
  insertRenewal: Query<typeof renewals.insertRenewal>;
  setRenewalState: Query<typeof renewals.setRenewalState>;
  markCsrSent: Query<typeof renewals.markCsrSent>;
  markReminded: Query<typeof renewals.markReminded>;
  probeFields: Query<typeof renewals.probeFields>;
  recordProbeFailure: Query<typeof renewals.recordProbeFailure>;
  markRegistrationMailed: Query<typeof renewals.markRegistrationMailed>;

  // outbox: every email credd sends, queued first.
  enqueueMail: Query<typeof outbox.enqueueMail>;
  claimDue: Query<typeof outbox.claimDue>;
  releaseClaim: Query<typeof outbox.releaseClaim>;
  releaseLiveClaims: Query<typeof outbox.releaseLiveClaims>;
  markMailSent: Query<typeof outbox.markMailSent>;
  markMailFailed: Query<typeof outbox.markMailFailed>;
  queuedMails: Query<typeof outbox.queuedMails>;

  // tokens: the OAuth2 token's timing and failures per credential (the token itself is a file).
  getToken: Query<typeof tokens.getToken>;
  tokenTimings: Query<typeof tokens.tokenTimings>;
  recordTokenSuccess: Query<typeof tokens.recordTokenSuccess>;
  recordTokenFailure: Query<typeof tokens.recordTokenFailure>;
  forgetToken: Query<typeof tokens.forgetToken>;

  // checks and meta: the daemon's heartbeat per credential and its key/value facts.
  recordChecks: Query<typeof checks.recordChecks>;
  getMeta: Query<typeof checks.getMeta>;
  setMeta: Query<typeof checks.setMeta>;
  setCheckPeriodMs: Query<typeof checks.setCheckPeriodMs>;

  // decision facts: what the check decides from, for one credential or all at once.
  decisionFacts: Query<typeof facts.decisionFacts>;
  allDecisionFacts: Query<typeof facts.allDecisionFacts>;

  // history: hook runs and ingests (refusals included).
  recordHookRun: Query<typeof history.recordHookRun>;
  recordIngest: Query<typeof history.recordIngest>;
  lastUnmatchedRefusal: Query<typeof history.lastUnmatchedRefusal>;

  // alerts: open situations, resolved ones, one-off events.
  openAlerts: Query<typeof alerts.openAlerts>;
  upsertAlert: Query<typeof alerts.upsertAlert>;
  resolveAlert: Query<typeof alerts.resolveAlert>;
  recordEvent: Query<typeof alerts.recordEvent>;
  eventSent: Query<typeof alerts.eventSent>;

  // mailbox: messages read from the partner mailbox, and each source's health.
  recordMailboxMessage: Query<typeof mailbox.recordMailboxMessage>;
  seenMessageKeys: Query<typeof mailbox.seenMessageKeys>;
  unmovedMessages: Query<typeof mailbox.unmovedMessages>;
  markMessageMoved: Query<typeof mailbox.markMessageMoved>;
  handledCopy: Query<typeof mailbox.handledCopy>;
  sentThreads: Query<typeof mailbox.sentThreads>;
  lastMailboxMessages: Query<typeof mailbox.lastMailboxMessages>;
  mailboxSource: Query<typeof mailbox.mailboxSource>;
  recordSourceFailure: Query<typeof mailbox.recordSourceFailure>;
  markSourceAlerted: Query<typeof mailbox.markSourceAlerted>;
  recordSourceOk: Query<typeof mailbox.recordSourceOk>;

  // snapshot: everything status and the alert rules read, all credentials, one moment.
  readSnapshot: Query<typeof snapshot.readSnapshot>;

  heartbeatHost: Query<typeof hosts.heartbeatHost>;
  listHosts: Query<typeof hosts.listHosts>;
  /** A version's key (sealed on PostgreSQL), CSR, certificate, chain; parts left out are kept. No-op on SQLite. */
  putArchive: Query<typeof hosts.putArchive>;
  /** A version's parts, the key unsealed (a wrong key-encryption key throws, loudly); undefined on SQLite or when none. */
  getArchive: Query<typeof hosts.getArchive>;

  /**
   * Runs `fn` in one transaction on `s`, the transaction's own store: every write inside commits
   * together or not at all (a throw rolls back and is rethrown). Use only `s` inside `fn`; no other
   * call on this store runs until the transaction ends (SQLite: it waits at the gate), and a
   * transaction inside a transaction is refused.
   */
  tx<T>(fn: (s: Store) => Promise<T>): Promise<T>;

  /** Closes the connection(s); waits for an open transaction to end first. */
  close(): Promise<void>;
}

// Pure helpers over rows, no SQL: re-exported so that callers need no synchronous store module.
export { failedHookLines, refusalSince } from "./history.js";
export type { AlertRow } from "./alerts.js";
export type { CertificateRow, GoLiveState, NewCertificate } from "./certificates.js";
export type { CheckBeat } from "./checks.js";
export type { LatestFacts, LiveFacts, PendingFacts } from "./facts.js";
export type { HookRunRow, IngestRow } from "./history.js";
export type { ArchiveParts, HostRow } from "./hosts.js";
export type { MailboxMessageRow, MailboxOutcome, MailboxSourceRow, SentThread } from "./mailbox.js";
export type { OutboxRow, QueuedMail } from "./outbox.js";
export type { RenewalRow, RenewalState } from "./renewals.js";
export type { LiveCertificate, QueuedSummary, Snapshot } from "./snapshot.js";
export type { TokenRow, TokenTiming } from "./tokens.js";
