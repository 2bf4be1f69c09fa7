#!/usr/bin/env bash
# Sets up everything (Debian packages, Python packages from uv.lock) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-debian-deps.sh
bash scripts/setup.sh
source scripts/uv.sh
exec "${UV[@]}" run --locked --no-sync pytest "$@"
