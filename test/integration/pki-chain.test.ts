// verifyChain, checkLeafUsage and checkValidity against CAs, intermediates and leaves made by real openssl.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { parseCertificate, type CertInfo } from "../../src/pki/certs.js";
import { checkLeafUsage, checkValidity, verifyChain } from "../../src/pki/chain.js";
import { RefusedError } from "../../src/errors.js";
import type { StellantisDn } from "../../src/config/types.js";
import { dnFor } from "../helpers/credd.js";
import {
  crossCertify,
  makeCa,
  makeIntermediateCa,
  makeKeyAndCert,
  makeTempDir,
  signCsrWithExtensions,
  type KeyAndCert,
  type TestCa,
} from "../helpers/openssl.js";

const DN: StellantisDn = dnFor("MZP128745");
const DAY = 86_400_000;
/** The present, read at each use: certificates made during the tests start at the second they were made. */
const now = (): Date => new Date();

let dir: string;
let rootCa: TestCa;
let root: CertInfo;
let leafDirect: KeyAndCert;
let issuing: TestCa;
let issuingInfo: CertInfo;
let leafViaInt: CertInfo;

const cert = (pem: string): CertInfo => parseCertificate(pem);

before(() => {
  dir = makeTempDir("credd-pki-chain-");
  rootCa = makeCa(dir);
  root = cert(rootCa.certPem);
  leafDirect = makeKeyAndCert(dir, DN, { ca: rootCa });
  issuing = makeIntermediateCa(rootCa, dir, { pathlen: 0 });
  issuingInfo = cert(issuing.certPem);
  leafViaInt = cert(makeKeyAndCert(dir, DN, { ca: issuing }).certPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function chainRefused(promise: Promise<unknown>, re: RegExp): Promise<RefusedError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RefusedError, `expected a RefusedError, got ${String(caught)}`);
  assert.equal(caught.check, "chain");
  assert.match(caught.message, re);
  return caught;
}

function refused(fn: () => void, check: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RefusedError, `expected a RefusedError, got ${String(e)}`);
    assert.equal(e.check, check);
    assert.match(e.message, re);
    return true;
  });
}

const fps = (certs: CertInfo[]): string[] => certs.map((c) => c.sha256);

describe("verifyChain: paths that reach the pinned CA", () => {
  it("accepts root → leaf", async () => {
    const leaf = cert(leafDirect.certPem);
    const r = await verifyChain(leaf, [], [root], now());
    assert.deepEqual(fps(r.chain), fps([leaf, root]));
    assert.deepEqual(r.intermediates, []);
  });

  it("accepts root → intermediate → leaf with the intermediate among the files", async () => {
    const r = await verifyChain(leafViaInt, [root, issuingInfo, leafViaInt], [root], now());
    assert.deepEqual(fps(r.chain), fps([leafViaInt, issuingInfo, root]));
    assert.deepEqual(fps(r.intermediates), fps([issuingInfo]));
  });

  it("accepts the intermediate from stellantis.ca_file instead of the files", async () => {
    const r = await verifyChain(leafViaInt, [], [root, issuingInfo], now());
    assert.deepEqual(fps(r.chain), fps([leafViaInt, issuingInfo, root]));
    assert.deepEqual(fps(r.intermediates), fps([issuingInfo]));
  });

  it("accepts a pinned intermediate as the anchor, and still lists it for chain.pem", async () => {
    const r = await verifyChain(leafViaInt, [], [issuingInfo], now());
    assert.deepEqual(fps(r.chain), fps([leafViaInt, issuingInfo]));
    assert.deepEqual(fps(r.intermediates), fps([issuingInfo]));
    // Above the anchor nothing matters, not even a same-named root that did not sign it.
    const impostor = cert(makeCa(dir).certPem);
    const r2 = await verifyChain(leafViaInt, [impostor], [issuingInfo], now());
    assert.deepEqual(fps(r2.chain), fps([leafViaInt, issuingInfo]));
  });

  it("ignores unrelated certificates among the files", async () => {
    const other = cert(makeCa(dir, { cn: "Unrelated CA" }).certPem);
    const r = await verifyChain(leafViaInt, [other, issuingInfo], [root], now());
    assert.deepEqual(fps(r.chain), fps([leafViaInt, issuingInfo, root]));
  });
});

describe("verifyChain: refusals", () => {
  it("refuses a missing intermediate instead of a one-certificate chain", async () => {
    const err = await chainRefused(verifyChain(leafViaInt, [root], [root], now()), /missing intermediate/);
    assert.match(err.message, /signed by "C=FR, O=Test Stellantis, CN=Test Stellantis Issuing CA"/);
    assert.match(err.message, /neither in the files given nor in stellantis\.ca_file/);
  });

  it("refuses a foreign CA with the same name as the pinned one (pinning by fingerprint)", async () => {
    const foreignCa = makeCa(dir); // same C, O and CN as rootCa, another key
    const foreign = cert(foreignCa.certPem);
    assert.equal(foreign.subjectText, root.subjectText);
    const leaf = cert(makeKeyAndCert(dir, DN, { ca: foreignCa }).certPem);
    // With the foreign CA among the files: the path reaches it, and it is not pinned.
    await chainRefused(
      verifyChain(leaf, [foreign], [root], now()),
      /does not chain to the configured Stellantis CA.*different CA using the same name/,
    );
    // Without it: the pinned CA of that name did not sign the leaf.
    await chainRefused(verifyChain(leaf, [], [root], now()), /does not verify.*does not chain to the configured Stellantis CA/);
  });

  it("refuses an expired intermediate", async () => {
    const shortLived = makeIntermediateCa(rootCa, dir, { cn: "Short Lived CA", days: 10 });
    const info = cert(shortLived.certPem);
    const leaf = cert(makeKeyAndCert(dir, DN, { ca: shortLived }).certPem);
    await verifyChain(leaf, [info], [root], now()); // fine today
    const later = new Date(now().getTime() + 30 * DAY);
    await chainRefused(verifyChain(leaf, [info], [root], later), /intermediate "C=FR, O=Test Stellantis, CN=Short Lived CA" expired on \d{4}-/);
  });

  it("refuses an expired pinned CA", async () => {
    const later = new Date(root.notAfter.getTime() + DAY);
    await chainRefused(verifyChain(cert(leafDirect.certPem), [], [root], later), /Stellantis CA certificate .* expired on/);
  });

  it("refuses an issuer without CA:TRUE (a leaf's key used to sign another leaf)", async () => {
    const issuerLeaf = cert(leafDirect.certPem);
    assert.equal(issuerLeaf.isCa, false);
    const victim = cert(makeKeyAndCert(dir, { ...DN, CN: "MZP999999" }, { ca: leafDirect }).certPem);
    await chainRefused(
      verifyChain(victim, [issuerLeaf], [root], now()),
      /issuer "C=FR, .*CN=MZP128745.*" .* is not a CA \(basicConstraints cA=FALSE\)/,
    );
  });

  it("refuses an intermediate whose keyUsage lacks keyCertSign", async () => {
    const noSign = makeIntermediateCa(rootCa, dir, { cn: "No KeyCertSign CA", keyUsage: "critical,digitalSignature,cRLSign" });
    const leaf = cert(makeKeyAndCert(dir, DN, { ca: noSign }).certPem);
    await chainRefused(verifyChain(leaf, [cert(noSign.certPem)], [root], now()), /without keyCertSign/);
  });

  it("refuses a path longer than an issuer's pathLenConstraint", async () => {
    // issuing has pathlen:0, so it may sign leaves but not another CA.
    const sub = makeIntermediateCa(issuing, dir, { cn: "Sub CA" });
    const leaf = cert(makeKeyAndCert(dir, DN, { ca: sub }).certPem);
    await chainRefused(
      verifyChain(leaf, [cert(sub.certPem), issuingInfo], [root], now()),
      /allows 0 CA certificate\(s\) below it \(pathLenConstraint\)/,
    );
    // The same depth under a root without pathlen is fine.
    const open = makeIntermediateCa(rootCa, dir, { cn: "Open CA" });
    const sub2 = makeIntermediateCa(open, dir, { cn: "Sub CA 2" });
    const leaf2 = cert(makeKeyAndCert(dir, DN, { ca: sub2 }).certPem);
    const r = await verifyChain(leaf2, [cert(sub2.certPem), cert(open.certPem)], [root], now());
    assert.equal(r.chain.length, 4);
  });

  it("refuses a self-signed leaf", async () => {
    const self = cert(makeKeyAndCert(dir, DN).certPem);
    assert.equal(self.selfSigned, true);
    await chainRefused(verifyChain(self, [root], [root], now()), /is self-signed: it was not issued by the Stellantis CA/);
  });

  it("refuses the pinned CA or another CA certificate given as the leaf", async () => {
    await chainRefused(verifyChain(root, [], [root], now()), /is the Stellantis CA certificate itself/);
    await chainRefused(verifyChain(issuingInfo, [], [root], now()), /is a CA certificate/);
  });

  it("refuses a leaf whose signature was tampered with", async () => {
    const der = Buffer.from(cert(leafDirect.certPem).der);
    const at = der.length - 10; // inside the signature BIT STRING, the last field
    der[at] = der[at]! ^ 0x01;
    const tampered = parseCertificate(der);
    await chainRefused(verifyChain(tampered, [], [root], now()), /signature of certificate .* does not verify/);
  });

  it("refuses a loop of cross-certificates instead of climbing forever", async () => {
    const a = makeCa(dir, { cn: "Loop CA A" });
    const b = makeCa(dir, { cn: "Loop CA B" });
    const aByB = cert(crossCertify(a, b, dir)); // subject A, signed by B's key
    const bByA = cert(crossCertify(b, a, dir)); // subject B, signed by A's key
    const leaf = cert(makeKeyAndCert(dir, DN, { ca: a }).certPem);
    await chainRefused(verifyChain(leaf, [aByB, bByA], [root], now()), /form a loop/);
    // With A's own root pinned, the same certificates give a short path to it.
    const r = await verifyChain(leaf, [aByB, bByA], [cert(a.certPem)], now());
    assert.deepEqual(fps(r.chain), fps([leaf, cert(a.certPem)]));
  });

  it("refuses a chain longer than 8 certificates, and accepts one of 8", async () => {
    const cas: TestCa[] = [];
    for (let i = 0; i < 7; i++) cas.push(makeIntermediateCa(cas[i - 1] ?? rootCa, dir, { cn: `Deep CA ${i}` }));
    const infos = cas.map((c) => cert(c.certPem));
    const deep = cert(makeKeyAndCert(dir, DN, { ca: cas[6]! }).certPem); // leaf + 7 intermediates + root = 9
    await chainRefused(verifyChain(deep, infos, [root], now()), /longer than 8 certificates/);
    const eight = cert(makeKeyAndCert(dir, DN, { ca: cas[5]! }).certPem);
    const r = await verifyChain(eight, infos, [root], now());
    assert.equal(r.chain.length, 8);
    assert.equal(r.intermediates.length, 6);
  });

  it("refuses when no CA is configured", async () => {
    await chainRefused(verifyChain(cert(leafDirect.certPem), [root], [], now()), /stellantis\.ca_file holds no certificate/);
  });
});

describe("checkValidity", () => {
  it("accepts a certificate inside its window and refuses one outside", () => {
    const leaf = cert(leafDirect.certPem);
    checkValidity(leaf, now());
    checkValidity(leaf, leaf.notBefore);
    checkValidity(leaf, leaf.notAfter);
    refused(() => checkValidity(leaf, new Date(leaf.notAfter.getTime() + 1000)), "validity", /expired on/);
  });

  it("refuses an expired leaf", () => {
    const leaf = cert(
      makeKeyAndCert(dir, DN, {
        ca: rootCa,
        notBefore: new Date(now().getTime() - 400 * DAY),
        notAfter: new Date(now().getTime() - 35 * DAY),
      }).certPem,
    );
    refused(() => checkValidity(leaf, now()), "validity", /expired on \d{4}-\d\d-\d\dT/);
  });

  it("refuses a leaf not valid yet, pointing at the clock", () => {
    const leaf = cert(
      makeKeyAndCert(dir, DN, {
        ca: rootCa,
        notBefore: new Date(now().getTime() + 2 * DAY),
        notAfter: new Date(now().getTime() + 300 * DAY),
      }).certPem,
    );
    refused(() => checkValidity(leaf, now()), "validity", /not valid before .*check this host's clock/);
  });
});

describe("checkLeafUsage", () => {
  function signed(extensions: string[]): CertInfo {
    const out = join(dir, `custom-${Math.random().toString(36).slice(2)}.pem`);
    return cert(signCsrWithExtensions(rootCa, leafDirect.csrPath, out, extensions));
  }

  it("accepts extendedKeyUsage clientAuth (what makeKeyAndCert gives)", () => {
    checkLeafUsage(cert(leafDirect.certPem));
  });

  it("accepts a leaf with neither keyUsage nor extendedKeyUsage, and anyExtendedKeyUsage", () => {
    checkLeafUsage(signed(["basicConstraints = CA:FALSE"]));
    checkLeafUsage(signed(["extendedKeyUsage = anyExtendedKeyUsage"]));
  });

  it("refuses extendedKeyUsage serverAuth only", () => {
    const leaf = signed(["basicConstraints = CA:FALSE", "keyUsage = critical,digitalSignature,keyEncipherment", "extendedKeyUsage = serverAuth"]);
    refused(() => checkLeafUsage(leaf), "usage", /extendedKeyUsage serverAuth without clientAuth/);
  });

  it("accepts serverAuth together with clientAuth", () => {
    checkLeafUsage(signed(["extendedKeyUsage = serverAuth,clientAuth"]));
  });

  it("refuses keyUsage without digitalSignature", () => {
    const leaf = signed(["keyUsage = critical,keyEncipherment", "extendedKeyUsage = clientAuth"]);
    refused(() => checkLeafUsage(leaf), "usage", /keyUsage keyEncipherment without digitalSignature/);
  });

  it("refuses a CA certificate", () => {
    refused(() => checkLeafUsage(issuingInfo), "usage", /is a CA certificate/);
  });
});
