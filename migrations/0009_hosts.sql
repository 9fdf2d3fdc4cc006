-- credd schema: the hosts running `credd run` on this state (docs/shared-store.md). On SQLite there
-- is one (the database is a file on one machine); on PostgreSQL every host of the shared store
-- heartbeats here at each check tick, and `credd status` shows them all and which one leads.

CREATE TABLE hosts (
  name              TEXT PRIMARY KEY,           -- os.hostname()
  pid               INTEGER NOT NULL,
  role              TEXT NOT NULL CHECK (role IN ('leader', 'follower')),
  version           TEXT NOT NULL,              -- credd's version on that host
  started_at        TEXT NOT NULL,
  last_heartbeat_at TEXT NOT NULL
);
