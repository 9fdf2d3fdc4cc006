// Child processes for the bench: timed whole-process runs, and the environment they get.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, watch } from "node:fs";
import { join } from "node:path";

/**
 * The environment credd and the tools run with. NODE_EXTRA_CA_CERTS is removed: this sandbox sets
 * it, Node then parses the whole CA bundle at every start (about 35 ms), and neither systemd's
 * credd.service nor openssl/certbot pay anything like it.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS; // tsx's loader must not leak into the measured node processes
  delete env.INVOCATION_ID; // a bench run from a systemd service: its test switches are meant (src/test-switches.ts)
  return env;
}

export interface TimedRun {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` to completion and times it from spawn to exit (wall clock), like hyperfine -N. */
export function timeProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: opts.env ?? childEnv(), cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 300_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      const t = performance.now() - t0;
      child.on("close", () => {
        clearTimeout(timer);
        resolve({ ms: t, code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
    });
  });
}

/** Throws with the command's output when a setup step fails. */
export function mustRun(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { env: opts.env ?? childEnv(), cwd: opts.cwd, input: opts.input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function sleep(msec: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msec));
}

/** mustRun without blocking the event loop: for commands that talk to servers living in this process. */
export async function mustRunAsync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const r = await timeProcess(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** VmRSS / VmHWM of a process, in bytes. */
export function procMem(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

let clockTicks: number | undefined;

/**
 * CPU time (user + system) a process has used so far, in ms, from /proc/PID/stat (fields 14 and
 * 15, in clock ticks: getconf CLK_TCK). Unlike throughput, it barely moves when other processes
 * share the cores.
 */
export function procCpuMs(pid: number): number {
  clockTicks ??= Number(mustRun("getconf", ["CLK_TCK"]).trim()) || 100;
  // The command name (field 2) may hold spaces: count from the ")" that ends it.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks;
}

/** Resolves with performance.now() at the first moment `file` holds something other than `old`. */
export function whenChanged(file: string, old: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    const read = () => {
      if (done) return;
      let now: string | undefined;
      try {
        now = readFileSync(file, "utf8");
      } catch {
        return; // between unlink and rename
      }
      if (now && now !== old) finish(performance.now());
    };
    // fs.watch on the folder sees the atomic rename at once; the 5 ms poll is the safety net.
    const w = watch(join(file, ".."), read);
    const poll = setInterval(read, 5);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    function finish(t: number | undefined) {
      done = true;
      w.close();
      clearInterval(poll);
      clearTimeout(timer);
      if (t === undefined) reject(new Error(`${file} did not change within ${timeoutMs} ms`));
      else resolve(t);
    }
  });
}
