#!/usr/bin/env bash
# Build the demo warehouse and run the whole pipeline on it: bash scripts/demo.sh [demo.duckdb]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DB="${1:-demo.duckdb}"
.venv/bin/pyprofile demo --db "$DB"
