// `credd import NAME --cert F --key F [--passphrase-file F]`: adopt a hand-made certificate as live.
import { readSecretFile } from "../config/load.js";
import { importCertificate } from "../core/import.js";
import { daysLeft } from "../domain/timing.js";
import { readFileFor } from "../files/file-errors.js";
import type { Parsed } from "./args.js";
import { buildCtx, requireCredential } from "./context.js";
import { when } from "./format.js";
import type { Globals, Io } from "./io.js";

export const IMPORT_HELP = `Adopts a certificate and private key made by hand (openssl, as the Stellantis
pages describe) as the live version of credential NAME. The --cert FILE may hold the
CA and intermediates after the certificate; when it holds the certificate alone,
live/chain.pem gets the CA chain from stellantis.ca_file (or stays empty, with a
note saying why, when the certificate does not chain to it). The key may be PKCS#1 or PKCS#8,
encrypted or not; for an encrypted key give its passphrase in a file.

Refused, with nothing changed, when the key does not match the certificate,
the certificate's subject is not the DN configured for NAME, or the
certificate is expired or not yet valid.

exit: 0 adopted (or already live), 1 refused with the reason, 2 usage`;

function readInput(path: string, what: string, option: string): string {
  return readFileFor(path, { what, fix: `check the path given to ${option}`, code: "NOT_FOUND" }, "utf8");
}

export async function cmdImport(p: Parsed, g: Globals, io: Io): Promise<number> {
  // Both are required by the command's spec (src/cli/commands.ts): here they are there.
  const values = p.values as { cert: string; key: string; "passphrase-file"?: string };
  const positionals = p.args;
  const certText = readInput(values.cert, "the certificate to import (--cert)", "--cert");
  const keyText = readInput(values.key, "the private key to import (--key)", "--key");
  const passphrase = values["passphrase-file"] ? readSecretFile(values["passphrase-file"], "--passphrase-file") : undefined;
  const ctx = await buildCtx(g.configPath);
  try {
    const cred = requireCredential(ctx.config, positionals[0]);
    const r = await importCertificate(ctx, cred, {
      certText,
      certFile: values.cert,
      keyText,
      keyFile: values.key,
      ...(passphrase !== undefined ? { passphrase } : {}),
    });
    const days = daysLeft(r.notAfter, ctx.clock.now());
    if (r.alreadyLive) io.out(`${cred.name}: certificate ${r.serial} is already live; nothing changed`);
    else io.out(`${cred.name}: certificate ${r.serial} is live (version ${r.version}), expires ${when(r.notAfter)} (${days} days left)`);
    if (r.chainNote) {
      io.err(
        `note: ${r.chainNote}. cert.pem and key.pem are complete; a TLS client that must send the CA certificates ` +
          "does not find them in chain.pem or fullchain.pem (to have them there, give them after the certificate in the --cert file)",
      );
    }
    return 0;
  } finally {
    await ctx.store.close();
  }
}
