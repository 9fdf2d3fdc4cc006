// X.501 Names on @peculiar's ASN.1 stack: the Stellantis subject built with exact string types, and
// any Name read back attribute by attribute with the string type each value was encoded in.
import { AsnConvert, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from "@peculiar/asn1-schema";
import { Name as AsnName, type AttributeValue } from "@peculiar/asn1-x509";
import { x509 } from "./crypto.js";
import { attributeName, subjectAttributes, type DnAttribute, type SubjectStringType } from "./dn.js";
import { RefusedError } from "../errors.js";
import type { StellantisDn } from "../config/types.js";

/** The JSON form's key for each string type (`{ printableString: "FR" }`). */
const JSON_KEY: Record<SubjectStringType, "printableString" | "utf8String" | "ia5String"> = {
  PrintableString: "printableString",
  UTF8String: "utf8String",
  IA5String: "ia5String",
};

/**
 * The subject as @peculiar/x509 writes it from the JSON form, which keeps the string type given for
 * each value (a string name would pick the types itself, and has no keyword for emailAddress).
 * Keyed by OID so no keyword table is involved; one RDN per attribute, in Stellantis order.
 */
export function subjectName(dn: StellantisDn): x509.Name {
  const json = subjectAttributes(dn).map((a) => ({ [a.oid]: [{ [JSON_KEY[a.type]]: a.value }] }));
  // The JSON-with-types form is accepted at run time; the constructor's typing only names plain strings.
  return new x509.Name(json as unknown as x509.JsonName);
}

/**
 * NumericString and VisibleString are legal in a Name but not among asn1-x509's AttributeValue
 * choices, which hand them over as raw ANY; this schema decodes them.
 */
class OtherString {
  numericString?: string;
  visibleString?: string;
}
// AsnProp and AsnType are legacy decorators, applied as calls: tsconfig.json keeps experimentalDecorators off.
AsnProp({ type: AsnPropTypes.NumericString })(OtherString.prototype, "numericString");
AsnProp({ type: AsnPropTypes.VisibleString })(OtherString.prototype, "visibleString");
AsnType({ type: AsnTypeTypes.Choice })(OtherString);

/** A DER Name's attributes in encoded order (multi-valued RDNs flattened), with their exact string types. */
export function readName(name: ArrayBuffer | ArrayBufferView): DnAttribute[] {
  let parsed: AsnName;
  try {
    parsed = AsnConvert.parse(name, AsnName);
  } catch (err) {
    throw new RefusedError("parse", `the distinguished name is not valid DER: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // Spread into plain arrays: map on asn1-schema's AsnArray subclasses would build more of them.
  return [...parsed].flatMap((rdn) => [...rdn].map((atv) => ({ type: attributeName(atv.type), oid: atv.type, ...attributeValue(atv.value) })));
}

function attributeValue(v: AttributeValue): { value: string; stringType: string } {
  if (v.printableString !== undefined) return { value: v.printableString, stringType: "PrintableString" };
  if (v.utf8String !== undefined) return { value: v.utf8String, stringType: "UTF8String" };
  if (v.ia5String !== undefined) return { value: v.ia5String, stringType: "IA5String" };
  // asn1js reads T.61 as Latin-1, as every tool (OpenSSL included) does.
  if (v.teletexString !== undefined) return { value: v.teletexString, stringType: "TeletexString" };
  if (v.bmpString !== undefined) return { value: v.bmpString, stringType: "BMPString" };
  if (v.universalString !== undefined) return { value: v.universalString, stringType: "UniversalString" };
  const raw = Buffer.from(v.anyValue ?? new ArrayBuffer(0));
  try {
    const other = AsnConvert.parse(raw, OtherString);
    if (other.numericString !== undefined) return { value: other.numericString, stringType: "NumericString" };
    if (other.visibleString !== undefined) return { value: other.visibleString, stringType: "VisibleString" };
  } catch {
    // not a string: shown the RFC 4514 way below
  }
  // RFC 4514 writes a value of another type as # and the hex of its whole encoding.
  return { value: `#${raw.toString("hex")}`, stringType: `tag 0x${(raw[0] ?? 0).toString(16).padStart(2, "0")}` };
}
