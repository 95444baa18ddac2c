#!/bin/sh
# Install what `make run` / `make test` need on a fresh Debian machine:
# QEMU (qemu-system-x86), UEFI firmware (ovmf), a C compiler and musl for the
# C test programs, g++ for libFuzzer, gdb (`make gdb` and its test), and the
# toolchain pinned in rust-toolchain.toml. (cargo-fuzz and mdbook are
# installed by the make targets that need them.)
set -e
missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
ls /usr/share/OVMF/OVMF_CODE*.fd >/dev/null 2>&1 || missing="$missing ovmf"
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
# objcopy (binutils, which gcc brings): the runner loads a copy of the
# kernel without its debug info, a boot about 15 s shorter under TCG.
command -v objcopy >/dev/null 2>&1 || missing="$missing binutils"
# libFuzzer (cargo fuzz, fuzz/) is C++, built by the libfuzzer-sys crate.
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
command -v musl-gcc >/dev/null 2>&1 || missing="$missing musl-tools"
command -v gdb >/dev/null 2>&1 || missing="$missing gdb"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "setup: missing packages; run: sudo apt-get install$missing" >&2
        exit 1
    fi
fi
# rustup reads rust-toolchain.toml and adds the pinned nightly and its
# components if they are not there yet (a no-op when they are).
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install >/dev/null
else
    echo "setup: rustup not found; install it from your distribution or rustup.rs" >&2
    exit 1
fi
# Debian's busybox-static (the real-program tests, `make shell`): fetched
# once into target/busybox by scripts/busybox.sh; the tests say so and skip
# when there is no package source.
sh "$(dirname "$0")/busybox.sh" >/dev/null || true
