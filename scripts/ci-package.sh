#!/usr/bin/env bash
# The Debian package for real on this machine (CI runs it as root after the tests, from .ci/run):
# build it (npm run package), lintian, dpkg -i (twice: a reinstall runs the upgrade path), the user,
# the modes and owners of every installed path, credd --version / import / status / run as user
# credd, systemd-analyze verify, dpkg -r, dpkg --purge, then a second install over the kept state
# and a purge of the empty /etc/credd. Exits non-zero at the first failed check, naming it.
#
#   sudo scripts/ci-package.sh [--deb FILE]     --deb: test this package instead of building one
#
# Runnable again and again (a previous install is upgraded over). It installs and removes the credd
# package, so it refuses to run where credd is in real use (a state database in /var/lib/credd or a
# running credd.service). Everything it writes besides the package is named ci-package-test and is
# removed at the end; the system user credd stays, as after any purge (docs/install.md).
set -euo pipefail

DEB=
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) DEB="${2:?--deb needs a FILE}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ci-package.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
SRC="$(pwd)"
VERSION="$(node -p 'require("./package.json").version')"

STEP="starting"
step() { STEP="$*"; echo "== $STEP"; }
fail() { echo "ci-package.sh: FAILED at \"$STEP\": $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root: it installs and removes the credd package on this machine"
for tool in dpkg lintian systemd-analyze setpriv openssl sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (apt-get install lintian systemd util-linux openssl)"
done
if [ -e /var/lib/credd/credd.db ]; then
  fail "/var/lib/credd/credd.db exists: credd is in real use here; this test would remove its package"
fi
if [ -d /run/systemd/system ] && systemctl --quiet is-active credd.service 2>/dev/null; then
  fail "credd.service is running here; this test would remove its package"
fi

TEST=ci-package-test
STATE=/var/lib/credd/$TEST          # the test's state_dir, inside the package's state folder
RUNTIME=/run/credd-$TEST
CONF=/etc/credd/$TEST.yaml
VAR_EXISTED=0; [ -e /var/lib/credd ] && VAR_EXISTED=1
ETC_EXISTED=0; [ -e /etc/credd ] && ETC_EXISTED=1
WORK="$(mktemp -d /tmp/credd-ci-package.XXXXXX)"
cleanup() {
  rm -rf "$WORK" "$STATE" "$RUNTIME" /etc/credd/$TEST*
  [ "$VAR_EXISTED" = 1 ] || rmdir /var/lib/credd 2>/dev/null || true
  [ "$ETC_EXISTED" = 1 ] || rmdir /etc/credd 2>/dev/null || true
}
trap 'rc=$?; cleanup; [ $rc -eq 0 ] || echo "ci-package.sh: stopped at \"$STEP\" (exit $rc)" >&2' EXIT
rm -rf "$STATE" "$RUNTIME" /etc/credd/$TEST*   # a previous run's, if it was killed

# --- build and lint ---------------------------------------------------------------------------
BUILT=0
if [ -z "$DEB" ]; then
  step "build: npm run package (README \"Install\")"
  npm run package > "$WORK/package.txt" 2>&1 || { cat "$WORK/package.txt" >&2; fail "npm run package"; }
  DEB="$(tail -n 1 "$WORK/package.txt")"
  BUILT=1
fi
[ -f "$DEB" ] || fail "no package file at $DEB"
echo "package: $DEB"
[ "$(dpkg-deb -f "$DEB" Package)" = credd ] || fail "$DEB is not the credd package"

step "lintian (errors and warnings fail; overrides: packaging/deb/lintian-overrides)"
# One run that also shows the overrides with their reasons; --fail-on warning would count the
# overridden warnings too (lintian 2.116), so warnings are counted from the output.
set +e; lintian --show-overrides "$DEB" > "$WORK/lintian.txt" 2>&1; rc=$?; set -e
grep -v '^running with root' "$WORK/lintian.txt" || true
[ "$rc" -eq 0 ] || fail "lintian exited $rc (errors above)"
! grep -q '^[EW]:' "$WORK/lintian.txt" || fail "lintian reported errors or warnings (above): fix them, or override one in packaging/deb/lintian-overrides with the reason"
echo "lintian: $(grep -c '^E:' "$WORK/lintian.txt" || true) errors, $(grep -c '^W:' "$WORK/lintian.txt" || true) warnings, $(grep -c '^O:' "$WORK/lintian.txt" || true) overridden"

# --- install ----------------------------------------------------------------------------------
install_pkg() {
  DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" > "$WORK/dpkg.txt" 2>&1 || { cat "$WORK/dpkg.txt" >&2; fail "dpkg -i $DEB"; }
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' credd)" = "ii " ] || fail "credd is not installed and configured after dpkg -i"
}
if [ "$BUILT" = 1 ]; then
  # README "Install", word for word: the one package file npm run package wrote here.
  step "dpkg -i ./credd_*.deb (first install, or an upgrade over a previous one)"
  debs=(./credd_*.deb)
  [ ${#debs[@]} -eq 1 ] && [ "$(readlink -f "${debs[0]}")" = "$(readlink -f "$DEB")" ] \
    || fail "npm run package wrote $DEB, but ./credd_*.deb matches ${debs[*]}: remove the old package files"
  DEBIAN_FRONTEND=noninteractive dpkg -i ./credd_*.deb > "$WORK/dpkg.txt" 2>&1 || { cat "$WORK/dpkg.txt" >&2; fail "dpkg -i ./credd_*.deb"; }
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' credd)" = "ii " ] || fail "credd is not installed and configured after dpkg -i"
else
  step "dpkg -i $DEB (first install, or an upgrade over a previous one)"
  install_pkg
fi
step "dpkg -i again (the same version over itself: postinst's upgrade path must be idempotent)"
install_pkg

step "user and group credd (systemd-sysusers)"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd credd) || fail "no user credd"
getent group credd >/dev/null || fail "no group credd"
[ "$(getent group credd | cut -d: -f3)" = "$gid" ] || fail "user credd's primary group is not credd"
[ "$uid" -lt 1000 ] || fail "credd's uid $uid is not a system uid"
[ "$home" = /var/lib/credd ] || fail "credd's home is $home, not /var/lib/credd"
[ "$shell" = /usr/sbin/nologin ] || fail "credd's shell is $shell, not /usr/sbin/nologin"

# path, then "mode owner:group type" as stat prints it.
expect_stat() {
  local got
  got="$(stat -c '%a %U:%G %F' "$1" 2>/dev/null)" || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is \"$got\", expected \"$2\""
}
step "modes and owners of the installed paths"
expect_stat /usr/bin/credd "755 root:root regular file"
expect_stat /usr/lib/credd "755 root:root directory"
expect_stat /usr/lib/credd/dist/main.js "755 root:root regular file"
expect_stat /usr/lib/credd/package.json "644 root:root regular file"
expect_stat /usr/lib/credd/migrations/0001_init.sql "644 root:root regular file"
expect_stat /usr/lib/credd/node_modules/better-sqlite3/build/Release/better_sqlite3.node "644 root:root regular file"
expect_stat /usr/lib/systemd/system/credd.service "644 root:root regular file"
expect_stat "/usr/lib/systemd/system/credd-proxy@.socket" "644 root:root regular file"
expect_stat /usr/lib/sysusers.d/credd.conf "644 root:root regular file"
expect_stat /usr/lib/tmpfiles.d/credd.conf "644 root:root regular file"
expect_stat /usr/share/doc/credd/examples/credd.yaml.example "644 root:root regular file"
expect_stat /usr/share/doc/credd/copyright "644 root:root regular file"
expect_stat /usr/share/lintian/overrides/credd "644 root:root regular file"
expect_stat /usr/share/man/man1/credd.1.gz "644 root:root regular file"
expect_stat /usr/share/man/man5/credd.yaml.5.gz "644 root:root regular file"
expect_stat /usr/share/bash-completion/completions/credd "644 root:root regular file"
expect_stat /etc/credd "755 root:root directory"
expect_stat /var/lib/credd "750 credd:credd directory"
bad="$(find /usr/lib/credd /usr/bin/credd \( ! -user root -o ! -group root -o -perm /6022 \) -printf '%m %u:%g %p\n' | head -5)"
[ -z "$bad" ] || fail "files under /usr/lib/credd not root-owned or writable by others, or setuid: $bad"
[ ! -e /usr/lib/credd/dist/sandbox ] && [ ! -e /usr/lib/credd/dist/cli/sandbox.js ] || fail "the sandbox is in the package"
[ -z "$(find /usr/lib/credd/dist ! -name '*.js' -type f | head -1)" ] || fail "/usr/lib/credd/dist holds more than the compiled .js (source maps?)"
[ -z "$(dpkg-query -W -f='${Conffiles}' credd)" ] || fail "the package ships conffiles; it should ship none"

step "man credd and man 5 credd.yaml find the installed pages and render them without a warning"
for page in "1 credd" "5 credd.yaml"; do
  # shellcheck disable=SC2086 # section and name, two words on purpose
  out="$(LC_ALL=C.UTF-8 MANPAGER=cat MANWIDTH=100 man --warnings $page 2>"$WORK/man.err")" || fail "man $page exited $?: $(cat "$WORK/man.err")"
  [ ! -s "$WORK/man.err" ] || fail "man --warnings $page: $(cat "$WORK/man.err")"
  case "$page" in
    "1 credd") grep -q 'credd status \[NAME\] \[--json\]' <<<"$out" || fail "man credd has no status command" ;;
    *) grep -q 'check_schedule' <<<"$out" || fail "man 5 credd.yaml has no check_schedule" ;;
  esac
done

step "the bash completion offers the commands"
# shellcheck disable=SC2016 # expanded by the inner bash
got="$(bash --norc -c 'source /usr/share/bash-completion/completions/credd && COMP_WORDS=(credd st) COMP_CWORD=1 && _credd && echo "${COMPREPLY[*]}"')" \
  || fail "sourcing /usr/share/bash-completion/completions/credd failed"
[ "$got" = status ] || fail "credd st<TAB> offers \"$got\", expected status"

# --- run it as user credd ---------------------------------------------------------------------
as_credd() { setpriv --reuid=credd --regid=credd --init-groups --reset-env -- "$@"; }

step "credd --version as user credd"
out="$(as_credd credd --version)" || fail "credd --version exited $?"
[ "$out" = "credd $VERSION" ] || fail "credd --version printed \"$out\", expected \"credd $VERSION\""

# A minimal config as an admin would write it (root:credd 0640), a test CA, and a certificate with
# the DN credd asks for, as the seeds' openssl way makes them.
step "a minimal config, a test CA and a certificate"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" -out /etc/credd/$TEST-ca.pem -days 800 \
  -subj "/CN=credd CI test CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/csr.pem" 2>/dev/null \
  -subj "/C=FR/ST=Ile de France/L=Paris/O=Free2Move/OU=Programs Partners/CN=MZP000001/emailAddress=it@partner.example"
openssl x509 -req -in "$WORK/csr.pem" -CA /etc/credd/$TEST-ca.pem -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/cert.pem" -days 365 2>/dev/null
chgrp credd "$WORK" "$WORK/key.pem" "$WORK/cert.pem" && chmod 0750 "$WORK" && chmod 0640 "$WORK/key.pem" "$WORK/cert.pem"
printf 'ci-test-password\n' > /etc/credd/$TEST-basic
cat > "$CONF" <<EOF
state_dir: $STATE
runtime_dir: $RUNTIME
smtp:
  url: smtp://127.0.0.1:9
  from: "credd <credd@partner.example>"
alerts:
  to: [ops@partner.example]
stellantis:
  contact: connectedcar@mpsa.com
  ca_file: /etc/credd/$TEST-ca.pem
credentials:
  - name: fleet-ci
    mzp: MZP000001
    subject: { C: FR, ST: Ile de France, L: Paris, O: Free2Move, emailAddress: it@partner.example }
    basic_auth: { user: MZP000001, password_file: /etc/credd/$TEST-basic }
    api: { base_url: https://api.partner.invalid/v3, probe_path: /fleets }
EOF
chown root:credd "$CONF" /etc/credd/$TEST-basic && chmod 0640 "$CONF" /etc/credd/$TEST-basic
# credd may create folders in its state folder (0750 credd:credd from tmpfiles.d), nobody else may.
as_credd mkdir -m 0750 "$STATE" || fail "user credd cannot create a folder in /var/lib/credd"
install -d -o credd -g credd -m 0750 "$RUNTIME"   # what the unit's RuntimeDirectory= does at start

# status before any database: 3 (UNKNOWN), naming the missing database, and nothing created.
step "credd status as user credd, no database yet (expect exit 3, nothing created)"
set +e; as_credd credd --config "$CONF" status > "$WORK/status0.txt" 2>&1; rc=$?; set -e
cat "$WORK/status0.txt"
[ "$rc" -eq 3 ] || fail "status exited $rc, expected 3 (UNKNOWN: no database yet)"
grep -q 'credd.db' "$WORK/status0.txt" || fail "status does not name the missing database"
[ ! -e "$STATE/credd.db" ] || fail "status created $STATE/credd.db"

step "credd import as user credd (writes the state folder with the daemon's modes)"
as_credd credd --config "$CONF" import fleet-ci --cert "$WORK/cert.pem" --key "$WORK/key.pem" || fail "credd import exited $?"
live="$STATE/credentials/fleet-ci/live"
expect_stat "$live/key.pem" "600 credd:credd regular file"
expect_stat "$live/cert.pem" "640 credd:credd regular file"      # umask 027 from /usr/bin/credd, as the unit's UMask=0027
expect_stat "$STATE/credentials/fleet-ci/archive" "700 credd:credd directory"
expect_stat "$STATE/credd.db" "640 credd:credd regular file"

step "credd status after import (expect 1: WARNING, the daemon never checked)"
set +e; as_credd credd --config "$CONF" status > "$WORK/status1.txt" 2>&1; rc=$?; set -e
cat "$WORK/status1.txt"
[ "$rc" -eq 1 ] || fail "status exited $rc, expected 1"
grep -q 'never checked by the daemon' "$WORK/status1.txt" || fail "status does not say the daemon never checked"

step "credd run as user credd: starts, checks, stops on SIGTERM with exit 0"
setpriv --reuid=credd --regid=credd --init-groups --reset-env -- credd --config "$CONF" run > "$WORK/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  grep -q '"msg":"check done"' "$WORK/run.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$WORK/run.log" >&2; fail "credd run ended before its first check"; }
  sleep 0.5
done
grep -q '"msg":"check done"' "$WORK/run.log" || { kill -KILL "$pid"; cat "$WORK/run.log" >&2; fail "no first check within 60 s"; }
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" -eq 0 ] || { cat "$WORK/run.log" >&2; fail "credd run exited $rc on SIGTERM, expected 0"; }
grep -q '"msg":"stopped"' "$WORK/run.log" || fail "credd run did not log its clean stop"

step "credd status after the daemon's check (expect 0: OK)"
set +e; as_credd credd --config "$CONF" status > "$WORK/status2.txt" 2>&1; rc=$?; set -e
cat "$WORK/status2.txt"
[ "$rc" -eq 0 ] || fail "status exited $rc, expected 0"

step "systemd-analyze verify the installed unit"
systemd-analyze verify /usr/lib/systemd/system/credd.service > "$WORK/verify.txt" 2>&1 || { cat "$WORK/verify.txt" >&2; fail "systemd-analyze verify exited non-zero"; }
if [ -s "$WORK/verify.txt" ]; then cat "$WORK/verify.txt" >&2; fail "systemd-analyze verify printed warnings"; fi
# The socket template, as one instance (a template alone cannot be verified).
mkdir -p "$WORK/units" && cp "/usr/lib/systemd/system/credd-proxy@.socket" "$WORK/units/credd-proxy@ci-package-test.socket"
systemd-analyze verify "$WORK/units/credd-proxy@ci-package-test.socket" > "$WORK/verify-socket.txt" 2>&1 || { cat "$WORK/verify-socket.txt" >&2; fail "systemd-analyze verify of credd-proxy@.socket exited non-zero"; }
if [ -s "$WORK/verify-socket.txt" ]; then cat "$WORK/verify-socket.txt" >&2; fail "systemd-analyze verify of credd-proxy@.socket printed warnings"; fi

# --- remove and purge -------------------------------------------------------------------------
step "dpkg -r credd: the code goes, the state stays"
printf -- '-----BEGIN PRIVATE KEY-----\nnot a real key: ci-package.sh checks it survives\n-----END PRIVATE KEY-----\n' > "$STATE/fake-key.pem"
chown credd:credd "$STATE/fake-key.pem" && chmod 0600 "$STATE/fake-key.pem"
(cd "$STATE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) > "$WORK/state.sha256"
kept_state() {
  (cd "$STATE" && sha256sum --quiet -c "$WORK/state.sha256") || fail "files in $STATE changed or went away"
  expect_stat /var/lib/credd "750 credd:credd directory"
  expect_stat "$STATE/fake-key.pem" "600 credd:credd regular file"
  expect_stat "$live/key.pem" "600 credd:credd regular file"
}
dpkg -r credd > "$WORK/dpkg.txt" 2>&1 || { cat "$WORK/dpkg.txt" >&2; fail "dpkg -r credd"; }
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' credd)" = "rc " ] || fail "credd is not in state removed, config-files left"
for p in /usr/lib/credd /usr/bin/credd /usr/lib/systemd/system/credd.service "/usr/lib/systemd/system/credd-proxy@.socket" /usr/lib/sysusers.d/credd.conf /usr/lib/tmpfiles.d/credd.conf /usr/share/doc/credd; do
  [ ! -e "$p" ] || fail "$p is still there after dpkg -r"
done
kept_state
[ -f "$CONF" ] || fail "dpkg -r removed the admin's $CONF"
getent passwd credd >/dev/null || fail "dpkg -r removed the user credd"

step "dpkg --purge credd: the state and the admin's config stay, the user stays"
dpkg --purge credd > "$WORK/dpkg.txt" 2>&1 || { cat "$WORK/dpkg.txt" >&2; fail "dpkg --purge credd"; }
cat "$WORK/dpkg.txt"
[ -z "$(dpkg-query -W -f='${db:Status-Abbrev}' credd 2>/dev/null)" ] || [ "$(dpkg-query -W -f='${db:Status-Abbrev}' credd 2>/dev/null)" = "pn " ] \
  || fail "credd is still known to dpkg after the purge"
kept_state
[ -f "$CONF" ] || fail "purge removed the admin's $CONF"
grep -q 'kept: /var/lib/credd /etc/credd' "$WORK/dpkg.txt" || fail "purge did not say what it kept"
getent passwd credd >/dev/null || fail "purge removed the user credd"

# --- reinstall over the kept state, then purge with nothing of the admin's left ----------------
step "dpkg -i over the kept state: credd finds its certificate again"
install_pkg
kept_state
set +e; as_credd credd --config "$CONF" status > "$WORK/status3.txt" 2>&1; rc=$?; set -e
grep -q 'MZP000001' "$WORK/status3.txt" && grep -q 'days left' "$WORK/status3.txt" || { cat "$WORK/status3.txt" >&2; fail "status after reinstall does not show the kept certificate"; }

step "dpkg --purge with an empty /etc/credd: the folder goes, the state stays"
rm -f /etc/credd/$TEST*
dpkg --purge credd > "$WORK/dpkg.txt" 2>&1 || { cat "$WORK/dpkg.txt" >&2; fail "dpkg --purge credd"; }
if [ -z "$(ls -A /etc/credd 2>/dev/null)" ]; then
  [ ! -e /etc/credd ] || fail "/etc/credd is empty but still there after the purge"
fi
kept_state

STEP="done"
echo "ci-package.sh: all checks passed ($DEB)"
