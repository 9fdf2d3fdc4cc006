// Builds the shared context for a command: config, database, clock, logger, lazy SMTP transport.
import { clockFromEnv } from "../clock.js";
import { loadConfig } from "../config/load.js";
import { loadCheckedConfig } from "../config/load-checked.js";
import type { Config, CredentialConfig } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { CreddError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import { makeMailerFactory } from "../mail/factory.js";
import { openDb } from "../store/db.js";
export { requireCredential } from "../config/lookup.js";

export interface CtxOptions {
  readonly?: boolean;
  log?: Logger;
  /** Check every file and folder the config names before anything is opened (`run`). */
  checkReferences?: boolean;
}

export function buildCtx(configPath: string, opts: CtxOptions = {}): Ctx {
  const config = opts.checkReferences ? loadCheckedConfig(configPath).config : loadConfig(configPath);
  const db = openDb(config.state_dir, { readonly: opts.readonly ?? false });
  return {
    config,
    db,
    clock: clockFromEnv(),
    log: opts.log ?? createLogger({ stream: "stderr", level: process.env.CREDD_LOG_LEVEL ?? "silent" }),
    mailer: makeMailerFactory(config),
  };
}

