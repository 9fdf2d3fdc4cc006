// The quick config parse (js-yaml set to the YAML 1.2 core schema) must give exactly what the
// `yaml` package gives for every file it takes, and hand everything unusual to `yaml`.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { quickParse } from "../../src/config/fast-yaml.js";

const ROOT = path.resolve(import.meta.dirname, "..", "..");

/** Plain scalars where YAML 1.1 habits, js-yaml's defaults and the 1.2 core schema part ways. */
const SCALARS = [
  "0123", "012", "+12", "-7", "0o17", "0o8", "0x1F", "0X1F", "0xG", "1_000", "0b11", "1:20", "190:20:30",
  "1e3", "1E3", "-1.5e-3", ".5", "5.", "+.inf", "-.Inf", ".NaN", ".nan", ".inf", "1.2.3",
  "true", "True", "TRUE", "tRue", "yes", "no", "on", "off", "y", "n", "~", "null", "Null", "NULL", "nUll",
  "2026-01-01", "2026-01-01T10:00:00Z", "MZP000001", "app-1", "00", "-0", "0.0", "=", "<<",
];

test("plain scalars: the quick parse gives the 1.2 core schema's values", () => {
  for (const s of SCALARS) {
    const text = `a: ${s}\nb: [${s}]\n`;
    assert.deepEqual(quickParse(text), parse(text), `a: ${s}`);
  }
  assert.deepEqual(quickParse("a:\n"), { a: null }, "an empty value is null");
});

test("every config file in the repository parses the same both ways (or goes to yaml)", () => {
  const files = [
    path.join(ROOT, "systemd", "credd.yaml.example"),
    ...fs.readdirSync(path.join(ROOT, "test", "corpus", "configs")).map((f) => path.join(ROOT, "test", "corpus", "configs", f)),
  ];
  let quick = 0;
  for (const f of files) {
    // Corpus configs are templates; filled in as the corpus test does (an unfilled `{{X}}` is a mapping key).
    const text = fs.readFileSync(f, "utf8").replace(/\{\{(\w+)\}\}/g, (_, k: string) => (k === "SMTP_PORT" ? "2525" : `/tmp/${k.toLowerCase()}`));
    const q = quickParse(text);
    if (q === undefined) continue;
    quick++;
    assert.deepEqual(q, parse(text, { uniqueKeys: true }), f);
  }
  assert.ok(quick >= files.length / 2, `most files take the quick path (${quick} of ${files.length})`);
});

test("anything unusual, and anything that does not parse, goes to yaml", () => {
  const slow = [
    "a: &x 1\nb: *x\n", // anchors and aliases: yaml limits them
    "a: !!binary aGk=\n", // tags
    "%YAML 1.1\n---\na: 1\n", // directives
    "a: 1\na: 2\n", // a duplicate key
    "a: [1\n", // a syntax error
    "a: 1\n---\nb: 2\n", // two documents
    "check_schedule: */10 * * * *\n", // an alias where a quote was meant
    "a: &é 1\nb: *é\n", // an anchor named with a character outside [\w.-]
    'a: "v"#c\n', // a comment glued to a quote: yaml refuses it, js-yaml would not
    "a: [x]#c\n",
    "a: {b: 1}#c\n",
    "--- a: 1\n", // content on the document start line: yaml refuses it
    "",
  ];
  for (const text of slow) assert.equal(quickParse(text), undefined, JSON.stringify(text));
  assert.deepEqual(quickParse('check_schedule: "*/10 * * * *"\nurl: "https://x/?a=1&b=2"\n'), {
    check_schedule: "*/10 * * * *",
    url: "https://x/?a=1&b=2",
  });
});
