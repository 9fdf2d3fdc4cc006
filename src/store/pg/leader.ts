// Leadership among credd hosts sharing one PostgreSQL store (docs/shared-store.md): the leader is
// the host whose dedicated connection holds the session advisory lock (cred, 2). The lock lives
// exactly as long as that server session, so:
// - a leader whose connection errors or ends has lost leadership at that instant (`onLost` is called
//   from the connection's own event, before anything else can run on this host);
// - `confirm()` is the fence before every side effect: on that same connection it asks pg_locks
//   whether our backend still holds the lock, within a deadline; an error, a timeout (a server or
//   network that stopped answering) or a missing lock ends leadership and throws;
// - another host can take the lock only once the old session is gone from the server.
import type pg from "pg";
import { CreddError } from "../../errors.js";
import { connectClient, describePgError, type PgTarget } from "./connect.js";
import { CREDD_LOCKS, LEADER_LOCK } from "./locks.js";

/** Thrown by confirm() when this host may not act: it is not (or no longer) the leader. */
export class NotLeaderError extends CreddError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LOCKED", message, options);
    this.name = "NotLeaderError";
  }
}

export interface LeadershipLoss {
  /** connection: the session errored or ended; timeout: confirm got no answer in time; not-held: pg_locks says another holds it. */
  reason: "connection" | "timeout" | "not-held" | "error";
  /** For a log line: names the server and what happened, never the URL or password. */
  message: string;
}

export interface LeadershipOptions {
  /** Called once per loss of leadership that this host did not ask for (release and close do not call it). */
  onLost?: (loss: LeadershipLoss) => void;
  /** How long confirm() waits for the server before counting leadership lost (default 5 s). */
  confirmTimeoutMs?: number;
  /** The second lock key (default LEADER_LOCK); tests and future per-group leadership. */
  lockKey?: number;
}

const HELD = `SELECT EXISTS (
  SELECT 1 FROM pg_locks
   WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND classid = $1 AND objid = $2 AND objsubid = 2) AS held`;

export class Leadership {
  private client: pg.Client | undefined;
  /**
   * The tryAcquire under way: calls at once share it. Two would make two sessions, or take the
   * (re-entrant) lock twice on one session, and a release would then leave it held.
   */
  private acquiring: Promise<boolean> | undefined;
  private pid: number | undefined;
  private leader = false;
  private readonly key: number;
  private readonly confirmMs: number;

  constructor(
    private readonly target: PgTarget,
    private readonly opts: LeadershipOptions = {},
  ) {
    this.key = opts.lockKey ?? LEADER_LOCK;
    this.confirmMs = opts.confirmTimeoutMs ?? 5000;
  }

  /** Whether this host leads, as far as it knows without asking the server (use confirm() before acting). */
  isLeader(): boolean {
    return this.leader;
  }

  /** The server process of the leadership connection (pg_stat_activity.pid), while connected. */
  backendPid(): number | undefined {
    return this.pid;
  }

  /**
   * Tries to become the leader without waiting: true when this host leads now. Connects first when
   * it has no connection (the first call, or after a loss). A leader asks the server again (confirm).
   * Errors (server unreachable) throw, naming the server and the fix; the next call tries again.
   */
  tryAcquire(): Promise<boolean> {
    this.acquiring ??= this.acquire().finally(() => {
      this.acquiring = undefined;
    });
    return this.acquiring;
  }

  private async acquire(): Promise<boolean> {
    if (this.leader) {
      try {
        await this.confirm();
        return true;
      } catch (err) {
        if (err instanceof NotLeaderError) return false;
        throw err;
      }
    }
    const client = this.client ?? (await this.connect());
    let got: boolean;
    try {
      got = (await client.query("SELECT pg_try_advisory_lock($1, $2) AS got", [CREDD_LOCKS, this.key])).rows[0].got === true;
    } catch (err) {
      this.drop(client);
      throw describePgError(err, this.target, "cannot ask for leadership on");
    }
    // The connection may have ended while the answer was on its way: then the lock went with it.
    if (got && this.client === client) this.leader = true;
    return this.leader;
  }

  /**
   * The fence: resolves only if, on the leadership connection, the server confirms within the
   * deadline that our session holds the lock. Otherwise leadership is over (onLost is called if it
   * was held) and a NotLeaderError is thrown: the caller must not perform its side effect.
   */
  async confirm(): Promise<void> {
    const client = this.client;
    if (!this.leader || !client) throw new NotLeaderError(`this host is not the leader on PostgreSQL ${this.target.where}`);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.confirmMs);
    });
    let answer: { held: boolean } | "timeout";
    try {
      answer = await Promise.race([client.query(HELD, [CREDD_LOCKS, this.key]).then((r) => r.rows[0] as { held: boolean }), deadline]);
    } catch (err) {
      const e = describePgError(err, this.target, "lost the leadership connection to");
      this.lose(client, { reason: "connection", message: e.message });
      throw new NotLeaderError(`leadership lost: ${e.message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    if (answer === "timeout") {
      const message = `PostgreSQL ${this.target.where} did not confirm the leadership lock within ${this.confirmMs} ms: this host stops acting (fix: check the server and the network; the lock is free for another host once the server drops this session)`;
      this.lose(client, { reason: "timeout", message });
      throw new NotLeaderError(message);
    }
    if (!answer.held) {
      const message = `PostgreSQL ${this.target.where} says this session no longer holds the leadership lock: this host stops acting`;
      this.lose(client, { reason: "not-held", message });
      throw new NotLeaderError(message);
    }
  }

  /** Gives leadership up (another host may take it at once), keeping the connection for tryAcquire. */
  async release(): Promise<void> {
    const client = this.client;
    const was = this.leader;
    this.leader = false;
    if (!was || !client) return;
    try {
      await client.query("SELECT pg_advisory_unlock($1, $2)", [CREDD_LOCKS, this.key]);
    } catch {
      // The session is gone or going, and its lock with it.
      this.drop(client);
    }
  }

  /** Gives leadership up and closes the connection (a clean stop). */
  async close(): Promise<void> {
    const client = this.client;
    this.leader = false;
    this.client = undefined;
    this.pid = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    const client = await connectClient(this.target, { application_name: `${this.target.config.application_name ?? "credd"} leadership` });
    client.on("error", (err) =>
      this.lose(client, { reason: "connection", message: describePgError(err, this.target, "lost the leadership connection to").message }),
    );
    client.on("end", () =>
      this.lose(client, {
        reason: "connection",
        message: `the leadership connection to PostgreSQL ${this.target.where} ended: this host stops acting`,
      }),
    );
    try {
      this.pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw describePgError(err, this.target, "cannot use");
    }
    this.client = client;
    return client;
  }

  /** Forgets `client` (closing it); a later tryAcquire connects again. */
  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.pid = undefined;
    }
    client.end().catch(() => undefined);
  }

  /** Leadership ended without our asking: stop at once, tell the owner, forget the connection. */
  private lose(client: pg.Client, loss: LeadershipLoss): void {
    if (this.client !== client) return; // an old connection's late event
    const was = this.leader;
    this.leader = false;
    this.drop(client);
    if (was) {
      // Called from the connection's event: the owner's failure is raised on its own tick, not inside pg.
      try {
        this.opts.onLost?.(loss);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}
