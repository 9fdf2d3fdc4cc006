// What every command and the daemon share: config, store, clock, logger and the mail transport.
import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/smtp.js";
import type { Store } from "../store/store.js";

export interface Ctx {
  config: Config;
  /** All state goes through the store (async: SQLite today, PostgreSQL next; src/store/store.ts). */
  store: Store;
  clock: Clock;
  log: Logger;
  /** Made on first use, so commands that send nothing never need the SMTP password. */
  mailer(): Mailer;
}
