// Every command-line mistake of every command, through the dispatcher in-process (src/cli/dispatch.ts):
// the exit code (2, and 3 for status), one message, the usage line, a suggestion for a near miss;
// `help COMMAND` is `COMMAND --help`. Mistakes are caught before any config is read, so no config is needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { COMMANDS } from "../../src/cli/commands.js";
import { main } from "../../src/cli/dispatch.js";

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...argv: string[]): Promise<Out> {
  const out: string[] = [];
  const err: string[] = [];
  // A config that does not exist: should any case get past the command line, it fails loudly, not quietly.
  const code = await main(["--config", "/nonexistent/credd.yaml", ...argv], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

const CONTRACT = ["run", "status", "import", "enroll", "renew", "ingest", "token", "doctor", "rollback", "alerts", "check-config", "list", "sandbox"];

test("the table holds every command of the contract", () => {
  for (const name of CONTRACT)
    assert.ok(
      COMMANDS.some((c) => c.name === name),
      name,
    );
});

/** Words that satisfy the command's required arguments and options, so one mistake at a time is tested. */
function valid(name: string): string[] {
  const c = COMMANDS.find((x) => x.name === name)!;
  const args = Array.from({ length: c.args.min }, (_, i) => (c.args.choices ? c.args.choices[0]! : `arg${i + 1}`));
  const opts = Object.entries(c.options).flatMap(([k, o]) => (o.required ? [`--${k}`, `${k}.pem`] : []));
  return [...args, ...opts];
}

const mistakes: { what: string; argv: (name: string) => string[] | undefined; message: RegExp }[] = [
  { what: "unknown option", argv: (n) => [n, ...valid(n), "--bogus"], message: /unknown option --bogus/ },
  { what: "unknown short option", argv: (n) => [n, ...valid(n), "-q"], message: /unknown option -q/ },
  { what: "missing value (global --config after the command)", argv: (n) => [n, ...valid(n), "--config"], message: /--config needs a FILE/ },
  { what: "option given twice", argv: (n) => [n, ...valid(n), "--config", "a.yaml"], message: /--config is given twice/ },
  {
    what: "extra argument",
    argv: (n) => {
      const c = COMMANDS.find((x) => x.name === n)!;
      if (c.args.max === Infinity) return undefined; // ingest takes any number of files
      const words = Array.from({ length: c.args.max + 1 }, (_, i) => (c.args.choices ? c.args.choices[0]! : `arg${i + 1}`));
      return [n, ...words, ...valid(n).filter((w) => w.startsWith("--") || w.endsWith(".pem"))];
    },
    message: /unexpected argument/,
  },
  {
    what: "missing argument",
    argv: (n) => {
      const c = COMMANDS.find((x) => x.name === n)!;
      return c.args.min > 0 ? [n, ...valid(n).slice(c.args.min)] : undefined;
    },
    message: /missing (NAME|FILE)/,
  },
];

for (const name of CONTRACT) {
  const expected = name === "status" ? 3 : 2;
  for (const m of mistakes) {
    const argv = m.argv(name);
    if (!argv) continue;
    test(`${name}: ${m.what} exits ${expected} with the message and the usage line`, async () => {
      const r = await cli(...argv);
      assert.equal(r.code, expected, `${argv.join(" ")}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^credd ${name}: `), r.stderr);
      assert.match(r.stderr, m.message);
      assert.match(r.stderr, new RegExp(`\\nusage: credd ${name}\\b`), "the command's usage line");
      assert.match(r.stderr, new RegExp(`See \`credd help ${name}\``));
      assert.equal(
        r.stderr.split("\n").length,
        2 + COMMANDS.find((c) => c.name === name)!.usage.length,
        `one message, no stack, no whole help:\n${r.stderr}`,
      );
      assert.equal(r.stdout, "", "nothing on stdout");
    });
  }
}

test("import: each required option, and a value that is another option", async () => {
  const noKey = await cli("import", "fleet-prod", "--cert", "c.pem");
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /missing --key FILE/);
  const swallowed = await cli("import", "fleet-prod", "--cert", "--key", "k.pem");
  assert.equal(swallowed.code, 2);
  assert.match(swallowed.stderr, /--cert needs a FILE \(got the option --key; a value starting with - is written --cert=--key\)/);
});

test("a flag given a value is a mistake", async () => {
  const r = await cli("status", "--json=yes");
  assert.equal(r.code, 3);
  assert.match(r.stderr, /--json takes no value/);
});

test("an unknown command exits 2 with a suggestion for a near miss", async () => {
  for (const [typo, meant] of [
    ["stauts", "status"],
    ["statsu", "status"],
    ["enrol", "enroll"],
    ["rollbak", "rollback"],
    ["tokne", "token"],
    ["hlep", "help"],
  ]) {
    const r = await cli(typo!);
    assert.equal(r.code, 2, typo);
    assert.match(r.stderr, new RegExp(`unknown command "${typo}" \\(did you mean ${meant}\\?\\)`), r.stderr);
    assert.match(r.stderr, /usage: credd \[--config FILE\] COMMAND/);
  }
  const far = await cli("frobnicate");
  assert.equal(far.code, 2);
  assert.doesNotMatch(far.stderr, /did you mean/);
  assert.match(far.stderr, /the commands are run, status, import/);
});

test("option suggestions: --jsn, --forse, --confg, a prefix, and a word of alerts", async () => {
  const cases: [string[], RegExp, number][] = [
    [["status", "--jsn"], /unknown option --jsn \(did you mean --json\?\)/, 3],
    [["token", "fleet-prod", "--josn"], /did you mean --json\?/, 2],
    [["renew", "fleet-prod", "--forse"], /did you mean --force\?/, 2],
    [["status", "--confg", "x.yaml"], /did you mean --config\?/, 3],
    [["import", "a", "--cert", "c", "--key", "k", "--passphrase", "p"], /did you mean --passphrase-file\?/, 2],
    [["sandbox", "--sign-dealy", "3"], /did you mean --sign-delay\?/, 2],
    [["alerts", "tset"], /unknown alerts command "tset" \(did you mean test\?\)/, 2],
    [["enroll", "fleet-prod", "--force"], /unknown option --force \(options: --no-send\)/, 2],
    [["rollback", "fleet-prod", "--json"], /unknown option --json \(rollback takes no options\)/, 2],
  ];
  for (const [argv, message, code] of cases) {
    const r = await cli(...argv);
    assert.equal(r.code, code, argv.join(" "));
    assert.match(r.stderr, message, r.stderr);
  }
});

test("status --json reports a command-line mistake in JSON too, for the monitoring side", async () => {
  const r = await cli("status", "--json", "a", "b");
  assert.equal(r.code, 3);
  const j = JSON.parse(r.stdout);
  assert.equal(j.status, "unknown");
  assert.equal(j.exit_code, 3);
  assert.match(j.error, /unexpected argument "b"/);
});

test("`credd help COMMAND`, `COMMAND --help` and `COMMAND -h` print the same text, exit 0", async () => {
  for (const c of COMMANDS) {
    const a = await cli("help", c.name);
    const b = await cli(c.name, "--help");
    const h = await cli(c.name, "-h");
    assert.equal(a.code, 0, c.name);
    assert.equal(b.code, 0, c.name);
    assert.equal(h.code, 0, c.name);
    assert.equal(a.stdout, b.stdout, c.name);
    assert.equal(h.stdout, b.stdout, c.name);
    assert.match(a.stdout, new RegExp(`^usage: credd ${c.name}\\b`), c.name);
    assert.match(a.stdout, /exit/, `${c.name}'s help says its exit codes`);
    assert.equal(a.stderr, "", c.name);
  }
  // --help wins over a mistake on the same line: a person asking for help gets it.
  assert.equal((await cli("import", "--bogus", "--help")).code, 0);
  const all = await cli("help");
  assert.equal(all.code, 0);
  assert.equal(all.stdout, (await cli("--help")).stdout);
  for (const name of [...CONTRACT, "help"]) assert.match(all.stdout, new RegExp(`^  ${name}\\b`, "m"), name);
  const typo = await cli("help", "stauts");
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /did you mean status\?/);
  assert.equal((await cli("help", "status", "token")).code, 2);
});

test("global options before or after the command, in every spelling", async () => {
  // The config is read only once the command line is right: a config that does not exist proves which one was taken.
  for (const argv of [
    ["--config", "/a/b.yaml", "status"],
    ["status", "--config", "/a/b.yaml"],
    ["status", "-c", "/a/b.yaml"],
    ["status", "--config=/a/b.yaml"],
  ]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
    assert.equal(code, 3, argv.join(" "));
    assert.match(err.join("\n"), /\/a\/b\.yaml/, `${argv.join(" ")}: ${err.join("\n")}`);
  }
});

test("no command: the list on stderr, exit 2; --version and --help exit 0; a bad option exits 2", async () => {
  const none = await main([], { out: () => undefined, err: () => undefined });
  assert.equal(none, 2);
  assert.match((await cli("--version")).stdout, /^credd \d+\.\d+\.\d+/);
  const bad = await main(["--verison"], { out: () => undefined, err: () => undefined });
  assert.equal(bad, 2);
});
