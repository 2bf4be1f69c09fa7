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
    # OpenStack Swift with its S3 API (s3api + tempauth) for the real-S3 archive test
    # (tests/ops/test_swift_s3.py); the swift package creates the swift system user.
    swift
    swift-proxy
    swift-object
    swift-container
    swift-account
    python3-swift
    python3-lxml
    memcached
    # Redis for the shared rate-limit storage test (tests/api/test_ratelimit.py starts
    # its own redis-server on a loopback port)
    redis-server
    # Cluster mode (issue 15): PostgreSQL 15 for the store tests (tests/support/postgres.py),
    # Patroni + etcd for the fail-over test, pgBackRest for cluster backups.
    postgresql-15
    patroni
    etcd-server
    pgbackrest
    # the dashboard's browser tests (tests/ui): Playwright drives Debian's chromium
    chromium
    # the README tour (tests/cli/test_readme_tour.py runs it): curl and jq
    curl
    jq
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
