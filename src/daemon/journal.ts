// journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL): each log record as one datagram of
// fields to /run/systemd/journal/socket, so `journalctl -u credd CREDD_CREDENTIAL=fleet-prod` works.
import type { DestinationStream } from "pino";
import { type DgramSocket, loadUnixDgram, type UnixDgram } from "./notify.js";

export const JOURNAL_SOCKET = "/run/systemd/journal/socket";

/**
 * The datagram body: `KEY=value\n` per field, or, for a value holding a newline, the binary form
 * `KEY\n`, the value's byte length as a 64-bit little-endian integer, the value, `\n`.
 */
export function encodeJournalFields(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of fields) {
    if (!value.includes("\n")) {
      parts.push(Buffer.from(`${key}=${value}\n`, "utf8"));
      continue;
    }
    const v = Buffer.from(value, "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(v.length));
    parts.push(Buffer.from(`${key}\n`, "utf8"), len, v, Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

/** syslog priority for a pino level: fatal/error 3, warn 4, info 6, debug/trace 7. */
export function syslogPriority(pinoLevel: number): number {
  return pinoLevel >= 50 ? 3 : pinoLevel >= 40 ? 4 : pinoLevel >= 30 ? 6 : 7;
}

/**
 * The fields for one pino line. MESSAGE stays the whole JSON line (as on stdout), so `-o cat | jq`
 * and `--grep` read what they always did; the fields beside it are what journalctl can match on.
 * Undefined when the line is not a JSON object (it then goes to stdout as it is).
 */
export function journalFields(line: string): [string, string][] | undefined {
  const json = line.endsWith("\n") ? line.slice(0, -1) : line;
  let rec: unknown;
  try {
    rec = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) return undefined;
  const r = rec as Record<string, unknown>;
  const fields: [string, string][] = [
    ["MESSAGE", json],
    ["PRIORITY", String(syslogPriority(typeof r.level === "number" ? r.level : 30))],
    ["SYSLOG_IDENTIFIER", "credd"],
  ];
  if (typeof r.credential === "string" && r.credential !== "") fields.push(["CREDD_CREDENTIAL", r.credential]);
  if (typeof r.event === "string" && r.event !== "") fields.push(["CREDD_EVENT", r.event]);
  return fields;
}

/**
 * A pino destination that sends each line to the journal socket, and writes it to `fallback`
 * instead when it cannot (socket gone, datagram too big, queue full, addon not loading): a line is
 * never lost and a write never throws. A socket per line: unix-dgram's socket holds the event loop
 * open until closed, and a fresh one also follows journald across a restart; credd logs a few lines
 * a minute, so the extra syscalls do not count.
 */
export function journalDestination(
  fallback: DestinationStream,
  socketPath = JOURNAL_SOCKET,
  load: () => UnixDgram = loadUnixDgram,
): DestinationStream {
  let mod: UnixDgram | undefined;
  return {
    write(line: string) {
      const fields = journalFields(line);
      if (!fields || !send(encodeJournalFields(fields))) fallback.write(line);
    },
  };
  function send(buf: Buffer): boolean {
    let sock: DgramSocket | undefined;
    try {
      mod ??= load();
      sock = mod.createSocket("unix_dgram");
      let sent = false;
      // Without a callback unix-dgram emits "error"; with one it calls back at once (the send is synchronous).
      sock.send(buf, 0, buf.length, socketPath, (err) => (sent = !err));
      return sent;
    } catch {
      return false;
    } finally {
      try {
        sock?.close();
      } catch {
        // nothing to do: the fd is gone either way
      }
    }
  }
}
