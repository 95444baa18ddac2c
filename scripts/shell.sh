#!/bin/sh
# `make shell`: boot pageos into busybox's sh, typed into from this
# terminal (the runner's --interactive). /init is userland/c/shell_init.c
# (applet links in /bin, the shell in a session of its own with the
# console as its controlling terminal); pageos's own programs (vmwalk,
# probe, vmtest, ...) are in /bin beside busybox's. Extra arguments go to
# the runner (e.g. --trace-faults, --memory 1G). Exit the shell (exit or
# ^D) to power off. PAGEOS_RUNNER names a built runner (the tests' own);
# by default `cargo run` builds it.
set -e
cd "$(dirname "$0")/.."
busybox=$(sh scripts/busybox.sh)
mkdir -p target/shell
init=target/shell/shell_init
if [ ! -x "$init" ] || [ userland/c/shell_init.c -nt "$init" ]; then
    musl-gcc -static -O2 -o "$init" userland/c/shell_init.c
fi
set -- --interactive --file "$init:/init" --file "$busybox:/bin/busybox" \
    --kernel-arg init=/init "$@"
if [ -n "$PAGEOS_RUNNER" ]; then
    exec "$PAGEOS_RUNNER" "$@"
fi
exec "${CARGO:-cargo}" run -q -- "$@"
