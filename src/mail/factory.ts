// Makes the SMTP transport from the config on first use: reads the password and CA files only then.
import { readSecretFile } from "../config/load.js";
import { readCaFile } from "../config/references.js";
import type { Config } from "../config/types.js";
import { createMailer, type Mailer } from "./smtp.js";

export function makeMailerFactory(config: Config): () => Mailer {
  let mailer: Mailer | undefined;
  return () => {
    if (mailer) return mailer;
    const password = config.smtp.password_file ? readSecretFile(config.smtp.password_file, "smtp.password_file") : undefined;
    // Checked as at load: a CA file that is missing, not PEM or expired is said so, in plain words.
    // With tls: none no certificate is ever checked, so the file is not needed.
    const ca = config.smtp.ca_file && config.smtp.tls !== "none" ? readCaFile(config, "smtp.ca_file", config.smtp.ca_file) : undefined;
    mailer = createMailer(config.smtp, password !== undefined ? { password } : {}, ca ? { ca } : {});
    return mailer;
  };
}
