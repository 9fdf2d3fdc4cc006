// What every command and the daemon share: config, database, clock, logger and the mail transport.
import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/smtp.js";
import type { Db } from "../store/db.js";

export interface Ctx {
  config: Config;
  db: Db;
  clock: Clock;
  log: Logger;
  /** Made on first use, so commands that send nothing never need the SMTP password. */
  mailer(): Mailer;
}
