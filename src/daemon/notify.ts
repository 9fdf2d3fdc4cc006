// systemd's notify protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1, STOPPING=1 as datagrams to
// $NOTIFY_SOCKET. Node's dgram has no unix datagram sockets, so node-unix-socket sends them.
import { createRequire } from "node:module";
import type { DgramSocket } from "node-unix-socket";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";

export interface Notifier {
  /** False when systemd did not ask for notifications (no $NOTIFY_SOCKET): every call is a no-op. */
  readonly enabled: boolean;
  /** Half of $WATCHDOG_USEC in ms when systemd expects watchdog pings, else undefined. */
  readonly watchdogMs: number | undefined;
  ready(status?: string): void;
  status(line: string): void;
  /** STOPPING=1; resolves once the datagram left (or could not), so it goes out before exit. */
  stopping(status?: string): Promise<void>;
  /** Pings WATCHDOG=1 every watchdogMs while `healthy()` says so; returns a stop function. */
  startWatchdog(healthy: () => boolean): () => void;
  close(): void;
}

export interface NotifyEnv {
  socket?: string;
  watchdogUsec?: number;
}

/**
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then removes them from the environment so
 * deploy hooks and other children do not inherit them (sd_notify's unset_environment).
 */
export function notifyEnvFrom(env: NodeJS.ProcessEnv = process.env, pid = process.pid): NotifyEnv {
  const socket = env.NOTIFY_SOCKET || undefined;
  const usec = Number(env.WATCHDOG_USEC ?? "");
  const forPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : pid;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  const out: NotifyEnv = {};
  if (socket) out.socket = socket;
  if (Number.isFinite(usec) && usec > 0 && forPid === pid) out.watchdogUsec = usec;
  return out;
}

/** "@name" is an abstract socket: its address starts with a NUL byte. */
export function socketAddress(s: string): string {
  return s.startsWith("@") ? `\0${s.slice(1)}` : s;
}

/** A STATUS= value is one line: newlines would start new assignments. */
export function statusLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ").slice(0, 1024);
}

/** The part of the status view (core/status.ts) the STATUS= line is made from. */
export interface SummaryView {
  status: string;
  outbox: { queued: number };
  credentials: readonly { renewal: unknown }[];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** e.g. "3 credentials, 1 renewal pending, next check 10:40 (warning)": what `systemctl status` shows. */
export function statusSummary(v: SummaryView, nextCheck: Date | null): string {
  const parts = [plural(v.credentials.length, "credential"), `${plural(v.credentials.filter((c) => c.renewal).length, "renewal")} pending`];
  if (v.outbox.queued > 0) parts.push(`${plural(v.outbox.queued, "email")} queued`);
  if (nextCheck) parts.push(`next check ${nextCheck.toTimeString().slice(0, 5)}`);
  return `${parts.join(", ")}${v.status === "ok" ? "" : ` (${v.status})`}`;
}

/** Loaded only under systemd: a native addon that plain `credd run` need not start with. */
function newDgramSocket(): DgramSocket {
  const mod = createRequire(import.meta.url)("node-unix-socket") as typeof import("node-unix-socket");
  return new mod.DgramSocket();
}

export function createNotifier(e: NotifyEnv, log: Logger): Notifier {
  if (!e.socket) return disabledNotifier;
  const address = socketAddress(e.socket);
  let sock: DgramSocket | undefined;
  let warned = false;
  const send = (msg: string, done?: () => void) => {
    try {
      sock ??= newDgramSocket();
      const buf = Buffer.from(msg, "utf8");
      sock.sendTo(buf, 0, buf.length, address, (err) => {
        if (err && !warned) {
          warned = true;
          log.warn({ err: errorMessage(err), socket: e.socket }, "cannot notify systemd");
        }
        done?.();
      });
    } catch (err) {
      if (!warned) {
        warned = true;
        log.warn({ err: errorMessage(err), socket: e.socket }, "cannot notify systemd");
      }
      done?.();
    }
  };
  const watchdogMs = e.watchdogUsec ? Math.max(1, Math.floor(e.watchdogUsec / 2000)) : undefined;
  return {
    enabled: true,
    watchdogMs,
    ready: (status) => send(`READY=1${status ? `\nSTATUS=${statusLine(status)}` : ""}`),
    status: (line) => send(`STATUS=${statusLine(line)}`),
    stopping: (status) => new Promise<void>((resolve) => send(`STOPPING=1${status ? `\nSTATUS=${statusLine(status)}` : ""}`, resolve)),
    startWatchdog(healthy) {
      if (!watchdogMs) return () => undefined;
      const ping = () => {
        if (healthy()) send("WATCHDOG=1");
      };
      ping();
      const timer = setInterval(ping, watchdogMs);
      return () => clearInterval(timer);
    },
    close() {
      // The socket keeps the event loop alive until closed.
      sock?.close();
      sock = undefined;
    },
  };
}

const disabledNotifier: Notifier = {
  enabled: false,
  watchdogMs: undefined,
  ready: () => undefined,
  status: () => undefined,
  stopping: () => Promise.resolve(),
  startWatchdog: () => () => undefined,
  close: () => undefined,
};
