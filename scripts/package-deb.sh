#!/usr/bin/env bash
# Builds the Debian package credd_<version>-<revision>_<arch>.deb from this checkout (`npm run
# package`, after `npm ci`). No network: it compiles with the typescript in node_modules, prunes a
# copy of node_modules to the production dependencies offline, and packs with dpkg-deb. The last
# line it prints is the path of the .deb.
#
#   scripts/package-deb.sh [--out DIR]      default DIR: this checkout
#
# Environment: DEB_REVISION (default 1), DEB_MAINTAINER (the Maintainer field), SOURCE_DATE_EPOCH
# (the changelog date; default: the last commit's date).
# Layout and maintainer scripts: packaging/deb/ (its files say what each one is for).
set -euo pipefail

OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a DIR}"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package-deb.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

SRC="$(cd "$(dirname "$0")/.." && pwd)"
cd "$SRC"
OUT="$(cd "${OUT:-$SRC}" && pwd)"
DEB="$SRC/packaging/deb"

missing=()
for tool in node dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package-deb.sh: missing ${missing[*]}: apt-get install nodejs dpkg-dev binutils gzip" >&2
  exit 1
fi
[ -x node_modules/.bin/tsc ] && [ -x node_modules/.bin/tsx ] && [ -d node_modules/better-sqlite3/build/Release ] || {
  echo "package-deb.sh: node_modules is not installed or better-sqlite3 is not built: run npm ci first" >&2
  exit 1
}

VERSION="$(node -p 'require("./package.json").version')"
DEBVER="$VERSION-${DEB_REVISION:-1}"
ARCH="$(dpkg --print-architecture)"
MAINTAINER="${DEB_MAINTAINER:-credd maintainers <dev@credd.invalid>}"
# better-sqlite3 is compiled against this node's V8 ABI (process.versions.modules), not N-API:
# the addon loads on this node major only, so the package says so.
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH

WORK="$(mktemp -d "${TMPDIR:-/tmp}/credd-deb.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# debian/credd: where dpkg-shlibdeps expects a package's files (see Depends below).
PKG="$WORK/debian/credd"
APP="$PKG/usr/lib/credd"
mkdir -p "$APP"
log() { echo "package-deb.sh: $*" >&2; }

# The code, compiled afresh into the package: no stale file of an old dist/, no source maps (src/
# is not shipped). The sandbox (a local Stellantis stand-in for the demo and tests, needing the dev
# dependencies) is not part of the product.
log "compiling src/ into usr/lib/credd/dist"
node_modules/.bin/tsc -p tsconfig.json --outDir "$APP/dist" --sourceMap false
rm -rf "$APP/dist/sandbox" "$APP/dist/cli/sandbox.js"
cp -a migrations "$APP/migrations"
# dist/main.js reads its version from here, and "type": "module" makes dist/*.js ES modules.
cp package.json "$APP/package.json"

# Production dependencies only: a copy of node_modules pruned offline (dev dependencies such as
# typescript, tsx and the sandbox's SMTP server stay out), then what is only needed to build.
log "pruning a copy of node_modules to the production dependencies (offline)"
cp -a node_modules "$APP/node_modules"
cp package-lock.json "$APP/package-lock.json"
(cd "$APP" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$APP/package-lock.json" "$APP/node_modules/.package-lock.json" "$APP/node_modules/.bin"
# Nested .bin folders too (imapflow brings its own pino): symlinks to command-line tools credd never runs.
find "$APP/node_modules" -type d -name .bin -prune -exec rm -rf {} +
# better-sqlite3: only the addon it loads (src/store/db.ts names build/Release/better_sqlite3.node),
# not the SQLite sources, object files and test extension node-gyp left beside it.
B3="$APP/node_modules/better-sqlite3"
rm -rf "$B3/deps" "$B3/src" "$B3/binding.gyp"
find "$B3/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$B3/build/Release" -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
# unix-dgram (sd_notify): likewise only build/Release/unix_dgram.node, which `bindings` finds; the
# obj.target/ copy node-gyp leaves is a hard link lintian rightly flags.
UD="$APP/node_modules/unix-dgram"
rm -rf "$UD/src" "$UD/binding.gyp"
find "$UD/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$UD/build/Release" -mindepth 1 -maxdepth 1 ! -name unix_dgram.node -exec rm -rf {} +
# What the modules ship for their own development and web sites, never loaded by credd: CI and git
# settings, test folders, and documentation (README, CHANGELOG, docs/, pino's docsify index.html
# that pulls scripts from CDNs). License and notice files stay: the licenses ask for them.
find "$APP/node_modules" \( -name .github -o -name .husky -o -name '.git*' -o -name .travis.yml \
  -o -name .npmignore -o -name .eslintrc -o -name '.eslintrc.*' -o -name .editorconfig -o -name .nycrc \
  -o -name .taprc -o -name '.prettierrc*' \) -prune -exec rm -rf {} +
# Module roots only (node_modules/NAME, node_modules/@SCOPE/NAME, and nested node_modules), never
# a folder inside a module's code (yaml's dist/doc is code).
trim_modules() {
  local mod
  for mod in "$1"/* "$1"/@*/*; do
    [ -f "$mod/package.json" ] || continue
    rm -rf "$mod/test" "$mod/tests" "$mod/__tests__" "$mod/docs" "$mod/example" "$mod/examples" \
      "$mod/benchmark" "$mod/benchmarks" "$mod/bench" "$mod/index.html"
    find "$mod" -maxdepth 1 -type f \( -iname '*.md' -o -iname '*.markdown' \) \
      ! -iname 'licen[cs]e*' ! -iname 'copying*' ! -iname 'notice*' -delete
    if [ -d "$mod/node_modules" ]; then trim_modules "$mod/node_modules"; fi
  done
}
trim_modules "$APP/node_modules"
find "$APP/node_modules" -mindepth 1 -type d -empty -delete
# Strip the native addons as dh_strip would (debug symbols are not shipped).
find "$APP/node_modules" -name '*.node' -type f -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

# The staged tree must run on its own before it is packed.
node "$APP/dist/main.js" --version >/dev/null || { log "the staged tree does not run: node $APP/dist/main.js --version failed"; exit 1; }

# System integration.
install -D -m 0755 "$DEB/credd.sh" "$PKG/usr/bin/credd"
install -D -m 0644 systemd/credd.service "$PKG/usr/lib/systemd/system/credd.service"
# The proxy's socket-activation template (docs/proxy.md); not enabled: an instance per credential is
# the admin's choice.
install -D -m 0644 "systemd/credd-proxy@.socket" "$PKG/usr/lib/systemd/system/credd-proxy@.socket"
install -D -m 0644 "$DEB/sysusers.conf" "$PKG/usr/lib/sysusers.d/credd.conf"
install -D -m 0644 "$DEB/tmpfiles.conf" "$PKG/usr/lib/tmpfiles.d/credd.conf"
install -d -m 0755 "$PKG/etc/credd"
install -D -m 0644 "$DEB/lintian-overrides" "$PKG/usr/share/lintian/overrides/credd"

# Manual pages, generated from the command table and the config key table (scripts/gen-man.ts,
# with tsx from the dev dependencies), compressed as policy asks.
log "generating the manual pages credd(1) and credd.yaml(5)"
node --import tsx scripts/gen-man.ts "$WORK/man"
install -D -m 0644 "$WORK/man/credd.1" "$PKG/usr/share/man/man1/credd.1"
install -D -m 0644 "$WORK/man/credd.yaml.5" "$PKG/usr/share/man/man5/credd.yaml.5"
gzip -9n "$PKG/usr/share/man/man1/credd.1" "$PKG/usr/share/man/man5/credd.yaml.5"
# The bash completion (scripts/gen-completion.ts, from the command table), loaded on first use by
# bash-completion.
node --import tsx scripts/gen-completion.ts "$WORK/completion"
install -D -m 0644 "$WORK/completion/credd" "$PKG/usr/share/bash-completion/completions/credd"

# Documentation: the config example, the README and the install guide (gzip -9n as policy asks
# of files over 4 KiB), the copyright and the changelog.
DOC="$PKG/usr/share/doc/credd"
install -D -m 0644 systemd/credd.yaml.example "$DOC/examples/credd.yaml.example"
install -m 0644 README.md "$DOC/README.md"
install -m 0644 docs/install.md "$DOC/install.md"
gzip -9n "$DOC/README.md" "$DOC/install.md"
{
  cat "$DEB/copyright.in"
  node "$DEB/copyright-modules.mjs" "$APP/node_modules"
} > "$DOC/copyright"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
  echo "credd ($DEBVER) unstable; urgency=medium"
  echo
  echo "  * Built by scripts/package-deb.sh from credd $VERSION, commit $commit."
  echo "    The project's own history is its git log."
  echo
  echo " -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$DOC/changelog.Debian.gz"

# Modes as dh_fixperms leaves them: folders 0755, files 0644, the command and every script (a file
# that starts with #!: dist/main.js, the modules' bin scripts, which npm would make executable) 0755.
find "$PKG" -type d -exec chmod 0755 {} +
find "$PKG" -type f -exec chmod 0644 {} +
while IFS= read -r -d '' f; do
  [ "$(head -c 2 "$f" | tr -d '\0')" = '#!' ] && chmod 0755 "$f"
done < <(find "$PKG" -type f ! -name '*.node' -print0)

# Depends: node (see NODE_MAJOR), systemd-sysusers and systemd-tmpfiles for the postinst, and the
# shared libraries the native addons link (dpkg-shlibdeps, as dh_shlibdeps would).
install -d -m 0755 "$PKG/DEBIAN"
printf 'Source: credd\n\nPackage: credd\nArchitecture: any\n' > "$WORK/debian/control"
mapfile -t addons < <(cd "$WORK" && find debian/credd -name '*.node' -type f)
shlibs="$(cd "$WORK" && dpkg-shlibdeps --warnings=0 -O "${addons[@]}" | sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || { log "dpkg-shlibdeps found no library dependency for ${addons[*]}"; exit 1; }
DEPENDS="nodejs (>= $NODE_MAJOR), nodejs (<< $((NODE_MAJOR + 1))), systemd | systemd-standalone-sysusers | systemd-sysusers, systemd | systemd-standalone-tmpfiles | systemd-tmpfiles, $shlibs"

for s in postinst prerm postrm; do install -m 0755 "$DEB/$s" "$PKG/DEBIAN/$s"; done
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$PKG/DEBIAN/md5sums"
chmod 0644 "$PKG/DEBIAN/md5sums"
SIZE="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
sed -e "s|@VERSION@|$DEBVER|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$SIZE|" -e "s/@DEPENDS@/$DEPENDS/" "$DEB/control.in" > "$PKG/DEBIAN/control"
chmod 0644 "$PKG/DEBIAN/control"

FILE="$OUT/credd_${DEBVER}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$FILE" >&2
echo "$FILE"
