#!/usr/bin/env bash
# Create .venv (if needed) and install pyprofile with its test tools, using the pinned constraints.
# PYPROFILE_SPARK=1 adds the spark extra (pyspark, dbt-spark; about 1 GB) for tests/test_spark.py,
# which also needs Java 17 (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=dev
[ "${PYPROFILE_SPARK:-0}" = 1 ] && extras=dev,spark
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$extras]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import pyprofile, torch, dbt, ibis" # fail loudly if the install did not work
if [ "$extras" = dev,spark ]; then .venv/bin/python -c "import pyspark, dbt.adapters.spark"; fi
