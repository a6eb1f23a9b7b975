#!/bin/sh
# promtool (and the Prometheus server the integration test runs) from Debian's `prometheus`
# package, installed once where missing. The package's maintainer scripts would start a
# prometheus daemon; a policy-rc.d answering 101 ("action forbidden") keeps invoke-rc.d from
# starting it, so nothing is left listening on 9090 after the install.
set -eu

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: promtool not found; install Debian's 'prometheus' package (apt-get install prometheus) or put promtool on PATH" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
own_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=yes
fi
cleanup() { if [ "$own_policy" = yes ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends prometheus >/tmp/mash-promtool-install.log 2>&1; then
    # The package lists may be missing or stale on a fresh machine: refresh them once.
    apt-get -o DPkg::Lock::Timeout=300 update >>/tmp/mash-promtool-install.log 2>&1 || true
    if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends prometheus >>/tmp/mash-promtool-install.log 2>&1; then
        echo "error: could not install Debian's 'prometheus' package for promtool (see /tmp/mash-promtool-install.log)" >&2
        exit 1
    fi
fi
# Belt and braces: should a service manager have started the daemon anyway, stop it.
if command -v invoke-rc.d >/dev/null 2>&1; then
    invoke-rc.d --force prometheus stop >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null 2>&1 || { echo "error: 'prometheus' installed but promtool is not on PATH" >&2; exit 1; }
