// The Stellantis Distinguished Name: its attributes with their exact ASN.1 string types, comparing and printing it.
// Pure: the encoding (pki/name.ts, on @peculiar/x509) is kept out so that importing this loads no ASN.1 code.
import { RefusedError } from "../errors.js";
import type { StellantisDn } from "../config/types.js";

/** The order Stellantis asks for, and the order the CSR writes (one attribute per RDN). */
export const DN_ORDER = ["C", "ST", "L", "O", "OU", "CN", "emailAddress"] as const;
export type DnKey = (typeof DN_ORDER)[number];

export const DN_OIDS: Record<DnKey, string> = {
  C: "2.5.4.6",
  ST: "2.5.4.8",
  L: "2.5.4.7",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  CN: "2.5.4.3",
  emailAddress: "1.2.840.113549.1.9.1",
};

/** Short names for attributes other CAs add, so a refusal can say "SERIALNUMBER" instead of an OID. */
const OTHER_NAMES: Record<string, string> = {
  "2.5.4.4": "SN",
  "2.5.4.5": "SERIALNUMBER",
  "2.5.4.9": "STREET",
  "2.5.4.12": "title",
  "2.5.4.17": "postalCode",
  "2.5.4.42": "GN",
  "2.5.4.43": "initials",
  "2.5.4.46": "dnQualifier",
  "2.5.4.97": "organizationIdentifier",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
};

const NAME_BY_OID: Record<string, string> = {
  ...OTHER_NAMES,
  ...Object.fromEntries(Object.entries(DN_OIDS).map(([k, oid]) => [oid, k])),
};

export interface DnAttribute {
  /** "C", "ST", ..., "emailAddress", another short name, or the dotted OID when unknown. */
  type: string;
  oid: string;
  value: string;
  /** The ASN.1 string type as encoded ("PrintableString", "UTF8String", "IA5String", ...), when read from DER. */
  stringType?: string;
}

// X.680 PrintableString: letters, digits, space and ' ( ) + , - . / : = ?  ("&", "@", accents are not).
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
// IA5String is 7-bit ASCII.
const IA5 = /^[\x00-\x7f]*$/;

export function isPrintableString(text: string): boolean {
  return PRINTABLE.test(text);
}

/** The ASN.1 string types credd writes in a subject. */
export type SubjectStringType = "PrintableString" | "UTF8String" | "IA5String";

export interface SubjectAttribute {
  key: DnKey;
  oid: string;
  type: SubjectStringType;
  value: string;
}

/**
 * The subject for a CSR: one attribute per RDN in Stellantis order, each string type ours to
 * choose. C is PrintableString, emailAddress IA5String (PKCS#9), the others PrintableString when
 * every character allows it, else UTF8String. Refuses what no CA would sign as asked.
 */
export function subjectAttributes(dn: StellantisDn): SubjectAttribute[] {
  const problems: string[] = [];
  for (const key of DN_ORDER) {
    const value = dn[key];
    if (typeof value !== "string" || value === "") problems.push(`${key} is empty`);
  }
  if (problems.length === 0) {
    // countryName is PrintableString SIZE(2) in X.520; ISO 3166 codes are upper case.
    if (!/^[A-Z]{2}$/.test(dn.C)) problems.push(`C must be a two-letter upper-case country code, got "${dn.C}"`);
    if (!IA5.test(dn.emailAddress)) problems.push(`emailAddress must be ASCII (IA5String), got "${dn.emailAddress}"`);
  }
  if (problems.length > 0) throw new RefusedError("dn", `cannot build the subject: ${problems.join("; ")}`);
  return DN_ORDER.map((key) => {
    const value = dn[key];
    const type = key === "emailAddress" ? "IA5String" : key === "C" || isPrintableString(value) ? "PrintableString" : "UTF8String";
    return { key, oid: DN_OIDS[key], type, value };
  });
}

/** The short name for an attribute OID ("C", "SERIALNUMBER", ...), or the dotted OID when unknown. */
export function attributeName(oid: string): string {
  return NAME_BY_OID[oid] ?? oid;
}

/**
 * Mismatches between the DN we asked for and one a CA returned, one line each; empty when equal.
 * Compared attribute by attribute and by OID, never as strings: tools print DNs in different orders
 * and escapings, and CAs may reorder RDNs, which is allowed here.
 */
export function compareDn(expected: StellantisDn, actual: DnAttribute[]): string[] {
  const problems: string[] = [];
  for (const key of DN_ORDER) {
    const found = actual.filter((a) => a.oid === DN_OIDS[key]);
    const want = expected[key];
    if (found.length === 0) problems.push(`${key} missing`);
    else if (found.length > 1)
      problems.push(`${key} appears ${found.length} times (${found.map((a) => JSON.stringify(a.value)).join(", ")}), expected once`);
    else if (found[0]!.value !== want) problems.push(`${key} is ${JSON.stringify(found[0]!.value)}, expected ${JSON.stringify(want)}`);
  }
  const ours = new Set(Object.values(DN_OIDS));
  for (const a of actual) {
    if (!ours.has(a.oid)) problems.push(`unexpected attribute ${a.type} (value ${JSON.stringify(a.value)})`);
  }
  return problems;
}

/** For people: `C=FR, ST=Ile de France, ..., emailAddress=it@partner.example` in Stellantis order. */
export function formatDn(dn: StellantisDn): string {
  return DN_ORDER.map((key) => `${key}=${dn[key]}`).join(", ");
}

/** Attributes as read, in encoded order, same style as formatDn. */
export function formatAttributes(attrs: DnAttribute[]): string {
  return attrs.map((a) => `${a.type}=${a.value}`).join(", ");
}
