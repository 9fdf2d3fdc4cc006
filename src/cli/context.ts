// Builds the shared context for a command that writes: config, database, clock, logger, lazy SMTP
// transport. Commands that only read open the store with openStoreForReading (src/store/open.ts).
import type { Clock } from "../clock.js";
import { clockFromEnv } from "../test-switches.js";
import { loadConfig } from "../config/load.js";
import { loadCheckedConfig } from "../config/load-checked.js";
import type { Config } from "../config/types.js";
import type { Ctx } from "../core/context.js";
import { createLogger, type Logger } from "../log.js";
import { makeMailerFactory } from "../mail/factory.js";
import { openStore } from "../store/open.js";
export { requireCredential } from "../config/lookup.js";

export interface CtxOptions {
  log?: Logger;
  /** Already loaded by the command (it read first and found it must write). */
  config?: Config;
  clock?: Clock;
  /** Check every file and folder the config names before anything is opened (`run`). */
  checkReferences?: boolean;
}

/**
 * Opens the store for writing (`store:`): SQLite creates state_dir and the database if they are not
 * there yet; PostgreSQL is migrated (src/store/open.ts).
 */
export async function buildCtx(configPath: string, opts: CtxOptions = {}): Promise<Ctx> {
  const config = opts.config ?? (opts.checkReferences ? loadCheckedConfig(configPath).config : loadConfig(configPath));
  const opened = await openStore(config);
  return {
    config,
    store: opened.store,
    ...(opened.leadership ? { leadership: opened.leadership } : {}),
    clock: opts.clock ?? clockFromEnv(),
    log: opts.log ?? createLogger({ stream: "stderr", level: process.env.CREDD_LOG_LEVEL ?? "silent" }),
    mailer: makeMailerFactory(config),
  };
}
