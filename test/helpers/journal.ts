// Reads journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL) the way journald does, for tests.

/** Every field of one datagram, in order: `KEY=value\n`, or `KEY\n` + 64-bit LE length + value + `\n`. */
export function parseJournalDatagram(buf: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`field at byte ${i} has no newline`);
    const eq = buf.indexOf(0x3d, i);
    if (eq >= 0 && eq < nl) {
      out.push([buf.toString("utf8", i, eq), buf.toString("utf8", eq + 1, nl)]);
      i = nl + 1;
      continue;
    }
    const key = buf.toString("utf8", i, nl);
    const len = Number(buf.readBigUInt64LE(nl + 1));
    const start = nl + 9;
    if (buf[start + len] !== 0x0a) throw new Error(`binary field ${key} does not end with a newline`);
    out.push([key, buf.toString("utf8", start, start + len)]);
    i = start + len + 1;
  }
  return out;
}
