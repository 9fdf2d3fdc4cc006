-- credd schema: the mailbox (docs/mailbox.md): every message credd has looked at, so a crash or a
-- restart never handles one twice and never skips one. Only facts about the message: never its
-- body, never a password or token.

CREATE TABLE mailbox_messages (
  id           INTEGER PRIMARY KEY,
  source       TEXT NOT NULL,              -- "maildir:/var/mail/credd" or "imap:user@host/INBOX"
  message_key  TEXT NOT NULL,              -- the Maildir file's unique name, or "UIDVALIDITY:UID"
  message_id   TEXT,                       -- the Message-ID header
  sender       TEXT,
  subject      TEXT,
  credential   TEXT,                       -- the credential it belongs to; NULL when it is none's
  matched_by   TEXT,                       -- in-reply-to, references, mzp
  outcome      TEXT NOT NULL CHECK (outcome IN ('installed', 'already-live', 'needs-person', 'auto-reply', 'duplicate', 'ignored')),
  reason       TEXT,                       -- why credd stopped, for needs-person
  details_json TEXT,                       -- client ID, IDP URL, scope named in the reply
  handled_at   TEXT NOT NULL,
  folder       TEXT,                       -- done or refused folder it goes to; NULL: left where it is
  moved_at     TEXT,
  UNIQUE (source, message_key)
);
CREATE INDEX mailbox_messages_by_message_id ON mailbox_messages (message_id);
CREATE INDEX mailbox_messages_to_move ON mailbox_messages (source) WHERE folder IS NOT NULL AND moved_at IS NULL;

-- The state of each mailbox source's connection: a failure that lasts (or a refused login) is one
-- ops email, and its end another; never the password or token, only what failed.
CREATE TABLE mailbox_sources (
  source         TEXT PRIMARY KEY,
  failing_since  TEXT,                     -- NULL while it works
  last_error     TEXT,
  failures       INTEGER NOT NULL DEFAULT 0,
  alerted_at     TEXT,                     -- when ops were emailed about the current failure
  last_ok_at     TEXT
);
