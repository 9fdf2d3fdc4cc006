-- credd schema: the archive in the store (docs/shared-store.md). Nothing on SQLite: the database
-- and archive/ are on one machine, and archive/ stays the only copy of the keys. On PostgreSQL
-- (migrations/postgres/0010_archive.sql) each version's sealed key, CSR, certificate and chain are
-- stored, so every host can materialise live/. The number is taken here too, so the numbers of
-- both folders mean the same schema version.
SELECT 1;
