// Pure: how text that someone else chose (an inbox file name, a certificate's subject) is shown in
// emails, log lines and `credd status`: control characters made visible, the length capped.

/** Longest name shown, in characters (the ellipsis included). A file name may be 255 bytes. */
export const NAME_MAX_CHARS = 120;

const ELLIPSIS = "…";

/**
 * C0 and C1 controls, DEL, and the Unicode characters that move or hide text (bidi overrides and
 * isolates, zero-width characters, line and paragraph separators, the byte order mark).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]/gu;
const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0" };

function escapeChar(c: string): string {
  const short = SHORT[c];
  if (short) return short;
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Any text, control characters shown as escapes (\n, \r, \x1b, \u202e). Backslashes are kept as
 * they are, so applying it to text that went through it (or through escapeName) changes nothing:
 * it is safe at every edge, however many edges a text crosses.
 */
export function visible(text: string): string {
  return text.replace(CONTROL, escapeChar);
}

/**
 * A name as credd shows it, like `ls -b`: backslashes doubled and control characters escaped (so
 * two different names never look the same below the cap), at most `max` characters with an
 * ellipsis. A name that is not valid UTF-8 comes as bytes: each invalid byte shows as \xNN.
 */
export function escapeName(name: string | Buffer, max = NAME_MAX_CHARS): string {
  const text = typeof name === "string" ? name.replace(/\\/g, "\\\\").replace(CONTROL, escapeChar) : escapeBytes(name);
  if (text.length <= max) return text;
  // Never cut inside an escape or a surrogate pair: cut by whole characters of the escaped text.
  let cut = "";
  for (const piece of pieces(text)) {
    if (cut.length + piece.length > max - ELLIPSIS.length) break;
    cut += piece;
  }
  return cut + ELLIPSIS;
}

/** The escaped text split so that each escape (\\, \n, \x1b, \u202e) and each code point is one piece. */
function pieces(text: string): string[] {
  return text.match(/\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|.)|[\s\S]/gu) ?? [];
}

/** File names are bytes: valid UTF-8 runs are shown as text, every other byte as \xNN. */
function escapeBytes(bytes: Buffer): string {
  const decoded = bytes.toString("utf8");
  if (Buffer.from(decoded, "utf8").equals(bytes)) return escapeName(decoded, Infinity);
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const len = utf8Length(bytes, i);
    if (len === 0) {
      out += `\\x${bytes[i]!.toString(16).padStart(2, "0")}`;
      i++;
    } else {
      out += escapeName(bytes.subarray(i, i + len).toString("utf8"), Infinity);
      i += len;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n <= 1 || i + n > b.length) return n === 1 ? 1 : 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const s = b.subarray(i, i + n).toString("utf8");
  return s.includes("\ufffd") ? 0 : n; // overlong forms and surrogates decode to U+FFFD
}
