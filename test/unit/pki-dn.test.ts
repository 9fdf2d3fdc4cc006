// The Stellantis DN: exact string types and order when built, attribute-by-attribute comparison.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildName, compareDn, DN_ORDER, formatDn, isPrintableString, readName, type DnAttribute } from "../../src/pki/dn.js";
import { RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";

const DN: StellantisDn = dnFor("MZP128745");

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

describe("buildName and readName", () => {
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
    const dn: StellantisDn = { ...DN, O: "Acme, Inc. (EU) + Co = \"Best\"", ST: "#1 Region" };
    const read = readName(buildName(dn));
    assert.deepEqual(compareDn(dn, read), []);
    assert.equal(read.find((a) => a.type === "O")?.stringType, "UTF8String"); // '"' is not PrintableString
    assert.equal(read.find((a) => a.type === "ST")?.stringType, "UTF8String"); // nor is '#'
  });

  it("reads a DER Name given as bytes", () => {
    const der = buildName(DN).toArrayBuffer();
    assert.deepEqual(readName(Buffer.from(der)).map((a) => a.value), DN_ORDER.map((k) => DN[k]));
    assert.deepEqual(readName(der).map((a) => a.type), [...DN_ORDER]);
  });

  const refusals: Array<[string, Partial<StellantisDn>, RegExp]> = [
    ["country name spelled out", { C: "France" }, /C must be a two-letter/],
    ["lower-case country", { C: "fr" }, /C must be a two-letter/],
    ["empty CN", { CN: "" }, /CN is empty/],
    ["non-ASCII email", { emailAddress: "it@société.example" }, /emailAddress must be ASCII/],
  ];
  for (const [name, patch, re] of refusals) {
    it(`refuses ${name}`, () => {
      assert.throws(() => buildName({ ...DN, ...patch } as StellantisDn), (e: unknown) => e instanceof RefusedError && e.check === "dn" && re.test(e.message));
    });
  }

  it("refuses bytes that are not a DER Name", () => {
    assert.throws(() => readName(Buffer.from("hello")), (e: unknown) => e instanceof RefusedError && e.check === "parse");
    const der = Buffer.from(buildName(DN).toArrayBuffer());
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
    assert.equal(
      formatDn(DN),
      "C=FR, ST=Ile de France, L=Paris, O=Free2Move, OU=Programs Partners, CN=MZP128745, emailAddress=it@partner.example",
    );
  });
});
