// Builds the shared context for a command: config, database, clock, logger, lazy SMTP transport.
import { readFileSync } from "node:fs";
import { clockFromEnv } from "../clock.js";
import { loadConfig, readSecretFile } from "../config/load.js";
import type { Config, CredentialConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { CreddError, errorMessage } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import { createMailer, type Mailer } from "../mail/smtp.js";
import { openDb } from "../store/db.js";

export interface CtxOptions {
  readonly?: boolean;
  log?: Logger;
}

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

export function buildCtx(configPath: string, opts: CtxOptions = {}): Ctx {
  const config = loadConfig(configPath);
  const db = openDb(config.state_dir, { readonly: opts.readonly ?? false });
  return {
    config,
    db,
    clock: clockFromEnv(),
    log: opts.log ?? createLogger({ stream: "stderr", level: process.env.CREDD_LOG_LEVEL ?? "warn" }),
    mailer: makeMailerFactory(config),
  };
}

export function requireCredential(config: Config, name: string | undefined): CredentialConfig {
  if (!name) throw new CreddError("USAGE", "missing credential NAME");
  const cred = config.credentials.find((c) => c.name === name);
  if (!cred) {
    const names = config.credentials.map((c) => c.name).join(", ");
    throw new CreddError("NOT_FOUND", `no credential named "${name}" in ${config.file} (configured: ${names})`);
  }
  return cred;
}
