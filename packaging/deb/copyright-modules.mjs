// The copyright paragraphs (DEP-5) of the npm modules bundled in the package, one per module, from
// its package.json and its own license file: run by scripts/package-deb.sh on the pruned tree.
// usage: node copyright-modules.mjs NODE_MODULES_DIR   (prints to stdout)
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = process.argv[2];
if (!root) {
  console.error("usage: copyright-modules.mjs NODE_MODULES_DIR");
  process.exit(2);
}
// The modules sit under usr/lib/credd/node_modules in the package.
const shipped = (dir) => `usr/lib/credd/node_modules/${relative(root, dir)}`;

/** Every module folder under a node_modules folder, scoped ones and nested node_modules included. */
function modules(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isDirectory()) continue;
    if (name.startsWith("@")) out.push(...modules(path));
    else if (existsSync(join(path, "package.json"))) {
      out.push(path);
      if (existsSync(join(path, "node_modules"))) out.push(...modules(join(path, "node_modules")));
    }
  }
  return out;
}

function licenseName(pkg) {
  const l = pkg.license ?? pkg.licenses;
  if (typeof l === "string") return l;
  if (Array.isArray(l)) return l.map((x) => (typeof x === "string" ? x : x.type)).join(" or ");
  if (l && typeof l === "object" && l.type) return l.type;
  return "unknown";
}

/** A DEP-5 field body: each line indented by one space, empty lines as " .". */
const body = (text) =>
  text
    .replace(/\r\n?/g, "\n")
    .trim()
    .split("\n")
    .map((line) => (line.trim() === "" ? " ." : ` ${line.replace(/\t/g, "    ").trimEnd()}`))
    .join("\n");

/**
 * Licenses whose full text Debian keeps in /usr/share/common-licenses: the copyright file refers to
 * it instead of repeating the text (lintian: copyright-file-contains-full-apache-2-license).
 */
const COMMON = new Map([
  ["Apache-2.0", "Apache-2.0"],
  ["CC0-1.0", "CC0-1.0"],
  ["MPL-1.1", "MPL-1.1"],
  ["MPL-2.0", "MPL-2.0"],
  ["GPL-2.0", "GPL-2"],
  ["GPL-2.0-only", "GPL-2"],
  ["GPL-3.0", "GPL-3"],
  ["GPL-3.0-only", "GPL-3"],
  ["LGPL-2.1", "LGPL-2.1"],
  ["LGPL-2.1-only", "LGPL-2.1"],
  ["LGPL-3.0", "LGPL-3"],
  ["LGPL-3.0-only", "LGPL-3"],
]);

for (const dir of modules(root)) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|-|$)/i.test(f));
  const text = file ? readFileSync(join(dir, file), "utf8") : "";
  const notices = [...new Set(text.split(/\r?\n/).map((l) => l.trim()).filter((l) => /^(\(c\)|copyright\b.*(\d{4}|\(c\)|©))/i.test(l)))];
  const author = typeof pkg.author === "string" ? pkg.author : pkg.author?.name;
  const copyright = notices.length ? notices : [author ? `the authors of ${pkg.name} (${author})` : `the authors of ${pkg.name}`];
  console.log("");
  console.log(`Files: ${shipped(dir)}/*`);
  console.log(`Copyright: ${copyright.join("\n ")}`);
  const license = licenseName(pkg);
  console.log(`License: ${license}`);
  console.log(
    COMMON.has(license)
      ? body(`On Debian systems the full text of the ${license} license is in /usr/share/common-licenses/${COMMON.get(license)}.`)
      : text
      ? body(text)
      : body(`${pkg.name} ${pkg.version} ships no license file; its package.json names the license "${license}".`),
  );
}
