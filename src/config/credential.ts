// One `credentials:` entry: name, MZP, subject, key, timing, OAuth2/Basic auth, API and hooks.

import { checkProxy } from "./proxy.js";
import type { ApiConfig, BasicAuthConfig, CredentialConfig, KeySpec, OAuthConfig } from "./types.js";
import { bool, describe, get, httpsUrl, int, isUnset, mapping, present, str, findControl, type Mapping } from "./checks.js";
import { buildDn, checkMzp, checkName, checkSubject, NAME_PATTERN } from "./dn-rules.js";
import { child, item, type At, type Issues } from "./issues.js";
import { secretPath } from "./secrets.js";

export interface Context {
  /** The config file's folder: relative paths resolve against it. */
  dir: string;
  env: NodeJS.ProcessEnv;
}

const SECRETS_FROM_FILES = {
  problem: "secrets only come from files: use password_file",
  fix: "put the password in a file (or a systemd credential) and name it with password_file",
};

const CREDENTIAL_KEYS = [
  "name",
  "mzp",
  "subject",
  "key",
  "renew_before_days",
  "remind_after_days",
  "auto_enroll",
  "client_id",
  "oauth",
  "basic_auth",
  "api",
  "proxy",
  "deploy_hooks",
  "pkcs12_password_file",
];

export function checkCredentials(ix: Issues, at: At, v: unknown, ctx: Context): CredentialConfig[] {
  const example = "a list of credentials, e.g. credentials: [{ name: fleet-prod, mzp: MZP128745, subject: {...} }]";
  if (isUnset(v)) {
    ix.add(at, "is missing: at least one credential is needed", example);
    return [];
  }
  if (!Array.isArray(v)) {
    ix.add(at, `must be a list, got ${describe(v)}`, "start each credential with '- name: ...'");
    return [];
  }
  if (v.length === 0) {
    ix.add(at, "is empty: at least one credential is needed", example);
    return [];
  }
  const out: CredentialConfig[] = [];
  const seen = new Map<string, number>();
  const listens = new Map<string, string>();
  v.forEach((entry, index) => {
    const rawName = isMappingLike(entry) ? get(entry, "name") : undefined;
    const usable = typeof rawName === "string" && NAME_PATTERN.test(rawName) ? rawName : undefined;
    const first = usable === undefined ? undefined : seen.get(usable.toLowerCase());
    // Duplicates are labelled by position: the name alone would not say which entry is which.
    const at1 = item(at, index, first === undefined ? usable : undefined);
    if (usable !== undefined && first !== undefined) {
      ix.add(
        child(at1, "name"),
        `"${usable}" is already the name of credentials[${first}]; names must be unique (they are folder names, compared ignoring case)`,
        `rename credentials[${index}] or credentials[${first}]`,
      );
    } else if (usable !== undefined) seen.set(usable.toLowerCase(), index);
    const c = checkCredential(ix, at1, entry, ctx);
    if (c) out.push(c);
    if (c?.proxy) {
      // Two listeners on one address: the second could not start, or would take the other's socket.
      const owner = listens.get(c.proxy.listen);
      if (owner === undefined) listens.set(c.proxy.listen, c.name);
      else
        ix.add(
          child(child(at1, "proxy"), "listen"),
          `"${c.proxy.listen}" is already the proxy.listen of credentials[${owner}]; each credential needs its own listener`,
          `give credentials[${c.name}] another port, socket path or systemd:NAME`,
        );
    }
  });
  return out;
}

function isMappingLike(v: unknown): v is Mapping {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkCredential(ix: Issues, at: At, v: unknown, ctx: Context): CredentialConfig | undefined {
  const before = ix.list.length;
  const m = mapping(
    ix,
    at,
    v,
    {
      known: CREDENTIAL_KEYS,
      forbidden: {
        password: { problem: "secrets only come from files", fix: "use basic_auth: { user: ..., password_file: FILE }" },
        pkcs12_password: {
          problem: "secrets only come from files: use pkcs12_password_file",
          fix: "put it in a file and name it with pkcs12_password_file",
        },
      },
    },
    "write each credential as a mapping with name, mzp, subject, ... (e.g. - name: fleet-prod)",
  );
  if (!m) return undefined;
  const k = (key: string): At => child(at, key);

  const name = present(ix, k("name"), get(m, "name"), "e.g. name: fleet-prod") ? checkName(ix, k("name"), get(m, "name")) : undefined;
  const mzp = present(ix, k("mzp"), get(m, "mzp"), "e.g. mzp: MZP128745 (your Stellantis login)") ? checkMzp(ix, k("mzp"), get(m, "mzp")) : undefined;
  const rawMzp = get(m, "mzp");
  const subject = checkSubject(ix, k("subject"), get(m, "subject"), mzp ?? (typeof rawMzp === "string" ? rawMzp : undefined));
  const key = checkKey(ix, k("key"), get(m, "key"));
  const renew = optional(get(m, "renew_before_days"), 30, (x) => int(ix, k("renew_before_days"), x, 1, 365, "days"));
  const remind = optional(get(m, "remind_after_days"), 7, (x) => int(ix, k("remind_after_days"), x, 1, 90, "days"));
  const autoEnroll = optional(get(m, "auto_enroll"), false, (x) => bool(ix, k("auto_enroll"), x));
  const clientId = optional(get(m, "client_id"), undefined, (x) => str(ix, k("client_id"), x, "e.g. client_id: 1a2b3c (from the CA's email)"));
  const oauth = optional(get(m, "oauth"), undefined, (x) => checkOAuth(ix, k("oauth"), x));
  const basicAuth = optional(get(m, "basic_auth"), undefined, (x) => checkBasicAuth(ix, k("basic_auth"), x, ctx));
  const api = optional(get(m, "api"), undefined, (x) => checkApi(ix, k("api"), x));
  const proxy = optional(get(m, "proxy"), undefined, (x) => checkProxy(ix, k("proxy"), x, get(m, "api")));
  const hooks = checkHooks(ix, k("deploy_hooks"), get(m, "deploy_hooks"));
  const p12 = optional(get(m, "pkcs12_password_file"), undefined, (x) => secretPath(ix, k("pkcs12_password_file"), x, ctx.dir, ctx.env));

  if (ix.list.length > before || !name || !mzp || !subject || !key) return undefined;
  const c: CredentialConfig = {
    name,
    mzp,
    subject,
    dn: buildDn(subject, mzp),
    key,
    renew_before_days: renew ?? 30,
    remind_after_days: remind ?? 7,
    auto_enroll: autoEnroll ?? false,
    deploy_hooks: hooks,
  };
  if (clientId !== undefined) c.client_id = clientId;
  if (oauth) c.oauth = oauth;
  if (basicAuth) c.basic_auth = basicAuth;
  if (api) c.api = api;
  if (proxy) c.proxy = proxy;
  if (p12 !== undefined) c.pkcs12_password_file = p12;
  return c;
}

/** The default when unset, else what the reader makes of the value. */
function optional<T, D>(v: unknown, dflt: D, read: (v: unknown) => T | undefined): T | D | undefined {
  return isUnset(v) ? dflt : read(v);
}

const KEY_CHOICES = "{ type: rsa, bits: 2048 | 3072 | 4096 } or { type: ec, curve: P-256 | P-384 }";
const CURVE_NAMES: Readonly<Record<string, "P-256" | "P-384">> = {
  "p-256": "P-256",
  p256: "P-256",
  prime256v1: "P-256",
  secp256r1: "P-256",
  "p-384": "P-384",
  p384: "P-384",
  secp384r1: "P-384",
};

export function checkKey(ix: Issues, at: At, v: unknown): KeySpec | undefined {
  if (isUnset(v)) return { type: "rsa", bits: 2048 };
  const m = mapping(ix, at, v, { known: ["type", "bits", "curve"] }, `key must be ${KEY_CHOICES}`);
  if (!m) return undefined;
  const type = get(m, "type");
  const bits = get(m, "bits");
  const curve = get(m, "curve");
  if (type === "rsa") {
    if (!isUnset(curve)) ix.add(child(at, "curve"), "applies only to type: ec", `remove it, or use ${KEY_CHOICES}`);
    if (isUnset(bits)) return { type: "rsa", bits: 2048 };
    if (bits === 2048 || bits === 3072 || bits === 4096) return { type: "rsa", bits };
    ix.add(child(at, "bits"), `must be 2048, 3072 or 4096, got ${describe(bits)}`, "bits: 2048 (what the seeds ask for)");
    return undefined;
  }
  if (type === "ec") {
    if (!isUnset(bits)) ix.add(child(at, "bits"), "applies only to type: rsa", `remove it, or use ${KEY_CHOICES}`);
    if (curve === "P-256" || curve === "P-384") return { type: "ec", curve };
    const known = typeof curve === "string" && Object.hasOwn(CURVE_NAMES, curve.toLowerCase()) ? CURVE_NAMES[curve.toLowerCase()] : undefined;
    ix.add(
      child(at, "curve"),
      isUnset(curve) ? "is missing for type: ec" : `must be P-256 or P-384, got ${describe(curve)}`,
      known ? `write curve: ${known}` : "curve: P-256 or curve: P-384",
    );
    return undefined;
  }
  const lower = typeof type === "string" ? type.toLowerCase() : "";
  const guess = lower === "rsa" ? "rsa" : lower === "ec" || lower === "ecdsa" ? "ec" : undefined;
  ix.add(
    child(at, "type"),
    isUnset(type) ? "is missing" : `must be rsa or ec, got ${describe(type)}`,
    guess ? `write type: ${guess}` : `use ${KEY_CHOICES}`,
  );
  return undefined;
}

function checkOAuth(ix: Issues, at: At, v: unknown): OAuthConfig | undefined {
  const m = mapping(
    ix,
    at,
    v,
    {
      known: ["token_url", "client_id", "scope"],
      forbidden: {
        client_secret: {
          problem: "is not used: tokens are requested with the client certificate (mTLS, tls_client_auth), not a secret",
          fix: "remove it",
        },
      },
    },
    "e.g. oauth: { token_url: https://idfed-preprod.mpsa.com/as/token.oauth2, client_id: ID, scope: openid }",
  );
  if (!m) return undefined;
  const urlAt = child(at, "token_url");
  const idAt = child(at, "client_id");
  const tokenUrl = present(ix, urlAt, get(m, "token_url"), "e.g. token_url: https://idfed-preprod.mpsa.com/as/token.oauth2")
    ? httpsUrl(ix, urlAt, get(m, "token_url"), "e.g. token_url: https://idfed-preprod.mpsa.com/as/token.oauth2")
    : undefined;
  const clientId = present(ix, idAt, get(m, "client_id"), "the client ID Stellantis sent for OAuth2 (seed step 5)")
    ? str(ix, idAt, get(m, "client_id"), "e.g. client_id: partner-client")
    : undefined;
  const scope = optional(get(m, "scope"), "openid", (x) => str(ix, child(at, "scope"), x, "e.g. scope: openid"));
  if (tokenUrl === undefined || clientId === undefined || scope === undefined) return undefined;
  return { token_url: tokenUrl, client_id: clientId, scope };
}

function checkBasicAuth(ix: Issues, at: At, v: unknown, ctx: Context): BasicAuthConfig | undefined {
  const m = mapping(
    ix,
    at,
    v,
    { known: ["user", "password_file"], forbidden: { password: SECRETS_FROM_FILES } },
    "e.g. basic_auth: { user: MZP128745, password_file: FILE }",
  );
  if (!m) return undefined;
  const userAt = child(at, "user");
  const fileAt = child(at, "password_file");
  const user = present(ix, userAt, get(m, "user"), "e.g. user: MZP128745") ? str(ix, userAt, get(m, "user"), "e.g. user: MZP128745") : undefined;
  const file = present(
    ix,
    fileAt,
    get(m, "password_file"),
    "name the file holding the password, e.g. password_file: /run/credentials/credd.service/mzp",
  )
    ? secretPath(ix, fileAt, get(m, "password_file"), ctx.dir, ctx.env)
    : undefined;
  if (user === undefined || file === undefined) return undefined;
  return { user, password_file: file };
}

function checkApi(ix: Issues, at: At, v: unknown): ApiConfig | undefined {
  const example = "e.g. api: { base_url: https://api-cert.groupe-psa.com/connectedcar/v3, probe_path: /fleets }";
  const m = mapping(ix, at, v, { known: ["base_url", "probe_path"] }, example);
  if (!m) return undefined;
  const baseAt = child(at, "base_url");
  const base = present(ix, baseAt, get(m, "base_url"), example) ? httpsUrl(ix, baseAt, get(m, "base_url"), example) : undefined;
  const probe = optional(get(m, "probe_path"), "/fleets", (x) => {
    const s = str(ix, child(at, "probe_path"), x, "e.g. probe_path: /fleets");
    if (s === undefined || s.startsWith("/")) return s;
    ix.add(child(at, "probe_path"), `must start with "/", got "${s}"`, `write probe_path: /${s}`);
    return undefined;
  });
  if (base === undefined || probe === undefined) return undefined;
  // Without the trailing slash, base_url + probe_path joins cleanly.
  return { base_url: base.replace(/\/+$/, ""), probe_path: probe };
}

/** Deploy hooks are argv lists run without a shell: [["systemctl", "reload", "app"]]. */
export function checkHooks(ix: Issues, at: At, v: unknown): string[][] {
  if (isUnset(v)) return [];
  const argvForm = (s: string): string => JSON.stringify([s.trim().split(/\s+/)]);
  if (typeof v === "string") {
    ix.add(at, "must be a list of commands, each a list of arguments (argv, run without a shell), got a string", `deploy_hooks: ${argvForm(v)}`);
    return [];
  }
  if (!Array.isArray(v)) {
    ix.add(at, `must be a list of commands, each a list of arguments, got ${describe(v)}`, 'deploy_hooks: [["systemctl", "reload", "app"]]');
    return [];
  }
  if (v.length > 0 && v.every((x) => typeof x === "string")) {
    ix.add(
      at,
      "must be a list of commands, each itself a list of arguments; this is one command written flat",
      `deploy_hooks: [${JSON.stringify(v)}]`,
    );
    return [];
  }
  const hooks: string[][] = [];
  v.forEach((hook, i) => {
    const hookAt = item(at, i);
    if (typeof hook === "string") {
      ix.add(
        hookAt,
        "is a string; each hook is a list of arguments (argv, run without a shell)",
        `write it as ${JSON.stringify(hook.trim().split(/\s+/))}`,
      );
      return;
    }
    if (!Array.isArray(hook) || hook.length === 0) {
      ix.add(
        hookAt,
        `must be a non-empty list of arguments, got ${Array.isArray(hook) ? "an empty list" : describe(hook)}`,
        '["systemctl", "reload", "app"]',
      );
      return;
    }
    const argv: string[] = [];
    hook.forEach((arg, j) => {
      const argAt = item(hookAt, j);
      if (typeof arg !== "string") ix.add(argAt, `must be a string, got ${describe(arg)}`, `quote it: "${String(arg)}"`);
      else if (j === 0 && arg.trim() === "")
        ix.add(argAt, "is empty: the first argument is the program to run", "e.g. systemctl or /usr/local/bin/reload-app");
      else if (arg.includes("\u0000")) ix.add(argAt, `contains a NUL character (${findControl(arg) ?? ""})`, "remove it");
      else argv.push(arg);
    });
    if (argv.length === hook.length) hooks.push(argv);
  });
  return hooks;
}
