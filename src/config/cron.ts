// check_schedule belongs to node-cron: whether an expression is valid, and the message when it is
// not, are node-cron's (validateDetailed); core/schedule.ts works out run times from its parse.
// node-cron is loaded when first asked, so commands that never read a schedule do not pay for it.
import { createRequire } from "node:module";

/** node-cron, loaded on first use (the daemon's scheduler, the config check, core/schedule.ts). */
export function nodeCron(): typeof import("node-cron") {
  return createRequire(import.meta.url)("node-cron") as typeof import("node-cron");
}

/** Why `expr` is not a cron expression node-cron takes, or undefined when it is one. */
export function cronProblem(expr: string): string | undefined {
  const result = nodeCron().validateDetailed(expr);
  return result.valid ? undefined : (result.errors[0]?.message ?? "not a cron expression");
}
