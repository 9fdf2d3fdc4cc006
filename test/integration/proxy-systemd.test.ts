// Socket activation for real: systemd-socket-activate (Debian's systemd package) opens the port,
// names the socket with --fdname like FileDescriptorName= does, and execs `credd run` on the first
// connection; credd serves that connection and the next ones on the socket it was handed. A
// `systemd:NAME` nobody passed is an error naming the socket unit fix; the daemon carries on. A
// unix socket from systemd keeps the mode systemd gave it and is left in place at stop.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants, rmSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { delimiter, join } from "node:path";
import { after, before, test } from "node:test";
import { CREDD_BIN, creddEnv, followLog } from "../helpers/credd.js";
import { makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

const tool = (process.env.PATH ?? "")
  .split(delimiter)
  .map((d) => join(d, "systemd-socket-activate"))
  .find((f) => {
    try {
      accessSync(f, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
const skip = tool ? false : "systemd-socket-activate is not installed (Debian: apt-get install systemd)";

let w: ProxyWorld;

before(async () => {
  if (skip) return;
  w = await makeProxyWorld(undefined, {
    keepListen: true,
    proxyFor: (name) => `{ listen: "systemd:${name}", timeout_ms: 20000 }`,
  });
  await w.rotate();
  w.ctx.db.close();
});

after(async () => {
  if (skip) return;
  await w.fake.close();
  rmSync(w.dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function get(to: { port: number } | { socketPath: string }, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ ...("port" in to ? { host: "127.0.0.1", port: to.port } : to), path, agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** `credd run` under systemd-socket-activate listening on `listen` (an address or a socket path), the socket named fleet-prod. */
async function activate(listen: string) {
  // --fdname=fleet-prod: what FileDescriptorName=fleet-prod in a socket unit gives.
  const child = spawn(tool!, ["-l", listen, "--fdname=fleet-prod", process.execPath, CREDD_BIN, "--config", join(w.dir, "credd.yaml"), "run"], {
    env: creddEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const log = followLog(child, { context: () => `${log.lines.map((l) => JSON.stringify(l)).join("\n")}\n${stderr}` });
  const all = () => `${log.lines.map((l) => JSON.stringify(l)).join("\n")}\n${stderr}`;
  // systemd-socket-activate listens at once and starts credd on the first connection, which
  // waits in the socket's backlog until credd listens on the socket it inherited.
  await new Promise<void>((resolve, reject) => {
    const look = () => {
      if (stderr.includes(`Listening on ${listen}`)) resolve();
    };
    child.stderr.on("data", look);
    child.on("exit", () => reject(new Error(`systemd-socket-activate exited: ${stderr}`)));
    look();
  });
  const stop = async () => {
    child.kill("SIGTERM");
    const exit = await log.exited;
    assert.equal(exit.code, 0, all());
    // The secret scan over what `credd run` logged.
    const logs = all();
    assert.match(logs, /"msg":"proxy request"/);
    for (const t of w.fake.tokensIssued) assert.ok(!logs.includes(t.token), "a token in the logs");
    assert.doesNotMatch(logs, /PRIVATE KEY|Bearer |client_id=partner-client/);
  };
  return { child, log, all, stop };
}

test("credd run on a TCP socket systemd handed over as fleet-prod; systemd:fleet-new not passed is a clear error", { skip }, async () => {
  w.writeConfig((name) => `{ listen: "systemd:${name}", timeout_ms: 20000 }`);
  const port = await freePort();
  const calls = w.fake.apiCalls.length;
  const a = await activate(`127.0.0.1:${port}`);
  try {
    const first = await get({ port }, "/connectedcar/v3/fleets");
    assert.equal(first.status, 200, `${first.body} ${a.all()}`);
    const up = await a.log.waitForLog((l) => l.msg === "proxy listening" && l.credential === "fleet-prod");
    assert.equal(up.systemd, "fleet-prod");
    assert.equal(up.listen, `127.0.0.1:${port}`);
    assert.equal((await get({ port }, "/connectedcar/v3/fleets")).status, 200, "and the next connection");
    assert.equal(w.fake.apiCalls.slice(calls).filter((c) => c.status === 200).length, 2);

    const missing = await a.log.waitForLog((l) => l.msg === "proxy not started" && l.credential === "fleet-new");
    assert.match(
      String(missing.err),
      /credentials\[fleet-new\]\.proxy\.listen is "systemd:fleet-new", but systemd passed no socket of that name: it passed "fleet-prod" \(fix: a socket unit with FileDescriptorName=fleet-new/,
    );
  } finally {
    await a.stop();
  }
});

test("a unix socket from systemd: served, its mode left as the socket unit made it, not removed at stop", { skip }, async () => {
  w.writeConfig((name) => (name === "fleet-prod" ? '{ listen: "systemd:fleet-prod" }' : ""));
  const socketPath = join(w.dir, "fleet-prod.sock");
  const a = await activate(socketPath);
  try {
    const mode = statSync(socketPath).mode & 0o777;
    assert.equal((await get({ socketPath }, "/connectedcar/v3/fleets")).status, 200, a.all());
    const up = await a.log.waitForLog((l) => l.msg === "proxy listening" && l.credential === "fleet-prod");
    assert.equal(up.listen, "systemd:fleet-prod", "a unix socket has no address of its own to show");
    assert.equal(statSync(socketPath).mode & 0o777, mode, "SocketMode= is systemd's");
  } finally {
    await a.stop();
  }
  assert.ok(statSync(socketPath).isSocket(), "the socket file is systemd's to remove");
});
