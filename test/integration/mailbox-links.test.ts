// Links and ZIP archives in a reply, through the Maildir source and the real ingest: a link on an
// allowed host (direct, or redirected on the list) goes live; a login page, a 401, a redirect off
// the list or a host not allowed stop with one ops email; a ZIP attachment goes live and a ZIP bomb
// changes nothing. A real HTTPS server on loopback, its certificate signed by the Stellantis test CA.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { zipSync } from "fflate";
import { composeReply, deliverToMaildir } from "../helpers/mailbox.js";
import { mailboxWorld, MZP, type MailboxWorld } from "../helpers/mailbox-world.js";
import { makeCa, makeTempDir, type TestCa } from "../helpers/openssl.js";
import { makeCert } from "../helpers/tls.js";

let ca: TestCa;
let server: Server;
let base: string;
/** The certificate the download page serves, set per test. */
let served = "";

before(async () => {
  ca = makeCa(makeTempDir("credd-int-links-ca-"));
  const tls = makeCert(
    { dir: ca.dir, caPem: ca.certPem, caPath: ca.certPath, caKeyPath: ca.keyPath },
    { subject: "/CN=localhost", san: ["IP:127.0.0.1", "DNS:localhost"], usage: "server" },
  );
  server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/cert.pem")) {
      res.writeHead(200, { "content-type": "application/x-pem-file" });
      res.end(served);
    } else if (url === "/hop") {
      res.writeHead(302, { location: `${base}/cert.pem?after=hop` });
      res.end();
    } else if (url === "/off-list") {
      res.writeHead(302, { location: "https://elsewhere.example/cert.pem" });
      res.end();
    } else if (url === "/login") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<!DOCTYPE html><html><body><form action=/login><input name=user><input type=password name=pw></form></body></html>");
    } else if (url === "/private") {
      res.writeHead(401, { "www-authenticate": "Basic" });
      res.end("unauthorized");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const ALLOW = "  download_hosts: [127.0.0.1]";

async function replyWithLink(w: MailboxWorld, link: string): Promise<void> {
  served = w.certPem;
  const html = `<p>Dear partner,</p><p>Your certificate for ${MZP}: <a href="${link}">download</a>.</p><p>Client ID: 1a2b3c</p>`;
  deliverToMaildir(
    w.maildir,
    await composeReply({ inReplyTo: w.csrMessageId, html, text: `Your certificate for ${MZP}: ${link}\n\nClient ID: 1a2b3c\n` }),
  );
}

describe("links", () => {
  test("a link on an allowed host is downloaded and goes live, also through a redirect on the list", async () => {
    for (const path of ["/cert.pem", "/hop"]) {
      const w = await mailboxWorld(ca, ALLOW);
      await replyWithLink(w, `${base}${path}`);
      const r = await w.scan();
      assert.deepEqual(
        r.map((x) => [x.outcome, x.folder]),
        [["installed", "done"]],
        `${path}: ${JSON.stringify(r)}`,
      );
      assert.ok(w.live(), `${path}: live`);
      assert.equal(w.opsMails().length, 0);
      w.close();
    }
  });

  const stops: Array<[string, string, string, RegExp]> = [
    [
      "a host not on download_hosts",
      "",
      "/cert.pem",
      /its host 127\.0\.0\.1 is not on mailbox\.download_hosts.*\n.*download_hosts: \[127\.0\.0\.1\]/,
    ],
    ["a login page behind the link", ALLOW, "/login", /leads to a web page \(a login page\?\), not a certificate/],
    ["a 401", ALLOW, "/private", /asks for a login \(HTTP 401\)/],
    ["a redirect off the list", ALLOW, "/off-list", /redirects to https:\/\/elsewhere\.example, which credd may not follow/],
  ];
  for (const [name, extra, path, re] of stops) {
    test(`${name}: nothing live, the message in credd/refused, one ops email with the link and what to do`, async () => {
      const w = await mailboxWorld(ca, extra);
      await replyWithLink(w, `${base}${path}`);
      const r = await w.scan();
      assert.deepEqual(
        r.map((x) => [x.outcome, x.folder]),
        [["needs-person", "refused"]],
        JSON.stringify(r),
      );
      assert.equal(w.live(), undefined);
      const mails = w.opsMails();
      assert.equal(mails.length, 1);
      assert.match(mails[0]!.text, re);
      assert.ok(mails[0]!.text.includes(`${base}${path}`), "the link itself");
      assert.match(mails[0]!.text, /credd ingest fleet-prod FILE/);
      w.close();
    });
  }
});

describe("ZIP attachments", () => {
  test("a ZIP holding the certificate and the CA goes live", async () => {
    const w = await mailboxWorld(ca);
    const zip = Buffer.from(
      zipSync({ "cert/MZP128745.pem": new TextEncoder().encode(w.certPem), "cert/ca.pem": new TextEncoder().encode(ca.certPem) }),
    );
    deliverToMaildir(
      w.maildir,
      await composeReply({
        inReplyTo: w.csrMessageId,
        text: "Attached.",
        attachments: [{ filename: "certificate.zip", content: zip, contentType: "application/zip" }],
      }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["installed", "done"]],
      JSON.stringify(r),
    );
    assert.ok(w.live());
    w.close();
  });

  test("a ZIP bomb: cut off, nothing live, ops told", async () => {
    const w = await mailboxWorld(ca);
    const bomb = Buffer.from(zipSync({ "MZP128745.pem": new Uint8Array(64 * 1024 * 1024) }, { level: 9 }));
    deliverToMaildir(
      w.maildir,
      await composeReply({
        inReplyTo: w.csrMessageId,
        attachments: [{ filename: "certificate.zip", content: bomb, contentType: "application/zip" }],
      }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["needs-person", "refused"]],
    );
    assert.equal(w.live(), undefined);
    assert.match(w.opsMails()[0]!.text, /a ZIP bomb\?|would inflate to 67108864 bytes/);
    w.close();
  });
});
