-- credd schema: the hosts running `credd run` on this store (docs/shared-store.md): each heartbeats
-- here at each check tick with its role; `credd status` shows them all and which one leads.

CREATE TABLE hosts (
  name              text PRIMARY KEY,
  pid               integer NOT NULL,
  role              text NOT NULL CHECK (role IN ('leader', 'follower')),
  version           text NOT NULL,
  started_at        timestamptz NOT NULL,
  last_heartbeat_at timestamptz NOT NULL
);
