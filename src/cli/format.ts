// How the command line writes times for people: one format everywhere, `2027-08-02 08:59 UTC`
// (ISO 8601 stays in --json and the logs, for programs).

/** "2026-11-25T10:03:07.123Z" as "2026-11-25 10:03 UTC"; null as `none` (default "never"). */
export function when(t: string | Date | null | undefined, none = "never"): string {
  if (t === null || t === undefined) return none;
  const iso = typeof t === "string" ? t : t.toISOString();
  // Sliced, not parsed: status prints thousands of them.
  if (iso.length === 24 && iso[10] === "T" && iso[23] === "Z") return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : when(new Date(ms));
}

const ISO_IN_TEXT = /\b(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(?:Z|\+00:00)/g;

/** Free text (a reason, an error from the core) with every ISO 8601 UTC time in it written as `when` writes it. */
export function humanTimes(text: string): string {
  return text.includes("T") ? text.replace(ISO_IN_TEXT, "$1 $2 UTC") : text;
}
