// Test-only fault points: CREDD_CRASH_AT=name (a test switch, src/test-switches.ts) kills the
// process right there, as a power cut would.
import { crashPointFromEnv } from "../test-switches.js";

export function crashPoint(name: string): void {
  if (crashPointFromEnv() === name) process.kill(process.pid, "SIGKILL");
}
