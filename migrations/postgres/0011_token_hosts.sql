-- credd schema: tokens per host (docs/shared-store.md). Each host of a shared store fetches its own
-- token into its own runtime_dir, so the metadata row is per (credential, host). Rows from before
-- have host '' (a single host's).
ALTER TABLE tokens ADD COLUMN host text NOT NULL DEFAULT '';
ALTER TABLE tokens DROP CONSTRAINT tokens_pkey;
ALTER TABLE tokens ADD PRIMARY KEY (credential, host);
