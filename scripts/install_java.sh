#!/usr/bin/env bash
# Install Java 17 (Debian's headless JRE), which Spark needs: `pyprofile demo --engine spark` and
# tests/test_spark.py. Idempotent: does nothing when `java` is already on the PATH. Needs root (or
# sudo) and apt; without them it says so and exits 0 (the Spark test is then skipped).
set -euo pipefail

if command -v java >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_java.sh: apt-get not found; install Java 17 by hand (the Spark test is skipped without it)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"  # never wait for a password
    else
        echo "install_java.sh: not root and no sudo; cannot install Java (the Spark test is skipped)" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
{ $SUDO apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless 2>&1 >/dev/null \
    | { grep -v "^debconf: delaying package configuration" >&2 || true; }; }
echo "install_java.sh: installed $(java -version 2>&1 | head -n 1)"
