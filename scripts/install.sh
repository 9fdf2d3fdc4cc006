#!/usr/bin/env bash
# Installs credd from this checkout as a systemd service. Idempotent: run it again to upgrade.
#
#   sudo scripts/install.sh                 build, install to /opt/credd, make user credd, reload systemd
#   scripts/install.sh --no-build           use the dist/ and node_modules/ already here
#   DESTDIR=/tmp/root scripts/install.sh    stage the files under /tmp/root only (no root needed:
#                                           no user, no chown, no systemctl)
#
# Options: --prefix DIR (default /opt/credd), --bindir DIR (default /usr/local/bin), --no-build.
# The build needs the dev dependencies (typescript), so it runs here (`npm ci && npm run build`);
# the installed copy gets the production node_modules only (`npm prune --omit=dev`).
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

PREFIX=/opt/credd
BINDIR=/usr/local/bin
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a DIR}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --bindir) BINDIR="${2:?--bindir needs a DIR}"; shift 2 ;;
    --bindir=*) BINDIR="${1#--bindir=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
case "$BINDIR" in /*) ;; *) echo "install.sh: --bindir must be absolute" >&2; exit 2 ;; esac

DESTDIR="${DESTDIR:-}"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (or set DESTDIR=DIR to stage the files without system changes)" >&2
  exit 1
fi

SRC="$(cd "$(dirname "$0")/.." && pwd)"
NODE="$(command -v node || true)"
[ -n "$NODE" ] || { echo "install.sh: node (>= 20) not found in PATH" >&2; exit 1; }
NODE="$(readlink -f "$NODE")"
CONF=/etc/credd
UNITDIR=/etc/systemd/system

cd "$SRC"
if [ "$BUILD" = 1 ]; then
  echo "building in $SRC (npm ci && npm run build)"
  npm ci --no-audit --no-fund
  npm run build
fi
[ -f dist/main.js ] || { echo "install.sh: dist/main.js missing: run without --no-build (or npm run build)" >&2; exit 1; }
[ -d node_modules ] || { echo "install.sh: node_modules missing: run without --no-build (or npm ci)" >&2; exit 1; }

# Stage the new tree beside the old one, then swap: a running credd keeps its files until restarted.
APP="$DESTDIR$PREFIX"
mkdir -p "$(dirname "$APP")"
STAGE="$(mktemp -d "$APP.new.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
cp -a dist migrations package.json package-lock.json "$STAGE/"
[ -f README.md ] && cp -a README.md "$STAGE/"
cp -a node_modules "$STAGE/"
(cd "$STAGE" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
find "$STAGE/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
chmod 0755 "$STAGE"
if [ -e "$APP" ]; then
  rm -rf "$APP.old"
  mv "$APP" "$APP.old"
fi
mv "$STAGE" "$APP"
rm -rf "$APP.old"
trap - EXIT
echo "installed credd $(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json) to $APP"

# The command, for people and deploy scripts: same node, same entry point as the unit.
install -d -m 0755 "$DESTDIR$BINDIR"
cat > "$DESTDIR$BINDIR/credd.tmp" <<EOF
#!/bin/sh
# credd, installed by scripts/install.sh from $SRC
exec $NODE $PREFIX/dist/main.js "\$@"
EOF
chmod 0755 "$DESTDIR$BINDIR/credd.tmp"
mv -f "$DESTDIR$BINDIR/credd.tmp" "$DESTDIR$BINDIR/credd"

# The unit, with this host's node and prefix in ExecStart.
install -d -m 0755 "$DESTDIR$UNITDIR"
sed -e "s#^ExecStart=/usr/bin/node /opt/credd/dist/main.js#ExecStart=$NODE $PREFIX/dist/main.js#" \
    -e "s#^Documentation=file:///opt/credd/README.md#Documentation=file://$PREFIX/README.md#" \
    systemd/credd.service > "$DESTDIR$UNITDIR/credd.service.tmp"
chmod 0644 "$DESTDIR$UNITDIR/credd.service.tmp"
mv -f "$DESTDIR$UNITDIR/credd.service.tmp" "$DESTDIR$UNITDIR/credd.service"

# The config folder: the example is refreshed, an existing credd.yaml is never touched.
install -d -m 0755 "$DESTDIR$CONF"
install -m 0644 systemd/credd.yaml.example "$DESTDIR$CONF/credd.yaml.example"
# Secrets for LoadCredential= (read by systemd as root, never by credd directly).
install -d -m 0700 "$DESTDIR/etc/credstore"

if [ -n "$DESTDIR" ]; then
  echo "DESTDIR set: skipped the credd user, file ownership and systemctl"
  exit 0
fi

if ! getent group credd >/dev/null; then
  groupadd --system credd
  echo "created group credd"
fi
if ! getent passwd credd >/dev/null; then
  useradd --system --gid credd --home-dir /var/lib/credd --no-create-home --shell /usr/sbin/nologin \
    --comment "credd: Stellantis B2B credentials" credd
  echo "created user credd"
fi
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
  4. adopt an existing certificate or start one, as credd's user (the service creates
     /var/lib/credd and /run/credd):
     sudo -u credd credd import NAME --cert F --key F      (or: sudo -u credd credd enroll NAME)
  5. credd status                      (as root, credd, or a member of group credd)
     journalctl -u credd -p err        (errors only)
  Apps that read live/*.pem or the tokens: usermod -aG credd APPUSER
EOF
