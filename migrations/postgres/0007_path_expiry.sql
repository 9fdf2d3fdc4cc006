-- credd schema v7 for PostgreSQL (twin of ../0007_path_expiry.sql; there is no 0006 in either
-- folder): the CA certificate of each certificate's path that expires first. NULL: not recorded.

ALTER TABLE certificates ADD COLUMN ca_not_after timestamptz;
ALTER TABLE certificates ADD COLUMN ca_not_after_role text;      -- intermediate | anchor
ALTER TABLE certificates ADD COLUMN ca_not_after_subject text;
ALTER TABLE certificates ADD COLUMN ca_not_after_serial text;
