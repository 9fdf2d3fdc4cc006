// Every file and folder the config names, checked when it loads (`run`, SIGHUP, `check-config`):
// it exists, credd's user may use it, and it is the right kind. Only looks (stat, access, read):
// never creates or writes anything, so `check-config` is safe to run anywhere.
import { X509Certificate } from "node:crypto";
import { accessSync, constants, readFileSync, statSync, type Stats } from "node:fs";
import path from "node:path";
import { fileAbove, fsFound, runningUser } from "../files/file-errors.js";
import { CERT_LABELS, findPemBlocks } from "../pki/pem.js";
import { child, item, ROOT, type At } from "./issues.js";
import { readSecret } from "./secrets.js";
import type { Config, PostgresStoreConfig } from "./types.js";
import { ConfigError, errorMessage } from "../errors.js";
import { pgTarget } from "../store/pg/connect.js";
import { readKek } from "../store/pg/keywrap.js";

export interface ReferenceProblem {
  at: At;
  problem: string;
  fix: string;
}

/** A reference that passed: the key, the path and what was found there, for `check-config`. */
export interface ReferenceOk {
  key: string;
  path: string;
  found: string;
}

export interface ReferenceReport {
  checked: ReferenceOk[];
  problems: ReferenceProblem[];
}

export interface ReferenceOptions {
  /**
   * For CA certificates' dates. TLS (OpenSSL) checks them against the system clock, so this is
   * the real time, not credd's injected clock. Default: now.
   */
  now?: Date;
  /** PATH for deploy hooks (they inherit credd's environment). Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

type Outcome = { found: string } | { problem: string; fix: string };

type CaKey = "smtp.ca_file" | "stellantis.ca_file" | "mailbox.imap.ca_file" | "store.postgres.ca_file";
const CA_FILES: Record<CaKey, { noun: string; purpose: string; from: string }> = {
  "smtp.ca_file": {
    noun: "the CA certificate of the SMTP server",
    purpose: "it signed the server's TLS certificate",
    from: "the mail server's administrator gives it",
  },
  "stellantis.ca_file": {
    noun: "the Stellantis CA certificate",
    purpose: "every signed certificate must chain to it",
    from: "Stellantis sends it with the signed certificate",
  },
  "store.postgres.ca_file": {
    noun: "the CA certificate of the PostgreSQL server",
    purpose: "it signed the server's TLS certificate",
    from: "the database administrator gives it",
  },
  "mailbox.imap.ca_file": {
    noun: "the CA certificate of the IMAP server",
    purpose: "it signed the server's TLS certificate",
    from: "the mail server's administrator gives it",
  },
};

/**
 * A CA file read when it is needed (the SMTP transport is made, a TLS connection opened): the
 * same checks as at load, since the file may have changed since; a problem is a ConfigError
 * naming the config file, the key, what was found and the fix.
 */
export function readCaFile(config: Config, key: CaKey, file: string, now = new Date()): string {
  const out = caFile(file, now, key, CA_FILES[key]);
  if ("problem" in out) throw new ConfigError(config.file, key, out.problem, out.fix);
  return readFileSync(file, "utf8");
}

/** Every file and folder `config` names, in config order; one problem per broken reference. */
export function checkReferences(config: Config, opts: ReferenceOptions = {}): ReferenceReport {
  const now = opts.now ?? new Date();
  const env = opts.env ?? process.env;
  const report: ReferenceReport = { checked: [], problems: [] };
  // Many credentials may share a password file or a hook program: a good one is looked at once.
  // A problem is looked at again for each key, since its fix names the key.
  const good = new Map<string, Outcome>();
  const check = (at: At, p: string, kind: string, look: () => Outcome): void => {
    const memo = `${kind}\u0000${p}`;
    let out = good.get(memo);
    if (!out) {
      out = look();
      if ("found" in out) good.set(memo, out);
    }
    if ("found" in out) report.checked.push({ key: at.label, path: p, found: out.found });
    else report.problems.push({ at, problem: out.problem, fix: out.fix });
  };
  const top = (key: string): At => child(ROOT, key);

  check(top("state_dir"), config.state_dir, "dir", () =>
    folder(config.state_dir, "state_dir", "credd keeps its database, keys and certificates there", true),
  );
  const stateBroken = report.problems.length > 0;
  check(top("runtime_dir"), config.runtime_dir, "dir", () =>
    folder(config.runtime_dir, "runtime_dir", "credd writes the access tokens there for applications", true),
  );
  // The default inbox_dir is below state_dir: a broken state_dir is reported once, not twice.
  if (!(stateBroken && config.inbox_dir.startsWith(`${config.state_dir}${path.sep}`))) {
    check(top("inbox_dir"), config.inbox_dir, "dir", () =>
      folder(config.inbox_dir, "inbox_dir", "credd takes in the signed certificates dropped there and moves them to done/ or refused/", true),
    );
  }
  if (config.metrics_file) {
    const file = config.metrics_file;
    check(top("metrics_file"), file, "metrics", () => metricsFolder(file));
  }
  const smtp = top("smtp");
  if (config.smtp.ca_file) {
    const f = config.smtp.ca_file;
    // With tls: none no certificate is ever checked: the file is not read, so it cannot break anything.
    if (config.smtp.tls === "none") report.checked.push({ key: "smtp.ca_file", path: f, found: "not used: smtp.tls is none" });
    else check(child(smtp, "ca_file"), f, "ca", () => caFile(f, now, "smtp.ca_file", CA_FILES["smtp.ca_file"]));
  }
  if (config.smtp.password_file) {
    const f = config.smtp.password_file;
    check(child(smtp, "password_file"), f, "secret", () => secretFile(f, "smtp.password_file", "the SMTP password"));
  }
  if (config.stellantis.ca_file) {
    const f = config.stellantis.ca_file;
    check(child(top("stellantis"), "ca_file"), f, "ca", () => caFile(f, now, "stellantis.ca_file", CA_FILES["stellantis.ca_file"]));
  }
  if (config.mailbox) checkMailboxReferences(config.mailbox, top("mailbox"), check, now);
  if (config.store !== "sqlite") checkStoreReferences(config.store.postgres, child(top("store"), "postgres"), check, now);
  config.credentials.forEach((cred, i) => {
    const at = item(top("credentials"), i, cred.name);
    const label = `credentials[${cred.name}]`;
    if (cred.basic_auth) {
      const f = cred.basic_auth.password_file;
      check(child(child(at, "basic_auth"), "password_file"), f, "secret", () =>
        secretFile(f, `${label}.basic_auth.password_file`, "the Basic-auth password for the API"),
      );
    }
    if (cred.pkcs12_password_file) {
      const f = cred.pkcs12_password_file;
      check(child(at, "pkcs12_password_file"), f, "secret", () => secretFile(f, `${label}.pkcs12_password_file`, "the password of live/bundle.p12"));
    }
    cred.deploy_hooks.forEach((argv, j) => {
      const program = argv[0]!;
      check(item(item(child(at, "deploy_hooks"), j), 0), program, "program", () => hookProgram(program, env, `${label}.deploy_hooks[${j}]`));
    });
  });
  return report;
}

/**
 * store.postgres: the url file (one postgres:// line, not readable by every user, checked as
 * src/store/pg/connect.ts reads it), the server's CA and the key-encryption key (32 bytes as base64,
 * mode 0600, src/store/pg/keywrap.ts). Reads only: the server is not contacted here.
 */
function checkStoreReferences(
  pg: PostgresStoreConfig,
  at: At,
  check: (at: At, p: string, kind: string, look: () => Outcome) => void,
  now: Date,
): void {
  const thrown = (look: () => string): Outcome => {
    try {
      return { found: look() };
    } catch (err) {
      // The messages of connect.ts and keywrap.ts: "FILE (KEY): PROBLEM (fix: FIX)", never a secret.
      const m = /^(.*) \(fix: (.*)\)$/s.exec(errorMessage(err));
      return m ? { problem: m[1]!, fix: m[2]! } : { problem: errorMessage(err), fix: "correct the file" };
    }
  };
  check(child(at, "url_file"), pg.url_file, "secret", () =>
    thrown(() => {
      const t = pgTarget({ urlFile: pg.url_file, ...(pg.ca_file ? { caFile: pg.ca_file } : {}) });
      return `the PostgreSQL server ${t.where}${t.tls ? " over verified TLS" : " on this machine"}`;
    }),
  );
  if (pg.ca_file) {
    const f = pg.ca_file;
    check(child(at, "ca_file"), f, "ca", () => caFile(f, now, "store.postgres.ca_file", CA_FILES["store.postgres.ca_file"]));
  }
  check(child(at, "key_encryption_key_file"), pg.key_encryption_key_file, "secret", () =>
    thrown(() => `a key-encryption key (id ${readKek(pg.key_encryption_key_file).id})`),
  );
  (pg.previous_key_encryption_key_files ?? []).forEach((f, i) => {
    const key = `store.postgres.previous_key_encryption_key_files[${i}]`;
    check(item(child(at, "previous_key_encryption_key_files"), i), f, "secret", () =>
      thrown(() => `a previous key-encryption key (id ${readKek(f, key).id}), opens keys only`),
    );
  });
}

/** mailbox: the Maildir credd reads and moves messages in, the IMAP secret files and CA. */
function checkMailboxReferences(
  mb: NonNullable<Config["mailbox"]>,
  at: At,
  check: (at: At, p: string, kind: string, look: () => Outcome) => void,
  now: Date,
): void {
  if (mb.maildir) {
    const dir = mb.maildir;
    // Made by the mail server that delivers to it: a missing one is a typo, not something to create.
    check(child(at, "maildir"), dir, "dir", () =>
      folder(dir, "mailbox.maildir", "credd reads the replies delivered there and moves them to the done and refused folders", false),
    );
  }
  const imap = mb.imap;
  if (!imap) return;
  const i = child(at, "imap");
  if (imap.password_file) {
    const f = imap.password_file;
    check(child(i, "password_file"), f, "secret", () => secretFile(f, "mailbox.imap.password_file", "the IMAP password"));
  }
  if (imap.access_token_file) {
    const f = imap.access_token_file;
    check(child(i, "access_token_file"), f, "secret", () =>
      secretFile(f, "mailbox.imap.access_token_file", "the OAuth2 access token for the IMAP login (XOAUTH2)"),
    );
  }
  if (imap.ca_file) {
    const f = imap.ca_file;
    check(child(i, "ca_file"), f, "ca", () => caFile(f, now, "mailbox.imap.ca_file", CA_FILES["mailbox.imap.ca_file"]));
  }
}

/** The user name for chown in a fix, else the uid. */
function owner(): string {
  const m = /^user (\S+)/.exec(runningUser());
  return m?.[1] ?? String(process.getuid?.() ?? "credd");
}

function can(p: string, mode: number): boolean {
  try {
    accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}

/** The nearest existing ancestor of `p` (credd would create the rest), or why there is none. */
function existingAncestor(p: string): { dir: string; stat: Stats } | { error: unknown; dir: string } {
  for (let dir = path.dirname(p); ; dir = path.dirname(dir)) {
    try {
      const stat = statSync(dir, { throwIfNoEntry: false });
      if (stat) return { dir, stat };
    } catch (error) {
      // ENOTDIR: a file further up; the caller reports it as such.
      if ((error as NodeJS.ErrnoException).code !== "ENOTDIR") return { error, dir };
    }
    if (dir === path.dirname(dir)) return { error: Object.assign(new Error("no root"), { code: "ENOENT" }), dir };
  }
}

/** A folder credd writes in: it exists (or, with `mayCreate`, can be created) and is writable. */
function folder(dir: string, key: string, want: string, mayCreate: boolean): Outcome {
  const user = runningUser();
  const install = `install -d -m 0750 -o ${owner()} ${dir}`;
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") {
      const file = fileAbove(dir) ?? "a part of its path";
      return {
        problem: `${dir} cannot be created: ${file} is a file, not a folder; ${want}`,
        fix: `correct ${key}: a folder cannot be made below a file`,
      };
    }
    if (code !== "ENOENT")
      return {
        problem: `${dir} ${fsFound(err, dir, "reached")}; ${want}`,
        fix: `let ${user} reach it (x permission on every folder above it), or correct ${key}`,
      };
    if (!mayCreate) return { problem: `${dir} does not exist; ${want}`, fix: `create it (${install}), or correct ${key}` };
    const up = existingAncestor(dir);
    if ("error" in up)
      return {
        problem: `${dir} does not exist, and ${up.dir} ${fsFound(up.error, up.dir, "reached")}; ${want}`,
        fix: `create it (${install}), or correct ${key}`,
      };
    if (!up.stat.isDirectory())
      return {
        problem: `${dir} cannot be created: ${up.dir} is a file, not a folder; ${want}`,
        fix: `correct ${key}: a folder cannot be made below a file`,
      };
    if (!can(up.dir, constants.W_OK | constants.X_OK)) {
      return {
        problem: `${dir} does not exist, and ${user} cannot create it: ${up.dir} is not writable; ${want}`,
        fix: `create it (${install}), or correct ${key}`,
      };
    }
    return { found: `does not exist yet; credd creates it (${up.dir} is writable)` };
  }
  if (!st.isDirectory()) return { problem: `${dir} is a file, not a folder; ${want}`, fix: `point ${key} at a folder, or move the file away` };
  if (!can(dir, constants.R_OK | constants.W_OK | constants.X_OK)) {
    return {
      problem: `${dir} is not writable by ${user}; ${want}`,
      fix: `chown ${owner()} ${dir} (or give credd's group rwx on it), or run credd as the user that owns it`,
    };
  }
  return { found: "writable folder" };
}

/** metrics_file: credd writes it atomically (a temporary file renamed over it) in a folder node_exporter reads. */
function metricsFolder(file: string): Outcome {
  const want = "credd writes the Prometheus metrics there (a temporary file renamed over metrics_file)";
  const st = statSafe(file);
  if (st?.isDirectory())
    return { problem: `${file} is a folder, not a file; ${want}`, fix: "name a file ending in .prom in node_exporter's textfile folder" };
  // Not created by credd: a missing folder is a typo that node_exporter would never notice.
  const dir = folder(path.dirname(file), "metrics_file", want, false);
  if ("problem" in dir && dir.fix.startsWith("create it")) {
    return { ...dir, fix: `create the folder node_exporter's textfile collector reads (--collector.textfile.directory), or correct metrics_file` };
  }
  return "found" in dir ? { found: `its folder ${path.dirname(file)} is writable` } : dir;
}

function statSafe(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function secretFile(file: string, key: string, want: string): Outcome {
  const r = readSecret(file, key);
  if ("secret" in r) return { found: "readable, not empty" };
  return { problem: `${file} ${r.found}; it should hold ${want}`, fix: r.fix };
}

const MAX_CA_FILE_BYTES = 16 * 1024 * 1024;

/**
 * A CA file: PEM certificates that TLS (OpenSSL, through Node) and the chain check can use. Read
 * with Node's X509Certificate, which is what TLS itself uses; parsing a 140-certificate system
 * bundle with the JavaScript X.509 stack would add more than a second to every start.
 */
function caFile(file: string, now: Date, key: string, ca: { noun: string; purpose: string; from: string }): Outcome {
  const wants = `it should hold ${ca.noun} (PEM): ${ca.purpose}`;
  const save = `save ${ca.noun} there as PEM (${ca.from}), or correct ${key}`;
  let bytes: Buffer;
  try {
    const st = statSync(file);
    if (st.isDirectory()) return { problem: `${file} is a folder, not a file; ${wants}`, fix: `point ${key} at the certificate file itself` };
    if (st.size > MAX_CA_FILE_BYTES)
      return { problem: `${file} is ${st.size} bytes, too large for CA certificates; ${wants}`, fix: `point ${key} at the CA certificate file` };
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix = code === "EACCES" || code === "EPERM" ? `let ${runningUser()} read it (chmod 0644 ${file}: a CA certificate is public)` : save;
    return { problem: `${file} ${fsFound(err, file)}; ${wants}`, fix };
  }
  const blocks = findPemBlocks(bytes);
  const labels = blocks.map((b) => b.label);
  if (labels.some((l) => l.includes("PRIVATE KEY"))) {
    return {
      problem: `${file} holds a private key; ${wants}, and never a key`,
      fix: `move the key out of ${file} and keep it secret: ${key} needs only certificates`,
    };
  }
  const certBlocks = blocks.filter((b) => CERT_LABELS.has(b.label));
  if (certBlocks.length === 0) {
    const pkcs7 = labels.some((l) => l === "PKCS7" || l === "CMS");
    const der = labels.length === 0 && bytes[0] === 0x30;
    const fix = pkcs7
      ? `convert it: openssl pkcs7 -print_certs -in ${file} -out ${file}.pem, and point ${key} at the .pem`
      : der
        ? `convert it: openssl x509 -inform DER -in ${file} -out ${file}.pem, and point ${key} at the .pem`
        : save;
    return { problem: `${file} ${notPem(bytes, labels)}; ${wants}`, fix };
  }
  const certs: X509Certificate[] = [];
  for (const [i, b] of certBlocks.entries()) {
    const which = certBlocks.length > 1 ? `certificate ${i + 1} of ${certBlocks.length} in it` : "the certificate in it";
    const damaged = !b.complete ? "is truncated (no END line)" : !b.validBase64 || b.base64 === "" ? "is not valid base64" : undefined;
    let cert: X509Certificate | undefined;
    if (!damaged) {
      try {
        cert = new X509Certificate(Buffer.from(b.base64, "base64"));
      } catch {
        /* reported below */
      }
    }
    if (!cert) return { problem: `${file}: ${which} ${damaged ?? "is damaged (it does not decode as X.509)"}; ${wants}`, fix: save };
    certs.push(cert);
  }
  const cas = certs.filter((c) => c.ca);
  if (cas.length === 0) {
    const names = certs.map((c) => `"${commonName(c)}"`).join(", ");
    return {
      problem: `${file} holds no CA certificate: ${names} cannot sign other certificates; ${wants}`,
      fix: `put the certificate of the CA that issued ${certs.length > 1 ? "them" : "it"} there instead (${ca.from})`,
    };
  }
  const valid = cas.filter((c) => Date.parse(c.validTo) > now.getTime());
  if (valid.length === 0) {
    const last = new Date(Math.max(...cas.map((c) => Date.parse(c.validTo))));
    return {
      problem: `${file}: every CA certificate in it has expired (the last on ${last.toISOString().slice(0, 10)}); ${wants}`,
      fix: `get the current CA certificate (${ca.from}) and save it there`,
    };
  }
  const first = valid[0]!;
  return {
    found: `${valid.length} CA certificate${valid.length > 1 ? "s" : ""} (${valid.length > 1 ? "first " : ""}"${commonName(first)}", valid until ${new Date(first.validTo).toISOString().slice(0, 10)})`,
  };
}

function commonName(c: X509Certificate): string {
  const cn = c.subject.split("\n").find((l) => l.startsWith("CN="));
  return cn ? cn.slice(3) : c.subject.replace(/\n/g, ", ");
}

/** What a file with no PEM certificate is instead, never quoting its content. */
function notPem(bytes: Buffer, labels: string[]): string {
  if (bytes.toString("utf8").trim() === "") return "is empty";
  if (labels.some((l) => l === "PKCS7" || l === "CMS")) return "holds a PKCS#7 bundle, not PEM certificates";
  if (labels.length > 0) return `holds a "${labels[0]!.slice(0, 40)}" PEM block, not a certificate`;
  if (bytes[0] === 0x30) return "is DER (binary), not PEM";
  if (/<(!doctype|html|head|body)\b/i.test(bytes.subarray(0, 2048).toString("latin1"))) return "is an HTML page, not a certificate";
  return 'holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)';
}

/**
 * A deploy hook's program: found the way spawn finds it (a name is looked up in PATH, a path with a
 * slash is taken as it is) and executable by credd's user.
 */
function hookProgram(program: string, env: NodeJS.ProcessEnv, key: string): Outcome {
  const want = "credd runs it after each new certificate goes live";
  const user = runningUser();
  if (program.includes("/")) {
    const file = path.resolve(program);
    let st: Stats;
    try {
      st = statSync(file);
    } catch (err) {
      return {
        problem: `${file} ${fsFound(err, file, "reached")}; ${want}`,
        fix: `install the program there, or correct ${key}[0] (the program, as a full path or a name found in PATH)`,
      };
    }
    if (st.isDirectory()) return { problem: `${file} is a folder, not a program; ${want}`, fix: `correct ${key}[0]: name the program itself` };
    if (!can(file, constants.X_OK))
      return { problem: `${file} is not executable by ${user}; ${want}`, fix: `chmod +x ${file}, or correct ${key}[0]` };
    return { found: "executable" };
  }
  const searchPath = env.PATH ?? "/usr/bin:/bin";
  let notExecutable: string | undefined;
  for (const d of searchPath.split(":")) {
    const file = path.resolve(d || ".", program);
    const st = statSafe(file);
    if (!st || st.isDirectory()) continue;
    if (can(file, constants.X_OK)) return { found: `${file}, executable` };
    notExecutable ??= file;
  }
  if (notExecutable)
    return {
      problem: `${notExecutable} (found in PATH for "${program}") is not executable by ${user}; ${want}`,
      fix: `chmod +x ${notExecutable}, or write the full path of the program in ${key}[0]`,
    };
  return {
    problem: `"${program}" is not in PATH (${searchPath}); ${want}`,
    fix: `install it, or write its full path in ${key}[0] (e.g. "/usr/local/bin/${program}")`,
  };
}
