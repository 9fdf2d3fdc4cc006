// Makes the SMTP transport from the config on first use: reads the password and CA files only then.
import { readFileSync } from "node:fs";
import { readSecretFile } from "../config/load.js";
import type { Config } from "../config/types.js";
import { CreddError, errorMessage } from "../errors.js";
import { createMailer, type Mailer } from "./smtp.js";

export function makeMailerFactory(config: Config): () => Mailer {
  let mailer: Mailer | undefined;
  return () => {
    if (mailer) return mailer;
    const password = config.smtp.password_file ? readSecretFile(config.smtp.password_file, "smtp.password_file") : undefined;
    let ca: string | undefined;
    if (config.smtp.ca_file) {
      try {
        ca = readFileSync(config.smtp.ca_file, "utf8");
      } catch (err) {
        throw new CreddError("CONFIG", `${config.file}: smtp.ca_file: cannot read ${config.smtp.ca_file}: ${errorMessage(err)}`);
      }
    }
    mailer = createMailer(config.smtp, password !== undefined ? { password } : {}, ca ? { ca } : {});
    return mailer;
  };
}

