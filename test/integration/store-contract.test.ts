// The Store contract: the same behavioural cases run against SqliteStore (a temp SQLite file) and
// PgStore (a throwaway PostgreSQL cluster, test/helpers/postgres.ts), each on a fresh database, and
// every answer must be equal (ids included: both count from 1 on a fresh database). Each case also
// asserts what the answers mean, so that two stores wrong the same way still fail. Then what only
// PostgreSQL has: two hosts claiming the outbox at once, and a rollback seen from another host.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import type { Situation } from "../../src/domain/alerts.js";
import type { OutgoingMail } from "../../src/mail/message.js";
import type { NewCertificate } from "../../src/store/certificates.js";
import type { NewMailboxMessage } from "../../src/store/mailbox.js";
import { type PgTarget, pgTarget } from "../../src/store/pg/connect.js";
import { migratePg } from "../../src/store/pg/migrate.js";
import { openPgStore, type PgStore } from "../../src/store/pg/pg-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { type PgCluster, postgresMissing, startPostgres } from "../helpers/postgres.js";

const skip = postgresMissing();
const work = mkdtempSync(join(tmpdir(), "credd-contract-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Fixed instants: every time in these cases is one of them (no clock is read). */
const T = (min: number): string => new Date(Date.UTC(2026, 10, 25, 15, min)).toISOString();
const D = (min: number): Date => new Date(T(min));

function cert(credential: string, version: number, extra: Partial<NewCertificate & { renewal_id: number | null }> = {}) {
  return {
    credential,
    version,
    serial: `0${version}AB`,
    not_before: T(0),
    not_after: "2027-11-25T15:00:00.000Z",
    subject: `CN=${credential}`,
    issuer: "CN=Stellantis B2B CA",
    spki_sha256: `spki-${credential}-${version}`,
    sha256: `sha-${credential}-${version}`,
    source: "import" as const,
    installed_at: T(version),
    renewal_id: null,
    ...extra,
  };
}

function renewal(credential: string, version: number, createdMin = 0) {
  return {
    credential,
    version,
    kind: "renew" as const,
    forced: 0 as const,
    reason: "30 days left",
    spki_sha256: `spki-${credential}-${version}`,
    key_type: "rsa-3072",
    created_at: T(createdMin),
  };
}

let mails = 0;
function mail(to = "ca@partner.example"): OutgoingMail {
  mails++;
  return {
    messageId: `<credd.${mails}@host.example>`,
    from: "credd@host.example",
    to: [to],
    cc: [],
    subject: `CSR ${mails} – é`,
    text: "Bonjour,\n\nle CSR.\n",
    attachments: [{ filename: "a.csr", contentType: "application/pkcs10", content: "-----BEGIN CERTIFICATE REQUEST-----" }],
  } as OutgoingMail;
}

function situation(credential: string | null, kind: string, stage: string, event = false): Situation {
  return { credential, kind, stage, severity: "warning", title: `${kind} ${stage}`, detail: "details", action: "do it", ...(event ? { event } : {}) };
}

function message(key: string, extra: Partial<NewMailboxMessage> = {}): NewMailboxMessage {
  return {
    source: "maildir:/var/mail/credd",
    message_key: key,
    message_id: `<${key}@partner.example>`,
    sender: "ca@partner.example",
    subject: "Re: CSR",
    credential: "alpha",
    matched_by: "in-reply-to",
    outcome: "installed",
    reason: null,
    details_json: null,
    handled_at: T(10),
    folder: "done",
    ...extra,
  };
}

interface Case {
  name: string;
  /** Runs on a fresh store; returns every answer it got, which must be equal on both stores. */
  run: (s: Store) => Promise<unknown>;
}

const CASES: Case[] = [
  {
    name: "certificates: insert, read back, go live, retire, roll back to the previous",
    async run(s) {
      const id1 = await s.insertInstalledCertificate(cert("alpha", 1));
      const rid = await s.insertRenewal(renewal("alpha", 2));
      const id2 = await s.insertInstalledCertificate(
        cert("alpha", 2, {
          source: "renewal",
          renewal_id: rid,
          ca_not_after: "2030-01-01T00:00:00.000Z",
          ca_not_after_role: "intermediate",
          ca_not_after_subject: "CN=Int",
          ca_not_after_serial: "77",
        }),
      );
      assert.equal(typeof id1, "number");
      const beforeLive = await s.liveCertificate("alpha");
      assert.equal(beforeLive, undefined);
      await s.makeLive("alpha", 1, T(5));
      const live1 = await s.liveCertificate("alpha");
      assert.equal(live1?.live, 1);
      assert.equal(live1?.went_live_at, T(5));
      await s.makeLive("alpha", 2, T(6));
      const live2 = await s.liveCertificate("alpha");
      const previous = await s.previousCertificate("alpha");
      assert.equal(live2?.version, 2);
      assert.equal(previous?.version, 1);
      assert.equal(previous?.live, 0);
      assert.equal(previous?.retired_at, T(6));
      // Rollback: v1 live again keeps its first went_live_at; v2 is retired.
      await s.makeLive("alpha", 1, T(7));
      return {
        id1,
        id2,
        live1,
        live2,
        previous,
        afterRollback: await s.liveCertificate("alpha"),
        previousAfterRollback: await s.previousCertificate("alpha"),
        byVersion: await s.certificateByVersion("alpha", 2),
        byVersionMissing: await s.certificateByVersion("alpha", 9),
        bySha: await s.certificateBySha256("alpha", "sha-alpha-1"),
        byShaMissing: await s.certificateBySha256("beta", "sha-alpha-1"),
        maxVersion: await s.maxVersion("alpha"),
        maxVersionNone: await s.maxVersion("nobody"),
      };
    },
  },
  {
    name: "maxVersion counts renewals beyond the certificates",
    async run(s) {
      await s.insertInstalledCertificate(cert("alpha", 1));
      await s.insertRenewal(renewal("alpha", 4));
      const v = await s.maxVersion("alpha");
      assert.equal(v, 4);
      return v;
    },
  },
  {
    name: "renewals: created → sent → reminded → probe failures → registered → live",
    async run(s) {
      const id = await s.insertRenewal({ ...renewal("alpha", 1), forced: 1 });
      const created = await s.getRenewal(id);
      assert.equal(created?.state, "created");
      assert.equal(created?.forced, 1);
      await s.markCsrSent(id, T(1));
      await s.markCsrSent(id, T(2)); // a second send keeps the first sent_at and state_since
      const sent = await s.getRenewal(id);
      assert.equal(sent?.state, "sent");
      assert.equal(sent?.sent_at, T(1));
      assert.equal(sent?.state_since, T(1));
      await s.markReminded(id, T(3));
      await s.markReminded(id, T(4));
      const probe0 = await s.probeFields(id);
      await s.setRenewalState(id, "signed", T(5));
      await s.recordProbeFailure(id, "invalid_client", T(6));
      await s.recordProbeFailure(id, "invalid_client again", T(8));
      await s.markRegistrationMailed(id, T(7));
      const probe2 = await s.probeFields(id);
      assert.equal(probe2.probe_attempts, 2);
      await s.setRenewalState(id, "registered", T(9));
      const pending = await s.pendingRenewal("alpha");
      assert.equal(pending?.id, id);
      await s.setRenewalState(id, "live", T(10));
      const live = await s.getRenewal(id);
      assert.equal(live?.ended_at, T(10));
      return { created, sent, probe0, probe2, pending, live, pendingAfter: await s.pendingRenewal("alpha"), missing: await s.getRenewal(999) };
    },
  },
  {
    name: "outbox: enqueue, claim (held, limited, one id), fail with backoff, send, release, retry keeps the Message-ID",
    async run(s) {
      const rid = await s.insertRenewal(renewal("alpha", 1));
      const m1 = mail();
      const id1 = await s.enqueueMail({ mail: m1, kind: "csr", credential: "alpha", renewalId: rid, now: D(0) });
      const id2 = await s.enqueueMail({ mail: mail(), kind: "alert", now: D(0) });
      const id3 = await s.enqueueMail({ mail: mail(), kind: "alert", credential: "beta", now: D(1) });
      const first = await s.claimDue(D(1), 60_000, 2);
      assert.deepEqual(
        first.map((q) => q.row.id),
        [id1, id2],
      );
      assert.deepEqual(first[0]!.mail, m1);
      const second = await s.claimDue(D(1), 60_000);
      assert.deepEqual(
        second.map((q) => q.row.id),
        [id3],
      );
      const heldAll = await s.claimDue(D(1), 60_000);
      assert.deepEqual(heldAll, [], "claimed rows are held until claimed_until");
      await s.markMailFailed(id1, "421 try later", D(30), true);
      await s.markMailSent(id2, D(2), "refused for x@y");
      await s.releaseClaim(id3);
      const queued = await s.queuedMails();
      const queuedBeta = await s.queuedMails("beta");
      const afterRelease = await s.claimDue(D(2), 60_000);
      assert.deepEqual(
        afterRelease.map((q) => q.row.id),
        [id3],
        "released at once; the failed one waits for its backoff",
      );
      const notYet = await s.claimDue(D(29), 1_000, 20, id1);
      const retry = await s.claimDue(D(30), 60_000, 20, id1);
      assert.equal(retry.length, 1);
      assert.equal(retry[0]!.row.message_id, m1.messageId, "a retry keeps the Message-ID");
      assert.equal(retry[0]!.mail.messageId, m1.messageId);
      assert.equal(retry[0]!.row.attempts, 1);
      assert.equal(retry[0]!.row.last_error_permanent, 1);
      // The claim runs out: another claimer may take it (a crashed sender).
      const expired = await s.claimDue(D(32), 60_000);
      await s.markMailSent(id1, D(33));
      return { first, second, queued, queuedBeta, afterRelease, notYet, retry, expired, left: await s.queuedMails() };
    },
  },
  {
    name: "outbox: a new leader gives back the claims still running on unsent rows, and only those",
    async run(s) {
      const HOUR = 3_600_000;
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push(await s.enqueueMail({ mail: mail(), kind: "alert", now: D(0) }));
      const claimed = await s.claimDue(D(1), HOUR, 3);
      assert.equal(claimed.length, 3);
      await s.markMailSent(ids[0]!, D(2));
      // The second and third are held by a claimer that died; the fourth was never claimed.
      const whileHeld = (await s.claimDue(D(2), HOUR, 20)).map((q) => q.row.id);
      assert.deepEqual(whileHeld, [ids[3]]);
      const released = await s.releaseLiveClaims(D(3));
      assert.equal(released, 3, "the two dead claims and the fourth's fresh one; the sent row is not touched");
      const after = (await s.claimDue(D(3), HOUR, 20)).map((q) => q.row.id);
      assert.deepEqual(after, ids.slice(1));
      // Claims that ran out are not counted: nothing to give back.
      const expired = await s.releaseLiveClaims(D(64));
      assert.equal(expired, 0);
      return { whileHeld, released, after, expired, queued: (await s.queuedMails()).map((r) => [r.id, r.claimed_until]) };
    },
  },
  {
    name: "tokens: failures count up, success resets them, forget drops validity; timings per live certificate",
    async run(s) {
      const f1 = await s.recordTokenFailure("alpha", "connect ECONNREFUSED", T(1), T(2));
      const f2 = await s.recordTokenFailure("alpha", "HTTP 503", T(2), T(4));
      assert.deepEqual([f1, f2], [1, 2]);
      const failing = await s.getToken("alpha");
      await s.recordTokenSuccess({
        credential: "alpha",
        token_type: "Bearer",
        scope: "b2b",
        obtained_at: T(5),
        expires_at: T(65),
        refresh_at: T(45),
        cert_version: 1,
        cert_sha256: "sha-alpha-1",
      });
      const ok = await s.getToken("alpha");
      assert.equal(ok?.failures, 0);
      assert.equal(ok?.last_error, "HTTP 503", "the error history stays");
      const f3 = await s.recordTokenFailure("alpha", "HTTP 401", T(50), T(51));
      await s.forgetToken("alpha");
      const forgotten = await s.getToken("alpha");
      await s.insertInstalledCertificate(cert("alpha", 1));
      await s.insertInstalledCertificate(cert("beta", 1));
      await s.insertInstalledCertificate(cert("gamma", 1));
      await s.makeLive("alpha", 1, T(3));
      await s.makeLive("beta", 1, T(3));
      const timings = (await s.tokenTimings()).sort((a, b) => a.credential.localeCompare(b.credential));
      assert.deepEqual(
        timings.map((t) => t.credential),
        ["alpha", "beta"],
      );
      return { failing, ok, f3, forgotten, timings, none: await s.getToken("beta") };
    },
  },
  {
    name: "checks and meta: heartbeats keep the last error time, meta upserts, the check period",
    async run(s) {
      await s.recordChecks([
        { credential: "alpha", at: D(1), error: "CA unreachable" },
        { credential: "beta", at: D(1) },
      ]);
      await s.recordChecks([{ credential: "alpha", at: D(2) }]);
      const missing = await s.getMeta("last_check_at");
      await s.setMeta("last_check_at", T(1));
      await s.setMeta("last_check_at", T(2));
      await s.setCheckPeriodMs(60_000.4);
      const snap = await s.readSnapshot();
      const alpha = snap.checks.get("alpha");
      assert.equal(alpha?.last_error, null);
      assert.equal(alpha?.last_error_at, T(1));
      assert.equal(snap.checkPeriodMs, 60_000);
      return {
        missing,
        last: await s.getMeta("last_check_at"),
        period: await s.getMeta("check_period_ms"),
        checks: snap.checks,
        lastCheckAt: snap.lastCheckAt,
      };
    },
  },
  {
    name: "alerts: upsert opens then moves a stage, resolve closes, events are stored closed",
    async run(s) {
      await s.upsertAlert(situation("alpha", "certificate-expiry", "30d"), T(1));
      await s.upsertAlert(situation(null, "smtp-failing", "1h"), T(1));
      await s.upsertAlert({ ...situation("alpha", "certificate-expiry", "7d"), severity: "critical" }, T(2));
      const open = await s.openAlerts();
      assert.equal(open.length, 2);
      assert.equal(open[0]!.stage, "7d");
      assert.equal(open[0]!.opened_at, T(1));
      assert.equal(open[0]!.last_sent_at, T(2));
      await s.resolveAlert(open[0]!.id, T(3));
      await s.upsertAlert(situation("alpha", "certificate-expiry", "30d"), T(4));
      await s.recordEvent(situation(null, "restart", "2026-11-25", true), T(5));
      const reopened = await s.openAlerts();
      assert.notEqual(reopened[1]!.id, open[0]!.id, "a resolved alert is not reopened: a new row");
      return {
        open,
        reopened,
        sent: await s.eventSent(situation(null, "restart", "2026-11-25")),
        otherStage: await s.eventSent(situation(null, "restart", "2026-11-26")),
        notEvent: await s.eventSent(situation("alpha", "certificate-expiry", "30d")),
      };
    },
  },
  {
    name: "history: hook runs of the latest deploy, ingests and the last unmatched refusal",
    async run(s) {
      const hook = (credential: string, at: string, ok: 0 | 1, argv: string[]) => ({
        credential,
        version: 1,
        serial: "01AB",
        argv_json: JSON.stringify(argv),
        ok,
        exit_code: ok ? 0 : 3,
        signal: null,
        duration_ms: 12,
        error: ok ? null : "exit 3",
        output: "done\n",
        started_at: at,
      });
      await s.recordHookRun(hook("alpha", T(1), 0, ["old"]));
      await s.recordHookRun(hook("alpha", T(2), 1, ["systemctl", "reload", "nginx"]));
      await s.recordHookRun(hook("alpha", T(2), 0, ["/bin/false"]));
      await s.recordHookRun(hook("beta", T(2), 1, ["true"]));
      const ingest = (at: string, credential: string | null, outcome: "installed" | "refused", check: string | null) => ({
        at,
        file: `/inbox/${at}.pem`,
        credential,
        outcome,
        check_name: check,
        reason: check ? `refused by ${check}` : null,
        serial: "01AB",
        sha256: "sha",
      });
      const none = await s.lastUnmatchedRefusal();
      await s.recordIngest(ingest(T(1), null, "refused", "no-credential"));
      await s.recordIngest(ingest(T(2), null, "refused", "not-a-certificate"));
      await s.recordIngest(ingest(T(3), "alpha", "refused", "key-mismatch"));
      await s.recordIngest(ingest(T(4), "alpha", "refused", "previously-live"));
      await s.recordIngest(ingest(T(5), "beta", "installed", null));
      const last = await s.lastUnmatchedRefusal();
      assert.equal(last?.at, T(2));
      const snap = await s.readSnapshot();
      assert.deepEqual(
        snap.hooks.get("alpha")?.map((h) => h.ok),
        [1, 0],
      );
      assert.equal(snap.refusals.get("alpha")?.check_name, "key-mismatch");
      return { none, last, hooks: snap.hooks, refusals: snap.refusals };
    },
  },
  {
    name: "mailbox: messages, keys seen, moves, handled copies, threads, source health",
    async run(s) {
      const csr = mail();
      await s.enqueueMail({ mail: csr, kind: "csr", credential: "alpha", now: D(0) });
      await s.enqueueMail({ mail: mail(), kind: "alert", now: D(0) });
      const alertMail = mail();
      await s.enqueueMail({ mail: alertMail, kind: "alert", credential: "alpha", now: D(0) });
      const a = await s.recordMailboxMessage(message("k1", { details_json: JSON.stringify({ client_id: "x" }) }));
      const b = await s.recordMailboxMessage(message("k2", { message_id: "<k1@partner.example>", outcome: "duplicate", folder: null }));
      const c = await s.recordMailboxMessage(message("k3", { credential: "beta", outcome: "needs-person", reason: "two certificates" }));
      const d = await s.recordMailboxMessage(message("k4", { credential: null, outcome: "ignored", folder: null, source: "imap:u@h/INBOX" }));
      await s.markMessageMoved(a, T(11));
      const threads = await s.sentThreads([alertMail.messageId, csr.messageId, "<none@x>", csr.messageId]);
      assert.deepEqual(
        threads.map((t) => t.message_id),
        [csr.messageId, csr.messageId],
      );
      const noSource = await s.mailboxSource("imap:u@h/INBOX");
      const fail1 = await s.recordSourceFailure("imap:u@h/INBOX", "auth failed", T(1));
      const fail2 = await s.recordSourceFailure("imap:u@h/INBOX", "timeout", T(2));
      assert.equal(fail2.failing_since, T(1));
      assert.equal(fail2.failures, 2);
      await s.markSourceAlerted("imap:u@h/INBOX", T(3));
      const before = await s.recordSourceOk("imap:u@h/INBOX", T(4));
      assert.equal(before?.alerted_at, T(3), "recordSourceOk returns the row as it was");
      return {
        ids: [a, b, c, d],
        seen: await s.seenMessageKeys("maildir:/var/mail/credd"),
        seenNone: await s.seenMessageKeys("nowhere"),
        unmoved: await s.unmovedMessages("maildir:/var/mail/credd"),
        handled: await s.handledCopy("<k1@partner.example>"),
        handledNone: await s.handledCopy("<k4@partner.example>"),
        last: (await s.lastMailboxMessages()).sort((x, y) => x.id - y.id),
        threads,
        noThreads: await s.sentThreads([]),
        noSource,
        fail1,
        fail2,
        before,
        after: await s.mailboxSource("imap:u@h/INBOX"),
        firstOk: await s.recordSourceOk("maildir:/var/mail/credd", T(5)),
        firstOkRow: await s.mailboxSource("maildir:/var/mail/credd"),
      };
    },
  },
  {
    name: "decision facts: one credential, and all at once",
    async run(s) {
      await s.insertInstalledCertificate(cert("alpha", 1, { ca_not_after: "2028-01-01T00:00:00.000Z", ca_not_after_role: "anchor" }));
      await s.makeLive("alpha", 1, T(1));
      const r1 = await s.insertRenewal(renewal("alpha", 2, 2));
      await s.setRenewalState(r1, "superseded", T(3));
      await s.insertRenewal(renewal("alpha", 3, 4));
      const r3 = await s.insertRenewal(renewal("beta", 1, 5));
      await s.markCsrSent(r3, T(6));
      await s.markReminded(r3, T(7));
      const alpha = await s.decisionFacts("alpha");
      assert.equal(alpha.pending?.state, "created");
      assert.equal(alpha.latest?.created_at, T(4));
      return { alpha, beta: await s.decisionFacts("beta"), none: await s.decisionFacts("nobody"), all: await s.allDecisionFacts() };
    },
  },
  {
    name: "status snapshot: every table at one moment",
    async run(s) {
      await s.insertInstalledCertificate(cert("alpha", 1));
      await s.insertInstalledCertificate(cert("beta", 1));
      await s.makeLive("alpha", 1, T(1));
      await s.makeLive("beta", 1, T(1));
      const rid = await s.insertRenewal(renewal("beta", 2, 2));
      await s.recordProbeFailure(rid, "invalid_client", T(9));
      await s.insertRenewal(renewal("alpha", 2, 3));
      await s.recordChecks([{ credential: "alpha", at: D(4) }]);
      await s.setMeta("last_check_at", T(4));
      await s.recordTokenFailure("beta", "HTTP 500", T(4), T(5));
      const id = await s.enqueueMail({ mail: mail(), kind: "csr", credential: "beta", renewalId: rid, now: D(2) });
      await s.markMailFailed(id, "550 no", D(9), true);
      await s.enqueueMail({ mail: mail(), kind: "alert", now: D(3) });
      await s.upsertAlert(situation("beta", "csr-unanswered", "7d"), T(5));
      const snap = await s.readSnapshot();
      assert.equal(snap.pending.get("beta")?.probe_attempts, 1);
      assert.equal(snap.queued[0]?.last_error_permanent, 1);
      assert.equal(snap.checkPeriodMs, undefined);
      return snap;
    },
  },
  {
    name: "tx: commits together, a throw rolls back and is rethrown, nesting and the outer store are refused",
    async run(s) {
      const committed = await s.tx(async (t) => {
        await t.insertInstalledCertificate(cert("alpha", 1));
        await t.makeLive("alpha", 1, T(1));
        await t.setMeta("k", "v");
        return await t.liveCertificate("alpha");
      });
      assert.equal(committed?.version, 1);
      let leaked: Store | undefined;
      const thrown = await s
        .tx(async (t) => {
          leaked = t;
          await t.insertInstalledCertificate(cert("alpha", 2));
          await t.makeLive("alpha", 2, T(2));
          await t.setMeta("k", "changed");
          assert.equal((await t.liveCertificate("alpha"))?.version, 2, "the transaction sees its own writes");
          throw new Error("boom");
        })
        .then(
          () => "committed",
          (e: unknown) => (e as Error).message,
        );
      assert.equal(thrown, "boom");
      const nested = await s
        .tx(async (t) => await t.tx(async () => "inner"))
        .then(
          () => "ran",
          (e: unknown) => (e as Error).message,
        );
      assert.match(nested, /nested transactions are not supported/);
      const outer = await s
        .tx(async () => await s.getMeta("k"))
        .then(
          () => "ran",
          (e: unknown) => (e as Error).message,
        );
      assert.match(outer, /outer store inside a transaction/);
      const late = await leaked!.getMeta("k").then(
        () => "ran",
        (e: unknown) => (e as Error).message,
      );
      assert.match(late, /after the transaction ended/);
      return {
        committed,
        live: await s.liveCertificate("alpha"),
        v2: await s.certificateByVersion("alpha", 2),
        meta: await s.getMeta("k"),
        maxVersion: await s.maxVersion("alpha"),
      };
    },
  },
  {
    name: "tx: a call on the store while a transaction is open waits for it, and sees its commit",
    async run(s) {
      // Idle connections ready (PostgreSQL): a read that skipped the wait would go out at once.
      await Promise.all([s.getMeta("a"), s.getMeta("b"), s.getMeta("c")]);
      let started!: () => void;
      const readStarted = new Promise<void>((r) => {
        started = r;
      });
      const order: string[] = [];
      const txDone = s.tx(async (t) => {
        await t.setMeta("k", "from-tx");
        order.push("tx wrote");
        await readStarted;
        // Round trips on the transaction's own connection while the outer read is pending: time
        // enough for a read that did not wait to come back (with nothing: the write is uncommitted).
        for (let i = 0; i < 20; i++) await t.getMeta("k");
        order.push("tx ends");
      });
      while (order.length === 0) await new Promise((r) => setImmediate(r));
      const read = s.getMeta("k").then((v) => {
        order.push(`read ${v}`);
        return v;
      });
      // A write to another key: one that skipped the wait would not block on the transaction's row.
      // Once the gate opens, the read and the write may finish in either order (PostgreSQL runs them
      // on two connections), so only "both after the transaction" is the contract.
      const write = s.setMeta("other", "after").then(() => order.push("write"));
      started();
      await Promise.all([txDone, read, write]);
      assert.deepEqual(order.slice(0, 2), ["tx wrote", "tx ends"]);
      assert.deepEqual([...order.slice(2)].sort(), ["read from-tx", "write"]);
      return { read: await read, meta: await s.getMeta("k"), other: await s.getMeta("other") };
    },
  },
  {
    name: "a lost race is the same error on both: a second pending renewal, a version taken twice",
    async run(s) {
      const messageOf = (p: Promise<unknown>) =>
        p.then(
          () => "no error",
          (e: unknown) => (e as Error).message,
        );
      await s.insertRenewal(renewal("alpha", 1));
      const pending = await messageOf(s.insertRenewal(renewal("alpha", 2)));
      // core/renewal.ts tells this race from other failures by these words.
      assert.match(pending, /UNIQUE constraint failed: renewals\.credential/);
      await s.insertInstalledCertificate(cert("alpha", 1));
      const version = await messageOf(s.insertInstalledCertificate(cert("alpha", 1)));
      assert.match(version, /UNIQUE constraint failed: certificates\.credential, certificates\.version/);
      return { renewals: (await s.allDecisionFacts()).pending.size, maxVersion: await s.maxVersion("alpha") };
    },
  },
  {
    name: "lockForGoLive: inside a tx, the live version and the renewal's state as committed, for a go-live to re-check",
    async run(s) {
      const none = await s.tx((t) => t.lockForGoLive("alpha", null));
      assert.deepEqual(none, { live_version: null, renewal_state: null });
      await s.insertInstalledCertificate(cert("alpha", 1));
      await s.makeLive("alpha", 1, T(1));
      const rid = await s.insertRenewal(renewal("alpha", 2));
      await s.insertInstalledCertificate(cert("alpha", 2, { source: "renewal", renewal_id: rid }));
      const before = await s.tx((t) => t.lockForGoLive("alpha", rid));
      assert.deepEqual(before, { live_version: 1, renewal_state: "created" });
      // What golive.ts's markLiveInDb does when the state says "not yet": both writes in the same tx.
      await s.tx(async (t) => {
        await t.lockForGoLive("alpha", rid);
        await t.makeLive("alpha", 2, T(2));
        await t.setRenewalState(rid, "live", T(2));
      });
      const afterLive = await s.tx((t) => t.lockForGoLive("alpha", rid));
      assert.deepEqual(afterLive, { live_version: 2, renewal_state: "live" });
      return {
        none,
        before,
        afterLive,
        missing: await s.tx((t) => t.lockForGoLive("beta", 99)),
        otherCredential: await s.lockForGoLive("beta", null),
      };
    },
  },
];
// ---- the two stores ----

let sqliteDbs = 0;
async function withSqlite<R>(fn: (s: Store) => Promise<R>): Promise<R> {
  const s = openSqliteStore(join(work, `sqlite-${++sqliteDbs}`));
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const sqliteResults = new Map<string, Promise<unknown>>();
/** The case's answers on SQLite (run once, shared by both halves). */
function onSqlite(c: Case): Promise<unknown> {
  let r = sqliteResults.get(c.name);
  if (!r) {
    mails = 0;
    r = withSqlite(c.run);
    sqliteResults.set(c.name, r);
  }
  return r;
}

describe("Store contract on SQLite", () => {
  for (const c of CASES) test(c.name, async () => void (await onSqlite(c)));
});

describe("Store contract on PostgreSQL: the same answers as SQLite", { skip }, () => {
  let cluster: PgCluster;
  let admin: pg.Client;
  let dbs = 0;
  const freshTarget = async (): Promise<PgTarget> => {
    const name = `contract_${++dbs}`;
    await admin.query(`CREATE DATABASE ${name} OWNER ${cluster.user}`);
    const f = join(work, `url-${name}`);
    writeFileSync(f, `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${cluster.port}/${name}\n`, { mode: 0o600 });
    const t = pgTarget({ urlFile: f });
    await migratePg(t);
    return t;
  };
  const withPg = async <R>(fn: (s: PgStore, t: PgTarget) => Promise<R>): Promise<R> => {
    const t = await freshTarget();
    const s = openPgStore(t);
    try {
      return await fn(s, t);
    } finally {
      await s.close();
    }
  };

  before(async () => {
    cluster = await startPostgres();
    admin = await cluster.admin("postgres");
  });
  after(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const expected = await onSqlite(c);
      mails = 0;
      const got = await withPg((s) => c.run(s));
      assert.deepStrictEqual(got, expected);
    });
  }

  test("two hosts going live with the same credential take turns: the second waits for the first's lock, then sees its commit", async () => {
    await withPg(async (a, t) => {
      const b = openPgStore(t);
      const dbName = String(t.config.database);
      const watch = await cluster.admin(dbName);
      try {
        await a.insertInstalledCertificate(cert("alpha", 1));
        await a.makeLive("alpha", 1, T(1));
        const rid = await a.insertRenewal(renewal("alpha", 2));
        await a.insertInstalledCertificate(cert("alpha", 2, { source: "renewal", renewal_id: rid }));
        const seen: { host: string; state: unknown }[] = [];
        let bTx: Promise<void> | undefined;
        await a.tx(async (ta) => {
          seen.push({ host: "a", state: await ta.lockForGoLive("alpha", rid) });
          // Host B starts its own go-live now: its locking read must wait for A's transaction.
          bTx = b.tx(async (tb) => {
            seen.push({ host: "b", state: await tb.lockForGoLive("alpha", rid) });
          });
          for (let i = 0; i < 200; i++) {
            const w = await watch.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = $1", [dbName]);
            if (w.rows[0].n === 1) break;
            await new Promise((r) => setTimeout(r, 25)); // polling the server for B's wait, not timing the code
          }
          assert.equal(seen.length, 1, "B is waiting for A's row locks");
          await ta.makeLive("alpha", 2, T(2));
          await ta.setRenewalState(rid, "live", T(2));
        });
        await bTx;
        assert.deepEqual(seen, [
          { host: "a", state: { live_version: 1, renewal_state: "created" } },
          { host: "b", state: { live_version: 2, renewal_state: "live" } },
        ]);
      } finally {
        await watch.end();
        await b.close();
      }
    });
  });

  test("two hosts claiming the outbox at once never get the same email", async () => {
    await withPg(async (a, t) => {
      // B's statements give up after 10 s: a claim that waited for A's locks would fail, not hang.
      const b = openPgStore({ ...t, config: { ...t.config, statement_timeout: 10_000 } });
      try {
        const ids: number[] = [];
        for (let i = 0; i < 60; i++) ids.push(await a.enqueueMail({ mail: mail(), kind: "alert", now: D(0) }));
        // Host A holds its claim's row locks (open transaction) while host B claims: B skips them, at once.
        const [held, meanwhile] = await a.tx(async (ta) => {
          const mine = await ta.claimDue(D(1), 60_000, 5);
          const theirs = await b.claimDue(D(1), 60_000, 5);
          return [mine.map((q) => q.row.id), theirs.map((q) => q.row.id)];
        });
        assert.deepEqual(held, ids.slice(0, 5));
        assert.deepEqual(meanwhile, ids.slice(5, 10), "B skipped the rows A had locked");
        // Then many claims from both hosts at the same time, until the queue is empty.
        const claims = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).claimDue(D(1), 60_000, 4)));
        const claimed = claims.flat().map((q) => q.row.id);
        const rest = [...(await a.claimDue(D(1), 60_000, 100)), ...(await b.claimDue(D(1), 60_000, 100))].map((q) => q.row.id);
        const all = [...held, ...meanwhile, ...claimed, ...rest];
        assert.equal(new Set(all).size, all.length, `an email was claimed twice: ${all.join(",")}`);
        assert.deepEqual(
          [...all].sort((x, y) => x - y),
          ids,
        );
      } finally {
        await b.close();
      }
    });
  });

  test("a transaction that throws leaves nothing behind, seen from another host; a failing statement inside rolls back too", async () => {
    await withPg(async (a, t) => {
      const b = openPgStore(t);
      try {
        await a.insertInstalledCertificate(cert("alpha", 1));
        await a.makeLive("alpha", 1, T(1));
        const err = await a
          .tx(async (ta) => {
            await ta.insertInstalledCertificate(cert("alpha", 2));
            await ta.makeLive("alpha", 2, T(2));
            await ta.enqueueMail({ mail: mail(), kind: "csr", credential: "alpha", now: D(2) });
            assert.equal((await b.liveCertificate("alpha"))?.version, 1, "another host does not see uncommitted writes");
            throw new Error("crash before commit");
          })
          .then(
            () => undefined,
            (e: unknown) => e as Error,
          );
        assert.equal(err?.message, "crash before commit");
        assert.equal((await b.liveCertificate("alpha"))?.version, 1);
        assert.equal(await b.certificateByVersion("alpha", 2), undefined);
        assert.deepEqual(await b.queuedMails(), []);
        // A statement the database refuses (version 1 exists) inside a tx: the earlier write goes too.
        const dup = await a
          .tx(async (ta) => {
            await ta.setMeta("k", "v");
            await ta.insertInstalledCertificate(cert("alpha", 1));
          })
          .then(
            () => undefined,
            (e: unknown) => e as Error,
          );
        assert.match(dup?.message ?? "", /credd@127\.0\.0\.1:\d+\/contract_\d+/, "the error names the server, not the password");
        assert.ok(!(dup?.message ?? "").includes(cluster.password));
        assert.equal(await b.getMeta("k"), undefined);
        // The pool is healthy after both: a new transaction commits.
        await a.tx(async (ta) => ta.setMeta("k", "after"));
        assert.equal(await b.getMeta("k"), "after");
      } finally {
        await b.close();
      }
    });
  });
});
