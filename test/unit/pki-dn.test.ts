// The Stellantis DN: exact string types and order when built, attribute-by-attribute comparison.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compareDn, DN_ORDER, formatDn, isPrintableString, type DnAttribute } from "../../src/pki/dn.js";
import { readName, subjectName } from "../../src/pki/name.js";
import { RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";

const DN: StellantisDn = dnFor("MZP128745");

/** The subject's DER, as the CSR carries it. */
const buildName = (dn: StellantisDn): Buffer => Buffer.from(subjectName(dn).toArrayBuffer());

const OIDS: Record<string, string> = {
  C: "2.5.4.6",
  ST: "2.5.4.8",
  L: "2.5.4.7",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  CN: "2.5.4.3",
  emailAddress: "1.2.840.113549.1.9.1",
};

function attrs(dn: StellantisDn): DnAttribute[] {
  return DN_ORDER.map((k) => ({ type: k, oid: OIDS[k]!, value: dn[k] }));
}

describe("compareDn", () => {
  const cases: Array<{ name: string; actual: DnAttribute[]; want: string[] }> = [
    { name: "equal", actual: attrs(DN), want: [] },
    { name: "reordered by the CA is fine", actual: attrs(DN).reverse(), want: [] },
    ...DN_ORDER.map((k) => ({
      name: `${k} wrong`,
      actual: attrs({ ...DN, [k]: k === "CN" ? "MZP000001" : `wrong ${k}` } as StellantisDn),
      want: [`${k} is ${JSON.stringify(k === "CN" ? "MZP000001" : `wrong ${k}`)}, expected ${JSON.stringify(DN[k])}`],
    })),
    ...DN_ORDER.map((k) => ({
      name: `${k} missing`,
      actual: attrs(DN).filter((a) => a.type !== k),
      want: [`${k} missing`],
    })),
    {
      name: "the seeds' keytool typo OU=Programs Partner",
      actual: attrs({ ...DN, OU: "Programs Partner" as "Programs Partners" }),
      want: ['OU is "Programs Partner", expected "Programs Partners"'],
    },
    {
      name: "case matters",
      actual: attrs({ ...DN, CN: "mzp128745" }),
      want: ['CN is "mzp128745", expected "MZP128745"'],
    },
    {
      name: "extra attribute",
      actual: [...attrs(DN), { type: "SERIALNUMBER", oid: "2.5.4.5", value: "42" }],
      want: ['unexpected attribute SERIALNUMBER (value "42")'],
    },
    {
      name: "extra unknown attribute is named by OID",
      actual: [{ type: "1.2.3.4", oid: "1.2.3.4", value: "x" }, ...attrs(DN)],
      want: ['unexpected attribute 1.2.3.4 (value "x")'],
    },
    {
      name: "duplicate OU",
      actual: [...attrs(DN), { type: "OU", oid: OIDS.OU!, value: "Programs Partners" }],
      want: ['OU appears 2 times ("Programs Partners", "Programs Partners"), expected once'],
    },
    {
      name: "matched by OID, not by the type label",
      actual: attrs(DN).map((a) => (a.type === "emailAddress" ? { ...a, type: "E" } : a)),
      want: [],
    },
    {
      name: "several problems at once, in Stellantis order",
      actual: attrs({ ...DN, C: "DE", CN: "MZP000001" }).filter((a) => a.type !== "L"),
      want: ['C is "DE", expected "FR"', "L missing", 'CN is "MZP000001", expected "MZP128745"'],
    },
    { name: "empty certificate subject", actual: [], want: DN_ORDER.map((k) => `${k} missing`) },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(compareDn(DN, c.actual), c.want));
  }
});

describe("subjectName and readName", () => {
  it("writes one RDN per attribute in Stellantis order with the exact string types", () => {
    const dn: StellantisDn = { ...DN, L: "Saint-Étienne", O: "Société & Co" };
    const read = readName(buildName(dn));
    assert.deepEqual(
      read.map((a) => [a.type, a.oid, a.value, a.stringType]),
      [
        ["C", OIDS.C, "FR", "PrintableString"],
        ["ST", OIDS.ST, "Ile de France", "PrintableString"],
        ["L", OIDS.L, "Saint-Étienne", "UTF8String"],
        ["O", OIDS.O, "Société & Co", "UTF8String"],
        ["OU", OIDS.OU, "Programs Partners", "PrintableString"],
        ["CN", OIDS.CN, "MZP128745", "PrintableString"],
        ["emailAddress", OIDS.emailAddress, "it@partner.example", "IA5String"],
      ],
    );
    assert.deepEqual(compareDn(dn, read), []);
  });

  it("keeps RFC 4514 special characters as plain values (no string parsing involved)", () => {
    const dn: StellantisDn = { ...DN, O: 'Acme, Inc. (EU) + Co = "Best"', ST: "#1 Region" };
    const read = readName(buildName(dn));
    assert.deepEqual(compareDn(dn, read), []);
    assert.equal(read.find((a) => a.type === "O")?.stringType, "UTF8String"); // '"' is not PrintableString
    assert.equal(read.find((a) => a.type === "ST")?.stringType, "UTF8String"); // nor is '#'
  });

  it("reads a DER Name given as bytes", () => {
    const der = buildName(DN);
    assert.deepEqual(
      readName(der).map((a) => a.value),
      DN_ORDER.map((k) => DN[k]),
    );
    const copy = new Uint8Array(der).buffer;
    assert.deepEqual(
      readName(copy).map((a) => a.type),
      [...DN_ORDER],
    );
  });

  // The exact bytes of these subjects as credd has always sent them (first from @peculiar/x509's
  // JSON form, then from a hand-written encoder, now from the JSON form again): a CA comparing
  // subjects byte by byte sees no change, and an x509 upgrade that changed them would fail here.
  const PINNED: Array<[string, StellantisDn, string]> = [
    [
      "accents (UTF8String for L and O)",
      { ...DN, L: "Saint-Étienne", O: "Société & Co" },
      "3081aa310b3009060355040613024652311630140603550408130d496c65206465204672616e63653117301506035504070c0e5361696e742dc3897469656e6e6531173015060355040a0c0e536f6369c3a974c3a9202620436f311a3018060355040b131150726f6772616d7320506172746e65727331123010060355040313094d5a503132383734353121301f06092a864886f70d0109011612697440706172746e65722e6578616d706c65",
    ],
    [
      "RFC 4514 specials (UTF8String for ST and O)",
      { ...DN, L: "Saint-Étienne", O: 'Acme, Inc. (EU) + Co = "Best"', ST: "#1 Region" },
      "3081b5310b30090603550406130246523112301006035504080c09233120526567696f6e3117301506035504070c0e5361696e742dc3897469656e6e6531263024060355040a0c1d41636d652c20496e632e2028455529202b20436f203d20224265737422311a3018060355040b131150726f6772616d7320506172746e65727331123010060355040313094d5a503132383734353121301f06092a864886f70d0109011612697440706172746e65722e6578616d706c65",
    ],
  ];
  for (const [name, dn, hex] of PINNED) {
    it(`writes the same bytes as before: ${name}`, () => assert.equal(buildName(dn).toString("hex"), hex));
  }

  it("reads every string type a Name may use, and names a value that is no string the RFC 4514 way", () => {
    // T61String "Café" (Latin-1), BMPString "Zürich", UniversalString "Ωmega", NumericString
    // serialNumber, VisibleString "R&D", and a CN that is an INTEGER; checked with openssl asn1parse.
    const hex =
      "3071310d300b060355040a1404436166e93115301306035504071e0c005a00fc0072006900630068311d301b06035504081c14000003a90000006d0000006500000067000000613110300e0603550405120730303432203137310c300a060355040b1a03522644310a30080603550403020105";
    assert.deepEqual(
      readName(Buffer.from(hex, "hex")).map((a) => [a.type, a.value, a.stringType]),
      [
        ["O", "Café", "TeletexString"],
        ["L", "Zürich", "BMPString"],
        ["ST", "Ωmega", "UniversalString"],
        ["SERIALNUMBER", "0042 17", "NumericString"],
        ["OU", "R&D", "VisibleString"],
        ["CN", "#020105", "tag 0x02"],
      ],
    );
  });

  it("flattens a multi-valued RDN in encoded order", () => {
    // SEQUENCE { SET { CN=a, OU=b }, SET { C=FR } }, all PrintableString.
    const der = Buffer.from("30233114300806035504031301613008060355040b130162310b3009060355040613024652", "hex");
    assert.deepEqual(
      readName(der).map((a) => `${a.type}=${a.value}`),
      ["CN=a", "OU=b", "C=FR"],
    );
  });

  const refusals: Array<[string, Partial<StellantisDn>, RegExp]> = [
    ["country name spelled out", { C: "France" }, /C must be a two-letter/],
    ["lower-case country", { C: "fr" }, /C must be a two-letter/],
    ["empty CN", { CN: "" }, /CN is empty/],
    ["non-ASCII email", { emailAddress: "it@société.example" }, /emailAddress must be ASCII/],
  ];
  for (const [name, patch, re] of refusals) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => subjectName({ ...DN, ...patch } as StellantisDn),
        (e: unknown) => e instanceof RefusedError && e.check === "dn" && re.test(e.message),
      );
    });
  }

  it("refuses bytes that are not a DER Name", () => {
    assert.throws(
      () => readName(Buffer.from("hello")),
      (e: unknown) => e instanceof RefusedError && e.check === "parse",
    );
    const der = buildName(DN);
    assert.throws(() => readName(der.subarray(0, der.length - 3)), /not valid DER/);
  });
});

describe("isPrintableString", () => {
  const table: Array<[string, boolean]> = [
    ["Ile de France", true],
    ["Free2Move", true],
    ["A-Z (x), y/z: 'q'+=?.", true],
    ["Société", false],
    ["A & B", false],
    ["it@partner.example", false],
    ["under_score", false],
  ];
  for (const [text, want] of table) it(JSON.stringify(text), () => assert.equal(isPrintableString(text), want));
});

describe("formatDn", () => {
  it("prints in Stellantis order for people", () => {
    assert.equal(formatDn(DN), "C=FR, ST=Ile de France, L=Paris, O=Free2Move, OU=Programs Partners, CN=MZP128745, emailAddress=it@partner.example");
  });
});
