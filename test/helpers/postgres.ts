// A throwaway PostgreSQL cluster for one test: `initdb` in a temp folder, the server on 127.0.0.1
// (and any other address asked for) on a free port, run as an unprivileged user (the `postgres`
// system user when the tests run as root: initdb refuses root), with a login role and a database
// that role owns, password authentication (SCRAM) everywhere. Debian's `postgresql` package
// provides the binaries under /usr/lib/postgresql/VERSION/bin; without them, tests skip with
// postgresMissing()'s one line.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./net.js";

const PG_ROOT = "/usr/lib/postgresql";

/** The newest installed server's bin folder (the one holding initdb, pg_ctl and postgres). */
export function postgresBin(): string | undefined {
  if (!existsSync(PG_ROOT)) return undefined;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, "bin", "initdb")) && existsSync(join(PG_ROOT, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(PG_ROOT, versions[0], "bin");
}

/** The system user the server runs as when the tests run as root. */
const SERVER_USER = "postgres";

function uidGid(user: string): { uid: number; gid: number } | undefined {
  const r = spawnSync("id", ["-u", user], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", user], { encoding: "utf8" });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

const asRoot = process.getuid?.() === 0;

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  if (!postgresBin()) return `PostgreSQL is not installed (no ${PG_ROOT}/*/bin/initdb; Debian: apt-get install postgresql)`;
  if (asRoot && !uidGid(SERVER_USER))
    return `running as root and there is no '${SERVER_USER}' user to run the server as (Debian's postgresql package creates it)`;
  return undefined;
}

export interface PgCluster {
  /** The temp folder: data/, sock/, server.log, and files tests put there. */
  dir: string;
  host: string;
  port: number;
  /** The folder of the server's unix socket (reachable by root and the server's user). */
  socketDir: string;
  database: string;
  /** The role that owns `database` (not a superuser), and its password. */
  user: string;
  password: string;
  /** postgres://user:password@127.0.0.1:port/database (password URL-encoded). */
  url: string;
  /**
   * A connected client as the cluster's superuser (pg_terminate_backend, pg_locks), for the test's
   * own checks, to `database` unless another is named (advisory locks are per database).
   */
  admin(db?: string): Promise<pg.Client>;
  /** Stops the server (fast shutdown: open connections are ended), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data, after stop. */
  start(): Promise<void>;
  /** Stops it and deletes the temp folder. */
  destroy(): Promise<void>;
  /** The end of the server's log, for assertion messages. */
  log(): string;
}

export interface PgClusterOptions {
  /** Server TLS: certificate and key files (copied into the cluster, key 0600). */
  tls?: { certPath: string; keyPath: string };
  /** More addresses to listen on besides 127.0.0.1; each gets a `host ... ADDR/32 scram-sha-256` line. */
  alsoListen?: string[];
  /** Extra pg_hba.conf lines, put before the defaults (first match wins). */
  hba?: string[];
}

const running = new Set<{ pgctl: string; data: string; run: (cmd: string, args: string[]) => ReturnType<typeof spawnSync> }>();
let exitHook = false;

/** Starts a new cluster. Call destroy() in the test's after hook. */
export async function startPostgres(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const why = postgresMissing();
  if (why) throw new Error(why);
  const bin = postgresBin()!;
  const owner = asRoot ? uidGid(SERVER_USER)! : undefined;
  const dir = mkdtempSync(join(tmpdir(), "credd-pg-"));
  const data = join(dir, "data");
  const socketDir = join(dir, "sock");
  const logFile = join(dir, "server.log");
  mkdirSync(socketDir, { mode: 0o700 });
  const su = `su_${randomBytes(4).toString("hex")}`;
  const suPassword = randomBytes(18).toString("base64url");
  const pwfile = join(dir, "superuser-password");
  writeFileSync(pwfile, `${suPassword}\n`, { mode: 0o600 });
  if (owner) for (const p of [dir, socketDir, pwfile]) chownSync(p, owner.uid, owner.gid);

  // As root, every server command runs as the server's user; its working folder is the temp folder.
  const run = (cmd: string, args: string[]) =>
    spawnSync(owner ? "runuser" : join(bin, cmd), owner ? ["-u", SERVER_USER, "--", join(bin, cmd), ...args] : args, {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
      timeout: 120_000,
    });
  const check = (r: ReturnType<typeof spawnSync>, what: string) => {
    if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${String(r.stderr).slice(-2000)}${String(r.stdout).slice(-1000)}`);
  };

  check(run("initdb", ["-D", data, "-U", su, `--pwfile=${pwfile}`, "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"]), "initdb");
  rmSync(pwfile);

  const conf: string[] = [
    "# throwaway test cluster: nothing here is durable",
    `unix_socket_directories = '${socketDir}'`,
    `listen_addresses = '${["127.0.0.1", ...(opts.alsoListen ?? [])].join(",")}'`,
    "fsync = off",
    "full_page_writes = off",
    "synchronous_commit = off",
    "shared_buffers = 16MB",
    "max_connections = 40",
    "log_connections = on",
    "log_disconnections = on",
  ];
  if (opts.tls) {
    const cert = join(data, "server.crt");
    const key = join(data, "server.key");
    copyFileSync(opts.tls.certPath, cert);
    copyFileSync(opts.tls.keyPath, key);
    if (owner) for (const p of [cert, key]) chownSync(p, owner.uid, owner.gid);
    spawnSync("chmod", ["0600", key]);
    conf.push("ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'");
  }
  const hbaFile = join(data, "pg_hba.conf");
  const extraHba = [...(opts.hba ?? []), ...(opts.alsoListen ?? []).map((a) => `host all all ${a}/32 scram-sha-256`)];
  writeFileSync(hbaFile, `${extraHba.join("\n")}\n${readFileSync(hbaFile, "utf8")}`);

  let port = 0;
  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      if (port === 0 || attempt > 0) {
        port = await freePort();
        appendFileSync(join(data, "postgresql.conf"), `port = ${port}\n`);
      }
      const r = run("pg_ctl", ["start", "-D", data, "-l", logFile, "-w", "-t", "60"]);
      if (r.status === 0) return;
      const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
      // Another process took the free port between our probe and the server's bind: try another.
      if (attempt < 3 && /could not bind|Address already in use/.test(log)) continue;
      check(r, `pg_ctl start (log: ${log.slice(-1500)})`);
    }
  };
  appendFileSync(join(data, "postgresql.conf"), `\n${conf.join("\n")}\n`);
  if (owner) chownSync(hbaFile, owner.uid, owner.gid);
  const entry = { pgctl: join(bin, "pg_ctl"), data, run };
  const stop = async () => {
    const r = run("pg_ctl", ["stop", "-D", data, "-m", "fast", "-w", "-t", "60"]);
    running.delete(entry);
    if (r.status !== 0 && !/Is server running\?/.test(String(r.stderr))) check(r, "pg_ctl stop");
  };
  await start();
  running.add(entry);
  if (!exitHook) {
    exitHook = true;
    // A test that dies before its after hook must not leave a server behind.
    process.on("exit", () => {
      for (const c of running) c.run("pg_ctl", ["stop", "-D", c.data, "-m", "immediate", "-w"]);
    });
  }

  const superClient = async () => {
    const c = new pg.Client({ host: "127.0.0.1", port, user: su, password: suPassword, database: "postgres" });
    await c.connect();
    return c;
  };
  const user = "credd";
  const password = `pw:${randomBytes(12).toString("base64url")}/@%`;
  const database = "credd_test";
  try {
    const a = await superClient();
    try {
      await a.query(`CREATE ROLE ${user} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
      await a.query(`CREATE DATABASE ${database} OWNER ${user}`);
    } finally {
      await a.end();
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    dir,
    host: "127.0.0.1",
    get port() {
      return port;
    },
    socketDir,
    database,
    user,
    password,
    get url() {
      return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
    },
    admin: async (db = database) => {
      const c = new pg.Client({ host: "127.0.0.1", port, user: su, password: suPassword, database: db });
      await c.connect();
      return c;
    },
    stop,
    start: async () => {
      await start();
      running.add(entry);
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-4000) : "(no log)"),
  };
}
