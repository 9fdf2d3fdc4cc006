// Persistent conditions (a full disk, a locked database, an unreadable file) reported once: when
// they start, when they change and when they clear, however often the work that meets them retries.
// Pure: the caller says what it saw and when; this decides which report is owed.

export interface Condition {
  /** What identifies "the same condition" across attempts, e.g. ENOSPC (messages may carry temp names). */
  signature: string;
  /** The latest message seen, for the report. */
  message: string;
  since: Date;
  /** Attempts that met it, the first included. */
  attempts: number;
}

export type Seen =
  | { report: "new"; current: Condition }
  | { report: "changed"; current: Condition; previous: Condition }
  | { report: "repeat"; current: Condition };

export class Conditions {
  private readonly open = new Map<string, Condition>();

  /** An attempt about `key` met `signature`: "new", "changed" (a different condition) or "repeat" (report nothing). */
  see(key: string, signature: string, message: string, now: Date): Seen {
    const prev = this.open.get(key);
    if (prev && prev.signature === signature) {
      const current = { ...prev, message, attempts: prev.attempts + 1 };
      this.open.set(key, current);
      return { report: "repeat", current };
    }
    const current = { signature, message, since: now, attempts: 1 };
    this.open.set(key, current);
    return prev ? { report: "changed", current, previous: prev } : { report: "new", current };
  }

  /** The attempt about `key` went through: the open condition, if any, which the caller reports as cleared. */
  clear(key: string): Condition | undefined {
    const prev = this.open.get(key);
    this.open.delete(key);
    return prev;
  }

  has(key: string): boolean {
    return this.open.has(key);
  }

  keys(): string[] {
    return [...this.open.keys()];
  }
}

/**
 * The signature of an error for `Conditions`: its code (ENOSPC, SQLITE_BUSY, ...) when it has one,
 * else its message with temp-file names and numbers taken out, so retries of one condition match.
 */
export function errorSignature(code: string | undefined, message: string): string {
  if (code) return code;
  return message.replace(/\.[\w-]+\.tmp\b/g, ".*.tmp").replace(/\d+/g, "N");
}
