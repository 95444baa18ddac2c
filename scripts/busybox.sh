#!/bin/sh
# Debian's busybox-static, for `make shell` and the shell tests: fetched once
# with apt-get download and unpacked with dpkg -x into target/busybox (never
# installed). Prints the binary's path. Exit status 1 when it cannot be had
# (no package source): the callers then say so and skip.
set -e
cd "$(dirname "$0")/.."
dir=target/busybox
bin=$dir/root/bin/busybox
if [ ! -x "$bin" ]; then
    mkdir -p "$dir"
    if ! ls "$dir"/busybox-static_*.deb >/dev/null 2>&1; then
        (cd "$dir" && apt-get download busybox-static >/dev/null 2>&1) || {
            echo "busybox.sh: apt-get download busybox-static failed" >&2
            exit 1
        }
    fi
    dpkg -x "$dir"/busybox-static_*.deb "$dir/root"
fi
echo "$PWD/$bin"
