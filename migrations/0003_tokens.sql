-- credd schema v3: OAuth2 token metadata (never the token itself) and IDP registration probing.

CREATE TABLE tokens (
  credential       TEXT PRIMARY KEY,
  token_type       TEXT,
  scope            TEXT,
  obtained_at      TEXT,                 -- of the token now in runtime_dir
  expires_at       TEXT,
  refresh_at       TEXT,                 -- about 2/3 of its life, with jitter
  cert_version     INTEGER,              -- the certificate it was obtained with (tokens may be bound to it)
  cert_sha256      TEXT,
  failures         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT,                 -- after a failure: backoff, or the server's Retry-After
  last_error       TEXT,
  last_error_at    TEXT,
  last_success_at  TEXT
);

-- While a new certificate waits for the IDP to accept it (seed step 5).
ALTER TABLE renewals ADD COLUMN probe_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE renewals ADD COLUMN next_probe_at TEXT;
ALTER TABLE renewals ADD COLUMN last_probe_error TEXT;
ALTER TABLE renewals ADD COLUMN registration_mail_at TEXT;   -- when the certificate was queued to the contact
