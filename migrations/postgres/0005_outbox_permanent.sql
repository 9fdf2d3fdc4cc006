-- credd schema v5 for PostgreSQL (twin of ../0005_outbox_permanent.sql): whether a queued email's
-- last failure was permanent, so the alert is raised at once instead of after a few temporary failures.

ALTER TABLE outbox ADD COLUMN last_error_permanent boolean NOT NULL DEFAULT false;
