// `systemctl reload credd` (the daemon's reload) and `proxy:`: a listener starts when proxy: is
// added (also the first one, when none ran), stops when it goes, moves when listen changes (the
// old address kept when the new one cannot be opened), and takes other settings without closing.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { after, before, test } from "node:test";
import { startDaemon } from "../../src/daemon/run.js";
import { readProxyState } from "../../src/proxy/state-file.js";
import { makeProxyWorld, type ProxyWorld } from "../helpers/proxy.js";

let w: ProxyWorld;

before(async () => {
  w = await makeProxyWorld(undefined, { keepListen: true, proxyFor: () => "" });
  await w.rotate();
});

after(async () => {
  await w.fake.close();
  rmSync(w.dir, { recursive: true, force: true });
});

/** A port nothing listens on now, or (`hold`) one a server of this test keeps taken. */
function port(hold = false): Promise<{ port: number; release: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      const release = () => new Promise<void>((r) => s.close(() => r()));
      if (hold) resolve({ port, release });
      else void release().then(() => resolve({ port, release: async () => {} }));
    });
    s.on("error", reject);
  });
}

/** The status of a request, or the connection error's code. */
function ask(p: number, opts: { method?: string; body?: string; agent?: http.Agent } = {}): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port: p, path: "/connectedcar/v3/fleets", method: opts.method ?? "GET", agent: opts.agent ?? false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(opts.body);
  });
}

test("reload starts, moves, reconfigures and stops proxy listeners", async () => {
  const d = await startDaemon(w.ctx, { outboxTickMs: 3_600_000, inboxPollMs: 3_600_000, tokenTickMs: 3_600_000 });
  const listening = (name: string) => w.logLines.filter((l) => l.includes('"msg":"proxy listening"') && l.includes(`"credential":"${name}"`)).length;
  try {
    const [p1, p2, p3] = [await port(), await port(), await port()];
    assert.equal(await ask(p1.port), "ECONNREFUSED", "no proxy: at the start");

    // The first proxy: of all, added by a reload (the proxy code was not loaded at the start).
    w.writeConfig((name) => (name === "fleet-prod" ? `{ listen: "127.0.0.1:${p1.port}" }` : ""));
    assert.equal(await d.reload(), true);
    assert.equal(await ask(p1.port), 200);

    // Moved, and a second one added: the old address closed, the new ones answer.
    w.writeConfig((name) => `{ listen: "127.0.0.1:${name === "fleet-prod" ? p2.port : p3.port}" }`);
    assert.equal(await d.reload(), true);
    assert.equal(await ask(p1.port), "ECONNREFUSED", "the old address is closed");
    assert.equal(await ask(p2.port), 200);
    assert.equal(await ask(p3.port), 503, "fleet-new listens; it has no certificate yet");
    assert.ok(w.logLines.some((l) => l.includes('"msg":"proxy moved"')));

    // Same address, a new max_body_bytes: taken in place, on a connection kept alive across the
    // reload; fleet-new's proxy: removed, its listener stopped and marked so for credd status.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal(await ask(p2.port, { agent }), 200);
    const starts = listening("fleet-prod");
    w.writeConfig((name) => (name === "fleet-prod" ? `{ listen: "127.0.0.1:${p2.port}", max_body_bytes: 10 }` : ""));
    assert.equal(await d.reload(), true);
    assert.equal(await ask(p2.port, { agent, method: "POST", body: "x".repeat(11) }), 413, "the new cap");
    assert.equal(await ask(p2.port, { method: "POST", body: "x".repeat(10) }), 405, "the API's answer: within the cap");
    assert.equal(listening("fleet-prod"), starts, "not restarted");
    agent.destroy();
    assert.equal(await ask(p3.port), "ECONNREFUSED");
    assert.equal(readProxyState(w.ctx.config.runtime_dir, "fleet-new")?.listening, null);
    assert.ok(w.logLines.some((l) => l.includes('"msg":"proxy stopped: no proxy in the config any more"')));

    // A move to a port that is taken: logged, and the old address keeps serving.
    const taken = await port(true);
    try {
      w.writeConfig((name) => (name === "fleet-prod" ? `{ listen: "127.0.0.1:${taken.port}" }` : ""));
      assert.equal(await d.reload(), true);
      assert.equal(await ask(p2.port), 200);
      const err = w.logLines.filter((l) => l.includes('"msg":"proxy not started"')).at(-1) ?? "";
      assert.match(err, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE`));
      assert.ok(w.logLines.some((l) => l.includes('"msg":"proxy not moved: still listening on the old address"')));
      assert.equal(readProxyState(w.ctx.config.runtime_dir, "fleet-prod")?.listening, `127.0.0.1:${p2.port}`);
    } finally {
      await taken.release();
    }
  } finally {
    await d.stop("test");
  }
  assert.equal(readProxyState(w.ctx.config.runtime_dir, "fleet-prod")?.listening, null, "marked not listening at stop");
});
