// From Stellantis' reply landing in the IMAP mailbox (APPEND) to a fresh token bound to the new
// certificate, with `credd run` reading a real Dovecot on loopback through IDLE.
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { dnFor, writeConfig } from "../test/helpers/credd.js";
import { dovecotMissing, startDovecot } from "../test/helpers/dovecot.js";
import { composeReply } from "../test/helpers/mailbox.js";
import { makeKeyAndCert, makeTempDir, signCsr } from "../test/helpers/openssl.js";
import { startDaemon } from "./lib/daemon.js";
import { creddMain } from "./lib/dist.js";
import type { BenchOptions } from "./lib/options.js";
import { startPartner } from "./lib/partner.js";
import { childEnv, mustRunAsync, procMem, sleep, whenChanged } from "./lib/proc.js";
import { ms, spread, summarize } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

export async function benchImapToken(o: BenchOptions): Promise<Row[]> {
  const missing = dovecotMissing();
  if (missing)
    return [{ figure: "IMAP reply → fresh token (loopback)", credd: "—", reference: "—", target: "≤ 2 s", verdict: "skip", detail: missing }];
  const dir = o.tempDir("imap-");
  const partner = await startPartner(dir);
  // Directly under the system temp folder: as root, Dovecot's own users must reach its files.
  const dovecotDir = makeTempDir("credd-bench-dovecot-");
  const dovecot = await startDovecot(dovecotDir);
  const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
  try {
    const config = writeConfig(
      dir,
      `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
smtp: { url: "smtp://127.0.0.1:${partner.smtp.port}", from: "credd <credd@partner.example>", ca_file: ${partner.smtp.caPath} }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${partner.stellantisCaFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: app-1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${partner.idp.tokenUrl}", client_id: partner-client, scope: openid }
mailbox:
  imap: { host: 127.0.0.1, port: ${dovecot.imapPort}, user: "${dovecot.user}", password_file: ${join(dir, "imap-password")}, ca_file: ${dovecot.tls.caPath} }
`,
    );
    writeFileSync(join(dir, "imap-password"), `${dovecot.password}\n`, { mode: 0o600 });
    const env = childEnv();
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca: partner.ca, days: 365 });
    await mustRunAsync(process.execPath, [creddMain(), "--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      env,
    });
    const tokenFile = join(dir, "run", "fleet-prod", "token");
    const mc = new ImapFlow({
      host: dovecot.host,
      port: dovecot.imapsPort,
      secure: true,
      auth: { user: dovecot.user, pass: dovecot.password },
      tls: { ca: dovecot.tls.caPem },
      logger: false,
    });
    mc.on("error", () => undefined);
    await mc.connect();
    const runs = o.runs(9, 3);
    o.progress(`IMAP reply → token: ${runs} renewals, each reply APPENDed to a Dovecot that \`credd run\` watches with IDLE`);
    const d = startDaemon(config, { CREDD_OUTBOX_TICK_MS: "200" });
    const latencies: number[] = [];
    let idleRss = Number.NaN;
    let afterRss = Number.NaN;
    const idleSeconds = Math.min(20, Number(process.env.BENCH_IDLE_SECONDS ?? "20"));
    try {
      await d.waitForLog((l) => l.msg === "mailbox: connected to the IMAP folder", 60_000);
      // Idle with the mailbox configured, IDLE open on the folder, before any reply: the idle figure.
      await sleep(idleSeconds * 1000);
      idleRss = procMem(d.child.pid!).rss;
      for (let i = 0; i <= runs; i++) {
        const mails = partner.smtp.received.length;
        const out = await mustRunAsync(process.execPath, [creddMain(), "--config", config, "renew", "fleet-prod", "--no-send"], { env });
        const csr = /csr\s+(\S+csr-\d+\.pem)/.exec(out)?.[1];
        if (!csr) throw new Error(`no CSR path in credd renew's output:\n${out}`);
        await partner.smtp.waitFor(mails + 1, 10_000);
        const pem = signCsr(partner.ca, csr, join(dir, `signed-${i}.pem`), { days: 365 });
        const reply = await composeReply({
          subject: "RE: CSR for MZP128745",
          text: "Your certificate for MZP128745.",
          attachments: [{ filename: "MZP128745.pem", content: pem }],
        });
        const oldToken = readFileSync(tokenFile, "utf8");
        const logMark = d.lines.length;
        await sleep(500); // let the daemon go quiet and back into IDLE
        const changed = whenChanged(tokenFile, oldToken, 30_000);
        const t0 = performance.now();
        await mc.append("INBOX", reply);
        const t1 = await changed;
        await d.waitForLog((l) => l.msg === "certificate live", 30_000, logMark);
        const token = readFileSync(tokenFile, "utf8");
        const issued = partner.idp.tokensIssued.find((t) => t.token === token);
        if (!issued || issued.certSha256 !== fp(pem)) throw new Error("the new token was not obtained with the new certificate");
        if (i > 0) latencies.push(t1 - t0);
      }
      afterRss = procMem(d.child.pid!).rss;
    } finally {
      await d.stop();
      await mc.logout().catch(() => undefined);
    }
    const s = summarize(latencies);
    return [
      {
        figure: "IMAP reply → fresh token (loopback)",
        credd: ms(s.median),
        reference: "—",
        target: "≤ 2 s",
        verdict: verdict(s.median <= 2000),
        detail:
          `From the IMAP APPEND of the reply (a PEM attachment, matched by the MZP) into a Dovecot on loopback to runtime_dir/NAME/token holding the new token ${spread(s)}; ` +
          "credd run sees it through IDLE, fetches and parses it, ingests, asks the loopback IDP for a token with the new certificate, switches live/, writes the token, then moves the message. One warm-up run not counted.",
      },
      {
        figure: "idle RSS, `credd run`, IMAP mailbox",
        credd: `${(idleRss / 1048576).toFixed(1)} MiB`,
        reference: `${(afterRss / 1048576).toFixed(1)} MiB after the replies`,
        target: "≤ 64 MiB",
        verdict: verdict(idleRss <= 64 * 1048576),
        detail:
          `VmRSS of the same \`credd run\` (1 OAuth2 credential, mailbox: imap, IDLE open on the folder) ${idleSeconds} s after it connected, before any reply: ` +
          "imapflow is loaded, mailparser and the ingest are not yet. Beside it, the same process right after the last reply (the ingest, X.509 stack, mailparser and TLS client loaded): what handling a reply leaves behind until the next GC.",
      },
    ];
  } finally {
    await dovecot.stop();
    rmSync(dovecotDir, { recursive: true, force: true });
    await partner.close();
  }
}
