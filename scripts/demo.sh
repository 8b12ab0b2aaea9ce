#!/usr/bin/env bash
# Build the demo warehouse, run the whole pipeline on it and write the HTML report:
#   bash scripts/demo.sh [demo.duckdb] [report.html]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "setup: installing pyprofile into .venv with torch (CPU build), dbt-core + dbt-duckdb, DuckDB,"
echo "       scikit-learn, ibis and the test tools, pinned by constraints.txt (about 2 minutes the first time)"
bash scripts/setup.sh
echo "setup: done; building the demo warehouse and running the pipeline"
DB="${1:-demo.duckdb}"
REPORT="${2:-report.html}"
.venv/bin/pyprofile demo --db "$DB"
.venv/bin/pyprofile report --db "$DB" --out "$REPORT"
SNAPSHOT="$(dirname "$DB")/$(basename "$DB" .duckdb).published/$(basename "$DB")"
echo "done: warehouse $DB, report $REPORT (open it in a browser); BI tools and notebooks read the snapshot: duckdb -readonly $SNAPSHOT"
