// From a signed certificate renamed into the inbox to a fresh token in runtime_dir, with `credd run` on loopback.
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { dnFor, writeConfig } from "../test/helpers/credd.js";
import { makeKeyAndCert, signCsr } from "../test/helpers/openssl.js";
import { startDaemon } from "./lib/daemon.js";
import { creddMain } from "./lib/dist.js";
import type { BenchOptions } from "./lib/options.js";
import { startPartner } from "./lib/partner.js";
import { childEnv, mustRunAsync, sleep, whenChanged } from "./lib/proc.js";
import { ms, spread, summarize } from "./lib/stats.js";
import { verdict, type Row } from "./lib/table.js";

const INBOX_POLL_MS = 50;

export async function benchInboxToken(o: BenchOptions): Promise<Row[]> {
  const dir = o.tempDir("inbox-");
  const partner = await startPartner(dir);
  const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
  try {
    const inbox = join(dir, "inbox");
    const staging = join(dir, "downloads"); // same file system as the inbox, so the drop is one rename
    mkdirSync(staging);
    const config = writeConfig(
      dir,
      `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
inbox_dir: ${inbox}
smtp: { url: "smtp://127.0.0.1:${partner.smtp.port}", from: "credd <credd@partner.example>", ca_file: ${partner.smtp.caPath} }
alerts: { to: [ops@partner.example] }
stellantis: { contact: connectedcar@stellantis.example, ca_file: ${partner.stellantisCaFile} }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: app-1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    oauth: { token_url: "${partner.idp.tokenUrl}", client_id: partner-client, scope: openid }
`,
    );
    const env = childEnv();
    const hand = makeKeyAndCert(dir, dnFor("MZP128745"), { ca: partner.ca, days: 365 });
    await mustRunAsync(process.execPath, [creddMain(), "--config", config, "import", "fleet-prod", "--cert", hand.certPath, "--key", hand.keyPath], {
      env,
    });
    const tokenFile = join(dir, "run", "fleet-prod", "token");
    const liveCert = join(dir, "state", "credentials", "fleet-prod", "live", "cert.pem");
    if (!existsSync(tokenFile)) throw new Error("the import did not write a token");

    const runs = o.runs(9, 3);
    o.progress(`inbox → token: ${runs} renewals, each signed certificate renamed into the inbox of a running \`credd run\``);
    const d = startDaemon(config, {
      CREDD_INBOX_POLL_MS: String(INBOX_POLL_MS),
      CREDD_OUTBOX_TICK_MS: "200",
    });
    const latencies: number[] = [];
    try {
      await d.waitForLog((l) => l.msg === "check done", 60_000);
      for (let i = 0; i <= runs; i++) {
        // A renewal pending at the CA: key + CSR by `credd renew`, the CSR email sent by the daemon.
        const mails = partner.smtp.received.length;
        const out = await mustRunAsync(process.execPath, [creddMain(), "--config", config, "renew", "fleet-prod", "--no-send"], { env });
        const csr = /csr\s+(\S+csr-\d+\.pem)/.exec(out)?.[1];
        if (!csr) throw new Error(`no CSR path in credd renew's output:\n${out}`);
        await partner.smtp.waitFor(mails + 1, 10_000);
        const signed = join(staging, `MZP128745-${i}.pem`);
        const pem = signCsr(partner.ca, csr, signed, { days: 365 });
        const old = new Date(Date.now() - 60_000);
        utimesSync(signed, old, old); // downloaded a minute ago: `mv` keeps that, so no settling wait applies
        const oldToken = readFileSync(tokenFile, "utf8");
        const logMark = d.lines.length;
        await sleep(300); // let the daemon go quiet (the email just sent, ticks)
        const changed = whenChanged(tokenFile, oldToken, 30_000);
        const t0 = performance.now();
        renameSync(signed, join(inbox, `MZP128745-${i}.pem`));
        const t1 = await changed;
        await d.waitForLog((l) => l.msg === "certificate live", 30_000, logMark);
        // It is the token the IDP issued for the new certificate, and that certificate is live.
        const token = readFileSync(tokenFile, "utf8");
        const issued = partner.idp.tokensIssued.find((t) => t.token === token);
        if (!issued || issued.certSha256 !== fp(pem)) throw new Error("the new token was not obtained with the new certificate");
        if (fp(readFileSync(liveCert, "utf8")) !== fp(pem)) throw new Error("the new certificate is not live");
        if (i > 0) latencies.push(t1 - t0); // the first one warms the daemon's ingest and TLS paths
      }
    } finally {
      await d.stop();
    }
    const s = summarize(latencies);
    return [
      {
        figure: "inbox → fresh token (loopback)",
        credd: ms(s.median),
        reference: "—",
        target: "≤ 1 s",
        verdict: verdict(s.median <= 1000),
        detail:
          `From renameSync() of the signed certificate into inbox_dir to runtime_dir/NAME/token holding the new token (fs.watch + 5 ms poll) ${spread(s)}; ` +
          `each run: \`credd renew --no-send\`, the daemon mails the CSR, openssl signs it, the file is renamed in. In between, credd ingests (checks, archive, ` +
          `staged install), asks the loopback IDP for a token with the new certificate, switches live/ and writes the token. ` +
          `\`credd run\` with CREDD_INBOX_POLL_MS=${INBOX_POLL_MS} (default 2000: about 1 s more on average), other ticks default; one warm-up run not counted.`,
      },
    ];
  } finally {
    await partner.close();
  }
}
