#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the HTML report's browser test (tests/test_report.py).
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo) and apt.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: apt-get not found; install Chromium by hand (the report test is skipped without it)" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"  # never wait for a password
    else
        echo "install_browser.sh: not root and no sudo; cannot install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# apt prints a harmless "debconf: delaying package configuration" note on stderr; keep the rest.
{ $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core 2>&1 >/dev/null \
    | { grep -v "^debconf: delaying package configuration" >&2 || true; }; }
echo "install_browser.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
