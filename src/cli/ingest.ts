// `credd ingest [NAME] FILE...`: take in a signed certificate (PEM, DER or PKCS#7, with or without the CA).
import { ingestBatch, type FileOutcome, type InputFile } from "../core/ingest.js";
import { readBoundedFor } from "../files/file-errors.js";
import { MAX_CERTIFICATE_FILE_BYTES } from "../pki/bundle.js";
import type { Parsed } from "./args.js";
import { humanTimes } from "./format.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";
import { sendNow } from "./send-now.js";

export const INGEST_HELP = `Takes in the certificate Stellantis signed, in whatever form it came: PEM (one
or several certificates, CRLF or LF, with or without "Bag Attributes"), DER
(.cer/.crt) or PKCS#7 (.p7b/.p7c, PEM or DER), with or without the CA and
intermediates, in any order. The files together form one batch.

A certificate is accepted only when its public key matches a pending renewal's
key (NAME is optional: the key finds the credential), its subject is the DN
asked for, it chains to stellantis.ca_file, it is inside its validity window
and not already due for renewal, and its key usage allows TLS client auth.
Then it is archived, live/ is switched atomically, and the deploy hooks run.
A refused file changes nothing; the reason names the check that failed. Each
FILE is opened once and read up to 1 MiB: a named pipe, a device or a larger
file is refused unread.
The live certificate taken in again is "already installed" (exit 0); one that
was live before and has been replaced is refused (previously-live), saying
when it was replaced and whether \`credd rollback NAME\` brings it back.

exit: 0 installed (or already live), 1 refused, 2 usage`;

export async function cmdIngest(parsed: Parsed, g: Globals, io: Io): Promise<number> {
  const positionals = parsed.args;
  const ctx = await buildCtx(g.configPath);
  try {
    // A first argument that names a credential (and is not a file) is NAME.
    let only;
    let paths = positionals;
    const first = positionals[0]!;
    if (ctx.config.credentials.some((c) => c.name === first) && positionals.length > 1) {
      only = requireCredential(ctx.config, first);
      paths = positionals.slice(1);
    }
    const files: InputFile[] = [];
    for (const p of paths) {
      // Opened once without blocking and read up to the cap: a FIFO or /dev/zero given by mistake is refused, unread.
      const r = await readBoundedFor(
        p,
        { what: "the signed certificate to take in", fix: "check the path; give the file Stellantis sent (PEM, DER or PKCS#7)", code: "NOT_FOUND" },
        MAX_CERTIFICATE_FILE_BYTES,
      );
      files.push(
        "bytes" in r ? { name: p, bytes: r.bytes } : { name: p, bytes: Buffer.alloc(0), refused: { check: r.check, reason: `${p} ${r.reason}` } },
      );
    }
    const outcomes = await ingestBatch(ctx, files, only);
    for (const o of outcomes) io.out(humanTimes(describe(o)));
    // A staged certificate queues its registration email: send it now rather than wait for the daemon.
    const queued = (await ctx.store.queuedMails()).filter((m) => m.kind === "registration" && m.attempts === 0);
    for (const m of queued) await sendNow(ctx, m.id, io, `the new certificate to ${ctx.config.stellantis.contact} for IDP registration`);
    const installed = outcomes.some((o) => o.outcome === "installed" || o.outcome === "already-live");
    const refused = outcomes.some((o) => o.outcome === "refused" || o.outcome === "failed");
    return installed && !refused ? 0 : refused ? 1 : 0;
  } finally {
    await ctx.store.close();
  }
}

export function describe(o: FileOutcome): string {
  switch (o.outcome) {
    case "installed": {
      if (o.staged) {
        return `${o.file}: installed for ${o.credential}: certificate ${o.serial} (version ${o.version}) is NOT live yet: ${o.staged}; the current certificate stays live and credd keeps probing`;
      }
      const failed = o.live?.hooks.filter((h) => !h.ok) ?? [];
      const hooks = o.live?.hooks.length
        ? `; deploy hooks: ${o.live.hooks.length - failed.length}/${o.live.hooks.length} ok` +
          (failed.length ? ` (failed: ${failed.map((h) => `${h.argv.join(" ")}: ${h.error ?? `exit ${h.exitCode}`}`).join("; ")})` : "")
        : "";
      return `${o.file}: installed for ${o.credential}: certificate ${o.serial} is live (version ${o.version})${hooks}`;
    }
    case "chain":
      return `${o.file}: used as part of ${o.credential}'s chain`;
    case "already-live":
      return (
        `${o.file}: certificate ${o.serial} is already installed: it is ${o.credential}'s live certificate ` +
        `(version ${o.version}${o.liveSince ? `, first live on ${o.liveSince}` : ""}); nothing changed`
      );
    case "refused":
      return `${o.file}: REFUSED [${o.check}] ${o.reason}`;
    case "failed":
      return `${o.file}: FAILED (not a verdict on the file, try again): ${o.reason}`;
  }
}
