#!/bin/sh
# Linux's own mm selftests (tools/testing/selftests/vm in 6.1), from
# Debian's linux-source-6.1 package: fetched once with apt-get download and
# unpacked into target/linux-source (never installed); only the selftests'
# directory is taken out of the source tarball. Also makes kinc/, the
# kernel's uapi headers (linux-libc-dev) for musl-gcc. Prints the
# selftests' directory; exit status 1 when the package cannot be had.
set -e
cd "$(dirname "$0")/.."
dir=target/linux-source
tests=$dir/linux-source-6.1/tools/testing/selftests/vm
if [ ! -f "$tests/vm_util.c" ]; then
    mkdir -p "$dir"
    if ! ls "$dir"/linux-source-6.1_*.deb >/dev/null 2>&1; then
        (cd "$dir" && apt-get download linux-source-6.1 >/dev/null 2>&1) || {
            echo "mm-selftests.sh: apt-get download linux-source-6.1 failed" >&2
            exit 1
        }
    fi
    dpkg-deb --fsys-tarfile "$dir"/linux-source-6.1_*.deb |
        tar -x -C "$dir" ./usr/src/linux-source-6.1.tar.xz
    tar -xJf "$dir/usr/src/linux-source-6.1.tar.xz" -C "$dir" \
        --wildcards 'linux-source-6.1/tools/testing/selftests/vm/*' \
        'linux-source-6.1/tools/testing/selftests/kselftest.h'
    rm -f "$dir/usr/src/linux-source-6.1.tar.xz"
fi
mkdir -p "$dir/kinc"
ln -sfn /usr/include/linux "$dir/kinc/linux"
ln -sfn /usr/include/x86_64-linux-gnu/asm "$dir/kinc/asm"
ln -sfn /usr/include/asm-generic "$dir/kinc/asm-generic"
echo "$PWD/$tests"
