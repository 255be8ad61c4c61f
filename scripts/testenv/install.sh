#!/bin/bash
# Installs the Debian packages the Orchard test environment needs (Debian 12, run as root).
# Idempotent: a fast no-op when every package is already installed.
set -euo pipefail

# chromium and fonts-dejavu-core: headless-browser tests (test/sdk/tests/browser.test.js), readable screenshots.
PKGS=(dovecot-imapd dovecot-lmtpd postfix radicale postgresql openssl curl ca-certificates chromium fonts-dejavu-core)

missing=()
for p in "${PKGS[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "testenv install: all packages present"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "testenv install: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

echo "testenv install: missing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PKGS[@]}"
