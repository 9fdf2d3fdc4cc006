// pino JSON logs: stdout for the daemon (journald), stderr for one-shot commands; secrets redacted.
// Under systemd each record goes to the journal socket with fields of its own (daemon/journal.ts), or,
// failing that, as a stdout line carrying its syslog priority as a `<N>` prefix, which journald strips.
import { existsSync, fstatSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";
import { JOURNAL_SOCKET, journalDestination, syslogPriority } from "./daemon/journal.js";

export type { Logger };
export { syslogPriority };

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

export interface LoggerOptions {
  level?: string;
  stream?: "stdout" | "stderr";
  /** The descriptor to write to instead of the stream's (tests: a temp file). */
  fd?: number;
  /** journald's native socket, used by the daemon (not "stderr") when its output is the journal stream and the socket exists. */
  journalSocket?: string;
  env?: NodeJS.ProcessEnv;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const env = opts.env ?? process.env;
  const level = opts.level ?? env.CREDD_LOG_LEVEL ?? "info";
  const fd = opts.fd ?? (opts.stream === "stderr" ? 2 : 1);
  const dest = pino.destination({ fd, sync: true });
  const socket = opts.journalSocket ?? JOURNAL_SOCKET;
  // pino redacts while it serialises, before any destination sees the line: the journal gets it redacted too.
  let out: DestinationStream = dest;
  if (isJournalStream(fd, env)) {
    out = withSyslogPriority(dest);
    // The daemon only: one-shot commands' stderr keeps its prefixed lines, as their callers expect.
    if (opts.stream !== "stderr" && existsSync(socket)) out = journalDestination(out, socket);
  }
  return pino(
    {
      level,
      base: { service: "credd" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    out,
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
