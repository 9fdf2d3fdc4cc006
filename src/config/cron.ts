// check_schedule without loading node-cron (about 14 ms of a `credd status`, whose whole target is
// 150 ms): the plain form of cron (numbers, *, ranges, steps and lists in 5 or 6 fields) is read
// here; anything else (names, @daily, L, #, ?, a reversed range, a value out of range) is left to
// node-cron, which gives the verdict and the message. A test compares both on many expressions.
import { createRequire } from "node:module";

export interface CronFields {
  second: number[];
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: number[];
  /** 0-6, Sunday 0 (7 is read as 0). */
  dayOfWeek: number[];
}

const BOUNDS: readonly [number, number][] = [
  [0, 59], // second
  [0, 59], // minute
  [0, 23], // hour
  [1, 31], // day of month
  [1, 12], // month
  [0, 7], // day of week
];
const ITEM = /^(?:\*|(\d{1,2})(?:-(\d{1,2}))?)(?:\/(\d{1,2}))?$/;

/** The values of one field, or undefined when it is not the plain form. */
function field(text: string, [min, max]: readonly [number, number]): number[] | undefined {
  const out = new Set<number>();
  for (const item of text.split(",")) {
    const m = ITEM.exec(item);
    if (!m) return undefined;
    const [, a, b, step] = m;
    // "5/10" (a start with a step but no end) means different things to different crons: not plain.
    if (a !== undefined && b === undefined && step !== undefined) return undefined;
    const from = a === undefined ? min : Number(a);
    const to = a === undefined ? max : b === undefined ? from : Number(b);
    const by = step === undefined ? 1 : Number(step);
    if (from < min || to > max || from > to || by < 1) return undefined;
    for (let v = from; v <= to; v += by) out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

/** The fields of a plain cron expression, or undefined: then ask node-cron. */
export function parsePlainCron(expr: string): CronFields | undefined {
  const parts = expr.trim().split(/\s+/);
  if (parts.length === 5) parts.unshift("0");
  if (parts.length !== 6) return undefined;
  const f = parts.map((p, i) => field(p, BOUNDS[i]!));
  if (f.some((x) => x === undefined)) return undefined;
  const [second, minute, hour, dayOfMonth, month, dow] = f as number[][];
  const dayOfWeek = [...new Set(dow!.map((d) => (d === 7 ? 0 : d)))].sort((x, y) => x - y);
  return { second: second!, minute: minute!, hour: hour!, dayOfMonth: dayOfMonth!, month: month!, dayOfWeek };
}

/** node-cron, loaded only for an expression that is not plain (or to schedule it: daemon/run.ts). */
export function nodeCron(): typeof import("node-cron") {
  return createRequire(import.meta.url)("node-cron") as typeof import("node-cron");
}

/** Why `expr` is not a cron expression node-cron takes, or undefined when it is one. */
export function cronProblem(expr: string): string | undefined {
  if (parsePlainCron(expr)) return undefined;
  const result = nodeCron().validateDetailed(expr);
  return result.valid ? undefined : (result.errors[0]?.message ?? "not a cron expression");
}
