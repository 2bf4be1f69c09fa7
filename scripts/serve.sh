#!/usr/bin/env bash
# Sets up StemeDB from the lock file and starts the server on the embedded default
# (SQLite + WAL under ./data, http://127.0.0.1:18180). Extra arguments go to `stemedb serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/uv.sh
exec "${UV[@]}" run --locked --no-sync stemedb serve "$@"
