// A real Dovecot IMAP server on loopback for the mailbox tests, as a partner's mailbox would be:
// its own config in a temp folder, its own TLS certificate (openssl), passwd-file login, Maildir
// storage in the temp folder, run as the current user in the foreground (`dovecot -F -c CONF`).
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./net.js";
import { makeServerTls, type ServerTls } from "./tls.js";

export const DOVECOT = "/usr/sbin/dovecot";

/** Why the IMAP tests cannot run here, or undefined when they can. */
export function dovecotMissing(): string | undefined {
  return existsSync(DOVECOT) ? undefined : `${DOVECOT} is not installed (Debian: apt-get install dovecot-imapd)`;
}

export interface Dovecot {
  host: string;
  /** Implicit TLS (imaps) and plain-then-STARTTLS (imap) ports. */
  imapsPort: number;
  imapPort: number;
  user: string;
  password: string;
  tls: ServerTls;
  /** The user's Maildir (Maildir++: folder a/b is .a.b). */
  maildir: string;
  stop(): Promise<void>;
  /** Starts it again on the same ports and storage (after stop). */
  start(): Promise<void>;
  log(): string;
}

async function waitForPort(port: number, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`dovecot did not listen on ${port}: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startDovecot(dir: string, opts: { user?: string; password?: string } = {}): Promise<Dovecot> {
  const tls = makeServerTls({ keyType: "rsa" });
  const me = userInfo();
  const user = opts.user ?? "credd@partner.example";
  const password = opts.password ?? "imap-secret-42";
  const [imapPort, imapsPort] = [await freePort(), await freePort()];
  // Run as root (CI), Dovecot refuses root for its login and internal processes: the users its
  // Debian package creates take their place, and the temp folder must let them through.
  const root = me.uid === 0;
  const login = root ? "dovenull" : me.username;
  const internal = root ? "dovecot" : me.username;
  const internalGroup = root ? "dovecot" : groupName(me.gid);
  if (root) chmodSync(dir, 0o755);

  for (const d of ["run", "lib", "home"]) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  const home = join(dir, "home", "credd");
  const maildir = join(home, "Maildir");
  mkdirSync(maildir, { recursive: true, mode: 0o700 });
  // As root, the mail is kept by `nobody`: Dovecot refuses uid 0 for mail processes.
  const mailUid = root ? uidOf("nobody") : me.uid;
  const mailGid = root ? gidOf("nogroup") : me.gid;
  if (root) for (const d of [home, maildir]) chownSync(d, mailUid, mailGid);
  writeFileSync(join(dir, "passwd"), `${user}:{PLAIN}${password}:${mailUid}:${mailGid}::${home}\n`, { mode: 0o600 });
  if (root) chownSync(join(dir, "passwd"), uidOf("dovecot"), me.gid); // the auth process reads it
  const logFile = join(dir, "dovecot.log");
  const conf = join(dir, "dovecot.conf");
  writeFileSync(
    conf,
    `# throwaway test server: loopback only
base_dir = ${join(dir, "run")}
state_dir = ${join(dir, "lib")}
instance_name = credd-test-${imapsPort}
log_path = ${logFile}
protocols = imap
shutdown_clients = yes
listen = 127.0.0.1
ssl = required
ssl_cert = <${tls.certPath}
ssl_key = <${tls.keyPath}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_internal_user = ${internal}
default_internal_group = ${internalGroup}
default_login_user = ${login}
first_valid_uid = 0
first_valid_gid = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${join(dir, "passwd")}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${join(dir, "passwd")}
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${imapsPort}
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
`,
  );
  let child: ChildProcess | undefined;
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-4000) : "(no log)");
  const start = async () => {
    let stderr = "";
    // Its own process group: a stop ends the master and every imap process it forked, as a restart does.
    child = spawn(DOVECOT, ["-F", "-c", conf], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
    child.stdout?.resume();
    await waitForPort(imapsPort, 15_000, () => `${stderr}\n${log()}`);
    await waitForPort(imapPort, 15_000, () => `${stderr}\n${log()}`);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      try {
        process.kill(-c.pid!, "SIGTERM");
      } catch {
        c.kill("SIGTERM");
      }
    });
    child = undefined;
  };
  await start();
  return { host: "127.0.0.1", imapPort, imapsPort, user, password, tls, maildir, stop, start, log };
}

function uidOf(name: string): number {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(":")[2] ?? 0);
}

function gidOf(name: string): number {
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(":")[2] ?? 0);
}

function groupName(gid: number): string {
  try {
    const line = readFileSync("/etc/group", "utf8")
      .split("\n")
      .find((l) => l.split(":")[2] === String(gid));
    return line?.split(":")[0] ?? String(gid);
  } catch {
    return String(gid);
  }
}
