#!/usr/bin/env bash
# Run the test suite in the project's virtual environment: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A DuckDB 1.x client (what BI tools embed), to check that it opens our warehouse files.
[ -x .venv-duckdb1/bin/python ] || python3 -m venv .venv-duckdb1
.venv-duckdb1/bin/python -m pip install -q --disable-pip-version-check 'duckdb>=1.1,<2' 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
export PYPROFILE_DUCKDB1_PYTHON="$PWD/.venv-duckdb1/bin/python"
# Debian's Chromium, for the test that opens the HTML report in a real headless browser.
bash scripts/install_browser.sh || echo "warning: no Chromium; the browser test of the report will be skipped" >&2
exec .venv/bin/python -m pytest "$@"
