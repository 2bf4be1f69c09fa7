#!/usr/bin/env bash
# Sets up a development environment from the lock file: uv, then the locked packages.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh
"${UV[@]}" sync --locked --quiet --all-extras
