#!/bin/sh
# Debian's chromium for the console's browser tests (driven by Playwright for Python, which is
# never allowed to download a browser of its own), installed once where missing.
set -eu

chromium=${MASH_CHROMIUM:-/usr/bin/chromium}
if [ -x "$chromium" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $chromium not found; install Debian's 'chromium' package (apt-get install chromium) or set MASH_CHROMIUM" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=/tmp/mash-chromium-install.log
if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium >"$log" 2>&1; then
    # The package lists may be missing or stale on a fresh machine: refresh them once.
    apt-get -o DPkg::Lock::Timeout=300 update >>"$log" 2>&1 || true
    if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium >>"$log" 2>&1; then
        echo "error: could not install Debian's 'chromium' package (see $log)" >&2
        exit 1
    fi
fi
[ -x "$chromium" ] || { echo "error: 'chromium' installed but $chromium is missing" >&2; exit 1; }
