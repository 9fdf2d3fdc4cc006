// Runs the built `credd` binary as a child process (async, so in-process test servers keep answering).
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { StellantisDn } from "../../src/config/types.js";

export const CREDD_BIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment a test's credd runs with: this process's, minus INVOCATION_ID (a test runner
 * that is itself a systemd service must not make every `credd run` with a test switch refuse to
 * start; src/test-switches.ts), plus `env`, which may set it back.
 */
export function creddEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  delete out.INVOCATION_ID;
  return { ...out, ...env };
}

export function runCredd(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CREDD_BIN, ...args], { env: creddEnv(env), stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`credd ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a credd child process printed on stdout, one parsed JSON line each (a line that is not JSON is kept as { raw }). */
export interface LogFollower {
  lines: Record<string, unknown>[];
  /** Its exit (code or signal), once its streams are closed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line from index `after` on (already seen or still to come) for which `pred` holds; rejects on timeout or exit. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, after?: number): Promise<Record<string, unknown>>;
}

/**
 * Follows a credd child's stdout log. `context` is added to a failure's message (what ran, what
 * it printed); `stripPriority` drops a journald `<N>` prefix before parsing.
 */
export function followLog(child: ChildProcess, opts: { context: () => string; stripPriority?: boolean }): LogFollower {
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  let closed = false;
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(opts.stripPriority ? line.replace(/^<\d>/, "") : line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
    wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => {
      closed = true;
      wake();
      resolve({ code, signal });
    }),
  );
  const waitForLog: LogFollower["waitForLog"] = (pred, timeoutMs = 30_000, after = 0) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const hit = lines.slice(after).find(pred);
        if (hit) {
          finish();
          resolve(hit);
        } else if (closed) {
          finish();
          reject(new Error(`credd exited (${child.exitCode ?? child.signalCode}) before the log line came\n${opts.context()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching log line in ${timeoutMs} ms\n${opts.context()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(look);
      };
      waiters.add(look);
      look();
    });
  return { lines, exited, waitForLog };
}

export interface Daemon {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first JSON log line (already seen or still to come) for which `pred` is true. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, after?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

export function startCreddDaemon(args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
  const child = spawn(process.execPath, [CREDD_BIN, ...args], { env: creddEnv(env), stdio: "pipe" });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const log = followLog(child, { context: () => `got:\n${log.lines.map((l) => JSON.stringify(l)).join("\n")}\n${err}` });
  const exited = log.exited.then((e) => e.code);
  return {
    child,
    lines: log.lines,
    stderr: () => err,
    waitForLog: log.waitForLog,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

export function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, "credd.yaml");
  writeFileSync(file, yaml);
  return file;
}

/** A config with `n` credentials fleet-000001... (no certificates) and state_dir under `dir`, written there. */
export function writeManyCredentialsConfig(dir: string, n: number): string {
  const creds = Array.from({ length: n }, (_, i) => {
    const id = String(i + 1).padStart(6, "0");
    return `  - name: fleet-${id}\n    mzp: MZP${id}\n    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }`;
  });
  return writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}\nsmtp: { url: "smtp://127.0.0.1:1", from: "credd <credd@partner.example>" }\n` +
      `alerts: { to: [ops@partner.example] }\nstellantis: { contact: connectedcar@stellantis.example }\ncredentials:\n${creds.join("\n")}\n`,
  );
}

const subject = { C: "FR", ST: "Ile de France", L: "Paris", O: "Free2Move", emailAddress: "it@partner.example" };
export const dnFor = (mzp: string): StellantisDn => ({ ...subject, OU: "Programs Partners", CN: mzp });

/** The Stellantis subject the test configs use, as a YAML flow mapping. */
export const SUBJECT_YAML = "{ C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }";

/** One credential entry of a config's `credentials:` list; `extra` lines are indented for you. */
export function credentialYaml(name: string, mzp: string, ...extra: string[]): string {
  return [`  - name: ${name}`, `    mzp: ${mzp}`, `    subject: ${SUBJECT_YAML}`, ...extra.map((l) => `    ${l}`)].join("\n");
}

/**
 * A small valid config: `top` lines first (state_dir, runtime_dir, ...), an SMTP server that is
 * not there unless `smtp` names one, and the given credentials (default: fleet-prod, MZP128745).
 */
export function smallConfigYaml(o: { top?: string[]; smtpUrl?: string; from?: string; credentials?: string[] } = {}): string {
  return [
    ...(o.top ?? []),
    `smtp: { url: "${o.smtpUrl ?? "smtp://127.0.0.1:9"}", from: ${JSON.stringify(o.from ?? "credd <credd@partner.example>")} }`,
    "alerts: { to: [ops@partner.example] }",
    "stellantis: { contact: connectedcar@stellantis.example }",
    "credentials:",
    ...(o.credentials ?? [credentialYaml("fleet-prod", "MZP128745")]),
    "",
  ].join("\n");
}

/** A config with two credentials (fleet-prod RSA, fleet-test EC) pointing at a test SMTP server. */
export function configFor(dir: string, smtpPort: number, caPath: string, opts: { prodExtra?: string; top?: string } = {}): string {
  return writeConfig(
    dir,
    `state_dir: ${join(dir, "state")}
runtime_dir: ${join(dir, "run")}
check_schedule: "*/10 * * * *"
smtp:
  url: smtp://127.0.0.1:${smtpPort}
  from: "credd <credd@partner.example>"
  ca_file: ${caPath}
  timeout_ms: 5000
alerts:
  to: [ops@partner.example]
stellantis:
  contact: connectedcar@stellantis.example
credentials:
  - name: fleet-prod
    mzp: MZP128745
    client_id: 1a2b3c
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
${(opts.prodExtra ?? "").replace(/^/gm, "    ")}
  - name: fleet-test
    mzp: MZP654321
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    key: { type: ec, curve: P-256 }
${opts.top ?? ""}`,
  );
}
