// ZIP attachments: certificates in an archive are found, every cap holds (entries, sizes, ratio, a
// ZIP inside the ZIP), entry names never become paths, and a ZIP bomb is cut off, not inflated.
// Archives made with fflate's own writer and with real certificates from openssl.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { zipSync } from "fflate";
import { unzipCertificates, ZIP_CAPS } from "../../src/mailbox/zip.js";
import { makeCa, makeTempDir, openssl } from "../helpers/openssl.js";

const dir = makeTempDir("credd-int-zip-");
const ca = makeCa(dir);
const der = join(dir, "ca.der");
openssl(["x509", "-in", ca.certPath, "-outform", "DER", "-out", der]);
const zip = (entries: Record<string, Uint8Array>, level: 0 | 6 | 9 = 6) => Buffer.from(zipSync(entries, { level }));
const text = (s: string) => new TextEncoder().encode(s);

test("certificates in a ZIP (PEM, DER, a folder, macOS metadata) become files labelled by the archive, never paths", () => {
  const z = zip({
    "certs/../../etc/cron.d/MZP128745.pem": text(ca.certPem),
    "certs/ca.cer": readFileSync(der),
    "__MACOSX/certs/._ca.cer": text("junk"),
    "README.txt": text("Your certificate, with the Stellantis CA."),
  });
  const r = unzipCertificates("reply.zip", z, "fleet-prod");
  assert.deepEqual(r.stops, []);
  assert.deepEqual(r.files.map((f) => f.name).sort(), ["reply.zip/MZP128745.pem", "reply.zip/ca.cer"]);
  assert.equal(r.files.find((f) => f.name.endsWith(".pem"))!.bytes.toString(), ca.certPem);
});

test("a ZIP bomb is cut off at the entry cap, not inflated", () => {
  const bomb = zip({ "MZP128745.pem": new Uint8Array(64 * 1024 * 1024) }, 9);
  assert.ok(bomb.length < 200 * 1024, `packed: ${bomb.length}`);
  const before = process.memoryUsage().rss;
  const r = unzipCertificates("bomb.zip", bomb, "fleet-prod");
  assert.deepEqual(r.files, []);
  assert.equal(r.stops.length, 1);
  assert.match(r.stops[0]!.why, /would inflate to 67108864 bytes|inflates to more than 1048576 bytes|a ZIP bomb/);
  assert.match(r.stops[0]!.fix, /credd ingest fleet-prod FILE/);
  assert.ok(process.memoryUsage().rss - before < 48 * 1024 * 1024, "not inflated whole");
});

test("a bomb whose header lies about its size is cut off while inflating", () => {
  const bomb = Buffer.from(zip({ "a.pem": new Uint8Array(8 * 1024 * 1024) }, 9));
  // Rewrite the declared sizes (local header and central directory) to say 100 bytes.
  for (const [sig, at] of [
    [0x04034b50, 22],
    [0x02014b50, 24],
  ] as const) {
    for (let i = 0; i + 4 <= bomb.length; i++) if (bomb.readUInt32LE(i) === sig) bomb.writeUInt32LE(100, i + at);
  }
  const r = unzipCertificates("liar.zip", bomb, "fleet-prod");
  assert.deepEqual(r.files, []);
  assert.match(r.stops[0]?.why ?? "", /inflates to more than|inflates more than 100 times|cannot be inflated/);
});

test("caps: too many entries, too much in all, a ZIP inside the ZIP, not a ZIP, no certificate", () => {
  const many: Record<string, Uint8Array> = {};
  for (let i = 0; i < ZIP_CAPS.entries + 1; i++) many[`c${i}.pem`] = text(ca.certPem);
  assert.match(unzipCertificates("many.zip", zip(many), "x").stops[0]!.why, /more than 32 entries/);
  const big: Record<string, Uint8Array> = {};
  for (let i = 0; i < 5; i++) big[`c${i}.pem`] = new Uint8Array(1000 * 1024).fill(65 + i);
  assert.match(unzipCertificates("big.zip", zip(big, 0), "x").stops[0]!.why, /more than 4194304 bytes in all/);
  const nested = unzipCertificates("outer.zip", zip({ "inner.zip": zip({ "c.pem": text(ca.certPem) }) }), "x");
  assert.match(nested.stops[0]!.why, /outer\.zip\/inner\.zip is a ZIP inside the ZIP/);
  assert.match(unzipCertificates("x.zip", Buffer.from("<html>login</html>"), "x").stops[0]!.why, /holds no certificate file|not a ZIP archive/);
  assert.match(unzipCertificates("docs.zip", zip({ "a.txt": text("hello") }), "x").stops[0]!.why, /holds no certificate file/);
});
