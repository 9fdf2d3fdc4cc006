// Throwaway test PKI made with the real openssl: a CA, server certificates for loopback, client
// certificates. For SMTP and HTTPS test servers; nothing here is trusted by the system roots.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signWithCa } from "./openssl.js";

export type TestKeyType = "ec" | "rsa";

export interface TestCa {
  dir: string;
  caPem: string;
  caPath: string;
  caKeyPath: string;
}

export interface TestCert {
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

export interface ServerTls {
  caPem: string;
  certPem: string;
  keyPem: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  /** The temp folder holding everything; remove with removeTestPki(dir). */
  dir: string;
  /** The CA, to sign more certificates (clients, other servers) with makeClientCert / makeCert. */
  ca: TestCa;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

function keyArgs(type: TestKeyType): string[] {
  return type === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
}

let counter = 0;
function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString("hex")}`;
}

/** A self-signed CA in a new temp folder (or `dir`). */
export function makeTestCa(opts: { cn?: string; dir?: string; days?: number; keyType?: TestKeyType } = {}): TestCa {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "credd-pki-"));
  const base = uniqueName("ca");
  const caPath = join(dir, `${base}.pem`);
  const caKeyPath = join(dir, `${base}.key`);
  openssl(
    [
      "req",
      "-x509",
      ...keyArgs(opts.keyType ?? "ec"),
      "-nodes",
      "-keyout",
      caKeyPath,
      "-out",
      caPath,
      "-days",
      String(opts.days ?? 2),
      "-subj",
      `/CN=${opts.cn ?? "credd test CA"}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return { dir, caPem: readFileSync(caPath, "utf8"), caPath, caKeyPath };
}

/**
 * A certificate signed by `ca`. `subject` is an openssl -subj string ("/C=FR/O=Org/CN=name"),
 * `san` entries like "DNS:localhost" or "IP:127.0.0.1", `usage` picks the extended key usage.
 */
export function makeCert(
  ca: TestCa,
  opts: { subject: string; san?: string[]; usage: "server" | "client"; days?: number; keyType?: TestKeyType },
): TestCert {
  const base = uniqueName(opts.usage);
  const keyPath = join(ca.dir, `${base}.key`);
  const csrPath = join(ca.dir, `${base}.csr`);
  const certPath = join(ca.dir, `${base}.pem`);
  openssl(["req", ...keyArgs(opts.keyType ?? "ec"), "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", opts.subject], ca.dir);
  const ext = [
    "basicConstraints=critical,CA:FALSE",
    `keyUsage=critical,digitalSignature${opts.keyType === "rsa" ? ",keyEncipherment" : ""}`,
    `extendedKeyUsage=${opts.usage === "server" ? "serverAuth" : "clientAuth"}`,
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid",
    ...(opts.san && opts.san.length > 0 ? [`subjectAltName=${opts.san.join(",")}`] : []),
  ];
  signWithCa({ certPath: ca.caPath, keyPath: ca.caKeyPath }, csrPath, certPath, {
    extensions: ext,
    days: opts.days ?? 2,
    serial: `0x${randomBytes(8).toString("hex")}`,
  });
  return { certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8"), certPath, keyPath };
}

/** A client certificate (EKU clientAuth) signed by `ca`, e.g. subject "/C=FR/O=Free2Move/CN=MZP128745". */
export function makeClientCert(ca: TestCa, subject = "/CN=credd test client", keyType: TestKeyType = "ec"): TestCert {
  return makeCert(ca, { subject, usage: "client", keyType });
}

/** A new test CA and a server certificate for localhost / 127.0.0.1, in a new temp folder. */
export function makeServerTls(opts: { keyType?: TestKeyType } = {}): ServerTls {
  const ca = makeTestCa({ keyType: opts.keyType });
  const server = makeCert(ca, {
    subject: "/CN=localhost",
    san: ["DNS:localhost", "IP:127.0.0.1"],
    usage: "server",
    keyType: opts.keyType,
  });
  return { caPem: ca.caPem, caPath: ca.caPath, dir: ca.dir, ca, ...server };
}

export function removeTestPki(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
