// The Store (store.ts) on SQLite: each query is the synchronous function of the same name in this
// folder, run at once on the one better-sqlite3 connection. What async adds is the gate: while a
// transaction is open (tx), it may await between its statements, so every other call on the store
// waits until it ends; otherwise another task's writes would land inside it (one connection, one
// transaction) and commit or roll back with it.
import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync } from "node:fs";
import { CreddError } from "../errors.js";
import * as alerts from "./alerts.js";
import * as certificates from "./certificates.js";
import * as checks from "./checks.js";
import { dbPath, openDb, openDbForReading, prep, type Db, type OpenOptions } from "./db.js";
import * as facts from "./facts.js";
import * as history from "./history.js";
import * as hosts from "./hosts.js";
import * as mailbox from "./mailbox.js";
import * as outbox from "./outbox.js";
import * as renewals from "./renewals.js";
import * as snapshot from "./snapshot.js";
import type { Store } from "./store.js";
import * as tokens from "./tokens.js";

/** The SQLite store and its connection, for what only SQLite has (tests' setup, the file itself). */
export interface SqliteStore extends Store {
  readonly db: Db;
}

/** One per connection: the open transaction, if any, that every other call waits for. */
class Gate {
  /** Settles when the open transaction ends; undefined when none is open. */
  open: Promise<void> | undefined;
  /** Set inside a transaction's fn (and what it awaits): a call on the outer store there would wait forever. */
  readonly inside = new AsyncLocalStorage<true>();

  /** Runs `fn` once no transaction is open, in the same turn as the last check (nothing can open one in between). */
  async pass<R>(fn: () => R): Promise<R> {
    if (this.inside.getStore()) {
      throw new CreddError("INTERNAL", "store call on the outer store inside a transaction: use the store handed to tx's fn");
    }
    while (this.open) await this.open;
    return fn();
  }
}

export function sqliteStore(db: Db): SqliteStore {
  return make(db, new Gate(), undefined);
}

/** Opens (creating it if needed) and migrates state_dir's database: see openDb. */
export function openSqliteStore(stateDir: string, opts: OpenOptions = {}): SqliteStore {
  return sqliteStore(openDb(stateDir, opts));
}

/** The existing database, read-only, never created: see openDbForReading. */
export function openSqliteStoreForReading(stateDir: string, configFile?: string): SqliteStore {
  return sqliteStore(openDbForReading(stateDir, configFile));
}

/** The same, or undefined when state_dir holds no database (doctor: reads it only if there is one). */
export function openSqliteStoreIfAny(stateDir: string, configFile?: string): SqliteStore | undefined {
  return existsSync(dbPath(stateDir)) ? openSqliteStoreForReading(stateDir, configFile) : undefined;
}

/** `scope` is set for a transaction's own store: it skips the gate, and is dead once the transaction ends. */
function make(db: Db, gate: Gate, scope: { ended: boolean } | undefined): SqliteStore {
  const call = <R>(fn: () => R): Promise<R> => {
    if (scope) {
      if (scope.ended) return Promise.reject(new CreddError("INTERNAL", "store call on a transaction's store after the transaction ended"));
    } else if (gate.open || gate.inside.getStore()) {
      return gate.pass(fn);
    }
    // No transaction open: the statement runs now, as the synchronous function did.
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  };
  const q =
    <A extends unknown[], R>(f: (db: Db, ...args: A) => R) =>
    (...args: A): Promise<R> =>
      call(() => f(db, ...args));

  const tx = async <T>(fn: (s: Store) => Promise<T>): Promise<T> => {
    if (scope || gate.inside.getStore())
      throw new CreddError("INTERNAL", "a store transaction inside a transaction: nested transactions are not supported");
    let end!: () => void;
    await gate.pass(() => {
      gate.open = new Promise<void>((resolve) => {
        end = resolve;
      });
    });
    const own = { ended: false };
    try {
      prep(db, "BEGIN IMMEDIATE").run();
      let result: T;
      try {
        result = await gate.inside.run(true, () => fn(make(db, gate, own)));
      } catch (err) {
        own.ended = true;
        rollback(db);
        throw err;
      }
      own.ended = true;
      try {
        prep(db, "COMMIT").run();
      } catch (err) {
        rollback(db);
        throw err;
      }
      return result;
    } finally {
      own.ended = true;
      gate.open = undefined;
      end();
    }
  };

  return {
    db,
    liveCertificate: q(certificates.liveCertificate),
    previousCertificate: q(certificates.previousCertificate),
    certificateByVersion: q(certificates.certificateByVersion),
    certificateBySha256: q(certificates.certificateBySha256),
    maxVersion: q(certificates.maxVersion),
    insertInstalledCertificate: q(certificates.insertInstalledCertificate),
    makeLive: q(certificates.makeLive),
    lockForGoLive: q(certificates.lockForGoLive),

    pendingRenewal: q(renewals.pendingRenewal),
    getRenewal: q(renewals.getRenewal),
    insertRenewal: q(renewals.insertRenewal),
    setRenewalState: q(renewals.setRenewalState),
    markCsrSent: q(renewals.markCsrSent),
    markReminded: q(renewals.markReminded),
    probeFields: q(renewals.probeFields),
    recordProbeFailure: q(renewals.recordProbeFailure),
    markRegistrationMailed: q(renewals.markRegistrationMailed),

    enqueueMail: q(outbox.enqueueMail),
    claimDue: q(outbox.claimDue),
    releaseClaim: q(outbox.releaseClaim),
    releaseLiveClaims: q(outbox.releaseLiveClaims),
    markMailSent: q(outbox.markMailSent),
    markMailFailed: q(outbox.markMailFailed),
    queuedMails: q(outbox.queuedMails),

    getToken: q(tokens.getToken),
    tokenTimings: q(tokens.tokenTimings),
    recordTokenSuccess: q(tokens.recordTokenSuccess),
    recordTokenFailure: q(tokens.recordTokenFailure),
    forgetToken: q(tokens.forgetToken),

    recordChecks: q(checks.recordChecks),
    heartbeatHost: q(hosts.heartbeatHost),
    listHosts: q(hosts.listHosts),
    putArchive: q(hosts.putArchive),
    getArchive: q(hosts.getArchive),
    getMeta: q(checks.getMeta),
    setMeta: q(checks.setMeta),
    setCheckPeriodMs: q(checks.setCheckPeriodMs),

    decisionFacts: q(facts.decisionFacts),
    allDecisionFacts: q(facts.allDecisionFacts),

    recordHookRun: q(history.recordHookRun),
    recordIngest: q(history.recordIngest),
    lastUnmatchedRefusal: q(history.lastUnmatchedRefusal),

    openAlerts: q(alerts.openAlerts),
    upsertAlert: q(alerts.upsertAlert),
    resolveAlert: q(alerts.resolveAlert),
    recordEvent: q(alerts.recordEvent),
    eventSent: q(alerts.eventSent),

    recordMailboxMessage: q(mailbox.recordMailboxMessage),
    seenMessageKeys: q(mailbox.seenMessageKeys),
    unmovedMessages: q(mailbox.unmovedMessages),
    markMessageMoved: q(mailbox.markMessageMoved),
    handledCopy: q(mailbox.handledCopy),
    sentThreads: q(mailbox.sentThreads),
    lastMailboxMessages: q(mailbox.lastMailboxMessages),
    mailboxSource: q(mailbox.mailboxSource),
    recordSourceFailure: q(mailbox.recordSourceFailure),
    markSourceAlerted: q(mailbox.markSourceAlerted),
    recordSourceOk: q(mailbox.recordSourceOk),

    readSnapshot: q(snapshot.readSnapshot),

    tx,
    close: async () => {
      if (scope) throw new CreddError("INTERNAL", "close() on a transaction's store");
      await gate.pass(() => db.close());
    },
  };
}

/** After a failure inside a transaction: undo it; the failure that got us here is the one to report. */
function rollback(db: Db): void {
  try {
    if (db.inTransaction) prep(db, "ROLLBACK").run();
  } catch {
    // A connection that cannot roll back refuses the next BEGIN with its own error.
  }
}
