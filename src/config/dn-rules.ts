// The Distinguished Name Stellantis asks for (seeds: the CSR table) and the rules for each part:
// C, ST, L, O, OU=Programs Partners, CN=the MZP login, emailAddress, in that order.

import type { StellantisDn, SubjectConfig } from "./types.js";
import { addressProblem } from "./address.js";
import { describe, findControl, get, isUnset, mapping, quote, type Mapping } from "./checks.js";
import { child, type At, type Issues } from "./issues.js";

/** "You must type: 'Programs Partners'" (the keytool example's `Programs Partner` is a typo). */
export const STELLANTIS_OU = "Programs Partners";

/** Every seed page shows the login as MZP + six digits (MZP123456, MZP128745). */
export const MZP_PATTERN = /^MZP\d{6}$/;

/** A credential's name is a folder name under state_dir/credentials/. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

export type SubjectAttr = keyof SubjectConfig;
export const SUBJECT_ATTRS: readonly SubjectAttr[] = ["C", "ST", "L", "O", "emailAddress"];

/** Upper bounds (characters) from X.520/PKCS#9 as credd applies them. */
const MAX_LENGTH: Readonly<Record<SubjectAttr, number>> = { C: 2, ST: 64, L: 64, O: 64, emailAddress: 128 };
const EXAMPLE: Readonly<Record<SubjectAttr, string>> = {
  C: "FR",
  ST: "Ile de France",
  L: "Paris",
  O: "Free2Move",
  emailAddress: "it@partner.example",
};

export interface Problem {
  problem: string;
  fix: string;
}

/** Why a DN value is unusable, or undefined. Pure: also usable on a certificate's subject. */
export function dnValueProblem(attr: SubjectAttr, v: string): Problem | undefined {
  if (v.trim() === "") return { problem: "is empty", fix: `give a value, e.g. ${attr}: ${EXAMPLE[attr]}` };
  const control = findControl(v);
  if (control)
    return {
      problem: `contains a control character (${control}); control characters are not allowed in a DN value`,
      fix: "write the value on one line, without tabs, carriage returns or line feeds",
    };
  if (v !== v.trim()) return { problem: "has leading or trailing whitespace", fix: `remove it: ${quote(v.trim())}` };
  if (attr === "C") {
    if (/^[a-z]{2}$/i.test(v) && v !== v.toUpperCase())
      return { problem: `must be two uppercase letters, got ${quote(v)}`, fix: `write ${v.toUpperCase()}` };
    if (!/^[A-Z]{2}$/.test(v)) return { problem: `must be a two-letter ISO 3166 country code, got ${quote(v)}`, fix: "e.g. C: FR" };
    return undefined;
  }
  // Code points, not UTF-16 units; counted only when the units alone could be too many.
  const length = v.length > MAX_LENGTH[attr] ? [...v].length : v.length;
  if (length > MAX_LENGTH[attr])
    return {
      problem: `is ${length} characters long; a certificate allows at most ${MAX_LENGTH[attr]}`,
      fix: "shorten it",
    };
  if (attr === "emailAddress") {
    const bad = addressProblem(v);
    // IA5String in the certificate: ASCII only.
    if (bad) return { problem: `${bad}, got ${quote(v)}`, fix: `e.g. emailAddress: ${EXAMPLE.emailAddress}` };
  }
  return undefined;
}

export function checkName(ix: Issues, at: At, v: unknown): string | undefined {
  if (typeof v === "string" && NAME_PATTERN.test(v)) return v;
  const slug =
    typeof v === "string" || typeof v === "number"
      ? String(v)
          .toLowerCase()
          .replace(/[^a-z0-9_-]+/g, "-")
          .replace(/^[-_]+/, "")
          .slice(0, 63)
      : "";
  ix.add(
    at,
    `must be 1 to 63 letters, digits, "-" or "_", starting with a letter or digit (it is a folder name), got ${isUnset(v) ? "nothing" : quote(String(v))}`,
    NAME_PATTERN.test(slug) ? `e.g. name: ${slug}` : "e.g. name: fleet-prod",
  );
  return undefined;
}

export function checkMzp(ix: Issues, at: At, v: unknown): string | undefined {
  if (typeof v === "string" && MZP_PATTERN.test(v)) return v;
  const compact = typeof v === "string" || typeof v === "number" ? String(v).replace(/\s+/g, "").toUpperCase() : "";
  const fixed = /^\d{6}$/.test(compact) ? `MZP${compact}` : compact;
  if (MZP_PATTERN.test(fixed)) {
    ix.add(at, `must be written exactly as Stellantis issues it, in capitals without spaces, got ${quote(String(v))}`, `write ${fixed}`);
    return undefined;
  }
  const got = typeof v === "string" ? quote(v) : isUnset(v) ? "nothing" : String(v);
  ix.add(at, `must be "MZP" followed by six digits (the Stellantis login, which becomes the CN), got ${got}`, "e.g. mzp: MZP128745");
  return undefined;
}

const SUBJECT_KEYS = [...SUBJECT_ATTRS, "OU", "CN"];
const SUBJECT_ALIASES: Readonly<Record<string, string>> = {
  S: "ST",
  E: "emailAddress",
  countryName: "C",
  stateOrProvinceName: "ST",
  localityName: "L",
  organizationName: "O",
  organizationalUnitName: "OU",
  commonName: "CN",
};

/** The configurable subject; OU and CN are accepted only when they equal what credd sets. */
export function checkSubject(ix: Issues, at: At, v: unknown, mzp: string | undefined): SubjectConfig | undefined {
  const example = "e.g. subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }";
  if (isUnset(v)) {
    ix.add(at, "is missing", example);
    return undefined;
  }
  const m = mapping(ix, at, v, { known: SUBJECT_KEYS, aliases: SUBJECT_ALIASES }, example);
  if (!m) return undefined;
  const out: Partial<SubjectConfig> = {};
  let ok = true;
  for (const attr of SUBJECT_ATTRS) {
    const value = dnValue(ix, child(at, attr), attr, get(m, attr));
    if (value === undefined) ok = false;
    else out[attr] = value;
  }
  checkFixedParts(ix, at, m, mzp);
  return ok ? (out as SubjectConfig) : undefined;
}

function dnValue(ix: Issues, at: At, attr: SubjectAttr, v: unknown): string | undefined {
  if (isUnset(v)) {
    ix.add(at, "is missing: Stellantis requires C, ST, L, O and emailAddress", `e.g. ${attr}: ${EXAMPLE[attr]}`);
    return undefined;
  }
  if (typeof v !== "string") {
    const hint = typeof v === "number" || typeof v === "boolean" ? `quote it: ${attr}: "${String(v)}"` : `e.g. ${attr}: ${EXAMPLE[attr]}`;
    ix.add(at, `must be a string, got ${describe(v)}`, hint);
    return undefined;
  }
  const bad = dnValueProblem(attr, v);
  if (bad) {
    ix.add(at, bad.problem, bad.fix);
    return undefined;
  }
  return v;
}

function checkFixedParts(ix: Issues, at: At, m: Mapping, mzp: string | undefined): void {
  const ou = get(m, "OU");
  if (!isUnset(ou) && ou !== STELLANTIS_OU) {
    const got = typeof ou === "string" ? quote(ou) : String(ou);
    ix.add(child(at, "OU"), `is fixed by Stellantis to "${STELLANTIS_OU}", got ${got}`, `remove subject.OU: credd always writes OU=${STELLANTIS_OU}`);
  }
  const cn = get(m, "CN");
  if (!isUnset(cn) && cn !== mzp) {
    const got = typeof cn === "string" ? quote(cn) : String(cn);
    ix.add(
      child(at, "CN"),
      `must be the MZP login${mzp && MZP_PATTERN.test(mzp) ? ` (${mzp})` : ""}: the CN is always the MZP, got ${got}`,
      "remove subject.CN: credd sets the CN from mzp",
    );
  }
}

/** The DN in the order Stellantis asks for. */
export function buildDn(subject: SubjectConfig, mzp: string): StellantisDn {
  return {
    C: subject.C,
    ST: subject.ST,
    L: subject.L,
    O: subject.O,
    OU: STELLANTIS_OU,
    CN: mzp,
    emailAddress: subject.emailAddress,
  };
}
