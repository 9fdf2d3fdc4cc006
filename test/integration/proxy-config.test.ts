// credentials[].proxy as the validator reads it: loopback or a unix socket by default, a remote
// address only with allow_remote, every problem naming the line, the key and the fix.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigInvalidError, parseConfig } from "../../src/config/load.js";

const yaml = (
  proxy: string,
  api = "    api: { base_url: https://api.example/connectedcar/v3 }\n",
) => `smtp: { url: "smtp://127.0.0.1:25", from: "credd <credd@partner.example>" }
alerts: { to: [ops@partner.example] }
credentials:
  - name: fleet-prod
    mzp: MZP128745
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
${api}    proxy: ${proxy}
`;

function issues(text: string): readonly { key: string; problem: string; fix: string; line?: number }[] {
  try {
    parseConfig(text, "/etc/credd/credd.yaml", {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    assert.match(err.message, /credd\.yaml:\d+: credentials\[fleet-prod\]\.proxy/);
    return err.issues;
  }
  assert.fail("accepted");
}

test("a loopback address or a unix socket loads with the defaults", () => {
  for (const listen of [
    '"127.0.0.1:8301"',
    '"[::1]:8301"',
    '"localhost:8301"',
    "/run/credd/fleet-prod.sock",
    '"systemd:fleet-prod"',
    "systemd:credd-proxy@fleet-prod.socket",
  ]) {
    const c = parseConfig(yaml(`{ listen: ${listen} }`), "/etc/credd/credd.yaml", {});
    assert.deepEqual(c.credentials[0]!.proxy, { listen: listen.replace(/"/g, ""), allow_remote: false, timeout_ms: 30000, max_body_bytes: 10485760 });
  }
});

test("a non-loopback address is refused unless allow_remote: true", () => {
  const [i] = issues(yaml('{ listen: "0.0.0.0:8301" }'));
  assert.equal(i!.key, "credentials[fleet-prod].proxy.listen");
  assert.match(i!.problem, /not a loopback address/);
  assert.match(i!.fix, /allow_remote: true/);
  assert.equal(i!.line, 8);
  const c = parseConfig(yaml('{ listen: "0.0.0.0:8301", allow_remote: true }'), "/etc/credd/credd.yaml", {});
  assert.equal(c.credentials[0]!.proxy!.allow_remote, true);
});

test("bad values name the key and the fix", () => {
  const cases: [string, string, RegExp][] = [
    ["{ listen: 8301 }", "proxy.listen", /must be a string/],
    ['{ listen: "127.0.0.1" }', "proxy.listen", /HOST:PORT/],
    ['{ listen: "127.0.0.1:70000" }', "proxy.listen", /not from 1 to 65535/],
    ["{ allow_remote: true }", "proxy.listen", /is missing/],
    ['{ listen: "127.0.0.1:8301", timeout_ms: 5 }', "proxy.timeout_ms", /from 100 to 600000/],
    ['{ listen: "127.0.0.1:8301", max_body_bytes: "1M" }', "proxy.max_body_bytes", /whole number/],
    ['{ listen: "127.0.0.1:8301", allow_remote: "yes" }', "proxy.allow_remote", /true or false/],
    ['{ listen: "127.0.0.1:8301", upstream: x }', "proxy.upstream", /.+/],
    ['{ listen: "systemd:" }', "proxy.listen", /after "systemd:" comes the socket unit's FileDescriptorName=/],
    ['{ listen: "systemd:a:b" }', "proxy.listen", /no ":" or space/],
    ['{ listen: "systemd:a b" }', "proxy.listen", /no ":" or space/],
  ];
  for (const [proxy, key, problem] of cases) {
    const found = issues(yaml(proxy));
    assert.equal(found.length, 1, `${proxy}: ${JSON.stringify(found)}`);
    assert.equal(found[0]!.key, `credentials[fleet-prod].${key}`, proxy);
    assert.match(found[0]!.problem, problem, proxy);
    assert.ok(found[0]!.fix.length > 0);
  }
  const [noApi] = issues(yaml('{ listen: "127.0.0.1:8301" }', ""));
  assert.equal(noApi!.key, "credentials[fleet-prod].proxy");
  assert.match(noApi!.problem, /api\.base_url/);
});

test("two credentials with one listen address: the second is refused, naming the first", () => {
  const two = yaml('{ listen: "systemd:fleet" }').replace(
    "credentials:\n",
    `credentials:
  - name: fleet-test
    mzp: MZP654321
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    api: { base_url: https://api.example/connectedcar/v3 }
    proxy: { listen: "systemd:fleet" }
`,
  );
  try {
    parseConfig(two, "/etc/credd/credd.yaml", {});
    assert.fail("accepted");
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    assert.equal(err.issues.length, 1, JSON.stringify(err.issues));
    assert.equal(err.issues[0]!.key, "credentials[fleet-prod].proxy.listen");
    assert.match(err.issues[0]!.problem, /"systemd:fleet" is already the proxy\.listen of credentials\[fleet-test\]/);
    assert.match(err.issues[0]!.fix, /another port/);
  }
});
