#!/usr/bin/env bash
# Installs credd from this checkout as a systemd service, for distributions without the Debian
# package (on Debian and Ubuntu prefer the package: docs/install.md). Idempotent: run it again to
# upgrade. On a failure it lists what it had already written and how to undo it.
#
#   sudo scripts/install.sh                 build, install to /opt/credd, make user credd, reload systemd
#   scripts/install.sh --no-build           use the dist/ and node_modules/ already here
#   DESTDIR=/tmp/root scripts/install.sh    stage the files under /tmp/root only (no root needed:
#                                           no user, no chown, no systemctl)
#
# Options: --prefix DIR (default /opt/credd), --bindir DIR (default /usr/local/bin), --datadir DIR
# (default /usr/local/share: the manual pages in man/, the bash completion in bash-completion/),
# --no-build.
# The build needs the dev dependencies (typescript), so it runs here (`npm ci && npm run build`);
# the installed copy gets the production node_modules only (`npm prune --omit=dev`, offline).
# The user and group credd come from packaging/deb/sysusers.conf (the package's file) through
# systemd-sysusers, or through useradd where systemd-sysusers is missing.
set -eEuo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

PREFIX=/opt/credd
BINDIR=/usr/local/bin
DATADIR=/usr/local/share
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a DIR}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --bindir) BINDIR="${2:?--bindir needs a DIR}"; shift 2 ;;
    --bindir=*) BINDIR="${1#--bindir=}"; shift ;;
    --datadir) DATADIR="${2:?--datadir needs a DIR}"; shift 2 ;;
    --datadir=*) DATADIR="${1#--datadir=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
case "$BINDIR" in /*) ;; *) echo "install.sh: --bindir must be absolute" >&2; exit 2 ;; esac
case "$DATADIR" in /*) ;; *) echo "install.sh: --datadir must be absolute" >&2; exit 2 ;; esac
PREFIX="${PREFIX%/}"
BINDIR="${BINDIR%/}"
DATADIR="${DATADIR%/}"

DESTDIR="${DESTDIR:-}"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (or set DESTDIR=DIR to stage the files without system changes)" >&2
  exit 1
fi

# What this run wrote, and the commands that take it back out, for the message on failure.
WROTE=()
UNDO=()
# wrote PATH EXISTED-BEFORE(0/1) [UNDO-COMMAND]: a path replaced in place gets no undo command,
# since removing it would also remove the earlier install (rerun that version's installer instead).
wrote() {
  if [ "$2" = 1 ]; then
    WROTE+=("$1 (replaced the earlier one)")
  else
    WROTE+=("$1")
    if [ -n "${3:-}" ]; then UNDO+=("$3")
    elif [ -d "$1" ]; then UNDO+=("rm -rf $(printf '%q' "$1")")
    else UNDO+=("rm -f $(printf '%q' "$1")"); fi
  fi
}
on_error() {
  local rc=$1 line=$2 cmd=$3
  trap - ERR
  echo "install.sh: failed (exit $rc) at line $line: $cmd" >&2
  if [ ${#WROTE[@]} -eq 0 ]; then
    echo "install.sh: nothing was written yet; the system is as it was." >&2
    exit "$rc"
  fi
  echo "install.sh: before failing it had written:" >&2
  printf '  %s\n' "${WROTE[@]}" >&2
  if [ ${#UNDO[@]} -gt 0 ]; then
    echo "install.sh: fix the cause and run it again (it is idempotent), or undo this run with:" >&2
    local i
    for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do echo "  ${UNDO[$i]}" >&2; done
  fi
  exit "$rc"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

SRC="$(cd "$(dirname "$0")/.." && pwd)"
NODE="$(command -v node || true)"
[ -n "$NODE" ] || { echo "install.sh: node (>= 20) not found in PATH" >&2; exit 1; }
NODE="$(readlink -f "$NODE")"
CONF=/etc/credd
UNITDIR=/etc/systemd/system
SYSUSERS="$SRC/packaging/deb/sysusers.conf"
TMPFILES="$SRC/packaging/deb/tmpfiles.conf"

cd "$SRC"
if [ "$BUILD" = 1 ]; then
  echo "building in $SRC (npm ci && npm run build)"
  npm ci --no-audit --no-fund
  npm run build
fi
[ -f dist/main.js ] || { echo "install.sh: dist/main.js missing: run without --no-build (or npm run build)" >&2; exit 1; }
[ -d node_modules ] || { echo "install.sh: node_modules missing: run without --no-build (or npm ci)" >&2; exit 1; }
[ -f dist/man/credd.1 ] && [ -f dist/man/credd.yaml.5 ] && [ -f dist/completion/credd ] || {
  echo "install.sh: dist/man/ or dist/completion/ (made by the build) missing: run without --no-build (or npm run build)" >&2; exit 1; }

# Stage the new tree beside the old one, then swap: a running credd keeps its files until restarted.
APP="$DESTDIR$PREFIX"
existed() { [ -e "$1" ] && echo 1 || echo 0; }
app_existed="$(existed "$APP")"
mkdir -p "$(dirname "$APP")"
STAGE="$(mktemp -d "$APP.new.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
cp -a dist migrations package.json package-lock.json "$STAGE/"
mkdir -p "$STAGE/docs"
cp -a README.md "$STAGE/"
cp -a docs/install.md "$STAGE/docs/"
cp -a node_modules "$STAGE/"
(cd "$STAGE" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
find "$STAGE/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
chmod 0755 "$STAGE"
if [ -e "$APP" ]; then
  rm -rf "$APP.old"
  mv "$APP" "$APP.old"
fi
mv "$STAGE" "$APP"
rm -rf "$APP.old"
trap - EXIT
wrote "$APP" "$app_existed"
echo "installed credd $(node -p 'require("./package.json").version') to $APP"

# The command, for people and deploy scripts: same node, same entry point as the unit, and the
# unit's umask so that files written by `sudo -u credd credd ...` get the daemon's modes.
f="$DESTDIR$BINDIR/credd"
f_existed="$(existed "$f")"
install -d -m 0755 "$DESTDIR$BINDIR"
cat > "$f.tmp" <<EOF
#!/bin/sh
# credd, installed by scripts/install.sh from $SRC
umask 027
exec $NODE $PREFIX/dist/main.js "\$@"
EOF
chmod 0755 "$f.tmp"
mv -f "$f.tmp" "$f"
wrote "$f" "$f_existed"

# The manual pages (generated into dist/man by npm run build), where man looks for local ones.
for page in credd.1 credd.yaml.5; do
  f="$DESTDIR$DATADIR/man/man${page##*.}/$page"
  f_existed="$(existed "$f")"
  install -D -m 0644 "dist/man/$page" "$f"
  wrote "$f" "$f_existed"
done
# The bash completion, where bash-completion loads it on first use (it searches XDG_DATA_DIRS,
# /usr/local/share first).
f="$DESTDIR$DATADIR/bash-completion/completions/credd"
f_existed="$(existed "$f")"
install -D -m 0644 dist/completion/credd "$f"
wrote "$f" "$f_existed"

# The unit, with this host's node and prefix in ExecStart.
f="$DESTDIR$UNITDIR/credd.service"
f_existed="$(existed "$f")"
install -d -m 0755 "$DESTDIR$UNITDIR"
sed -e "s#^ExecStart=/usr/bin/node --no-opt /usr/lib/credd/dist/main.js #ExecStart=$NODE --no-opt $PREFIX/dist/main.js #" \
    -e "s#^Documentation=.*#Documentation=file://$PREFIX/docs/install.md file://$PREFIX/README.md#" \
    systemd/credd.service > "$f.tmp"
grep -q "^ExecStart=$NODE --no-opt $PREFIX/dist/main.js " "$f.tmp" || {
  rm -f "$f.tmp"
  echo "install.sh: systemd/credd.service's ExecStart is not /usr/bin/node --no-opt /usr/lib/credd/dist/main.js ...: update this script" >&2
  false
}
chmod 0644 "$f.tmp"
mv -f "$f.tmp" "$f"
wrote "$f" "$f_existed"

# The proxy's socket-activation template (docs/proxy.md), not enabled.
f="$DESTDIR$UNITDIR/credd-proxy@.socket"
f_existed="$(existed "$f")"
install -m 0644 "systemd/credd-proxy@.socket" "$f"
wrote "$f" "$f_existed"

# The user and group (sysusers.d) and the state folder (tmpfiles.d): the Debian package's files,
# in /etc since this is a local install.
for pair in "$SYSUSERS:/etc/sysusers.d/credd.conf" "$TMPFILES:/etc/tmpfiles.d/credd.conf"; do
  f="$DESTDIR${pair#*:}"
  f_existed="$(existed "$f")"
  install -D -m 0644 "${pair%%:*}" "$f"
  wrote "$f" "$f_existed"
done

# The config folder: the example is refreshed, an existing credd.yaml is never touched.
conf_existed="$(existed "$DESTDIR$CONF")"
install -d -m 0755 "$DESTDIR$CONF"
[ "$conf_existed" = 1 ] || wrote "$DESTDIR$CONF" 0
f="$DESTDIR$CONF/credd.yaml.example"
f_existed="$(existed "$f")"
install -m 0644 systemd/credd.yaml.example "$f"
wrote "$f" "$f_existed"
# Secrets for LoadCredential= (read by systemd as root, never by credd directly).
store_existed="$(existed "$DESTDIR/etc/credstore")"
install -d -m 0700 "$DESTDIR/etc/credstore"
[ "$store_existed" = 1 ] || wrote "$DESTDIR/etc/credstore" 0

if [ -n "$DESTDIR" ]; then
  echo "DESTDIR set: skipped the credd user, file ownership and systemctl"
  exit 0
fi

# The user: systemd-sysusers reads the same file as the package's postinst; useradd otherwise,
# with the same comment (no colon: it separates passwd fields, so useradd refuses one).
if ! getent passwd credd >/dev/null; then
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /etc/sysusers.d/credd.conf
  else
    comment="$(sed -n 's/^u credd - "\([^"]*\)" .*/\1/p' "$SYSUSERS")"
    [ -n "$comment" ] || { echo "install.sh: no 'u credd' line in $SYSUSERS" >&2; false; }
    getent group credd >/dev/null || groupadd --system credd
    useradd --system --gid credd --home-dir /var/lib/credd --no-create-home \
      --shell "$(command -v nologin || echo /usr/sbin/nologin)" --comment "$comment" credd
  fi
  getent passwd credd >/dev/null || { echo "install.sh: the user credd was not created" >&2; false; }
  wrote "user and group credd" 0 "userdel credd; groupdel credd 2>/dev/null || true"
  echo "created user and group credd"
fi
state_existed="$(existed /var/lib/credd)"
if command -v systemd-tmpfiles >/dev/null 2>&1; then
  systemd-tmpfiles --create /etc/tmpfiles.d/credd.conf
else
  install -d -o credd -g credd -m 0750 /var/lib/credd
fi
[ "$state_existed" = 1 ] || wrote /var/lib/credd 0
if [ -f "$CONF/credd.yaml" ]; then
  chown root:credd "$CONF/credd.yaml"
  chmod 0640 "$CONF/credd.yaml"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  RELOADED="systemd reloaded"
else
  RELOADED="systemd is not running here: run systemctl daemon-reload on the target"
fi

cat <<EOF
$RELOADED. Next steps:
  1. cp $CONF/credd.yaml.example $CONF/credd.yaml, edit it, then
     chown root:credd $CONF/credd.yaml && chmod 0640 $CONF/credd.yaml
  2. secrets: install -m 0600 /dev/stdin /etc/credstore/credd-smtp <<<'the SMTP password'
     (one file per LoadCredential= line of the unit; add lines with: systemctl edit credd)
  3. systemctl enable --now credd
  4. adopt an existing certificate or start one, as credd's user:
     sudo -u credd credd import NAME --cert F --key F      (or: sudo -u credd credd enroll NAME)
  5. credd status                      (as root, credd, or a member of group credd)
     journalctl -u credd -p err        (errors only)
  Apps that read live/*.pem or the tokens: usermod -aG credd APPUSER
EOF
