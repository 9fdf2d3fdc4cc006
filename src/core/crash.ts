// Test-only fault points: CREDD_CRASH_AT=name kills the process right there, as a power cut would.
export function crashPoint(name: string): void {
  if (process.env.CREDD_CRASH_AT === name) process.kill(process.pid, "SIGKILL");
}
