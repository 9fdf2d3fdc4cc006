-- credd schema v7: the CA certificate of each certificate's path that expires first. A leaf may
-- outlive its CA; the credential breaks when the CA runs out, so renewal is due renew_before_days
-- before the earliest of the two (domain/timing.ts, pathRenewalTime). NULL: not recorded (rows
-- from before this migration, or an import without its chain): the leaf's own dates decide.

ALTER TABLE certificates ADD COLUMN ca_not_after TEXT;           -- ISO 8601 UTC
ALTER TABLE certificates ADD COLUMN ca_not_after_role TEXT;      -- intermediate | anchor
ALTER TABLE certificates ADD COLUMN ca_not_after_subject TEXT;
ALTER TABLE certificates ADD COLUMN ca_not_after_serial TEXT;
