// The Maildir source end to end in-process: replies composed like a mail client's, delivered into a
// real Maildir, matched to the CSR credd sent, taken in through the real ingest (real openssl CA,
// real SQLite file), moved to the done or refused folder, and ops emailed when credd cannot finish.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { statusText } from "../../src/cli/status-text.js";
import { buildStatus } from "../../src/core/status.js";
import { maildirFolder } from "../../src/mailbox/maildir.js";
import { dnFor } from "../helpers/credd.js";
import { composeReply, deliverToMaildir } from "../helpers/mailbox.js";
import { mailboxWorld, MZP, type MailboxWorld } from "../helpers/mailbox-world.js";
import { makeCa, makeKeyAndCert, makeTempDir, openssl, type TestCa } from "../helpers/openssl.js";

let ca: TestCa;
let caDir: string;
before(() => {
  caDir = makeTempDir("credd-int-mailbox-ca-");
  ca = makeCa(caDir);
});

type World = MailboxWorld;
const world = (extra = "") => mailboxWorld(ca, extra);
const live = (w: World) => w.live();

describe("Maildir: a reply is matched, taken in and moved", () => {
  test("a PEM attachment in a reply to the CSR email goes live; the message moves to credd/done, flagged seen", async () => {
    const w = await world();
    const key = deliverToMaildir(
      w.maildir,
      await composeReply({
        inReplyTo: w.csrMessageId,
        references: [w.csrMessageId],
        text: "Hello,\n\nplease find your certificate attached.\n\nClient ID: 1a2b3c\n",
        attachments: [{ filename: `${MZP}.pem`, content: w.certPem, contentType: "application/x-pem-file" }],
      }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.key, x.outcome, x.folder]),
      [[key, "installed", "done"]],
    );
    assert.ok(live(w), "a certificate is live");
    assert.equal(readFileSync(join(w.dir, "state/credentials/fleet-prod/live/cert.pem"), "utf8").trim(), w.certPem.trim());
    assert.deepEqual(w.inFolder("credd/done"), [`${key}:2,S`]);
    assert.deepEqual(readdirSync(join(w.maildir, "new")), [], "nothing left in new/");
    assert.equal(w.opsMails().length, 0, "nothing for ops: the client ID is the configured one");
    // Looked at again (the next poll, a restart): nothing is handled twice.
    assert.deepEqual(await w.scan(), []);
    w.close();
  });

  test("DER and PKCS#7 attachments (base64, with the CA beside the leaf) are taken in", async () => {
    for (const form of ["der", "p7b"] as const) {
      const w = await world();
      const file = join(w.dir, `signed.${form}`);
      if (form === "der") openssl(["x509", "-in", w.certPath, "-outform", "DER", "-out", file]);
      else openssl(["crl2pkcs7", "-nocrl", "-certfile", w.certPath, "-certfile", ca.certPath, "-outform", "DER", "-out", file]);
      deliverToMaildir(
        w.maildir,
        await composeReply({
          inReplyTo: w.csrMessageId,
          text: "Your certificate.",
          textEncoding: "base64",
          attachments: [
            { filename: `${MZP}.${form === "der" ? "cer" : "p7b"}`, content: readFileSync(file), contentType: "application/octet-stream" },
          ],
        }),
      );
      const r = await w.scan();
      assert.equal(r[0]?.outcome, "installed", `${form}: ${JSON.stringify(r)}`);
      assert.ok(live(w), `${form}: live`);
      w.close();
    }
  });

  test("an HTML-only reply from an allowed sender naming the MZP, the PEM pasted into the body, is matched by the MZP", async () => {
    const w = await world();
    const html = `<html><body><p>Dear partner,</p><p>Certificate for <b>${MZP}</b>:</p><pre>${w.certPem}</pre></body></html>`;
    deliverToMaildir(w.maildir, await composeReply({ subject: `Your certificate ${MZP}`, html }));
    const r = await w.scan();
    assert.equal(r[0]?.outcome, "installed", JSON.stringify(r));
    const row = w.ctx.db.prepare("SELECT matched_by FROM mailbox_messages").get() as { matched_by: string };
    assert.equal(row.matched_by, "mzp");
    w.close();
  });

  test("a forwarded copy (message/rfc822) of the reply, from a sender on mailbox.senders, is matched by the MZP", async () => {
    const w = await world('  senders: ["@stellantis.example", "alice@partner.example"]');
    const inner = await composeReply({
      inReplyTo: w.csrMessageId,
      text: "Certificate attached.",
      attachments: [{ filename: "cert.crt", content: w.certPem }],
    });
    const fwd = { subject: "Fwd: RE: CSR for MZP128745: new client certificate", text: "FYI", forward: inner };
    deliverToMaildir(w.maildir, await composeReply({ ...fwd, from: "Bob <bob@partner.example>" }));
    assert.deepEqual(
      (await w.scan()).map((x) => x.outcome),
      ["ignored"],
      "a forwarder not on the list: left alone",
    );
    deliverToMaildir(w.maildir, await composeReply({ ...fwd, from: "Alice <alice@partner.example>" }));
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["installed", "done"]],
      JSON.stringify(r),
    );
    w.close();
  });
});

describe("Maildir: what credd does not take", () => {
  test("a forged sender with a valid-looking certificate for another key: refused as `credd ingest` would, ops told, live/ untouched", async () => {
    const w = await world();
    const other = makeKeyAndCert(w.dir, dnFor(MZP), { ca });
    deliverToMaildir(
      w.maildir,
      await composeReply({
        from: "Stellantis <noreply@stellantis.example>",
        subject: `Certificate ${MZP}`,
        text: "Here it is.",
        attachments: [{ filename: `${MZP}.pem`, content: readFileSync(other.certPath) }],
      }),
    );
    const r = await w.scan();
    assert.equal(r[0]?.outcome, "needs-person");
    assert.equal(r[0]?.folder, "refused");
    assert.equal(live(w), undefined, "nothing went live");
    assert.equal(w.inFolder("credd/refused").length, 1);
    const mails = w.opsMails();
    assert.equal(mails.length, 1, "one email to ops");
    assert.deepEqual(mails[0]!.to, ["ops@partner.example"]);
    assert.match(mails[0]!.text, /refused \(key-match\): certificate .* matches the key of|was not made for the key of fleet-prod's pending renewal/);
    assert.match(mails[0]!.text, /From: +"Stellantis" <noreply@stellantis.example>/);
    assert.match(mails[0]!.text, /credd ingest fleet-prod FILE/);
    w.close();
  });

  test("a message for another MZP, or from a sender not allowed, is left untouched and looked at once", async () => {
    const w = await world();
    const a = deliverToMaildir(
      w.maildir,
      await composeReply({ subject: "Certificate MZP999999", text: "for someone else", attachments: [{ filename: "x.pem", content: w.certPem }] }),
    );
    const b = deliverToMaildir(
      w.maildir,
      await composeReply({
        from: "Mallory <m@evil.example>",
        subject: `Certificate ${MZP}`,
        attachments: [{ filename: "x.pem", content: w.certPem }],
      }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => x.outcome),
      ["ignored", "ignored"],
    );
    assert.deepEqual(readdirSync(join(w.maildir, "new")).sort(), [a, b].sort(), "left where they were, unflagged");
    assert.equal(live(w), undefined);
    assert.equal(w.opsMails().length, 0);
    assert.deepEqual(await w.scan(), [], "not parsed again at the next scan");
    w.close();
  });

  test("an out-of-office auto-reply to the CSR email: moved to done, nothing taken, no email", async () => {
    const w = await world();
    deliverToMaildir(
      w.maildir,
      await composeReply({
        inReplyTo: w.csrMessageId,
        subject: "Automatic reply: CSR for MZP128745",
        headers: { "Auto-Submitted": "auto-replied" },
        text: "I am out of the office until Monday.",
      }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["auto-reply", "done"]],
    );
    assert.equal(w.opsMails().length, 0);
    w.close();
  });

  test("the same message twice: the second copy changes nothing and sends nothing", async () => {
    const w = await world();
    const other = makeKeyAndCert(w.dir, dnFor(MZP), { ca });
    const msg = await composeReply({
      inReplyTo: w.csrMessageId,
      messageId: "<same.1@stellantis.example>",
      attachments: [{ filename: "c.pem", content: readFileSync(other.certPath) }],
    });
    deliverToMaildir(w.maildir, msg);
    assert.equal((await w.scan())[0]?.outcome, "needs-person");
    deliverToMaildir(w.maildir, msg);
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["duplicate", "refused"]],
    );
    assert.equal(w.opsMails().length, 1, "ops told once");
    assert.equal(w.inFolder("credd/refused").length, 2);
    w.close();
  });

  test("a 30 MiB attachment is not read: ops are told, with the folder to find it in", async () => {
    const w = await world();
    const big = Buffer.alloc(30 * 1024 * 1024, 0x41);
    deliverToMaildir(
      w.maildir,
      await composeReply({ inReplyTo: w.csrMessageId, attachments: [{ filename: "cert.zip", content: big, contentType: "application/zip" }] }),
    );
    const r = await w.scan();
    assert.deepEqual(
      r.map((x) => [x.outcome, x.folder]),
      [["needs-person", "refused"]],
    );
    assert.match(w.opsMails()[0]!.text, /more than the 16777216 bytes credd reads/);
    assert.match(w.opsMails()[0]!.text, /Maildir\/\.credd\.refused/);
    w.close();
  });

  test("a reply with no certificate and a link on a host not allowed: ops get the link and the config line", async () => {
    const w = await world();
    deliverToMaildir(
      w.maildir,
      await composeReply({
        inReplyTo: w.csrMessageId,
        text: "Download your certificate here: https://download.stellantis.example/cert?id=42\n\nClient ID: 9z9z9z\n",
      }),
    );
    const r = await w.scan();
    assert.equal(r[0]?.outcome, "needs-person");
    const text = w.opsMails()[0]!.text;
    assert.match(text, /https:\/\/download\.stellantis\.example\/cert\?id=42/);
    assert.match(text, /download_hosts: \[download\.stellantis\.example\]/);
    assert.match(text, /client_id: 9z9z9z/, "the client ID the reply names, as a YAML line");
    // status shows the reply, why credd stopped, and the config line the reply implies.
    const view = await buildStatus(w.ctx);
    assert.deepEqual(view.mailbox && { source: view.mailbox.source, reading: view.mailbox.reading }, {
      source: `maildir:${w.maildir}`,
      reading: true,
    });
    const reply = view.credentials.find((c) => c.name === "fleet-prod")!.last_reply!;
    assert.equal(reply.outcome, "needs-person");
    assert.equal(reply.sender, "connectedcar@stellantis.example");
    assert.match(reply.reason ?? "", /not on mailbox\.download_hosts/);
    assert.deepEqual(reply.details, { client_id: "9z9z9z" });
    assert.deepEqual(reply.config_lines, ["client_id: 9z9z9z"]);
    const lines: string[] = [];
    statusText(view, (l) => lines.push(l));
    assert.ok(
      lines.some((l) => /^ {2}reply names +client_id: 9z9z9z \(not in the config/.test(l)),
      lines.join("\n"),
    );
    assert.equal(view.credentials.find((c) => c.name === "fleet-test")!.last_reply, null);
    w.close();
  });
});

describe("Maildir: crashes and restarts", () => {
  test("handled but not moved before a crash: the next scan finishes the move and handles nothing twice", async () => {
    const w = await world();
    const key = deliverToMaildir(
      w.maildir,
      await composeReply({ inReplyTo: w.csrMessageId, attachments: [{ filename: "c.pem", content: w.certPem }] }),
    );
    await w.scan();
    // Put the moved file back where it was and mark it not moved: what a crash right after the record leaves.
    const moved = join(maildirFolder(w.maildir, "credd/done"), "cur", `${key}:2,S`);
    renameSync(moved, join(w.maildir, "cur", `${key}:2,`));
    w.ctx.db.prepare("UPDATE mailbox_messages SET moved_at = NULL").run();
    const installs = () => (w.ctx.db.prepare("SELECT count(*) AS n FROM ingests WHERE outcome = 'installed'").get() as { n: number }).n;
    const before = installs();
    const r = await w.scan();
    assert.deepEqual(r, [], "not handled again");
    assert.equal(installs(), before, "not taken in again");
    assert.deepEqual(w.inFolder("credd/done"), [`${key}:2,S`]);
    w.close();
  });
});
