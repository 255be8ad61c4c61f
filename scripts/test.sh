#!/usr/bin/env bash
# Runs every test of Orchard: the Go unit and integration tests (against real
# Dovecot, Postfix, Radicale and PostgreSQL on loopback), the store
# conformance suite on SQLite and PostgreSQL, and the Node SDK tests against
# a real `orchard serve`. Needs root on Debian 12 (it installs and starts the
# servers). Usage: scripts/test.sh        (KEEP_TESTENV=1 leaves them running)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
root=${ORCHARD_TESTENV_DIR:-/tmp/orchard-testenv}

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "install packages"
scripts/testenv/install.sh
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test.sh: node and npm are needed for the SDK tests (apt-get install nodejs npm)" >&2
  exit 1
fi

step "start the test servers"
scripts/testenv/up.sh "$root" >/dev/null
if [ "${KEEP_TESTENV:-0}" != 1 ]; then
  trap 'scripts/testenv/down.sh "$root" >/dev/null 2>&1 || true' EXIT
fi
# shellcheck disable=SC1091
. "$root/env"
export ORCHARD_TESTENV_REQUIRED=1

step "gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

step "Go tests (unit, integration, store suite on SQLite and PostgreSQL)"
go test -race -count=1 ./...

step "Node SDK tests (nylas@8.4.0)"
bin=$(mktemp -d)/orchard
go build -o "$bin" ./cmd/orchard
ORCHARD_BIN=$bin test/sdk/run.sh

step "all tests passed"
