// `credd import NAME --cert F --key F [--passphrase-file F]`: adopt a hand-made certificate as live.
import { parseArgs } from "node:util";
import { readSecretFile } from "../config/load.js";
import { importCertificate } from "../core/import.js";
import { daysLeft } from "../domain/timing.js";
import { CreddError } from "../errors.js";
import { buildCtx, requireCredential } from "./context.js";
import type { Globals, Io } from "./io.js";
import { readFileFor } from "../files/file-errors.js";

export const IMPORT_HELP = `usage: credd import NAME --cert CERT.pem --key KEY.pem [--passphrase-file FILE]

Adopts a certificate and private key made by hand (openssl, as the Stellantis
pages describe) as the live version of credential NAME. CERT.pem may hold the
CA and intermediates after the certificate. The key may be PKCS#1 or PKCS#8,
encrypted or not; for an encrypted key give its passphrase in a file.

Refused, with nothing changed, when the key does not match the certificate,
the certificate's subject is not the DN configured for NAME, or the
certificate is expired or not yet valid.

exit: 0 adopted (or already live), 1 refused with the reason, 2 usage`;

function readInput(path: string, what: string, option: string): string {
  return readFileFor(path, { what, fix: `check the path given to ${option}`, code: "NOT_FOUND" }, "utf8");
}

export async function cmdImport(argv: string[], g: Globals, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      cert: { type: "string" },
      key: { type: "string" },
      "passphrase-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(IMPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1 || !values.cert || !values.key) {
    throw new CreddError("USAGE", `import needs NAME, --cert and --key\n\n${IMPORT_HELP}`);
  }
  const certText = readInput(values.cert, "the certificate to import (--cert)", "--cert");
  const keyText = readInput(values.key, "the private key to import (--key)", "--key");
  const passphrase = values["passphrase-file"] ? readSecretFile(values["passphrase-file"], "--passphrase-file") : undefined;
  const ctx = buildCtx(g.configPath);
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
    else io.out(`${cred.name}: certificate ${r.serial} is live (version ${r.version}), expires ${r.notAfter.toISOString()} (${days} days left)`);
    return 0;
  } finally {
    ctx.db.close();
  }
}
