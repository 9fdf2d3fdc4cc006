// Real openssl for tests: run it, make a throwaway CA, sign CSRs, make keys and certificates the way the seeds do by hand.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StellantisDn } from "../../src/config/types.js";

export interface OpensslResult {
  stdout: string;
  stderr: string;
}

export interface OpensslOptions {
  input?: string | Buffer;
  cwd?: string;
  /** Extra environment, e.g. a passphrase for `-passin env:NAME` so it is not on the command line. */
  env?: Record<string, string>;
}

/** Runs openssl and returns its output; throws with the command and stderr when it exits non-zero. */
export function openssl(args: string[], opts: OpensslOptions = {}): OpensslResult {
  const res = spawnSync("openssl", args, {
    input: opts.input,
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (res.error) throw new Error(`openssl ${args.join(" ")}: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(`openssl ${args.join(" ")} exited ${res.status ?? res.signal}:\n${res.stderr}${res.stdout}`);
  }
  return { stdout: res.stdout, stderr: res.stderr };
}

/** A fresh directory under the system temp folder; the test removes it. */
export function makeTempDir(prefix = "credd-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestCa {
  certPath: string;
  keyPath: string;
  certPem: string;
  /** The CA's own folder (inside the dir given to makeCa). */
  dir: string;
}

// Our own config so the host's openssl.cnf (x509_extensions, string_mask, prompts) cannot interfere.
const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
string_mask = utf8only
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

/** A real CA: RSA 2048, basicConstraints=critical,CA:TRUE, keyUsage keyCertSign,cRLSign. */
export function makeCa(dir: string, { cn = "Test Stellantis CA", days = 3650 }: { cn?: string; days?: number } = {}): TestCa {
  const caDir = mkdtempSync(join(dir, "ca-"));
  const config = join(caDir, "req.cnf");
  writeFileSync(config, REQ_CONFIG);
  const keyPath = join(caDir, "ca.key");
  const certPath = join(caDir, "ca.pem");
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath]);
  openssl([
    "req",
    "-x509",
    "-new",
    "-config",
    config,
    "-extensions",
    "v3_ca",
    "-utf8",
    "-key",
    keyPath,
    "-subj",
    subjFromPairs([
      ["C", "FR"],
      ["O", "Test Stellantis"],
      ["CN", cn],
    ]),
    "-days",
    String(days),
    "-sha256",
    "-set_serial",
    randomSerial(),
    "-out",
    certPath,
  ]);
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), dir: caDir };
}

/** Who signs a CSR: a CA (its certificate and key), or the CSR's own key (a self-signed certificate). */
export type CsrSigner = Pick<TestCa, "certPath" | "keyPath"> | { selfSignKey: string };

export interface SignWithCaOptions {
  /** Extension lines in openssl config syntax ("basicConstraints = CA:FALSE"); none when absent. */
  extensions?: string[];
  /** Validity from now (default 365). */
  days?: number;
  /** The signature's digest (default "sha256"); "sha1" for the policy tests. */
  digest?: string;
  /** openssl's -set_serial value as given ("0x5EED", "-5"); random (positive, 16 bytes) when absent. */
  serial?: string;
  /** More arguments for openssl x509, e.g. ["-sigopt", "rsa_padding_mode:pss"]. */
  extraArgs?: string[];
  /** Passphrase of the signing key, passed through the environment (never on the command line). */
  passphrase?: string;
}

/**
 * Signs a CSR with `openssl x509 -req`, which copies the CSR's subject as encoded, and writes the
 * certificate to `outPath`; returns its PEM. The one place the tests run `x509 -req`.
 */
export function signWithCa(signer: CsrSigner, csrPath: string, outPath: string, opts: SignWithCaOptions = {}): string {
  const work = mkdtempSync(join(tmpdir(), "credd-sign-"));
  try {
    const extPath = join(work, "ext.cnf");
    if (opts.extensions) writeFileSync(extPath, `[ext]\n${opts.extensions.join("\n")}\n`);
    const env = opts.passphrase !== undefined ? { CREDD_TEST_PASSIN: opts.passphrase } : undefined;
    openssl(
      [
        "x509",
        "-req",
        "-in",
        csrPath,
        ...("selfSignKey" in signer ? ["-signkey", signer.selfSignKey] : ["-CA", signer.certPath, "-CAkey", signer.keyPath]),
        ...(opts.passphrase !== undefined ? ["-passin", "env:CREDD_TEST_PASSIN"] : []),
        "-set_serial",
        opts.serial ?? randomSerial(),
        "-days",
        String(opts.days ?? 365),
        `-${opts.digest ?? "sha256"}`,
        ...(opts.extraArgs ?? []),
        ...(opts.extensions ? ["-extfile", extPath, "-extensions", "ext"] : []),
        "-out",
        outPath,
      ],
      env ? { env } : {},
    );
    return readFileSync(outPath, "utf8");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface SignOptions {
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** Adds extendedKeyUsage=clientAuth (default true). */
  clientAuth?: boolean;
  /** Passphrase of the signing key (only for self-signing with an encrypted key). */
  passphrase?: string;
  /** Serial number as hex digits (random when absent), e.g. "80AB" to get DER's sign-padding byte. */
  serial?: string;
}

/** Signs a CSR with the CA, keeping the CSR's subject as encoded; returns the certificate PEM. */
export function signCsr(ca: Pick<TestCa, "certPath" | "keyPath">, csrPath: string, outPath: string, opts: SignOptions = {}): string {
  return signWith({ kind: "ca", ca }, csrPath, outPath, opts);
}

type Signer = { kind: "ca"; ca: Pick<TestCa, "certPath" | "keyPath"> } | { kind: "self"; keyPath: string };

function leafExtensions(clientAuth: boolean): string {
  return [
    "basicConstraints = CA:FALSE",
    "keyUsage = critical,digitalSignature,keyEncipherment",
    ...(clientAuth ? ["extendedKeyUsage = clientAuth"] : []),
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid",
  ].join("\n");
}

function signWith(signer: Signer, csrPath: string, outPath: string, opts: SignOptions): string {
  const work = mkdtempSync(join(tmpdir(), "credd-sign-"));
  try {
    return signIn(work, signer, csrPath, outPath, opts);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function signIn(work: string, signer: Signer, csrPath: string, outPath: string, opts: SignOptions): string {
  const ext = leafExtensions(opts.clientAuth ?? true);
  const env = opts.passphrase !== undefined ? { CREDD_TEST_PASSIN: opts.passphrase } : undefined;
  const passin = opts.passphrase !== undefined ? ["-passin", "env:CREDD_TEST_PASSIN"] : [];
  const days = opts.days ?? 365;
  const serial = opts.serial !== undefined ? `0x${opts.serial}` : randomSerial();
  if (!opts.notBefore && !opts.notAfter) {
    // 3.0's x509 -req has no explicit start date.
    return signWithCa(signer.kind === "ca" ? signer.ca : { selfSignKey: signer.keyPath }, csrPath, outPath, {
      extensions: ext.split("\n"),
      days,
      serial,
      ...(opts.passphrase !== undefined ? { passphrase: opts.passphrase } : {}),
    });
  }
  // Explicit dates need `openssl ca` with a throwaway database.
  const notBefore = opts.notBefore ?? new Date();
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + days * 86_400_000);
  writeFileSync(join(work, "index.txt"), "");
  writeFileSync(join(work, "serial"), `${serial.slice(2)}\n`);
  const config = join(work, "ca.cnf");
  writeFileSync(
    config,
    `[ca]
default_ca = test
[test]
dir = ${work}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = anything
# keep the CSR's RDNs in their order and encoding, as a real CA that copies the request would
preserve = yes
unique_subject = no
email_in_dn = yes
copy_extensions = none
x509_extensions = leaf
[anything]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
emailAddress = optional
[leaf]
${ext}
`,
  );
  const signArgs = signer.kind === "ca" ? ["-cert", signer.ca.certPath, "-keyfile", signer.ca.keyPath] : ["-selfsign", "-keyfile", signer.keyPath];
  openssl(
    [
      "ca",
      "-batch",
      "-notext",
      "-config",
      config,
      "-in",
      csrPath,
      ...signArgs,
      ...passin,
      "-startdate",
      asn1Time(notBefore),
      "-enddate",
      asn1Time(notAfter),
      "-out",
      outPath,
    ],
    { env },
  );
  return readFileSync(outPath, "utf8");
}

export interface KeyAndCertOptions {
  keyType?: "rsa" | "ec";
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** Sign with this CA; self-signed when absent. */
  ca?: Pick<TestCa, "certPath" | "keyPath">;
  /** "pkcs1" means the traditional form: "BEGIN RSA PRIVATE KEY" or, for EC, SEC1 "BEGIN EC PRIVATE KEY". */
  keyFormat?: "pkcs8" | "pkcs1";
  /** Encrypts the key: PKCS#8 v2 AES-256-CBC, or legacy PEM encryption for the traditional form. */
  passphrase?: string;
  clientAuth?: boolean;
  /** Serial number as hex digits; random when absent. */
  serial?: string;
}

export interface KeyAndCert {
  keyPath: string;
  certPath: string;
  csrPath: string;
  certPem: string;
}

/** Key, CSR (`openssl req -new -subj`) and certificate for `dn`, made the way a person follows the seeds. */
export function makeKeyAndCert(dir: string, dn: StellantisDn, opts: KeyAndCertOptions = {}): KeyAndCert {
  const work = mkdtempSync(join(dir, "cred-"));
  const keyPath = join(work, "key.pem");
  const csrPath = join(work, "csr.pem");
  const certPath = join(work, "cert.pem");
  const plainKey = join(work, "key-plain.pem");
  if ((opts.keyType ?? "rsa") === "rsa") {
    openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", plainKey]);
  } else {
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt", "ec_param_enc:named_curve", "-out", plainKey]);
  }
  const env = opts.passphrase !== undefined ? { CREDD_TEST_PASS: opts.passphrase } : undefined;
  const traditional = opts.keyFormat === "pkcs1";
  if (opts.passphrase !== undefined) {
    if (traditional) openssl(["pkey", "-in", plainKey, "-traditional", "-aes256", "-passout", "env:CREDD_TEST_PASS", "-out", keyPath], { env });
    else openssl(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plainKey, "-passout", "env:CREDD_TEST_PASS", "-out", keyPath], { env });
  } else {
    openssl(["pkey", "-in", plainKey, ...(traditional ? ["-traditional"] : []), "-out", keyPath]);
  }
  const config = join(work, "req.cnf");
  writeFileSync(config, REQ_CONFIG);
  const passin = opts.passphrase !== undefined ? ["-passin", "env:CREDD_TEST_PASS"] : [];
  openssl(["req", "-new", "-config", config, "-utf8", "-key", keyPath, ...passin, "-subj", subjFromDn(dn), "-sha256", "-out", csrPath], { env });
  const signOpts: SignOptions = { clientAuth: opts.clientAuth ?? true, ...pickDates(opts) };
  if (opts.ca) signWith({ kind: "ca", ca: opts.ca }, csrPath, certPath, signOpts);
  else
    signWith({ kind: "self", keyPath }, csrPath, certPath, {
      ...signOpts,
      ...(opts.passphrase !== undefined ? { passphrase: opts.passphrase } : {}),
    });
  return { keyPath, certPath, csrPath, certPem: readFileSync(certPath, "utf8") };
}

function pickDates(opts: KeyAndCertOptions): SignOptions {
  const out: SignOptions = {};
  if (opts.days !== undefined) out.days = opts.days;
  if (opts.notBefore) out.notBefore = opts.notBefore;
  if (opts.notAfter) out.notAfter = opts.notAfter;
  if (opts.serial !== undefined) out.serial = opts.serial;
  return out;
}

/** `-subj` for a Stellantis DN, in the order C, ST, L, O, OU, CN, emailAddress. */
export function subjFromDn(dn: StellantisDn): string {
  return subjFromPairs([
    ["C", dn.C],
    ["ST", dn.ST],
    ["L", dn.L],
    ["O", dn.O],
    ["OU", dn.OU],
    ["CN", dn.CN],
    ["emailAddress", dn.emailAddress],
  ]);
}

/** `/K=V/...` with `\`, `/`, `+` and `=` escaped: openssl splits on `/` and treats `+` as a multi-valued RDN. */
export function subjFromPairs(pairs: Array<[string, string]>): string {
  return pairs.map(([k, v]) => `/${k}=${v.replace(/[\\/+=]/g, (c) => `\\${c}`)}`).join("");
}

/** A positive 16-byte serial as `0x...` (high bit clear so no sign padding is needed). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return `0x${bytes.toString("hex").toUpperCase()}`;
}

/** YYYYMMDDHHMMSSZ, which `openssl ca -startdate/-enddate` accepts (and stores as UTCTime before 2050). */
function asn1Time(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

export interface IntermediateOptions {
  cn?: string;
  days?: number;
  /** basicConstraints pathlen; none when absent. */
  pathlen?: number;
  /** keyUsage value (default "critical,keyCertSign,cRLSign"). */
  keyUsage?: string;
  /** basicConstraints CA flag (default true): false makes a "CA" that is not one. */
  isCa?: boolean;
}

/** An intermediate CA signed by `issuer` (a root or another intermediate): RSA 2048, CA:TRUE, keyCertSign. */
export function makeIntermediateCa(issuer: Pick<TestCa, "certPath" | "keyPath">, dir: string, opts: IntermediateOptions = {}): TestCa {
  const caDir = mkdtempSync(join(dir, "int-"));
  const keyPath = join(caDir, "int.key");
  const csrPath = join(caDir, "int.csr");
  const certPath = join(caDir, "int.pem");
  const config = join(caDir, "req.cnf");
  writeFileSync(config, REQ_CONFIG);
  const basic = (opts.isCa ?? true) ? `critical,CA:TRUE${opts.pathlen !== undefined ? `,pathlen:${opts.pathlen}` : ""}` : "critical,CA:FALSE";
  const extensions = [
    `basicConstraints = ${basic}`,
    `keyUsage = ${opts.keyUsage ?? "critical,keyCertSign,cRLSign"}`,
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid:always",
  ];
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath]);
  openssl([
    "req",
    "-new",
    "-config",
    config,
    "-utf8",
    "-key",
    keyPath,
    "-subj",
    subjFromPairs([
      ["C", "FR"],
      ["O", "Test Stellantis"],
      ["CN", opts.cn ?? "Test Stellantis Issuing CA"],
    ]),
    "-sha256",
    "-out",
    csrPath,
  ]);
  signWithCa(issuer, csrPath, certPath, { extensions, days: opts.days ?? 1825 });
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), dir: caDir };
}

/** SHA-256 fingerprint as openssl prints it (`AB:CD:...`), the reference for CertInfo.sha256. */
export function opensslFingerprint(certPath: string, inform: "PEM" | "DER" = "PEM"): string {
  const out = openssl(["x509", "-in", certPath, "-inform", inform, "-noout", "-fingerprint", "-sha256"]).stdout;
  const m = /=([0-9A-F:]+)\s*$/.exec(out.trim());
  if (!m) throw new Error(`unexpected openssl fingerprint output: ${out}`);
  return m[1]!;
}

/** Signs a CSR with `ca` and exactly the extensions given (openssl config lines), e.g. an EKU of serverAuth only. */
export function signCsrWithExtensions(
  ca: Pick<TestCa, "certPath" | "keyPath">,
  csrPath: string,
  outPath: string,
  extensions: string[],
  days = 365,
): string {
  return signWithCa(ca, csrPath, outPath, { extensions, days });
}

/** A CA certificate for `subject`'s existing name and key, signed by `issuer`: a cross-certificate (CA:TRUE). */
export function crossCertify(subject: TestCa, issuer: Pick<TestCa, "certPath" | "keyPath">, dir: string): string {
  const work = mkdtempSync(join(dir, "cross-"));
  const csrPath = join(work, "cross.csr");
  const certPath = join(work, "cross.pem");
  openssl(["x509", "-x509toreq", "-in", subject.certPath, "-signkey", subject.keyPath, "-out", csrPath]);
  return signWithCa(issuer, csrPath, certPath, {
    extensions: ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign", "subjectKeyIdentifier = hash"],
  });
}
