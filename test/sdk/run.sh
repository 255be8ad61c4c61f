#!/usr/bin/env bash
# Runs the Nylas Node SDK suite against a real `orchard serve` and the
# loopback mail test env. Usage: test/sdk/run.sh   (from any directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

missing=()
for v in ORCHARD_TEST_IMAP_ADDR ORCHARD_TEST_SMTP_ADDR ORCHARD_TEST_CA_FILE ORCHARD_TEST_USERS; do
  [[ -n "${!v:-}" ]] || missing+=("$v")
done
if ((${#missing[@]} > 0)); then
  cat >&2 <<MSG
test/sdk/run.sh: missing ${missing[*]}.
The SDK tests need the loopback Dovecot/Postfix test env:
  $repo/scripts/testenv/install.sh && $repo/scripts/testenv/up.sh
  . /tmp/orchard-testenv/env
  $here/run.sh
(see scripts/testenv/README.md)
MSG
  exit 2
fi
for tool in node npm go; do
  command -v "$tool" >/dev/null || { echo "test/sdk/run.sh: $tool is not installed" >&2; exit 2; }
done

cd "$here"
# npm ci when node_modules is missing or older than the lock file.
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" || package.json -nt "$stamp" ]]; then
  npm ci --no-audit --no-fund
fi

# Build once for all test files (each runs in its own node process).
if [[ -z "${ORCHARD_BIN:-}" ]]; then
  bindir="$(mktemp -d "${TMPDIR:-/tmp}/orchard-sdk-bin.XXXXXX")"
  trap 'rm -rf "$bindir"' EXIT
  (cd "$repo" && go build -o "$bindir/orchard" ./cmd/orchard)
  export ORCHARD_BIN="$bindir/orchard"
fi

npm test
