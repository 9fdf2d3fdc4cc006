// The advisory locks credd takes on the shared PostgreSQL store, in the two-key form
// pg_advisory_lock(int4, int4): the first key names credd (so another application's locks on the
// same database never collide with ours), the second the purpose. In pg_locks such a lock is
// locktype 'advisory' with classid = CREDD_LOCKS, objid = the purpose and objsubid = 2.

/** "cred" in ASCII. */
export const CREDD_LOCKS = 0x63726564;

/** Held while one host applies migrations (store/pg/migrate.ts). */
export const MIGRATE_LOCK = 1;

/** Held by the leader for as long as it leads (store/pg/leader.ts). */
export const LEADER_LOCK = 2;
