-- credd schema v2: staged installs, retirement for rollback, deploy hook runs and the ingest log.

-- A certificate row with live = 0 and went_live_at NULL is installed in archive/ but not live yet.
ALTER TABLE certificates ADD COLUMN renewal_id INTEGER REFERENCES renewals (id);
ALTER TABLE certificates ADD COLUMN went_live_at TEXT;
ALTER TABLE certificates ADD COLUMN retired_at TEXT;
UPDATE certificates SET went_live_at = installed_at WHERE live = 1;

-- Every deploy hook run after a go-live or rollback.
CREATE TABLE hook_runs (
  id           INTEGER PRIMARY KEY,
  credential   TEXT    NOT NULL,
  version      INTEGER NOT NULL,
  serial       TEXT    NOT NULL,
  argv_json    TEXT    NOT NULL,
  ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
  exit_code    INTEGER,
  signal       TEXT,
  duration_ms  INTEGER NOT NULL,
  error        TEXT,
  output       TEXT    NOT NULL,             -- last 4 KiB of the hook's stdout and stderr
  started_at   TEXT    NOT NULL
);
CREATE INDEX hook_runs_by_credential ON hook_runs (credential, id);

-- Every file taken in (CLI or inbox) and what became of it.
CREATE TABLE ingests (
  id          INTEGER PRIMARY KEY,
  at          TEXT NOT NULL,
  file        TEXT NOT NULL,
  credential  TEXT,
  outcome     TEXT NOT NULL CHECK (outcome IN ('installed', 'chain', 'already-live', 'refused')),
  check_name  TEXT,                          -- the check that refused it
  reason      TEXT,
  serial      TEXT,
  sha256      TEXT
);
