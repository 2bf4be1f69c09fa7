#!/usr/bin/env bash
# Installs the Debian packages StemeDB's tests and tools need. Idempotent; run as root.
set -euo pipefail
PACKAGES=(
    ca-certificates
    wrk
    hey
    prometheus
    openssl
    nginx
)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing Debian packages: ${missing[*]} (run this script as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
