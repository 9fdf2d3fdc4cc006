-- credd schema v5: whether a queued email's last failure was permanent (the SMTP server refused the
-- login, its certificate is not trusted, a 5xx reply, the CA file unusable): retrying cannot help
-- until a person fixes it, so the alert is raised at once instead of after a few temporary failures.

ALTER TABLE outbox ADD COLUMN last_error_permanent INTEGER NOT NULL DEFAULT 0;
