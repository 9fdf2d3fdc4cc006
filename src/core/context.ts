// What every command and the daemon share: config, store, clock, logger and the mail transport.
import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/smtp.js";
import type { LeaderHandle } from "../store/open.js";
import type { Store } from "../store/store.js";

export interface Ctx {
  config: Config;
  /** All state goes through the store (async: SQLite today, PostgreSQL next; src/store/store.ts). */
  store: Store;
  clock: Clock;
  log: Logger;
  /** Made on first use, so commands that send nothing never need the SMTP password. */
  mailer(): Mailer;
  /** PostgreSQL only: makes the leadership `credd run` takes part in (src/store/open.ts). */
  leadership?: (onLost: (message: string) => void) => LeaderHandle;
  /**
   * Set by `credd run` on a shared store: the fence before each side effect (an email, a
   * certificate installed, a call to the IDP); throws when this host no longer leads. Absent: act.
   */
  fence?: () => Promise<void>;
}
