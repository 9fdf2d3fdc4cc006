#!/usr/bin/env bash
# scripts/install.sh for real, as root, into this machine's / (CI runs it from .ci/run, before
# scripts/ci-package.sh): twice, with a test --prefix. Where the user credd does not exist yet, the
# first run goes without systemd-sysusers and systemd-tmpfiles on PATH (a distribution without
# them: the useradd fallback), the second with them (a rerun changes nothing). Checks the user,
# the state folder, the unit (systemd-analyze verify), the command as user credd; then removes
# everything the runs added, the user included when it was made here.
#
#   sudo scripts/ci-install.sh        (after npm ci / npm run build: it installs with --no-build)
set -euo pipefail

cd "$(dirname "$0")/.."
SRC="$(pwd)"
VERSION="$(node -p 'require("./package.json").version')"
NODE="$(readlink -f "$(command -v node)")"
PREFIX=/opt/credd-ci-install-test
BINDIR=$PREFIX/bin
DATADIR=$PREFIX/share
UNIT=/etc/systemd/system/credd.service

STEP="starting"
step() { STEP="$*"; echo "== $STEP"; }
fail() { echo "ci-install.sh: FAILED at \"$STEP\": $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root: it runs scripts/install.sh into this machine's /"
[ -f dist/main.js ] || fail "dist/main.js missing: npm run build first"
for tool in systemd-analyze setpriv man; do command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing"; done
[ ! -e /var/lib/credd/credd.db ] || fail "/var/lib/credd/credd.db exists: credd is in real use here"
[ ! -e "$UNIT" ] || fail "$UNIT exists: credd is installed here by install.sh; this test would overwrite its unit"
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' credd 2>/dev/null || true)" != "ii " ] || fail "the credd package is installed here; this test's unit in /etc would override the package's"

# What existed before, so that the cleanup removes only what the runs added.
declare -A EXISTED
SOCKET_UNIT="/etc/systemd/system/credd-proxy@.socket"
PATHS=("$PREFIX" "$UNIT" "$SOCKET_UNIT" /etc/sysusers.d/credd.conf /etc/tmpfiles.d/credd.conf /etc/credd/credd.yaml.example /etc/credd /etc/credstore /var/lib/credd)
for p in "${PATHS[@]}"; do EXISTED[$p]=0; [ -e "$p" ] && EXISTED[$p]=1; done
USER_EXISTED=0; getent passwd credd >/dev/null && USER_EXISTED=1
WORK="$(mktemp -d /tmp/credd-ci-install.XXXXXX)"
cleanup() {
  local p
  for p in "${PATHS[@]}"; do
    [ "${EXISTED[$p]}" = 1 ] && continue
    if [ -d "$p" ] && [ "$p" != "$PREFIX" ]; then rmdir "$p" 2>/dev/null || echo "ci-install.sh: left $p (not empty)" >&2
    else rm -rf "$p"; fi
  done
  if [ "$USER_EXISTED" = 0 ] && getent passwd credd >/dev/null; then
    userdel credd
    if getent group credd >/dev/null; then groupdel credd; fi
  fi
  rm -rf "$WORK"
}
trap 'rc=$?; cleanup; [ $rc -eq 0 ] || echo "ci-install.sh: stopped at \"$STEP\" (exit $rc)" >&2' EXIT

run_install() {
  local path="$1"
  set +e
  env PATH="$path" bash scripts/install.sh --no-build --prefix "$PREFIX" --bindir "$BINDIR" --datadir "$DATADIR" > "$WORK/out.txt" 2>&1
  local rc=$?
  set -e
  cat "$WORK/out.txt"
  [ "$rc" -eq 0 ] || fail "scripts/install.sh exited $rc"
}

expect_stat() {
  local got
  got="$(stat -c '%a %U:%G %F' "$1" 2>/dev/null)" || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is \"$got\", expected \"$2\""
}

check_install() {
  IFS=: read -r _ _ uid gid gecos home shell < <(getent passwd credd) || fail "no user credd"
  [ "$(getent group credd | cut -d: -f3)" = "$gid" ] || fail "user credd's primary group is not credd"
  [ "$uid" -lt 1000 ] || fail "credd's uid $uid is not a system uid"
  [ "$gecos" = "credd Stellantis B2B credentials" ] || fail "credd's comment is \"$gecos\""
  [ "$home" = /var/lib/credd ] || fail "credd's home is $home"
  case "$shell" in */nologin) ;; *) fail "credd's shell is $shell, not nologin" ;; esac
  expect_stat /var/lib/credd "750 credd:credd directory"
  expect_stat "$PREFIX" "755 root:root directory"
  expect_stat "$BINDIR/credd" "755 root:root regular file"
  expect_stat "$UNIT" "644 root:root regular file"
  expect_stat "$SOCKET_UNIT" "644 root:root regular file"
  expect_stat /etc/sysusers.d/credd.conf "644 root:root regular file"
  expect_stat /etc/tmpfiles.d/credd.conf "644 root:root regular file"
  expect_stat /etc/credd/credd.yaml.example "644 root:root regular file"
  expect_stat /etc/credstore "700 root:root directory"
  expect_stat "$DATADIR/man/man1/credd.1" "644 root:root regular file"
  expect_stat "$DATADIR/man/man5/credd.yaml.5" "644 root:root regular file"
  expect_stat "$DATADIR/bash-completion/completions/credd" "644 root:root regular file"
  bash -c 'source "$1" && complete -p credd' _ "$DATADIR/bash-completion/completions/credd" >/dev/null || fail "the bash completion does not register credd"
  grep -q 'credd status \[NAME\]' <<<"$(LC_ALL=C.UTF-8 MANPAGER=cat man -l "$DATADIR/man/man1/credd.1")" || fail "man -l $DATADIR/man/man1/credd.1 does not show the commands"
  grep -qx "ExecStart=$NODE --no-opt $PREFIX/dist/main.js --config /etc/credd/credd.yaml run" "$UNIT" || fail "$UNIT's ExecStart is not this node and $PREFIX"
  systemd-analyze verify "$UNIT" > "$WORK/verify.txt" 2>&1 || { cat "$WORK/verify.txt" >&2; fail "systemd-analyze verify $UNIT"; }
  [ ! -s "$WORK/verify.txt" ] || { cat "$WORK/verify.txt" >&2; fail "systemd-analyze verify printed warnings"; }
  local out
  out="$(setpriv --reuid=credd --regid=credd --init-groups --reset-env -- "$BINDIR/credd" --version)" || fail "$BINDIR/credd --version as user credd"
  [ "$out" = "credd $VERSION" ] || fail "credd --version printed \"$out\""
}

if [ "$USER_EXISTED" = 0 ]; then
  step "install.sh, first run, without systemd-sysusers and systemd-tmpfiles on PATH (the useradd fallback)"
  mkdir "$WORK/bin"
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -d "$d" ] || continue
    for c in "$d"/*; do
      n="$(basename "$c")"
      case "$n" in systemd-sysusers|systemd-tmpfiles) continue ;; esac
      [ -e "$WORK/bin/$n" ] || ln -s "$c" "$WORK/bin/$n"
    done
  done
  run_install "$WORK/bin"
  grep -q '^created user and group credd$' "$WORK/out.txt" || fail "install.sh did not say it created the user"
else
  step "install.sh, first run (the user credd exists already: the useradd fallback is not exercised here)"
  run_install "$PATH"
fi
check_install
uid_first="$(id -u credd)"

step "install.sh, second run (systemd-sysusers on PATH): idempotent"
run_install "$PATH"
! grep -q 'created user' "$WORK/out.txt" || fail "the second run created the user again"
[ "$(id -u credd)" = "$uid_first" ] || fail "the second run changed credd's uid"
[ -z "$(find "$(dirname "$PREFIX")" -maxdepth 1 -name "$(basename "$PREFIX").*")" ] || fail "staging folders left beside $PREFIX"
check_install

STEP="done"
echo "ci-install.sh: all checks passed"
