// PEM text: finding labelled blocks in what people paste or tools print, and writing them back canonically.
import { RefusedError } from "../errors.js";

/** One `-----BEGIN X-----` block. `complete` is false when the END line is missing (a truncated file). */
export interface PemBlock {
  label: string;
  /** RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy encrypted keys), in order. */
  headers: Array<[string, string]>;
  /** Only the base64 body, whitespace removed. */
  base64: string;
  /** The block as found (LF line endings), headers included: what Node's PEM reader needs. */
  text: string;
  complete: boolean;
  /** False when the body holds characters that cannot be base64. */
  validBase64: boolean;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/;
const END = /^-----END ([A-Z0-9 ]+)-----\s*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Drops a UTF-8 byte order mark and turns CRLF/CR into LF: Windows tools and mail clients add both. */
export function normaliseText(input: string | Buffer): string {
  let text = typeof input === "string" ? input : input.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.replace(/\r\n?/g, "\n");
}

/**
 * Every PEM block in `input`, in order. Lines between blocks (openssl's "Bag Attributes",
 * "subject=", comments) are ignored; a BEGIN with no END before the next BEGIN or the end of the
 * text yields a block with `complete: false` so callers can say "truncated" instead of "nothing".
 */
export function findPemBlocks(input: string | Buffer): PemBlock[] {
  const lines = normaliseText(input).split("\n");
  const blocks: PemBlock[] = [];
  let current: { label: string; lines: string[] } | undefined;
  const finish = (complete: boolean): void => {
    if (!current) return;
    const headers: Array<[string, string]> = [];
    const body: string[] = [];
    for (const line of current.lines) {
      if (line === "") continue;
      const header = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (header && body.length === 0) headers.push([header[1]!, header[2]!]);
      else body.push(line.trim());
    }
    const base64 = body.join("");
    const endLine = complete ? [`-----END ${current.label}-----`] : [];
    blocks.push({
      label: current.label,
      headers,
      base64,
      text: [`-----BEGIN ${current.label}-----`, ...current.lines, ...endLine, ""].join("\n"),
      complete,
      validBase64: BASE64.test(base64) && base64.length % 4 === 0,
    });
    current = undefined;
  };
  for (const raw of lines) {
    const line = raw.trim();
    const begin = BEGIN.exec(line);
    if (begin) {
      finish(false);
      current = { label: begin[1]!, lines: [] };
      continue;
    }
    const end = END.exec(line);
    if (end && current && end[1] === current.label) {
      finish(true);
      continue;
    }
    // Blank lines stay: legacy encrypted PEM needs the one after its headers.
    if (current) current.lines.push(line);
  }
  finish(false);
  return blocks;
}

/** True when the text contains at least one BEGIN line: decides "PEM" against "maybe DER". */
export function looksLikePem(input: string | Buffer): boolean {
  const text = typeof input === "string" ? input : input.toString("latin1");
  return text.includes("-----BEGIN ");
}

/** Canonical PEM: 64-column base64, LF line endings, trailing newline (what openssl writes). */
export function encodePem(label: string, der: ArrayBuffer | Uint8Array): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** "a CERTIFICATE and a PRIVATE KEY": names what was found instead, for refusal messages. */
export function describeLabels(blocks: PemBlock[]): string {
  const labels = [...new Set(blocks.map((b) => b.label))];
  if (labels.length === 0) return "no PEM block";
  return labels.map((l) => `${/^[AEIOU]/.test(l) ? "an" : "a"} ${l}`).join(" and ");
}

/** PEM labels of an X.509 certificate. */
export const CERT_LABELS = new Set(["CERTIFICATE", "X509 CERTIFICATE"]);

/** Every CERTIFICATE block, re-encoded canonically; tolerant of CRLF, a BOM and openssl's "Bag Attributes" lines. */
export function splitPemCertificates(text: string): string[] {
  const out: string[] = [];
  for (const block of findPemBlocks(text)) {
    if (!CERT_LABELS.has(block.label)) continue;
    if (!block.complete) throw new RefusedError("parse", `truncated PEM: certificate ${out.length + 1} has a BEGIN line but no END line`);
    if (!block.validBase64) throw new RefusedError("parse", `damaged PEM: certificate ${out.length + 1} is not valid base64`);
    out.push(encodePem("CERTIFICATE", Buffer.from(block.base64, "base64")));
  }
  return out;
}
