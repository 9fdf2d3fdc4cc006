-- credd schema v1: certificates, renewals, the email outbox, check heartbeats and per-credential errors.
-- Never edit this file once landed: add 0002_*.sql instead.

-- One row per certificate version credd knows (imported by hand or from a renewal).
CREATE TABLE certificates (
  id            INTEGER PRIMARY KEY,
  credential    TEXT    NOT NULL,
  version       INTEGER NOT NULL,            -- N in archive/cert-N.pem
  serial        TEXT    NOT NULL,
  not_before    TEXT    NOT NULL,            -- ISO 8601 UTC
  not_after     TEXT    NOT NULL,
  subject       TEXT    NOT NULL,
  issuer        TEXT    NOT NULL,
  spki_sha256   TEXT    NOT NULL,
  sha256        TEXT    NOT NULL,
  source        TEXT    NOT NULL CHECK (source IN ('import', 'renewal')),
  installed_at  TEXT    NOT NULL,
  live          INTEGER NOT NULL DEFAULT 0 CHECK (live IN (0, 1)),
  UNIQUE (credential, version)
);
CREATE UNIQUE INDEX certificates_one_live ON certificates (credential) WHERE live = 1;

-- One row per key pair + CSR on its way through the human CA.
CREATE TABLE renewals (
  id            INTEGER PRIMARY KEY,
  credential    TEXT    NOT NULL,
  version       INTEGER NOT NULL,            -- N in archive/key-N.pem and csr-N.pem
  kind          TEXT    NOT NULL CHECK (kind IN ('enroll', 'renew')),
  forced        INTEGER NOT NULL DEFAULT 0,  -- a person asked for it
  state         TEXT    NOT NULL CHECK (state IN ('created', 'sent', 'signed', 'registered', 'live', 'superseded')),
  reason        TEXT    NOT NULL,            -- why it was started, for status
  spki_sha256   TEXT    NOT NULL,
  key_type      TEXT    NOT NULL,
  created_at    TEXT    NOT NULL,
  state_since   TEXT    NOT NULL,
  sent_at       TEXT,
  reminded_at   TEXT,
  remind_count  INTEGER NOT NULL DEFAULT 0,
  ended_at      TEXT,
  UNIQUE (credential, version)
);
CREATE UNIQUE INDEX renewals_one_pending ON renewals (credential)
  WHERE state IN ('created', 'sent', 'signed', 'registered');

-- Every email is a row here before it leaves the host; a worker sends it and marks it.
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  message_id      TEXT    NOT NULL UNIQUE,
  kind            TEXT    NOT NULL,          -- csr, csr-reminder, alert, ...
  credential      TEXT,
  renewal_id      INTEGER REFERENCES renewals (id),
  mail_json       TEXT    NOT NULL,          -- the OutgoingMail, public material only
  created_at      TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT    NOT NULL,
  claimed_until   TEXT,                      -- a sender holds it until then
  last_error      TEXT,
  sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- The heartbeat and last outcome of the expiry check, per credential.
CREATE TABLE checks (
  credential     TEXT PRIMARY KEY,
  last_check_at  TEXT NOT NULL,
  last_error     TEXT,
  last_error_at  TEXT
);

-- Daemon-wide facts (last check of any credential, last clean stop, ...).
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
