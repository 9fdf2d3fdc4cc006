// systemd's notify protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1, STOPPING=1 as datagrams to
// $NOTIFY_SOCKET. Node's dgram has no unix datagram sockets, so the unix-dgram addon sends them.
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { CreddError, errorMessage } from "../errors.js";
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

/** The part of unix-dgram (2.0.7, no type definitions) credd uses. */
export interface DgramSocket {
  connect(path: string): void;
  /** On a connected socket; the callback's error has code 1 ("congestion") when the queue is full. */
  send(buf: Buffer, callback: (err?: Error & { code?: unknown }) => void): void;
  /** On an unconnected socket (sendto); the callback runs before send returns. */
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error & { code?: unknown }) => void): void;
  on(event: "error", listener: (err: Error & { code?: unknown }) => void): this;
  once(event: "writable" | "error", listener: (err?: Error) => void): this;
  removeAllListeners(event?: string): this;
  close(): void;
}

export interface UnixDgram {
  createSocket(type: "unix_dgram", onMessage?: (buf: Buffer) => void): DgramSocket;
}

/** Loaded only under systemd: a native addon that plain `credd run` need not start with. */
export function loadUnixDgram(): UnixDgram {
  return createRequire(import.meta.url)("unix-dgram") as UnixDgram;
}

/** sockaddr_un's sun_path holds 108 bytes with the terminating NUL; unix-dgram would cut a longer path silently. */
const MAX_PATH_BYTES = 107;
/** Datagrams held while systemd's queue is full; past this the oldest goes. */
const MAX_PENDING = 64;

/**
 * With $NOTIFY_SOCKET set, systemd waits for READY=1 (Type=notify) and kills a service whose
 * watchdog pings stop: a notifier that cannot send would only end in a timeout and a restart loop.
 * So this refuses at start, naming the socket and the reason, when the addon does not load or the
 * socket cannot be reached; the caller (`credd run`) exits 1 with that message.
 */
export function createNotifier(e: NotifyEnv, log: Logger, load: () => UnixDgram = loadUnixDgram): Notifier {
  if (!e.socket) return disabledNotifier;
  const where = `NOTIFY_SOCKET=${e.socket}`;
  if (e.socket.startsWith("@")) {
    // unix-dgram copies the address with strncpy, so a leading NUL (Linux's abstract namespace) ends it.
    throw new CreddError(
      "IO",
      `${where} is an abstract socket, which credd's datagram library (unix-dgram) cannot address: give a socket path (systemd's own NOTIFY_SOCKET always is one), or unset NOTIFY_SOCKET and use Type=simple`,
    );
  }
  if (Buffer.byteLength(e.socket) > MAX_PATH_BYTES) {
    throw new CreddError("IO", `${where}: the path is longer than the ${MAX_PATH_BYTES} bytes a unix socket address holds: use a shorter path`);
  }
  let mod: UnixDgram;
  try {
    mod = load();
  } catch (err) {
    throw new CreddError(
      "IO",
      `${where} asks for systemd notifications, but the unix-dgram addon does not load (${errorMessage(err)}): rebuild it with \`npm rebuild unix-dgram\` in credd's folder, or unset NOTIFY_SOCKET and use Type=simple`,
      { cause: err },
    );
  }
  const sock = mod.createSocket("unix_dgram");
  // connect() reports by emitting "error" synchronously; a socket that connects is the probe that the address works.
  let connectError: (Error & { code?: unknown }) | undefined;
  sock.once("error", (err) => (connectError = err));
  sock.connect(e.socket);
  sock.removeAllListeners("error");
  if (connectError) {
    sock.close(); // its poll handle would keep the process alive
    throw new CreddError("IO", `cannot reach systemd's notify socket (${where}): ${describeErrno(connectError)}; systemd would never get READY=1`, {
      cause: connectError,
    });
  }
  // Later failures are logged at error level, once per streak: systemd acts on them itself (start
  // timeout, watchdog), and a daemon that keeps renewing is better than one that exits over a STATUS= line.
  let failing = "";
  const report = (err: (Error & { code?: unknown }) | undefined) => {
    if (err) {
      const why = describeErrno(err);
      if (why !== failing) log.error({ err: why, socket: e.socket }, "cannot notify systemd");
      failing = why;
    } else if (failing) {
      log.info({ socket: e.socket }, "notifying systemd works again");
      failing = "";
    }
  };
  sock.on("error", report);

  // Datagrams wait here, in order, while systemd's queue is full (unix-dgram reports "congestion",
  // then "writable" once there is room). Capped, so a stalled systemd cannot grow it without end.
  const pending: { buf: Buffer; done: (() => void) | undefined }[] = [];
  let sending = false;
  let open = true;
  const flush = (): void => {
    if (sending || !open || pending.length === 0) return;
    sending = true;
    const next = pending[0]!;
    sock.send(next.buf, (err) => {
      if (err && err.code === 1) {
        sock.once("writable", () => {
          sending = false;
          flush();
        });
        return;
      }
      sending = false;
      pending.shift();
      report(err);
      next.done?.();
      flush();
    });
  };
  const send = (msg: string, done?: () => void) => {
    if (!open) return done?.();
    if (pending.length >= MAX_PENDING) {
      pending.shift()!.done?.();
      report(new Error(`systemd has not read its notify socket for ${MAX_PENDING} messages; dropping the oldest`));
    }
    pending.push({ buf: Buffer.from(msg, "utf8"), done });
    flush();
  };
  const watchdogMs = e.watchdogUsec ? Math.max(1, Math.floor(e.watchdogUsec / 2000)) : undefined;
  return {
    enabled: true,
    watchdogMs,
    ready: (status) => send(`READY=1${status ? `\nSTATUS=${statusLine(status)}` : ""}`),
    status: (line) => send(`STATUS=${statusLine(line)}`),
    stopping: (status) =>
      new Promise<void>((resolve) => {
        // Sent, or given up on after a second when systemd's queue stays full: a stop must not hang on it.
        const timer = setTimeout(resolve, 1_000);
        send(`STOPPING=1${status ? `\nSTATUS=${statusLine(status)}` : ""}`, () => {
          clearTimeout(timer);
          resolve();
        });
      }),
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
      if (!open) return;
      open = false;
      for (const m of pending.splice(0)) m.done?.();
      sock.close();
    },
  };
}

/** unix-dgram's errors carry a negative errno ("connect -111"): name it as the system would. */
function describeErrno(err: Error & { code?: unknown }): string {
  const code = typeof err.code === "number" && err.code < 0 ? errnoName(-err.code) : undefined;
  return code ? `${code} (${err.message})` : err.message;
}

function errnoName(n: number): string | undefined {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === n) return name;
  return undefined;
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
