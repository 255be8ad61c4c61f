#!/bin/bash
# Starts the Orchard test environment on loopback: Dovecot (IMAP/LMTP), Postfix (SMTP submission),
# Radicale (CalDAV) and PostgreSQL, with a throwaway test CA. Run as root (after install.sh).
# Usage: up.sh [ROOT]   (default /tmp/orchard-testenv; an existing instance there is stopped and wiped)
# Writes $ROOT/env (export lines); use it with: . $ROOT/env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${1:-/tmp/orchard-testenv}
case "$ROOT" in /*) ;; *) ROOT="$PWD/$ROOT" ;; esac
ROOT=${ROOT%/}
T0=$EPOCHREALTIME
INITDB_PID=

say() { printf 'testenv up: %s\n' "$*"; }
fail() { # fail MESSAGE [LOGFILE...]
  local msg=$1; shift
  # let a background initdb finish so that down.sh can remove ROOT cleanly
  if [ -n "${INITDB_PID:-}" ]; then wait "$INITDB_PID" 2>/dev/null || true; fi
  printf 'testenv up: ERROR: %s\n' "$msg" >&2
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
  printf 'testenv up: state left in %s for inspection; clean up with %s/down.sh %s\n' "$ROOT" "$HERE" "$ROOT" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || { echo "testenv up: must run as root" >&2; exit 1; }
[ "$ROOT" != / ] || { echo "testenv up: refusing ROOT=/" >&2; exit 1; }
for cmd in dovecot doveadm postfix /usr/bin/radicale openssl curl runuser; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "testenv up: $cmd not found; run $HERE/install.sh" >&2; exit 1; }
done
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1)")
[ -x "$PGBIN/pg_ctl" ] || { echo "testenv up: PostgreSQL server not found; run $HERE/install.sh" >&2; exit 1; }

# ---- stop a previous instance in ROOT and start from an empty directory ----
if [ -e "$ROOT" ]; then
  "$HERE/down.sh" "$ROOT" >/dev/null || { echo "testenv up: could not stop/remove the previous instance in $ROOT" >&2; exit 1; }
fi

PORTS=(10993 10143 10024 10587 10025 10232 10432)
for p in "${PORTS[@]}"; do
  if ss -Hltn "( sport = :$p )" 2>/dev/null | grep -q .; then
    echo "testenv up: port $p is already in use (another test environment running elsewhere?):" >&2
    ss -Hltnp "( sport = :$p )" >&2 || true
    exit 1
  fi
done

mkdir -p "$ROOT"
touch "$ROOT/.orchard-testenv"
chmod 755 "$ROOT"
# dovenull/dovecot/vmail/postgres must traverse every parent (gotcha: mktemp -d and t.TempDir() are 0700).
# Add only the x bits, so e.g. /tmp keeps its 1777 mode.
d=$(dirname "$ROOT")
while [ "$d" != / ]; do chmod a+x "$d"; d=$(dirname "$d"); done

id vmail >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail

USERS=(
  "alice@example.test:abcd-efgh-ijkl-mnop"
  "bob@example.test:qrst-uvwx-yzab-cdef"
  "carol@example.test:ghij-klmn-opqr-stuv"
  "sink@example.test:sink-sink-sink-sink"
)

# ---- test CA (EC P-256) and a server certificate signed by it ----
TLS=$ROOT/tls
mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TLS/ca-key.pem" -out "$TLS/ca.pem" -days 3650 -subj "/CN=Orchard Test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  >"$TLS/openssl.log" 2>&1 || fail "creating the test CA failed" "$TLS/openssl.log"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TLS/key.pem" -out "$TLS/server.csr" -subj "/CN=localhost" \
  >>"$TLS/openssl.log" 2>&1 || fail "creating the server key failed" "$TLS/openssl.log"
cat >"$TLS/server.ext" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca-key.pem" -CAcreateserial \
  -days 3650 -extfile "$TLS/server.ext" -out "$TLS/cert.pem" \
  >>"$TLS/openssl.log" 2>&1 || fail "signing the server certificate failed" "$TLS/openssl.log"
chmod 644 "$TLS/ca.pem" "$TLS/cert.pem"
chmod 600 "$TLS/ca-key.pem"
# Radicale runs as root here and Dovecot/Postfix read the key as root; PostgreSQL does not use TLS.
chmod 600 "$TLS/key.pem"

# ---- PostgreSQL: initdb in the background (the slowest step) while the mail servers start ----
PG=$ROOT/pg
mkdir -p "$PG/data"
chown postgres:postgres "$PG" "$PG/data"
chmod 755 "$PG"
chmod 700 "$PG/data"
(
  cd "$PG"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -U postgres --auth-local=trust --auth-host=md5 \
    --locale=C --encoding=UTF8 --no-sync --no-instructions </dev/null >"$PG/initdb.log" 2>&1
) &
INITDB_PID=$!

# ---- Dovecot: IMAPS 10993, IMAP+STARTTLS 10143, LMTP 10024 ----
DC=$ROOT/dovecot
mkdir -p "$DC/run" "$DC/state" "$ROOT/mail"
chmod 755 "$DC"
chown vmail:vmail "$ROOT/mail"
: >"$DC/users"
for u in "${USERS[@]}"; do printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "${u#*:}" >>"$DC/users"; done
chmod 644 "$DC/users"

cat >"$DC/dovecot.conf" <<CONF
# Orchard test instance: standalone, nothing read from /etc/dovecot. Generated by scripts/testenv/up.sh.
instance_name = orchard-testenv
base_dir  = $DC/run
state_dir = $DC/state
log_path  = $DC/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1, ::1
hostname = mail.example.test
postmaster_address = postmaster@example.test

ssl = yes
ssl_cert = <$TLS/cert.pem
ssl_key  = <$TLS/key.pem
ssl_dh   = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login
disable_plaintext_auth = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/users
  default_fields = uid=vmail gid=vmail home=$ROOT/mail/%d/%n
}

mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox "Sent Messages" {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox "Deleted Messages" {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
  mailbox Notes {
    auto = subscribe
  }
}

# imap-login runs one process per IMAPS connection: the default limit of 100
# would cap a test or benchmark (orchard-bench idle) at 100 connected grants.
default_process_limit = 1200
default_client_limit = 4000
service imap {
  process_limit = 1200
}

protocol imap {
  mail_max_userip_connections = 50
  imap_idle_notify_interval = 2 mins
}

service imap-login {
  inet_listener imap {
    port = 10143
  }
  inet_listener imaps {
    port = 10993
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = 10024
  }
}

# No 2 s delay after a failed login and no per-IP auth penalty (it would slow down good logins too).
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

# Postfix checks SMTP AUTH against this socket.
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
CONF

# Dovecot's master keeps the caller's stderr open after daemonizing: always redirect.
dovecot -c "$DC/dovecot.conf" </dev/null >>"$DC/startup.log" 2>&1 ||
  fail "dovecot did not start" "$DC/startup.log" "$DC/dovecot.log"

# ---- Postfix: submission 10587 (STARTTLS required + AUTH via Dovecot), plain 10025, delivery by LMTP ----
P=$ROOT/postfix
mkdir -p "$P/etc" "$P/spool" "$P/data"
chown root:root "$P/spool"
chown postfix:postfix "$P/data"
: >"$P/etc/vmailbox"
for u in "${USERS[@]}"; do printf '%s x\n' "${u%%:*}" >>"$P/etc/vmailbox"; done
# The per-test users of testenv.NewUser (t + 12 hex digits) receive mail
# too; any other unknown address is refused at RCPT, as a real server does.
printf '/^t[0-9a-f]{12}@example\\.test$/ x\n' >"$P/etc/vmailbox_test_users"
printf '!/@example\\.test$/ sink@example.test\n' >"$P/etc/outbound_to_sink"
cat >"$P/etc/main.cf" <<CF
# Orchard test instance. Generated by scripts/testenv/up.sh.
compatibility_level = 3.6
queue_directory = $P/spool
data_directory  = $P/data
maillog_file    = $P/maillog
maillog_file_prefixes = $ROOT
myhostname = mail.example.test
mydomain   = example.test
myorigin   = \$mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols  = all
mynetworks = 127.0.0.0/8 [::1]/128
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = yes
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$P/etc/vmailbox, regexp:$P/etc/vmailbox_test_users
virtual_alias_maps   = regexp:$P/etc/outbound_to_sink
virtual_alias_domains =
virtual_transport = lmtp:inet:127.0.0.1:10024
smtpd_tls_cert_file = $TLS/cert.pem
smtpd_tls_key_file  = $TLS/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DC/run/auth-client
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
message_size_limit = 52428800
CF
cat >"$P/etc/master.cf" <<'CF'
# service type  private unpriv  chroot  wakeup  maxproc command
10587     inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
10025     inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
# Postfix prints fatal errors only to syslog or a tty: run it under script(1) so they land in our log.
postfix_cmd() { script -qec "postfix -c $P/etc $*" /dev/null </dev/null >>"$P/startup.log" 2>&1; }
postfix_cmd check || fail "postfix check failed" "$P/startup.log" "$P/maillog"
postfix_cmd start || fail "postfix did not start" "$P/startup.log" "$P/maillog"

# ---- Radicale: CalDAV over HTTPS on 10232 ----
R=$ROOT/radicale
mkdir -p "$R/collections"
: >"$R/users"
for u in "${USERS[@]}"; do printf '%s\n' "$u" >>"$R/users"; done
chmod 644 "$R/users"
cat >"$R/config" <<CF
# Orchard test instance. Generated by scripts/testenv/up.sh.
[server]
hosts = 127.0.0.1:10232, [::1]:10232
ssl = True
certificate = $TLS/cert.pem
key = $TLS/key.pem
max_connections = 20
[auth]
type = htpasswd
htpasswd_filename = $R/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = $R/collections
[web]
type = none
[logging]
level = info
mask_passwords = True
CF
# /usr/bin/radicale, not python3 -m radicale: python3 on PATH may lack Debian's modules.
# setsid: keep it out of the caller's process group so it outlives the calling job.
setsid /usr/bin/radicale --config "$R/config" </dev/null >"$R/radicale.log" 2>&1 &
echo $! >"$R/radicale.pid"

# ---- PostgreSQL: finish initdb, configure, start ----
wait "$INITDB_PID" || fail "initdb failed" "$PG/initdb.log"
cat >>"$PG/data/postgresql.conf" <<CF

# Orchard test instance. Generated by scripts/testenv/up.sh.
listen_addresses = '127.0.0.1'
port = 10432
unix_socket_directories = '$PG'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
# Test databases live seconds: an autovacuum worker (owned by postgres) on
# one makes the orchard role's DROP DATABASE ... WITH (FORCE) fail.
autovacuum = off
CF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/postgres.log" -w -t 20 start \
  </dev/null >>"$PG/pg_ctl.log" 2>&1 || fail "postgres did not start" "$PG/pg_ctl.log" "$PG/postgres.log"
psql_pg() { runuser -u postgres -- "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG" -p 10432 -U postgres -d postgres "$@"; }
psql_pg -c "CREATE ROLE orchard LOGIN PASSWORD 'orchard' CREATEDB" </dev/null >>"$PG/setup.log" 2>&1 &&
  psql_pg -c "CREATE DATABASE orchard OWNER orchard" </dev/null >>"$PG/setup.log" 2>&1 ||
  fail "creating the orchard role/database failed" "$PG/setup.log" "$PG/postgres.log"

# ---- readiness checks ----
ok=
for _ in $(seq 50); do
  if doveadm -c "$DC/dovecot.conf" auth test alice@example.test abcd-efgh-ijkl-mnop </dev/null >"$DC/authtest.log" 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || fail "dovecot auth test failed" "$DC/authtest.log" "$DC/dovecot.log"

smtp_banner() { # reads the 220 greeting on 127.0.0.1:$1, then says QUIT
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  IFS= read -r -t 5 line <&3 || { exec 3<&-; return 1; }
  printf 'QUIT\r\n' >&3
  exec 3<&-
  [[ $line == 220* ]]
}
for port in 10587 10025; do
  ok=
  for _ in $(seq 50); do
    if smtp_banner "$port" 2>/dev/null; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || fail "postfix does not answer with a 220 banner on 127.0.0.1:$port" "$P/startup.log" "$P/maillog"
done

ok=
for _ in $(seq 100); do
  if curl -sS -o /dev/null --max-time 2 --cacert "$TLS/ca.pem" -u alice@example.test:abcd-efgh-ijkl-mnop \
    -X PROPFIND -H 'Depth: 0' https://127.0.0.1:10232/ 2>"$R/curl.log"; then ok=1; break; fi
  kill -0 "$(cat "$R/radicale.pid")" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || fail "radicale does not answer on https://127.0.0.1:10232" "$R/curl.log" "$R/radicale.log"

"$PGBIN/pg_isready" -q -h 127.0.0.1 -p 10432 -t 10 || fail "pg_isready failed" "$PG/postgres.log"
PGPASSWORD=orchard "$PGBIN/psql" -X -q -h 127.0.0.1 -p 10432 -U orchard -d orchard -c 'SELECT 1' \
  </dev/null >>"$PG/setup.log" 2>&1 || fail "cannot log in as orchard over TCP" "$PG/setup.log" "$PG/postgres.log"

# ---- env file ----
cat >"$ROOT/env" <<ENV
export ORCHARD_TESTENV_ROOT='$ROOT'
export ORCHARD_TEST_CA_FILE='$TLS/ca.pem'
export ORCHARD_TEST_IMAP_ADDR='127.0.0.1:10993'
export ORCHARD_TEST_IMAP_STARTTLS_ADDR='127.0.0.1:10143'
export ORCHARD_TEST_SMTP_ADDR='127.0.0.1:10587'
export ORCHARD_TEST_SMTP_INJECT_ADDR='127.0.0.1:10025'
export ORCHARD_TEST_CALDAV_URL='https://127.0.0.1:10232'
export ORCHARD_TEST_POSTGRES_URL='postgres://orchard:orchard@127.0.0.1:10432/orchard?sslmode=disable'
export ORCHARD_TEST_DOVECOT_CONF='$DC/dovecot.conf'
export ORCHARD_TEST_DOVECOT_USERS='$DC/users'
export ORCHARD_TEST_RADICALE_USERS='$R/users'
export ORCHARD_TEST_USERS='alice@example.test:abcd-efgh-ijkl-mnop bob@example.test:qrst-uvwx-yzab-cdef carol@example.test:ghij-klmn-opqr-stuv'
ENV
chmod 644 "$ROOT/env"

say "ready in $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo "$ROOT/env"
