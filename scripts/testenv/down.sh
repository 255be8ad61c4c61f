#!/bin/bash
# Stops the Orchard test environment started by up.sh and removes its directory.
# Usage: down.sh [ROOT]   (default /tmp/orchard-testenv)
set -uo pipefail

ROOT=${1:-/tmp/orchard-testenv}
case "$ROOT" in /*) ;; *) ROOT="$PWD/$ROOT" ;; esac
ROOT=${ROOT%/}
PORTS=(10993 10143 10024 10587 10025 10232 10432)

if [ -z "$ROOT" ] || [ "$ROOT" = / ]; then
  echo "testenv down: refusing ROOT='$ROOT'" >&2
  exit 1
fi
if [ ! -e "$ROOT" ]; then
  echo "testenv down: $ROOT does not exist, nothing to do"
  exit 0
fi
if [ -n "$(ls -A "$ROOT" 2>/dev/null)" ] && [ ! -f "$ROOT/.orchard-testenv" ]; then
  echo "testenv down: $ROOT is not empty and has no .orchard-testenv marker; not touching it" >&2
  exit 1
fi

# Stop all servers in parallel; each stop is best effort.
pids=()
# kill_pidfile FILE: fallback when the orderly stop command fails.
kill_pidfile() { [ -f "$1" ] && kill "$(tr -dc 0-9 <"$1")" 2>/dev/null; return 0; }
if [ -f "$ROOT/postfix/etc/main.cf" ]; then
  { postfix -c "$ROOT/postfix/etc" stop </dev/null >/dev/null 2>&1 || kill_pidfile "$ROOT/postfix/spool/pid/master.pid"; } &
  pids+=($!)
fi
if [ -f "$ROOT/dovecot/dovecot.conf" ]; then
  { doveadm -c "$ROOT/dovecot/dovecot.conf" stop </dev/null >/dev/null 2>&1 || kill_pidfile "$ROOT/dovecot/run/master.pid"; } &
  pids+=($!)
fi
if [ -f "$ROOT/radicale/radicale.pid" ]; then
  kill "$(cat "$ROOT/radicale/radicale.pid")" 2>/dev/null
fi
if [ -f "$ROOT/pg/data/postmaster.pid" ]; then
  PG_CTL=$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1)
  if [ -n "$PG_CTL" ]; then
    runuser -u postgres -- "$PG_CTL" -D "$ROOT/pg/data" -m fast -w -t 20 stop </dev/null >/dev/null 2>&1 &
    pids+=($!)
  fi
fi
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null

port_busy() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

busy=()
for _ in $(seq 100); do
  busy=()
  for p in "${PORTS[@]}"; do port_busy "$p" && busy+=("$p"); done
  [ ${#busy[@]} -eq 0 ] && break
  sleep 0.1
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "testenv down: ports still in use after 10 s: ${busy[*]}" >&2
  exit 1
fi

rm -rf "$ROOT"
echo "testenv down: stopped and removed $ROOT"
