-- credd schema v3 for PostgreSQL (twin of ../0003_tokens.sql): OAuth2 token metadata (never the
-- token itself) and IDP registration probing.

CREATE TABLE tokens (
  credential       text        PRIMARY KEY,
  token_type       text,
  scope            text,
  obtained_at      timestamptz,           -- of the token now in runtime_dir
  expires_at       timestamptz,
  refresh_at       timestamptz,           -- about 2/3 of its life, with jitter
  cert_version     integer,               -- the certificate it was obtained with (tokens may be bound to it)
  cert_sha256      text,
  failures         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,           -- after a failure: backoff, or the server's Retry-After
  last_error       text,
  last_error_at    timestamptz,
  last_success_at  timestamptz
);

-- While a new certificate waits for the IDP to accept it (seed step 5).
ALTER TABLE renewals ADD COLUMN probe_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE renewals ADD COLUMN next_probe_at timestamptz;
ALTER TABLE renewals ADD COLUMN last_probe_error text;
ALTER TABLE renewals ADD COLUMN registration_mail_at timestamptz;   -- when the certificate was queued to the contact
