// pino JSON logs: stdout for the daemon (journald), stderr for one-shot commands; secrets redacted.
import { pino, type Logger } from "pino";

export type { Logger };

/** Field names that could ever carry a secret; pino replaces their values wherever they appear. */
const REDACT = [
  "password",
  "pass",
  "passphrase",
  "token",
  "access_token",
  "refresh_token",
  "privateKey",
  "private_key",
  "keyPem",
  "key",
  "authorization",
  "*.password",
  "*.pass",
  "*.passphrase",
  "*.token",
  "*.access_token",
  "*.privateKey",
  "*.keyPem",
  "*.authorization",
];

export function createLogger(opts: { level?: string; stream?: "stdout" | "stderr" } = {}): Logger {
  const level = opts.level ?? process.env.CREDD_LOG_LEVEL ?? "info";
  const fd = opts.stream === "stderr" ? 2 : 1;
  return pino(
    {
      level,
      base: { service: "credd" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd, sync: true }),
  );
}
