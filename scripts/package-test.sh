#!/usr/bin/env bash
# The Debian package test: builds the package from the debug binary (scripts/package.sh
# --debug), installs it on this machine with dpkg, checks what it put where (binary,
# user, modes, conffile, unit, man pages, completions), runs `hallpass serve` from it the
# way the unit does (as the hallpass user, no capabilities, no new privileges, umask
# 077, a clean environment), and purges it again. It needs root and a machine where
# installing hallpass is acceptable (a container or CI runner); there is no running
# systemd here, so the unit is checked with `systemd-analyze verify` but not started.
#
# Idempotent: a package left installed by an interrupted run is purged first. Under
# CI=true a missing tool or root is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "package-test: FAIL: $1" >&2
    exit 1
  fi
  echo "package-test: skipped: $1" >&2
  exit 0
}
fail() {
  echo "package-test: FAIL: $*" >&2
  exit 1
}
ok() { echo "package-test: ok: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (it installs the package with dpkg)"
for tool in dpkg dpkg-deb adduser setpriv curl; do
  command -v "$tool" >/dev/null || skip "$tool is missing"
done
cargo deb --version >/dev/null 2>&1 || skip "cargo-deb is missing (scripts/setup.sh installs it)"

work=$(pwd)/target/package-test
mkdir -p "$work"
pidfile=$work/server.pid

# What an interrupted run may have left: its server (by the pid it recorded, and only
# if that process is still /usr/bin/hallpass) and the installed package.
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  if [ "$(readlink "/proc/$old/exe" 2>/dev/null || true)" = /usr/bin/hallpass ]; then
    kill "$old" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$pidfile"
fi
if dpkg-query -W -f '${Status}' hallpass 2>/dev/null | grep -q 'installed\|config-files\|half'; then
  dpkg --purge hallpass >/dev/null
fi

cargo build --quiet -p hallpass-server --bin hallpass
deb=$(scripts/package.sh --debug --no-build | tail -n 1)
[ -f "$deb" ] || fail "scripts/package.sh did not name a .deb (got: $deb)"
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

start=$(date +%s)
dpkg -i "$deb" >"$work/dpkg-install.log" 2>&1 || { cat "$work/dpkg-install.log" >&2; fail "dpkg -i"; }
ok "installed"

# --- what the package installed --------------------------------------------------
stat_of() { stat -c '%U:%G %a' "$1"; }
[ -x /usr/bin/hallpass ] || fail "/usr/bin/hallpass is missing"
getent passwd hallpass >/dev/null || fail "no user hallpass"
getent group hallpass >/dev/null || fail "no group hallpass"
shell=$(getent passwd hallpass | cut -d: -f7)
case "$shell" in */nologin | */false) ;; *) fail "hallpass's shell is $shell" ;; esac
[ "$(id -u hallpass)" -lt 1000 ] || fail "hallpass is not a system user"
[ "$(stat_of /var/lib/hallpass)" = "hallpass:hallpass 750" ] \
  || fail "/var/lib/hallpass is $(stat_of /var/lib/hallpass)"
[ "$(stat_of /etc/hallpass/hallpass.toml)" = "root:hallpass 640" ] \
  || fail "/etc/hallpass/hallpass.toml is $(stat_of /etc/hallpass/hallpass.toml)"
dpkg-query -W -f '${Conffiles}\n' hallpass | grep -q '^ /etc/hallpass/hallpass.toml ' \
  || fail "/etc/hallpass/hallpass.toml is not a conffile"
unit=/usr/lib/systemd/system/hallpass.service
[ -f "$unit" ] || fail "$unit is missing"
for line in 'User=hallpass' 'ExecStart=/usr/bin/hallpass --config /etc/hallpass/hallpass.toml serve' \
  'ProtectSystem=strict' 'NoNewPrivileges=yes' 'StateDirectory=hallpass' 'KillSignal=SIGTERM'; do
  grep -qx "$line" "$unit" || fail "$unit lacks $line"
done
for page in hallpass hallpass-serve hallpass-keys-create; do
  [ -f "/usr/share/man/man1/$page.1.gz" ] || fail "man page $page.1.gz is missing"
done
if command -v man >/dev/null; then
  man -w hallpass >/dev/null 2>&1 || fail "man -w hallpass finds nothing"
fi
zcat /usr/share/man/man1/hallpass.1.gz | grep -q '^\.TH hallpass 1' || fail "hallpass.1 is not a man page"
grep -q 'hallpass' /usr/share/bash-completion/completions/hallpass || fail "bash completion"
grep -q '#compdef hallpass' /usr/share/zsh/vendor-completions/_hallpass || fail "zsh completion"
grep -q 'complete -c hallpass' /usr/share/fish/vendor_completions.d/hallpass.fish || fail "fish completion"
ok "files, user, modes, conffile, unit, man pages, completions"

commit=$(git rev-parse --short=7 HEAD 2>/dev/null || true)
version=$(/usr/bin/hallpass --version)
case "$version" in
  "hallpass "*"($commit"*) ;;
  *) fail "hallpass --version says '$version', not the commit $commit" ;;
esac
ok "$version"

if command -v systemd-analyze >/dev/null; then
  # Offline: the unit's syntax, its directives, and that ExecStart's binary exists.
  systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; fail "systemd-analyze verify"; }
  ok "systemd-analyze verify"
elif [ "${CI:-}" = "true" ]; then
  fail "systemd-analyze is missing (Debian package systemd)"
fi

# --- the server, as the unit runs it -------------------------------------------------
# The unit's user and command line, without capabilities or new privileges, umask 077,
# an empty environment but the listen address (port 0: any free port), in / as systemd
# starts it.
log=$work/serve.log
out=$work/serve.out
(
  cd /
  umask 077
  exec setpriv --reuid=hallpass --regid=hallpass --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all \
    env -i PATH=/usr/bin:/bin HALLPASS_LISTEN=127.0.0.1:0 \
    /usr/bin/hallpass --config /etc/hallpass/hallpass.toml serve
) >"$out" 2>"$log" &
server=$!
echo "$server" >"$pidfile"
stop_server() {
  if kill -0 "$server" 2>/dev/null; then kill "$server" 2>/dev/null || true; fi
}
trap stop_server EXIT

addr=
for _ in $(seq 1 100); do
  addr=$(grep -o 'addr=[0-9.]*:[0-9]*' "$log" | head -n 1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "hallpass serve exited"; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; fail "hallpass serve did not log its address"; }
curl -fsS "http://$addr/healthz" >/dev/null || fail "/healthz"
curl -fsS "http://$addr/readyz" >/dev/null || fail "/readyz"
key=$(tail -n 1 "$out")
case "$key" in hpk_*) ;; *) fail "no first API key on stdout" ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://$addr/v1/users?limit=1")
[ "$code" = 200 ] || fail "GET /v1/users with the first key answered $code"
db=/var/lib/hallpass/hallpass.db
[ "$(stat_of "$db")" = "hallpass:hallpass 600" ] || fail "$db is $(stat_of "$db")"
ok "hallpass serve as hallpass on $addr: /healthz, /readyz, the first key; $db $(stat_of "$db")"

# The CLI beside the running server, as DEPLOYMENT.md tells operators to run it.
new_key=$(setpriv --reuid=hallpass --regid=hallpass --init-groups \
  /usr/bin/hallpass --config /etc/hallpass/hallpass.toml keys create --scope shop --name web 2>/dev/null | tail -n 1)
case "$new_key" in hpk_*) ;; *) fail "keys create as hallpass printed no key" ;; esac
ok "keys create as hallpass beside the server"

# SIGTERM, as systemd stops it: the server drains and exits 0.
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
[ "$rc" = 0 ] || { cat "$log" >&2; fail "hallpass serve exited $rc on SIGTERM"; }
rm -f "$pidfile"
trap - EXIT
ok "SIGTERM: exit 0"

# --- removal --------------------------------------------------------------------
dpkg --remove hallpass >"$work/dpkg-remove.log" 2>&1 || { cat "$work/dpkg-remove.log" >&2; fail "dpkg --remove"; }
[ ! -e /usr/bin/hallpass ] || fail "remove left /usr/bin/hallpass"
[ -f "$db" ] || fail "remove (not purge) deleted the database"
[ -f /etc/hallpass/hallpass.toml ] || fail "remove (not purge) deleted the conffile"
dpkg --purge hallpass >"$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log" >&2; fail "dpkg --purge"; }
for gone in /var/lib/hallpass /etc/hallpass "$unit" /usr/share/man/man1/hallpass.1.gz; do
  [ ! -e "$gone" ] || fail "purge left $gone"
done
dpkg-query -W hallpass >/dev/null 2>&1 && fail "dpkg still knows hallpass after purge"
ok "remove keeps state and configuration; purge removes them (the user stays, as Debian does)"
echo "package-test: passed in $(($(date +%s) - start)) s after the build"
