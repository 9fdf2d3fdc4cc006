// The DER writer: shortest lengths, OIDs, and what it writes reads back through the DER reader.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeOid, derBitString, derNull, derOid, derSequence, derSet, derSmallInteger, derString, derTlv, readChildren, readTlv } from "../../src/pki/der.js";

describe("derTlv lengths", () => {
  const table: Array<[number, string]> = [
    [0, "0400"],
    [1, "0401"],
    [127, "047f"],
    [128, "048180"],
    [255, "0481ff"],
    [256, "04820100"],
    [65535, "0482ffff"],
    [65536, "0483010000"],
  ];
  for (const [n, head] of table) {
    it(`${n} bytes: header ${head}, reads back`, () => {
      const tlv = derTlv(0x04, Buffer.alloc(n, 0xab));
      assert.equal(tlv.subarray(0, head.length / 2).toString("hex"), head);
      assert.equal(tlv.length, head.length / 2 + n);
      const read = readTlv(tlv, 0);
      assert.deepEqual(read, { tag: 0x04, offset: 0, start: head.length / 2, end: tlv.length });
    });
  }
});

describe("derOid", () => {
  const table: Array<[string, string]> = [
    ["2.5.4.3", "0603550403"], // commonName
    ["1.2.840.113549.1.9.1", "06092a864886f70d010901"], // emailAddress
    ["1.2.840.113549.1.1.11", "06092a864886f70d01010b"], // sha256WithRSAEncryption
    ["1.2.840.10045.4.3.2", "06082a8648ce3d040302"], // ecdsa-with-SHA256
    ["2.999.3", "0603883703"], // first subidentifier above 127
  ];
  for (const [oid, hex] of table) {
    it(oid, () => {
      const der = derOid(oid);
      assert.equal(der.toString("hex"), hex);
      assert.equal(decodeOid(der.subarray(2)), oid);
    });
  }
  for (const bad of ["", "1", "3.1", "1.40", "1.2.x", "1..2"]) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => derOid(bad), RangeError));
  }
});

describe("the other types", () => {
  it("NULL, small INTEGER, BIT STRING, strings", () => {
    assert.equal(derNull().toString("hex"), "0500");
    assert.equal(derSmallInteger(0).toString("hex"), "020100");
    assert.throws(() => derSmallInteger(128), RangeError);
    assert.equal(derBitString(Buffer.from([1, 2])).toString("hex"), "0303000102");
    assert.equal(derString("PrintableString", "FR").toString("hex"), "13024652");
    assert.equal(derString("IA5String", "a@b").toString("hex"), "1603614062");
    assert.equal(derString("UTF8String", "É").toString("hex"), "0c02c389");
  });

  it("SEQUENCE and SET hold their children in the order given", () => {
    const seq = derSequence(derSmallInteger(1), derSet(derNull(), derNull()));
    assert.equal(seq.toString("hex"), "3009020101310405000500");
    const children = readChildren(seq, readTlv(seq, 0));
    assert.deepEqual(children.map((c) => [c.tag, c.offset]), [[0x02, 2], [0x31, 5]]);
  });
});
