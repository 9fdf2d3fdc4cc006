// The config file's schema: checks the parsed YAML tree and builds the typed Config with every
// default filled in and every path absolute. Problems are collected, not thrown, so one run
// reports them all.

import path from "node:path";
import { cronProblem } from "./cron.js";
import type { AlertsConfig, Config, SmtpConfig, StellantisConfig } from "./types.js";
import { emailAddress, mailbox } from "./address.js";
import { describe, filePath, get, int, isUnset, mapping, present, str } from "./checks.js";
import { checkCredentials, type Context } from "./credential.js";
import { child, item, ROOT, type At, type Issues } from "./issues.js";
import { checkMailbox } from "./mailbox.js";
import { secretPath } from "./secrets.js";
import { checkStore } from "./store.js";

export const DEFAULTS = {
  state_dir: "/var/lib/credd",
  runtime_dir: "/run/credd",
  check_schedule: "*/10 * * * *",
  smtp_timeout_ms: 30_000,
  // The contact of the current seed pages; the oldest page (psa-web-b2b-auth-legacy) spells it
  // connectedcarS@mpsa.com. Set stellantis.contact to the address your Stellantis contact gave you.
  stellantis_contact: "connectedcar@mpsa.com",
  // metrics_file: none, so no Prometheus textfile is written unless asked for.
} as const;

const TOP_KEYS = [
  "state_dir",
  "runtime_dir",
  "inbox_dir",
  "check_schedule",
  "metrics_file",
  "smtp",
  "alerts",
  "stellantis",
  "credentials",
  "mailbox",
  "store",
];

/** The Config, or undefined when `ix` has gained problems. */
export function validateConfig(ix: Issues, v: unknown, file: string, env: NodeJS.ProcessEnv): Config | undefined {
  const before = ix.list.length;
  if (!isTopMapping(ix, v)) return undefined;
  const m = mapping(ix, ROOT, v, { known: TOP_KEYS }, "");
  if (!m) return undefined;
  const ctx: Context = { dir: path.dirname(file), env };
  const dir = (key: string, dflt: string): string => {
    const x = get(m, key);
    return isUnset(x) ? dflt : (filePath(ix, child(ROOT, key), x, ctx.dir, `e.g. ${key}: ${dflt}`) ?? dflt);
  };
  const stateDir = dir("state_dir", DEFAULTS.state_dir);
  const runtimeDir = dir("runtime_dir", DEFAULTS.runtime_dir);
  const inboxDir = dir("inbox_dir", path.join(stateDir, "inbox"));
  const schedule = checkSchedule(ix, child(ROOT, "check_schedule"), get(m, "check_schedule"));
  const metricsFile = checkMetricsFile(ix, child(ROOT, "metrics_file"), get(m, "metrics_file"), ctx.dir);
  const smtp = checkSmtp(ix, child(ROOT, "smtp"), get(m, "smtp"), ctx);
  const alerts = checkAlerts(ix, child(ROOT, "alerts"), get(m, "alerts"));
  const stellantis = checkStellantis(ix, child(ROOT, "stellantis"), get(m, "stellantis"), ctx);
  const credentials = checkCredentials(ix, child(ROOT, "credentials"), get(m, "credentials"), ctx);
  const mailbox = checkMailbox(ix, child(ROOT, "mailbox"), get(m, "mailbox"), ctx, stellantis?.contact);
  const store = checkStore(ix, child(ROOT, "store"), get(m, "store"), ctx);
  if (ix.list.length > before || !smtp || !alerts || !stellantis || schedule === undefined || !store) return undefined;
  return {
    file,
    store,
    state_dir: stateDir,
    runtime_dir: runtimeDir,
    inbox_dir: inboxDir,
    check_schedule: schedule,
    ...(metricsFile !== undefined ? { metrics_file: metricsFile } : {}),
    smtp,
    alerts,
    stellantis,
    credentials,
    ...(mailbox ? { mailbox } : {}),
  };
}

/** Optional Prometheus textfile; node_exporter's textfile collector reads only `*.prom` files. */
function checkMetricsFile(ix: Issues, at: At, v: unknown, dir: string): string | undefined {
  if (isUnset(v)) return undefined;
  const example = "e.g. metrics_file: /var/lib/prometheus/node-exporter/credd.prom";
  const file = filePath(ix, at, v, dir, example);
  if (file === undefined) return undefined;
  if (!file.endsWith(".prom")) {
    ix.add(at, `must end in .prom (node_exporter's textfile collector ignores other files), got "${path.basename(file)}"`, example);
    return undefined;
  }
  return file;
}

function isTopMapping(ix: Issues, v: unknown): boolean {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) return true;
  ix.add(
    ROOT,
    isUnset(v) ? "the config file is empty" : `the top level must be a mapping of keys (smtp:, alerts:, credentials:, ...), got ${describe(v)}`,
    "write at least smtp:, alerts: and credentials: (see the example config in DESIGN.md)",
  );
  return false;
}

function checkSchedule(ix: Issues, at: At, v: unknown): string | undefined {
  if (isUnset(v)) return DEFAULTS.check_schedule;
  const fix = `a cron expression (minute hour day month weekday), quoted: check_schedule: "${DEFAULTS.check_schedule}"`;
  const s = str(ix, at, v, fix);
  if (s === undefined) return undefined;
  const why = cronProblem(s);
  if (why === undefined) return s;
  ix.add(at, `is not a valid cron expression (${why}), got "${s}"`, fix);
  return undefined;
}

const SECRETS_FROM_FILES = {
  problem: "secrets only come from files: use password_file",
  fix: "put the password in a file (or a systemd credential) and name it with smtp.password_file",
};

function checkSmtp(ix: Issues, at: At, v: unknown, ctx: Context): SmtpConfig | undefined {
  const example = 'e.g. smtp: { url: "smtp://mail.partner.example:587", from: "credd <credd@partner.example>" }';
  if (!present(ix, at, v, example)) return undefined;
  const m = mapping(
    ix,
    at,
    v,
    {
      known: ["url", "from", "user", "password_file", "ca_file", "tls", "timeout_ms"],
      forbidden: { password: SECRETS_FROM_FILES, pass: SECRETS_FROM_FILES },
    },
    example,
  );
  if (!m) return undefined;
  const k = (key: string): At => child(at, key);
  const before = ix.list.length;
  const url = present(ix, k("url"), get(m, "url"), "e.g. url: smtp://mail.partner.example:587") ? smtpUrl(ix, k("url"), get(m, "url")) : undefined;
  const from = present(ix, k("from"), get(m, "from"), 'e.g. from: "credd <credd@partner.example>"')
    ? mailbox(ix, k("from"), get(m, "from"), 'e.g. from: "credd <credd@partner.example>"')
    : undefined;
  const rawUser = get(m, "user");
  const rawFile = get(m, "password_file");
  const user = isUnset(rawUser) ? undefined : str(ix, k("user"), rawUser, "e.g. user: credd");
  const file = isUnset(rawFile) ? undefined : secretPath(ix, k("password_file"), rawFile, ctx.dir, ctx.env);
  if (!isUnset(rawUser) && isUnset(rawFile))
    ix.add(k("password_file"), "is missing: smtp.user is set, so a password is needed", "add password_file: FILE, or remove smtp.user");
  if (isUnset(rawUser) && !isUnset(rawFile))
    ix.add(k("user"), "is missing: smtp.password_file is set, so a user name is needed", "add user: NAME, or remove smtp.password_file");
  const caFile = isUnset(get(m, "ca_file"))
    ? undefined
    : filePath(ix, k("ca_file"), get(m, "ca_file"), ctx.dir, "e.g. ca_file: /etc/ssl/certs/ca-certificates.crt");
  const timeout = isUnset(get(m, "timeout_ms"))
    ? DEFAULTS.smtp_timeout_ms
    : int(ix, k("timeout_ms"), get(m, "timeout_ms"), 1000, 600_000, "milliseconds");
  const tls = url ? checkTls(ix, k("tls"), get(m, "tls"), url.secure) : undefined;
  if (tls === "none" && !isUnset(rawUser))
    ix.add(
      k("tls"),
      "is none while smtp.user is set: the password would cross the network in clear",
      "use tls: starttls (or smtps://), or drop user and password_file",
    );
  if (ix.list.length > before || !url || !from || !tls || timeout === undefined) return undefined;
  const out: SmtpConfig = { url: url.url, secure: url.secure, host: url.host, port: url.port, from, tls, timeout_ms: timeout };
  if (user !== undefined) out.user = user;
  if (file !== undefined) out.password_file = file;
  if (caFile !== undefined) out.ca_file = caFile;
  return out;
}

interface SmtpUrl {
  url: string;
  secure: boolean;
  host: string;
  port: number;
}

/** smtp://host[:port] or smtps://host[:port]; the value is never echoed (it might hold a password). */
function smtpUrl(ix: Issues, at: At, v: unknown): SmtpUrl | undefined {
  const example = "smtp://mail.partner.example:587 or smtps://mail.partner.example:465";
  const s = str(ix, at, v, `e.g. url: ${example}`);
  if (s === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ix.add(at, "is not a valid URL", `e.g. url: ${example}`);
    return undefined;
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") {
    ix.add(at, `must start with smtp:// or smtps://, got ${u.protocol}//`, `e.g. url: ${example}`);
    return undefined;
  }
  if (u.username || u.password) {
    ix.add(at, "must not contain a user name or password: secrets only come from files", "use smtp.user and smtp.password_file");
    return undefined;
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) {
    ix.add(at, "has no host name", `e.g. url: ${example}`);
    return undefined;
  }
  if ((u.pathname !== "" && u.pathname !== "/") || u.search || u.hash) {
    ix.add(at, "must be only scheme, host and port; a path, query or fragment would be ignored", `e.g. url: ${u.protocol}//${u.host}`);
    return undefined;
  }
  const secure = u.protocol === "smtps:";
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  if (port < 1) {
    ix.add(at, "has port 0", `e.g. url: ${example}`);
    return undefined;
  }
  return { url: s, secure, host, port };
}

function checkTls(ix: Issues, at: At, v: unknown, secure: boolean): SmtpConfig["tls"] | undefined {
  if (isUnset(v)) return secure ? "implicit" : "starttls";
  const allowed = secure ? ["implicit"] : ["starttls", "none"];
  if (typeof v === "string" && allowed.includes(v)) return v as SmtpConfig["tls"];
  const fix =
    v === "none"
      ? "smtps:// is always encrypted: remove tls, or use smtp:// with tls: none (plaintext)"
      : v === "implicit"
        ? "implicit TLS needs an smtps:// URL (usually port 465): change the URL, or remove tls"
        : v === "starttls"
          ? "smtps:// uses implicit TLS: remove tls, or use an smtp:// URL for STARTTLS"
          : `use ${allowed.join(" or ")}, or remove tls for the default`;
  ix.add(at, `must be ${allowed.join(" or ")} for an ${secure ? "smtps" : "smtp"}:// URL, got ${describe(v)}`, fix);
  return undefined;
}

function checkAlerts(ix: Issues, at: At, v: unknown): AlertsConfig | undefined {
  const example = "e.g. alerts: { to: [ops@partner.example] }";
  if (!present(ix, at, v, example)) return undefined;
  const m = mapping(ix, at, v, { known: ["to", "critical_to", "expiry_days"] }, example);
  if (!m) return undefined;
  const to = addressList(ix, child(at, "to"), get(m, "to"), true);
  const criticalRaw = get(m, "critical_to");
  const critical = isUnset(criticalRaw) ? [] : addressList(ix, child(at, "critical_to"), criticalRaw, false);
  const days = expiryDays(ix, child(at, "expiry_days"), get(m, "expiry_days"));
  if (!to || !critical || !days) return undefined;
  return { to, critical_to: critical, expiry_days: days };
}

/** A list of email addresses (a single string is a one-element list). */
function addressList(ix: Issues, at: At, v: unknown, required: boolean): string[] | undefined {
  const eg = "e.g. [ops@partner.example]";
  if (required && !present(ix, at, v, eg)) return undefined;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || (required && list.length === 0)) {
    ix.add(at, `must be a non-empty list of email addresses, got ${Array.isArray(list) ? "an empty list" : describe(v)}`, eg);
    return undefined;
  }
  const out: string[] = [];
  list.forEach((x: unknown, i) => {
    const addr = emailAddress(ix, typeof v === "string" ? at : item(at, i), x, "e.g. ops@partner.example");
    if (addr !== undefined) out.push(addr);
  });
  return out.length === list.length ? out : undefined;
}

/** Days before expiry at which an expiry alert fires (default 30, 14, 7, 3, 1). */
function expiryDays(ix: Issues, at: At, v: unknown): number[] | undefined {
  if (isUnset(v)) return [...DEFAULT_EXPIRY_DAYS];
  const fix = `a list of whole days before expiry, e.g. expiry_days: [${DEFAULT_EXPIRY_DAYS.join(", ")}]`;
  if (!Array.isArray(v) || v.length === 0) {
    ix.add(at, `must be a non-empty list of days, got ${describe(v)}`, fix);
    return undefined;
  }
  const out: number[] = [];
  v.forEach((x: unknown, i) => {
    const n = int(ix, item(at, i), x, 1, 365, "days");
    if (n !== undefined) out.push(n);
  });
  if (out.length !== v.length) return undefined;
  return [...new Set(out)].sort((a, b) => b - a);
}

const DEFAULT_EXPIRY_DAYS = [30, 14, 7, 3, 1] as const;

function checkStellantis(ix: Issues, at: At, v: unknown, ctx: Context): StellantisConfig | undefined {
  if (isUnset(v)) return { contact: DEFAULTS.stellantis_contact };
  const m = mapping(
    ix,
    at,
    v,
    { known: ["contact", "ca_file"] },
    "e.g. stellantis: { contact: connectedcar@mpsa.com, ca_file: /etc/credd/stellantis-ca.pem }",
  );
  if (!m) return undefined;
  const rawContact = get(m, "contact");
  const contact = isUnset(rawContact)
    ? DEFAULTS.stellantis_contact
    : emailAddress(ix, child(at, "contact"), rawContact, "e.g. contact: connectedcar@mpsa.com");
  const rawCa = get(m, "ca_file");
  // Optional here: only ingesting a signed certificate needs the CA, and it says so then.
  const caFile = isUnset(rawCa) ? undefined : filePath(ix, child(at, "ca_file"), rawCa, ctx.dir, "e.g. ca_file: /etc/credd/stellantis-ca.pem");
  if (contact === undefined || (!isUnset(rawCa) && caFile === undefined)) return undefined;
  return caFile === undefined ? { contact } : { contact, ca_file: caFile };
}
