// The node flags systemd/credd.service starts credd with, read from its ExecStart, so the bench
// measures the daemon as the unit runs it and the two cannot drift apart.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./dist.js";

export const UNIT_FILE = join(ROOT, "systemd", "credd.service");

/** The words between the node binary and dist/main.js in the unit's ExecStart (none: []). */
export function unitNodeFlags(text: string = readFileSync(UNIT_FILE, "utf8")): string[] {
  const m = /^ExecStart=(\S+)((?:[ \t]+-\S+)*)[ \t]+\S*\/dist\/main\.js[ \t]/m.exec(text);
  if (!m) throw new Error(`${UNIT_FILE}: no "ExecStart=NODE [FLAGS] .../dist/main.js ..." line: update bench/lib/unit.ts`);
  return m[2]!
    .trim()
    .split(/\s+/)
    .filter((w) => w !== "");
}
