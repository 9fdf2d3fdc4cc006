-- credd schema v4: alerts to ops, one row per situation while it lasts, so nothing is sent twice.

CREATE TABLE alerts (
  id            INTEGER PRIMARY KEY,
  credential    TEXT,                     -- NULL for daemon-wide situations (SMTP failing, restart)
  kind          TEXT NOT NULL,            -- certificate-expiry, csr-unanswered, token-failing, ...
  stage         TEXT NOT NULL,            -- the threshold or instance last notified (30d, 7d, expired+2d, ...)
  severity      TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
  title         TEXT NOT NULL,
  detail        TEXT NOT NULL,
  action        TEXT NOT NULL,
  event         INTEGER NOT NULL DEFAULT 0,  -- a one-off (restart): no "resolved" email
  opened_at     TEXT NOT NULL,
  last_sent_at  TEXT NOT NULL,            -- when it was last queued in a digest
  resolved_at   TEXT
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (COALESCE(credential, ''), kind) WHERE resolved_at IS NULL;
