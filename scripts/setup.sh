#!/usr/bin/env bash
# Create .venv (if needed) and install pyprofile with its test tools, using the pinned constraints.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import pyprofile, torch, dbt, ibis" # fail loudly if the install did not work
