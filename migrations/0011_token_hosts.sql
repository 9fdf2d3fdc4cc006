-- credd schema: tokens per host (docs/shared-store.md). Nothing on SQLite, where one host uses the
-- database; on PostgreSQL (migrations/postgres/0011_token_hosts.sql) each host keeps the metadata
-- of the token in its own runtime_dir. The number is taken here too, so both folders agree.
SELECT 1;
