// Connections to the shared PostgreSQL store (docs/shared-store.md): the target is read from a
// url file (a `postgres://` URL, password included, kept out of the config), TLS is verified
// (against the CA file when one is given) whenever the server is not on this host, and no message
// credd writes ever holds the URL or the password: errors name the file, the server as
// user@host:port/database, and the fix.
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import pg from "pg";
import { readSecret } from "../../config/secrets.js";
import { CreddError, errorMessage } from "../../errors.js";

export interface PgSource {
  /** The file holding the URL (absolute, or resolved by the caller). */
  urlFile: string;
  /** PEM CA certificates that the server's certificate must chain to; system roots when absent. */
  caFile?: string;
  /** The config keys named in messages (the file path is always named too). */
  keys?: { url?: string; ca?: string };
  /** application_name shown in pg_stat_activity (default "credd"). */
  applicationName?: string;
}

/** Where and how to connect. `config` holds the password: hand it to pg, never to a log. */
export interface PgTarget {
  config: pg.ClientConfig;
  /** user@host:port/database, safe to print. */
  where: string;
  /** True when TLS is used (always verified: hostname and chain). */
  tls: boolean;
  /** On this host: a unix socket, localhost, 127.0.0.0/8 or ::1. */
  local: boolean;
  urlFile: string;
  urlKey: string;
  caFile?: string;
}

const URL_KEY = "store.postgres.url_file";
const CA_KEY = "store.postgres.ca_file";

/** Query parameters understood in the URL; any other is refused (by name: a value may be secret). */
const KNOWN_PARAMS = new Set(["sslmode", "host", "port", "application_name", "connect_timeout"]);

/** A unix socket folder, localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine. */
export function isLocalHost(host: string): boolean {
  if (host.startsWith("/")) return true;
  const h = host.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1";
  return false;
}

function urlError(file: string, key: string, problem: string, fix: string, cause?: unknown): CreddError {
  return new CreddError("CONFIG", `${file} (${key}): ${problem} (fix: ${fix})`, cause === undefined ? undefined : { cause });
}

const URL_SHAPE = "postgres://USER:PASSWORD@HOST:5432/DATABASE (password URL-encoded), on one line";

/**
 * Reads and checks the url file and the CA file. Throws a CONFIG error naming the file and the fix;
 * never a byte of the URL (a URL that does not parse is described, not quoted).
 */
export function pgTarget(src: PgSource): PgTarget {
  const file = src.urlFile;
  const urlKey = src.keys?.url ?? URL_KEY;
  const caKey = src.keys?.ca ?? CA_KEY;
  const read = readSecret(file, urlKey);
  if (!("secret" in read)) throw urlError(file, urlKey, `the url file ${read.found}`, read.fix, read.cause);
  const st = statSync(file);
  const mode = st.mode & 0o777;
  const shown = mode.toString(8).padStart(4, "0");
  if (mode & 0o002)
    throw urlError(file, urlKey, `every user may write the url file (mode ${shown}) and point credd at another server`, `chmod 0640 ${file}`);
  // The group reads it (credd status by a group member); writing it would point credd at another server.
  if (mode & 0o020)
    throw urlError(file, urlKey, `the file's group may write the url file (mode ${shown}) and point credd at another server`, `chmod 0640 ${file}`);
  const me = process.getuid?.();
  if (me !== undefined && st.uid !== 0 && st.uid !== me)
    throw urlError(
      file,
      urlKey,
      `the url file belongs to user id ${st.uid}, neither root nor credd's user (id ${me}), who may rewrite it and point credd at another server`,
      `chown root ${file} (or credd's user), and chmod 0640 ${file}`,
    );
  if (mode & 0o004) throw urlError(file, urlKey, `the url file holds a password and every user may read it (mode ${shown})`, `chmod 0640 ${file}`);
  const text = read.secret.trim();
  if (text.includes("\n")) throw urlError(file, urlKey, "the url file holds more than one line", `keep only the URL: ${URL_SHAPE}`);
  let url: URL;
  try {
    // postgres://USER@/DB?host=/run/postgresql (libpq's socket form) has an empty host, which URL refuses.
    url = new URL(/^postgres(ql)?:\/\/[^/]*@\//.test(text) ? text.replace(/@\//, "@localhost/") : text);
    if (/^postgres(ql)?:\/\/[^/]*@\//.test(text) && !url.searchParams.get("host")) throw new Error("no host");
  } catch {
    throw urlError(file, urlKey, "the url file does not hold a valid URL", `write ${URL_SHAPE}`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw urlError(file, urlKey, "the URL does not start with postgres:// (or postgresql://)", `write ${URL_SHAPE}`);
  for (const name of url.searchParams.keys()) {
    if (!KNOWN_PARAMS.has(name))
      throw urlError(
        file,
        urlKey,
        `the URL has the parameter ${name}, which credd does not use`,
        `remove ?${name}=...: credd understands ${[...KNOWN_PARAMS].join(", ")}; TLS is set by ${caKey}`,
      );
  }
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw urlError(file, urlKey, `the URL's ${what} has a bad %-escape`, `encode it with encodeURIComponent (e.g. %40 for @)`);
    }
  };
  const user = decode(url.username, "user");
  const password = decode(url.password, "password");
  // A unix socket is ?host=/run/postgresql or a %-encoded host (postgres://u@%2Frun%2Fpostgresql/db).
  const host = url.searchParams.get("host") ?? decode(url.hostname.replace(/^\[(.*)\]$/, "$1"), "host");
  const database = decode(url.pathname.replace(/^\//, ""), "database");
  if (user === "") throw urlError(file, urlKey, "the URL names no user", `write ${URL_SHAPE}`);
  if (host === "") throw urlError(file, urlKey, "the URL names no host", `write ${URL_SHAPE}, or ?host=/run/postgresql for a unix socket`);
  if (database === "" || database.includes("/")) throw urlError(file, urlKey, "the URL names no database", `write ${URL_SHAPE}`);
  const portText = url.searchParams.get("port") ?? url.port;
  const port = portText === "" ? 5432 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw urlError(file, urlKey, "the URL's port is not a number from 1 to 65535", `write ${URL_SHAPE}`);
  const timeoutText = url.searchParams.get("connect_timeout");
  const connectSeconds = timeoutText === null ? 10 : Number(timeoutText);
  if (!Number.isFinite(connectSeconds) || connectSeconds <= 0)
    throw urlError(file, urlKey, "the URL's connect_timeout is not a positive number of seconds", "write e.g. ?connect_timeout=10");

  const local = isLocalHost(host);
  const sslmode = url.searchParams.get("sslmode");
  if (sslmode !== null && sslmode !== "disable" && sslmode !== "verify-full")
    throw urlError(
      file,
      urlKey,
      `sslmode=${sslmode} is not used by credd: TLS is always verified (certificate chain and host name)`,
      `remove sslmode (TLS is on for any host not on this machine), or write sslmode=verify-full`,
    );
  if (sslmode === "disable" && !local)
    throw urlError(
      file,
      urlKey,
      `sslmode=disable for ${host}, which is not on this host: the password and the private keys would cross the network in clear`,
      `remove sslmode=disable and give the server's CA in ${caKey}`,
    );
  if (sslmode === "verify-full" && host.startsWith("/"))
    throw urlError(file, urlKey, "sslmode=verify-full with a unix socket: PostgreSQL has no TLS on sockets", "remove sslmode, or connect over TCP");
  const tls = sslmode === "verify-full" || (!local && sslmode !== "disable");

  let ssl: pg.ClientConfig["ssl"] = false;
  if (tls) {
    let ca: string | undefined;
    if (src.caFile !== undefined) {
      try {
        ca = readFileSync(src.caFile, "utf8");
      } catch (err) {
        throw new CreddError(
          "CONFIG",
          `${src.caFile} (${caKey}): cannot read the CA file: ${errorMessage(err)} (fix: save the PostgreSQL server's CA certificate there as PEM, or correct ${caKey})`,
          { cause: err },
        );
      }
      if (!ca.includes("-----BEGIN CERTIFICATE-----"))
        throw new CreddError(
          "CONFIG",
          `${src.caFile} (${caKey}): holds no PEM certificate (fix: save the PostgreSQL server's CA certificate there as PEM)`,
        );
      if (ca.includes("PRIVATE KEY"))
        throw new CreddError(
          "CONFIG",
          `${src.caFile} (${caKey}): holds a private key (fix: keep only the CA certificates in it, and the key secret elsewhere)`,
        );
    }
    // pg sets the TLS servername from a host name (not from an IP); Node then checks the name or IP.
    ssl = { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) };
  }

  const config: pg.ClientConfig = {
    host,
    port,
    user,
    database,
    ssl,
    application_name: url.searchParams.get("application_name") ?? src.applicationName ?? "credd",
    connectionTimeoutMillis: Math.round(connectSeconds * 1000),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  // No password in the URL: pg asks ~/.pgpass (libpq's file), then fails naming the user.
  if (password !== "") config.password = password;
  const where = `${user}@${host.startsWith("/") ? host : isIP(host) === 6 ? `[${host}]` : host}:${port}/${database}`;
  return { config, where, tls, local, urlFile: file, urlKey, ...(src.caFile === undefined ? {} : { caFile: src.caFile }) };
}

/** Removes the password from a driver message, should a server or library ever echo it. */
function scrub(message: string, target: PgTarget): string {
  const pw = typeof target.config.password === "string" ? target.config.password : "";
  return pw.length >= 4 ? message.split(pw).join("***") : message;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|IP_ADDRESS/;

/** What to do about a failure to connect or query, by its kind. */
function fixFor(err: unknown, target: PgTarget): string {
  const code = String((err as { code?: unknown }).code ?? "");
  const msg = errorMessage(err);
  if (TLS_CODES.test(code) || /certificate|altnames|self[- ]signed/i.test(msg))
    return target.caFile
      ? `check that ${target.caFile} (${CA_KEY}) holds the CA that signed the server's certificate, and that the certificate names the host in ${target.urlFile}`
      : `name the CA that signed the server's certificate in ${CA_KEY} (the system roots did not verify it)`;
  if (code === "28P01" || code === "28000") return `check the user and password in ${target.urlFile}, and the server's pg_hba.conf`;
  // undefined_table: a database no `credd run` has migrated yet (or a credd older than its tables).
  if (code === "42P01")
    return `the database has no credd schema yet (or an incomplete one): start \`credd run\` once on one host of this store, which creates it (its migrations are migrations/postgres/*.sql), then try again`;
  if (code === "3D000") return `create the database (createdb -O USER DATABASE), or correct its name in ${target.urlFile}`;
  if (
    code === "ECONNREFUSED" ||
    code === "ENOTFOUND" ||
    code === "EAI_AGAIN" ||
    code === "EHOSTUNREACH" ||
    code === "ETIMEDOUT" ||
    /timeout/i.test(msg)
  )
    return `check that PostgreSQL runs and listens there, that the network lets credd reach it, and the host and port in ${target.urlFile}`;
  if (/server does not support SSL/i.test(msg))
    return "turn ssl = on in the server's postgresql.conf (credd never sends the password in clear to another host)";
  return `check the server's log, and ${target.urlFile}`;
}

/** A CONFIG/NETWORK/IO error about `target` that names the url file and the fix, never the URL or password. */
export function describePgError(err: unknown, target: PgTarget, doing: string): CreddError {
  const code = String((err as { code?: unknown }).code ?? "");
  const kind = /^(28|3D)/.test(code) ? "CONFIG" : /^E[A-Z]/.test(code) || TLS_CODES.test(code) || code === "" ? "NETWORK" : "IO";
  return new CreddError(
    kind,
    `${doing} PostgreSQL ${target.where} (${target.urlKey}: ${target.urlFile}${target.tls ? ", TLS verified" : ""}): ${scrub(errorMessage(err), target)}${code && !/^E[A-Z]/.test(code) ? ` [${code}]` : ""} (fix: ${fixFor(err, target)})`,
    { cause: err },
  );
}

/**
 * One connected client (its own session: advisory locks, leadership). The caller ends it, and
 * listens to its "error" event to learn of a lost connection; without a listener, such an error
 * is dropped here (never a crash of the process) and the next query fails.
 */
export async function connectClient(target: PgTarget, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...target.config, ...extra });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    throw describePgError(err, target, "cannot connect to");
  }
  return client;
}

/**
 * A pool for the store's queries. `onError` hears errors of idle connections (the server
 * restarted, the network cut): pg drops such a connection, and an unheard error would end the process.
 */
export function openPool(target: PgTarget, opts: { max?: number; onError?: (err: CreddError) => void } = {}): pg.Pool {
  const pool = new pg.Pool({ ...target.config, max: opts.max ?? 4, idleTimeoutMillis: 30_000 });
  pool.on("error", (err) => opts.onError?.(describePgError(err, target, "lost a connection to")));
  return pool;
}
