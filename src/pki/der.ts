// Minimal DER: reading tag-length-values and X.501 Names (OIDs, values, exact string types), and
// writing the few types a PKCS#10 request needs. A Name is a few hundred bytes and a CSR under a
// kilobyte, so doing it here costs less than loading @peculiar/x509's ASN.1 stack (~150 ms, 22 MiB).

export interface Tlv {
  tag: number;
  /** Offset of the tag: the whole TLV is [offset, end). */
  offset: number;
  /** Offset of the content (after tag and length). */
  start: number;
  /** Offset just past the content. */
  end: number;
}

export class DerError extends Error {
  override name = "DerError";
}

/** Reads one tag-length-value at `pos`; refuses indefinite lengths and overruns (not DER). */
export function readTlv(buf: Uint8Array, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError(`truncated at byte ${pos}`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${pos}`);
  let length = buf[pos + 1]!;
  let start = pos + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at byte ${pos}`);
    if (count > 4) throw new DerError(`length too large at byte ${pos}`);
    if (start + count > limit) throw new DerError(`truncated length at byte ${pos}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new DerError(`value at byte ${pos} runs past the end (${end} > ${limit})`);
  return { tag, offset: pos, start, end };
}

/** The children of a constructed value. */
export function readChildren(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError("empty OBJECT IDENTIFIER");
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join(".");
}

const STRING_TYPES: Record<number, { name: string; decode: (b: Buffer) => string }> = {
  0x0c: { name: "UTF8String", decode: (b) => b.toString("utf8") },
  0x12: { name: "NumericString", decode: (b) => b.toString("latin1") },
  0x13: { name: "PrintableString", decode: (b) => b.toString("latin1") },
  // T.61 is not Latin-1, but every tool (OpenSSL included) reads it that way.
  0x14: { name: "TeletexString", decode: (b) => b.toString("latin1") },
  0x16: { name: "IA5String", decode: (b) => b.toString("latin1") },
  0x1a: { name: "VisibleString", decode: (b) => b.toString("latin1") },
  0x1c: { name: "UniversalString", decode: decodeUtf32be },
  0x1e: { name: "BMPString", decode: (b) => Buffer.from(b).swap16().toString("utf16le") },
};

function decodeUtf32be(b: Buffer): string {
  let out = "";
  for (let i = 0; i + 3 < b.length; i += 4) out += String.fromCodePoint(b.readUInt32BE(i));
  return out;
}

export interface DerAttribute {
  oid: string;
  value: string;
  /** "PrintableString", "UTF8String", ... or "tag 0xNN" for a non-string value (then `value` is RFC 4514 `#hex`). */
  stringType: string;
}

/** Reads a DER Name (SEQUENCE OF SET OF AttributeTypeAndValue), flattening multi-valued RDNs in order. */
export function readNameDer(bytes: Uint8Array): DerAttribute[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const name = readTlv(buf, 0);
  if (name.tag !== 0x30) throw new DerError("a Name must be a SEQUENCE");
  if (name.end !== buf.length) throw new DerError("trailing bytes after the Name");
  const out: DerAttribute[] = [];
  for (const rdn of readChildren(buf, name)) {
    if (rdn.tag !== 0x31) throw new DerError("an RDN must be a SET");
    for (const atv of readChildren(buf, rdn)) {
      if (atv.tag !== 0x30) throw new DerError("an attribute must be a SEQUENCE");
      const [type, value] = readChildren(buf, atv);
      if (!type || !value || type.tag !== 0x06) throw new DerError("an attribute needs a type OID and a value");
      const oid = decodeOid(buf.subarray(type.start, type.end));
      const known = STRING_TYPES[value.tag];
      const content = buf.subarray(value.start, value.end);
      if (known) out.push({ oid, value: known.decode(content), stringType: known.name });
      else out.push({ oid, value: `#${tlvHex(buf, atv, value)}`, stringType: `tag 0x${value.tag.toString(16).padStart(2, "0")}` });
    }
  }
  return out;
}

/** Hex of the whole value TLV (tag and length included), as RFC 4514 writes unknown values. */
function tlvHex(buf: Buffer, atv: Tlv, value: Tlv): string {
  // The value is the last child of the attribute, so its TLV starts where the type's TLV ended.
  const typeTlv = readTlv(buf, atv.start, atv.end);
  return buf.subarray(typeTlv.end, value.end).toString("hex");
}

// Writing. Each function returns one complete TLV; constructed types take their children's TLVs.

/** One TLV with a definite length in the shortest form (DER). */
export function derTlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    head = [tag, 0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from(head), content]);
}

export function derSequence(...children: Uint8Array[]): Buffer {
  return derTlv(0x30, Buffer.concat(children));
}

/** SET OF with its elements in the order given: callers with more than one element sort them (X.690 11.6). */
export function derSet(...children: Uint8Array[]): Buffer {
  return derTlv(0x31, Buffer.concat(children));
}

export function derNull(): Buffer {
  return Buffer.from([0x05, 0x00]);
}

/** A non-negative INTEGER small enough for a version number. */
export function derSmallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 127) throw new RangeError(`derSmallInteger: ${value} is out of range`);
  return Buffer.from([0x02, 0x01, value]);
}

/** A BIT STRING of whole bytes (no unused bits), as signatures are. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derTlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

export function derOid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`derOid: "${dotted}" is not a dotted OID`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39)) throw new RangeError(`derOid: "${dotted}" is not a valid OID`);
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    const base128: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return derTlv(0x06, Buffer.from(out));
}

/** Universal string tags for the DN attribute values credd writes. */
export const STRING_TAG = { UTF8String: 0x0c, PrintableString: 0x13, IA5String: 0x16 } as const;

export function derString(type: keyof typeof STRING_TAG, text: string): Buffer {
  return derTlv(STRING_TAG[type], Buffer.from(text, type === "UTF8String" ? "utf8" : "latin1"));
}
