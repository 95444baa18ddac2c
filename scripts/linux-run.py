#!/usr/bin/env python3
"""Run a pageos user program as init of a Debian Linux kernel, in the same
QEMU, to check that pageos and Linux agree (DESIGN §2: the Linux ABI).

    scripts/linux-run.py vmtest            # the VM cases Linux shares
    scripts/linux-run.py vmtest -- ARGS    # with arguments
    scripts/linux-run.py --elf FILE -- ARGS  # any static x86_64 ELF as /init
    scripts/linux-run.py --memory 1G --append sysctl.vm.max_map_count=N --elf FILE
    scripts/linux-run.py --file HOST:/GUEST/PATH ... --elf FILE  # more files in the initramfs
    scripts/linux-run.py --smp 4 --elf FILE  # with 4 CPUs (multi-threaded TCG)
    scripts/linux-run.py --icount --elf FILE # clocks count instructions (as the runner's --icount)
    scripts/linux-run.py --swap 64M swaptest -- /dev/vda 65532   # with a swap disk
    scripts/linux-run.py --disk FILE ...   # FILE as a further virtio-blk disk

The kernel comes from Debian's linux-image-*-amd64 package, downloaded with
apt-get and unpacked with dpkg -x into target/linux (never installed). The
program is /init of a newc initramfs built here; its status is read from
the summary line it prints (Linux panics when init exits; -no-reboot then
ends QEMU). Exit status: 0 when the program reported `N passed, 0 failed`.

Disks are virtio-blk PCI devices, as the pageos runner attaches them:
--swap SIZE makes a fresh one with Debian's mkswap (the reference for the
header pageos's runner writes), --disk FILE attaches FILE; the first is
/dev/vda. Debian builds virtio-blk as a module, so with disks /init is
userland/c/linux_init.c, which loads the modules, mounts devtmpfs on /dev
and procfs on /proc, and then runs the program as /sbin/init.
With --elf, the program's output is all that matters (the caller compares
it with pageos's): the exit status is 0 once QEMU has run it.
"""

import glob
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "linux")
PACKAGE = "linux-image-6.1.0-56-amd64"


def run(*cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def kernel():
    """The vmlinuz of the Debian package, fetched and unpacked once."""
    found = glob.glob(os.path.join(WORK, "root", "boot", "vmlinuz-*"))
    if found:
        return found[0]
    os.makedirs(WORK, exist_ok=True)
    debs = glob.glob(os.path.join(WORK, PACKAGE + "_*.deb"))
    if not debs:
        try:
            run("apt-get", "download", PACKAGE, cwd=WORK)
        except (OSError, subprocess.CalledProcessError):
            return None
        debs = glob.glob(os.path.join(WORK, PACKAGE + "_*.deb"))
    run("dpkg", "-x", debs[0], os.path.join(WORK, "root"))
    return glob.glob(os.path.join(WORK, "root", "boot", "vmlinuz-*"))[0]


def program(name):
    run("cargo", "build", "-q", "-p", "programs", "--target", "x86_64-unknown-none", "--bin", name, cwd=ROOT)
    return os.path.join(ROOT, "target", "x86_64-unknown-none", "debug", name)


# virtio-blk and what it needs, dependencies first (their modinfo depends=).
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"]


def parse_size(text):
    """A size in QEMU's syntax (as the runner's --swap): bytes, or K, M, G, T."""
    shift = {"K": 10, "M": 20, "G": 30, "T": 40}.get(text[-1:].upper(), 0)
    return int(text[:-1] if shift else text) << shift


def make_swap(size):
    """A fresh swap disk of SIZE in target/linux, formatted by mkswap."""
    path = os.path.join(WORK, "swap-%d.img" % os.getpid())
    with open(path, "wb") as f:
        f.truncate(parse_size(size) // 4096 * 4096)
    run("mkswap", "-q", "-L", "pageos-swap", path)
    return path


def disk_init():
    """The /init that loads the virtio modules first (userland/c/linux_init.c)."""
    out = os.path.join(WORK, "linux_init")
    source = os.path.join(ROOT, "userland", "c", "linux_init.c")
    run("musl-gcc", "-static", "-O2", "-o", out, source)
    with open(out, "rb") as f:
        return f.read()


def modules():
    """The .ko files of MODULES from the unpacked package, in order."""
    found = []
    for name in MODULES:
        paths = glob.glob(os.path.join(WORK, "root", "lib", "modules", "*", "kernel", "**", name + ".ko"), recursive=True)
        if not paths:
            sys.exit("linux-run: no %s.ko in %s" % (name, PACKAGE))
        with open(paths[0], "rb") as f:
            found.append(f.read())
    return found


def cpio(entries):
    """A newc archive: entries are (path, mode, data, rdev_major, rdev_minor)."""
    out = bytearray()
    for ino, (path, mode, data, major, minor) in enumerate(entries + [("TRAILER!!!", 0, b"", 0, 0)], 1):
        name = path.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name), 0]
        out += b"070701" + b"".join(b"%08x" % f for f in fields) + name
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1 :] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    elf = None
    memory = "512M"
    kernel_args = []
    files = []
    swap = None
    disks = []
    smp = None
    icount = False
    # Options for the benchmark (scripts/bench.py): guest RAM, and words
    # for the kernel command line (before init's arguments); disks; and
    # more files for the initramfs (boot/tests/programs.rs: busybox, Lua...).
    if args[:1] == ["--icount"]:
        icount = True
        args = args[1:]
    while args[:1] in (["--memory"], ["--append"], ["--swap"], ["--disk"], ["--file"], ["--smp"]) and len(args) >= 2:
        if args[0] == "--smp":
            smp = args[1]
        elif args[0] == "--memory":
            memory = args[1]
        elif args[0] == "--swap":
            swap = args[1]
        elif args[0] == "--disk":
            disks.append(args[1])
        elif args[0] == "--file":
            host, guest = args[1].split(":", 1)
            files.append((host, guest.lstrip("/")))
        else:
            kernel_args.append(args[1])
        args = args[2:]
    if args[:1] == ["--elf"] and len(args) == 2:
        elf = args[1]
        name = os.path.basename(elf)
    else:
        name = args[0] if args else "vmtest"
    vmlinuz = kernel()
    if vmlinuz is None:
        # No package source (offline machine): say so loudly, but this is
        # not a failure of pageos.
        print("linux-run: SKIPPED: cannot download %s (apt-get download failed)" % PACKAGE, file=sys.stderr)
        return 0
    with open(elf or program(name), "rb") as f:
        binary = f.read()
    if swap:
        disks.insert(0, make_swap(swap))
    entries = [
        ("dev", 0o040755, b"", 0, 0),
        ("dev/console", 0o020600, b"", 5, 1),
        ("sbin", 0o040755, b"", 0, 0),
        ("init", 0o100755, disk_init() if disks else binary, 0, 0),
        # vmtest reads /sbin/init's ELF magic, as on pageos.
        ("sbin/init", 0o100755, binary, 0, 0),
    ]
    if disks:
        entries.append(("proc", 0o040755, b"", 0, 0))
        entries.append(("modules", 0o040755, b"", 0, 0))
        entries += [("modules/%d.ko" % i, 0o100644, ko, 0, 0) for i, ko in enumerate(modules())]
    # One per run: two tests may boot the same program at once (pressure.rs
    # runs two sets of pressuretest's cases), and one's QEMU read the
    # other's half-written archive ("Unable to mount root fs").
    initrd = os.path.join(WORK, "initrd-%s-%d.cpio" % (name, os.getpid()))
    dirs = {path for path, mode, _, _, _ in entries if mode & 0o170000 == 0o040000}
    for host, guest in files:
        parts = guest.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entries.append((d, 0o040755, b"", 0, 0))
        with open(host, "rb") as f:
            entries.append((guest, 0o100755, f.read(), 0, 0))
    with open(initrd, "wb") as f:
        f.write(cpio(entries))
    # no_timer_check: under TCG on a loaded host the IO-APIC timer check can
    # miss its ticks and panic ("IO-APIC + timer doesn't work!").
    append = " ".join(["console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check"] + kernel_args)
    if extra:
        append += " -- " + " ".join(extra)
    qemu = [
        "qemu-system-x86_64", "-kernel", vmlinuz, "-initrd", initrd, "-append", append,
        "-m", memory, "-cpu", "qemu64,+smep,+smap", "-nographic", "-no-reboot", "-monitor", "none",
    ]
    if smp:
        # One host thread per vCPU, as the pageos runner's --cpus.
        qemu += ["-smp", smp, "-accel", "tcg,thread=multi"]
    if icount:
        # As the pageos runner's --icount: virtual time is instructions.
        qemu += ["-icount", "shift=0,sleep=off"]
    for i, disk in enumerate(disks):
        qemu += ["-drive", "file=%s,format=raw,if=none,id=disk%d" % (disk, i), "-device", "virtio-blk-pci,drive=disk%d" % i]
    print("+", " ".join(qemu), file=sys.stderr)
    try:
        out = subprocess.run(qemu, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600).stdout.decode(errors="replace")
    finally:
        os.remove(initrd)
        if swap:
            os.remove(disks[0])
    print(out)
    if elf:
        return 0
    summary = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
    if re.search(r"^(vmbench|proctest bench): done", out, re.M):
        return 0
    if not summary:
        print("linux-run: no summary line from %s" % name, file=sys.stderr)
        return 1
    return 0 if summary[-1][1] == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
