// A quick first parse of the config with js-yaml, set to give exactly what the `yaml` package's
// YAML 1.2 core schema gives. The `yaml` Document parse (kept for line numbers in messages) costs
// about 200 ms for 1,000 credentials before the JIT warms up; js-yaml about 40 ms. load.ts uses
// this only for a file it can take whole: anything unusual, and any problem, goes the slow way.
import jsyaml from "js-yaml";

const scalar = (tag: string, resolve: (s: string) => boolean, construct: (s: string) => unknown) =>
  new jsyaml.Type(`tag:yaml.org,2002:${tag}`, {
    kind: "scalar",
    resolve: (s: string | null) => s !== null && resolve(s),
    construct: (s: string | null) => construct(s ?? ""),
  });

// The YAML 1.2 core schema's plain-scalar rules (yaml.org/spec/1.2.2 §10.3.2), as `yaml` applies them:
// no `1_000`, no `0b11`, no sexagesimal; anything else is a string.
const NULL = /^(?:~|null|Null|NULL|)$/;
const BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

// js-yaml asks every implicit type about every plain scalar: the first character rules most out
// before a regular expression runs ("FR", "Paris", "MZP128745" are strings at once).
const NUMERIC_START = /^[-+.0-9]/;

const CORE = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar("null", (s) => (s.length <= 4 ? NULL.test(s) : false), () => null),
    scalar("bool", (s) => s.length >= 4 && s.length <= 5 && BOOL.test(s), (s) => s[0] === "t" || s[0] === "T"),
    scalar("int", (s) => NUMERIC_START.test(s) && INT.test(s), (s) =>
      s.startsWith("0o") ? parseInt(s.slice(2), 8) : s.startsWith("0x") ? parseInt(s.slice(2), 16) : Number(s),
    ),
    scalar("float", (s) => NUMERIC_START.test(s) && FLOAT.test(s) && !INT.test(s), (s) => {
      const t = s.toLowerCase();
      if (t.endsWith(".nan")) return NaN;
      if (t.endsWith(".inf")) return t.startsWith("-") ? -Infinity : Infinity;
      return Number(s);
    }),
  ],
});

/**
 * What goes to `yaml` directly: anchors and aliases (js-yaml shares them where `yaml` counts and
 * limits them), tags, directives, content on the `---` line, and a comment glued to a quote or a
 * bracket (`"v"#c`: js-yaml reads it as a comment, `yaml` refuses it). The test is loose on purpose
 * (a `&x` inside a quoted string also sends the file the slow way): a wrong "no" costs only time.
 */
const UNUSUAL = /(?:^|[\s[{,])(?:[&*][^\s,[\]{}"']|!)|^%|^---[ \t]*[^\s#]|["'\]}]#/m;

/**
 * The config's value, or undefined when the file is unusual or does not parse: then use `yaml`.
 * A mapping or list used as a key is the one place the two still differ (js-yaml names it
 * "[object Object]" or "a,b", yaml "{ a: 1 }"): every config mapping has a fixed set of keys, so
 * either is an unknown key, the quick result is refused, and `yaml` reports it.
 */
export function quickParse(text: string): unknown {
  if (UNUSUAL.test(text)) return undefined;
  try {
    return jsyaml.load(text, { schema: CORE, json: false });
  } catch {
    return undefined;
  }
}
