// pino JSON logs: stdout for the daemon (journald), stderr for one-shot commands; secrets redacted.
// Under systemd each line carries its syslog priority as a `<N>` prefix, which journald strips.
import { fstatSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";

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
  const dest = pino.destination({ fd, sync: true });
  return pino(
    {
      level,
      base: { service: "credd" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    isJournalStream(fd) ? withSyslogPriority(dest) : dest,
  );
}

/**
 * True when `fd` is the stream systemd connected to the journal: $JOURNAL_STREAM holds its
 * "device:inode" (sd_journal_stream_fd(3)). Comparing them, rather than only testing the
 * variable, keeps the prefix off when the variable was inherited by a process whose output
 * goes elsewhere (a deploy hook's child, `credd status | jq` in a unit's script).
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const want = env.JOURNAL_STREAM;
  if (!want) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** syslog priority for a pino level: fatal/error 3, warn 4, info 6, debug/trace 7. */
export function syslogPriority(pinoLevel: number): number {
  return pinoLevel >= 50 ? 3 : pinoLevel >= 40 ? 4 : pinoLevel >= 30 ? 6 : 7;
}

/** Prefixes every JSON line with `<N>` (SyslogLevelPrefix=, on by default for journal output). */
function withSyslogPriority(dest: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      // pino writes the level first: {"level":30,...}
      const m = /^\{"level":(\d+)/.exec(line);
      dest.write(`<${syslogPriority(m ? Number(m[1]) : 30)}>${line}`);
    },
  };
}
