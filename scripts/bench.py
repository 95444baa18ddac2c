#!/usr/bin/env python3
"""`make bench`: pageos against Linux, side by side, in the same QEMU.

    scripts/bench.py                 # both kernels, table, docs, chart
    scripts/bench.py --memory 1G     # guest RAM for both (default 1G)
    scripts/bench.py --no-docs       # print the table only

One binary, `vmbench` (userland/programs/src/bin/vmbench.rs, Rust no_std, raw
syscalls), built once in release mode, runs as init of a release pageos
kernel and as /init of Debian's Linux 6.1 kernel (scripts/linux-run.py),
with the same -m and the same -cpu model (qemu64,+smep,+smap, see
boot/src/qemu.rs). Each metric is the median of 7 rounds of cycles per
operation, read with rdtsc inside the guest. The table goes to stdout and,
unless --no-docs, to docs/src/bench/table.md and docs/src/bench/chart.svg
(included by docs/src/performance.md).

`--only NAME,...` runs just the metrics and programs named (metrics by
their vmbench names, e.g. `--only mremap_64m,zero_4k`), prints their rows
and writes no docs.

Then memory pressure (`--pressure-only` runs just this, `--no-pressure`
skips it): `pressbench` (userland/programs/src/bin/pressbench.rs) as init
of both kernels with `-m 128M` and a 512 MiB swap disk, a sequential sweep
of 2 x RAM, random access over 1.5 x RAM and a loop over 1.2 x RAM, as
cycles per page touched and major faults; the table goes to
docs/src/bench/pressure.md.

Then scaling with threads (`--scale-only` runs just this, `--no-scale`
skips it): `userland/c/scalebench.c` (musl, pthreads) as init of pageos
with `--cpus 2` and of Linux with `-smp 2`, will-it-scale's page_fault1
(each thread faults its own 64 MiB region, 4 KiB pages; and on each
kernel's default policy) and mmap1 (mmap + munmap of 128 MiB, untouched)
at 1 and 2 threads, as operations per second; the table goes to
docs/src/bench/scale.md. Not with --icount (one CPU only).

Then the real programs (`--programs-only` runs just these, `--no-programs`
skips them): Lua 5.4 and SQLite built from crates' sources, Debian's
busybox, as /etc/programs of `userland/c/progbench.c`, which times fork +
execve + wait of each with the TSC (median of 3 rounds) on both kernels;
the table goes to docs/src/bench/programs.md.

With --icount both kernels run under QEMU's -icount shift=0,sleep=off (the
runners' --icount): the guest's TSC counts instructions executed, not time,
so the figures are the same on a loaded host and between runs (as
valgrind's instruction counts are); they leave out what an instruction
costs (a TLB miss, a cache miss). The docs files then get "-icount" in
their names.

Exit status: 0 when both kernels ran every metric, 1 otherwise.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELF = os.path.join(ROOT, "target", "x86_64-unknown-none", "release", "vmbench")
# 100 000 VMAs need more than the default vm.max_map_count (65 530) on both
# kernels; both take Linux's boot-time sysctl syntax.
MAP_COUNT = "sysctl.vm.max_map_count=200000"

# The metrics in table order: name in vmbench's output, what it measures.
METRICS = [
    ("getpid", "syscall round trip (getpid)"),
    ("anon_write_fault", "demand-zero write fault, per page (64 MiB)"),
    ("mmap_munmap", "mmap + munmap of one page"),
    ("mmap_touch_munmap", "mmap + touch + munmap of one page"),
    ("mprotect_4_pages", "mprotect of 4 resident pages"),
    ("file_read_fault", "file read fault, per page (16 MiB ramfs file)"),
    ("cow_fault", "copy-on-write fault after fork, per page"),
    ("fork_16m", "fork with 16 MiB resident"),
    ("mmap_touch_munmap_10k_vmas", "mmap + touch + munmap, 10 000 VMAs"),
    ("mmap_touch_munmap_100k_vmas", "mmap + touch + munmap, 100 000 VMAs"),
    ("huge_fault_2m", "one 2 MiB page fault"),
    ("small_faults_2m", "512 small faults over the same 2 MiB"),
    ("mremap_64m", "mremap of 64 MiB (4 KiB pages, to an aligned address)"),
    ("mremap_64m_default", "defaults: mremap of 64 MiB (to an aligned address)"),
    # Each kernel's defaults (transparent huge pages as it has them).
    ("anon_write_fault_default", "defaults: demand-zero write fault, per 4 KiB (64 MiB)"),
    ("fork_16m_default", "defaults: fork with 16 MiB resident"),
    ("cow_fault_default", "defaults: copy-on-write fault after fork, per 4 KiB"),
    ("zero_4k", "zeroing 4 KiB from user mode (the yardstick)"),
]


def log(*words):
    print("+", " ".join(words), file=sys.stderr)


def build(program="vmbench"):
    cmd = ["cargo", "build", "--release", "-q", "-p", "programs",
           "--target", "x86_64-unknown-none", "--bin", program]
    log(*cmd)
    subprocess.run(cmd, cwd=ROOT, check=True)


def run(cmd, timeout):
    log(*cmd)
    try:
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode(errors="replace")


def parse(output):
    """{metric: (median, min, max)} from the `bench NAME MEDIAN MIN MAX ROUNDS` lines
    (not anchored: Linux's console puts terminal escapes before the first)."""
    found = {}
    for m in re.finditer(r"bench (\w+) (\d+) (\d+) (\d+) (\d+)\s*$", output, re.M):
        found[m.group(1)] = tuple(int(m.group(i)) for i in (2, 3, 4))
    return found


def pageos(memory, rows):
    """vmbench on pageos: its output and figures; `rows`, if any, the metrics to run."""
    out = run(["cargo", "run", "--release", "-q", "--"] + icount_flag() + ["--memory", memory, "--timeout", "600",
               "--kernel-arg", MAP_COUNT, "--exec", ELF] + (["--"] + rows if rows else []), timeout=900)
    return out, parse(out)


def linux(memory, rows):
    out = run([sys.executable, os.path.join(ROOT, "scripts", "linux-run.py")] + icount_flag() + ["--memory", memory,
               "--append", MAP_COUNT, "--elf", ELF] + (["--"] + rows if rows else []), timeout=900)
    if "SKIPPED" in out:
        return out, {}
    return out, parse(out)


def fmt(n):
    return "{:,}".format(n).replace(",", " ")


def table(ours, theirs, keys):
    """The rows of `keys` (metric names, in METRICS' order), and the lines
    under the table whose metrics were run."""
    rows = ["| metric | pageos (cycles) | Linux 6.1 (cycles) | pageos / Linux |",
            "| --- | ---: | ---: | ---: |"]
    for key, label in METRICS:
        if key in keys:
            a, b = ours[key][0], theirs[key][0]
            rows.append("| %s | %s | %s | %.2f |" % (label, fmt(a), fmt(b), a / b))

    def ratio(of, to):
        return ours[of][0] / ours[to][0], theirs[of][0] / theirs[to][0]

    if {"anon_write_fault_default", "zero_4k"} <= set(keys):
        rows.append("")
        rows.append("On the defaults, pageos's demand-zero fault per 4 KiB costs %.2f× zeroing 4 KiB "
                    "(Linux's: %.2f×)." % ratio("anon_write_fault_default", "zero_4k"))
    if {"mmap_touch_munmap_100k_vmas", "mmap_touch_munmap"} <= set(keys):
        rows.append("")
        rows.append("VMA scaling on pageos (100 000 VMAs against the ~10 of a small process): %.2f×; "
                    "Linux: %.2f×." % ratio("mmap_touch_munmap_100k_vmas", "mmap_touch_munmap"))
    return "\n".join(rows) + "\n"


def chart(ours, theirs):
    """A horizontal bar chart of pageos/Linux per metric, log-free: 1.0 is Linux."""
    width, left, bar_h, gap = 760, 330, 16, 8
    scale = 300  # pixels for a ratio of 1.0
    top = 40
    height = top + len(METRICS) * (bar_h + gap) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="20" font-size="14">pageos cycles / Linux cycles (shorter is faster; target: 0.5)</text>']
    for i, (key, label) in enumerate(METRICS):
        y = top + i * (bar_h + gap)
        ratio = ours[key][0] / theirs[key][0]
        w = min(ratio, 1.4) * scale
        colour = "#2a7" if ratio <= 0.5 else ("#db3" if ratio <= 1 else "#c33")
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 8, y + 12, label))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left, y, w, bar_h, colour))
        out.append('<text x="%.1f" y="%d">%.2f</text>' % (left + w + 4, y + 12, ratio))
    bottom = top + len(METRICS) * (bar_h + gap)
    for r, dash in ((0.5, "4,3"), (1.0, "")):
        x = left + r * scale
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-dasharray="%s"/>' % (x, top - 6, x, bottom, dash))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, bottom + 16, "Linux" if r == 1 else "target 0.5"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# The real programs: name, rounds, command line in the guest, what it is.
PROGRAMS = [
    ("lua_binary_trees_14", 3, "/bin/lua /lua/binary_trees.lua 14", "Lua binary-trees, depth 14"),
    ("lua_gc_stress", 3, "/bin/lua /lua/gc_stress.lua 40", "Lua GC stress, 40 rounds"),
    ("lua_strings", 3, "/bin/lua /lua/strings.lua 32", "Lua strings, 32 MB"),
    ("sqlite_20k", 3, "/bin/sqlite /tmp/a.db 20000 0", "SQLite, 20 000 inserts"),
    ("sqlite_20k_mmap", 3, "/bin/sqlite /tmp/b.db 20000 268435456", "SQLite, 20 000 inserts, mmap_size 256 MiB"),
    ("busybox_sort_20k", 3, "/bin/busybox sort -o /tmp/sorted /data/lines.txt", "busybox sort, 20 000 lines"),
    ("shell_loop_2000", 3, "/bin/busybox sh /data/loop.sh", "busybox sh, a loop of 2 000 external commands"),
]
# The shell loop: each `/bin/busybox true` is a fork, an execve and a wait
# (a path with a slash is never run inside the shell).
LOOP = "i=0\nwhile [ $i -lt 2000 ]; do /bin/busybox true; i=$((i + 1)); done\n"
BUILD = os.path.join(ROOT, "target", "bench-programs")
# --icount: the runners' flag, and what the figures count.
ICOUNT = False


def icount_flag():
    """The runner's machine for the one-CPU benchmarks: -icount, or one CPU
    (the runner's default is two; Linux boots with one here too)."""
    return ["--icount"] if ICOUNT else ["--cpus", "1"]


def docs_file(name):
    """docs/src/bench/NAME, with -icount before the extension under --icount."""
    if ICOUNT:
        stem, ext = os.path.splitext(name)
        name = stem + "-icount" + ext
    return os.path.join(ROOT, "docs", "src", "bench", name)


def unit():
    return "instructions (QEMU -icount)" if ICOUNT else "TSC cycles"


ONLY = None


def chosen():
    """The programs to time: all, or those `--only` names."""
    return [p for p in PROGRAMS if ONLY is None or p[0] in ONLY]


def compile_c(name, cc, flags, inputs):
    """Compile into target/bench-programs/NAME unless it is newer than its inputs."""
    os.makedirs(BUILD, exist_ok=True)
    out = os.path.join(BUILD, name)
    if os.path.exists(out) and all(os.path.getmtime(i) <= os.path.getmtime(out) for i in inputs):
        return out
    cmd = [cc] + flags + ["-o", out] + inputs
    log(*cmd)
    subprocess.run(cmd, check=True)
    return out


def sources():
    """The Lua and SQLite source directories (scripts/sources/Cargo.lock pins them)."""
    import json
    manifest = os.path.join(ROOT, "scripts", "sources", "Cargo.toml")
    subprocess.run(["cargo", "fetch", "--locked", "-q", "--manifest-path", manifest], check=True)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--offline", "--locked", "--format-version", "1",
                                      "--manifest-path", manifest], check=True, stdout=subprocess.PIPE).stdout)
    dirs = {p["name"]: os.path.dirname(p["manifest_path"]) for p in meta["packages"]}
    return os.path.join(dirs["lua-src"], "lua-5.4.7"), os.path.join(dirs["libsqlite3-sys"], "sqlite3")


def program_files():
    """(host, guest) of everything PROGRAMS needs; progbench is init."""
    c = os.path.join(ROOT, "userland", "c")
    lua_dir, sqlite_dir = sources()
    lua_inputs = sorted(os.path.join(lua_dir, f) for f in os.listdir(lua_dir) if f.endswith(".c"))
    lua = compile_c("lua", "musl-gcc", ["-static", "-O2", "-DLUA_USE_POSIX", "-I" + lua_dir, "-lm"],
                    lua_inputs + [os.path.join(c, "luarun.c")])
    sqlite = compile_c("sqlite", "musl-gcc", ["-static", "-O2", "-DSQLITE_THREADSAFE=0",
                                              "-DSQLITE_OMIT_LOAD_EXTENSION", "-I" + sqlite_dir],
                       [os.path.join(c, "sqlrun.c"), os.path.join(sqlite_dir, "sqlite3.c")])
    progbench = compile_c("progbench", "musl-gcc", ["-static", "-O2"], [os.path.join(c, "progbench.c")])
    busybox = subprocess.run(["sh", os.path.join(ROOT, "scripts", "busybox.sh")], check=True,
                             stdout=subprocess.PIPE).stdout.decode().strip()
    lines = os.path.join(BUILD, "lines.txt")
    with open(lines, "w") as f:
        for i in range(20000):
            f.write("line %05d %d\n" % ((i * 7919) % 20000, i))
    loop = os.path.join(BUILD, "loop.sh")
    with open(loop, "w") as f:
        f.write(LOOP)
    plan = os.path.join(BUILD, "programs.list")
    with open(plan, "w") as f:
        for name, rounds, command, _ in chosen():
            f.write("%s %d %s\n" % (name, rounds, command))
    files = [(progbench, "/init"), (plan, "/etc/programs"), (lua, "/bin/lua"), (sqlite, "/bin/sqlite"),
             (busybox, "/bin/busybox"), (lines, "/data/lines.txt"), (loop, "/data/loop.sh")]
    for script in ("binary_trees", "gc_stress", "strings"):
        files.append((os.path.join(ROOT, "userland", "lua", script + ".lua"), "/lua/%s.lua" % script))
    return files


def programs(memory, write_docs):
    files = program_files()
    spec = lambda h, g: "%s:%s" % (h, g)
    cmd = ["cargo", "run", "--release", "-q", "--"] + icount_flag() + ["--memory", memory, "--timeout", "3000",
           "--kernel-arg", "init=/init"]
    for host, guest in files:
        cmd += ["--file", spec(host, guest)]
    ours = parse(run(cmd, timeout=3600))
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "linux-run.py")] + icount_flag() + ["--memory", memory]
    for host, guest in files[1:]:
        cmd += ["--file", spec(host, guest)]
    out_l = run(cmd + ["--elf", files[0][0]], timeout=3600)
    theirs = {} if "SKIPPED" in out_l else parse(out_l)
    missing = [n for n, _, _, _ in chosen() if n not in ours or n not in theirs]
    if missing:
        print("bench: FAILED: no figure for the programs %s" % ", ".join(missing), file=sys.stderr)
        return 1
    rows = ["| program | pageos (Mcycles) | Linux 6.1 (Mcycles) | pageos / Linux |",
            "| --- | ---: | ---: | ---: |"]
    product = 1.0
    for name, _, _, label in chosen():
        a, b = ours[name][0], theirs[name][0]
        product *= a / b
        rows.append("| %s | %s | %s | %.2f |" % (label, fmt(a // 1000000), fmt(b // 1000000), a / b))
    rows.append("")
    rows.append("Geometric mean of the ratios: %.2f." % (product ** (1.0 / len(chosen()))))
    text = "\n".join(rows) + "\n"
    print(text)
    if write_docs:
        with open(docs_file("programs.md"), "w") as f:
            f.write("<!-- Written by scripts/bench.py; do not edit. -->\n")
            f.write("Produced by `make bench` (scripts/bench.py --memory %s): fork + execve + wait of each "
                    "program timed with the TSC by userland/c/progbench.c (%s), median of 3 rounds, "
                    "TCG, one CPU.\n\n" % (memory + (" --icount" if ICOUNT else ""), unit()))
            f.write(text)
    return 0


# Memory pressure: pressbench (userland/programs/src/bin/pressbench.rs) on a
# small machine with swap, the same -m and swap disk for both kernels
# (Debian's kernel does not boot in 64 MiB). Its patterns, in table order.
PRESSURE_MEMORY_MIB = 128
PRESSURE_SWAP = "512M"
PRESSURE = [
    ("sweep", "sequential sweep of 2 × RAM, 3 passes"),
    ("random", "random access over 1.5 × RAM"),
    ("loop", "loop over 1.2 × RAM, 3 passes (defeats LRU)"),
]


def pressure(write_docs):
    """pressbench on both kernels: cycles per page touched and major faults."""
    build("pressbench")
    elf = os.path.join(ROOT, "target", "x86_64-unknown-none", "release", "pressbench")
    memory = "%dM" % PRESSURE_MEMORY_MIB
    machine = ["--memory", memory, "--swap", PRESSURE_SWAP]
    out_p = run(["cargo", "run", "--release", "-q", "--"] + icount_flag() + machine +
                ["--timeout", "1800", "--exec", elf, "--", str(PRESSURE_MEMORY_MIB)], timeout=2400)
    out_l = run([sys.executable, os.path.join(ROOT, "scripts", "linux-run.py")] + icount_flag() + machine +
                ["--elf", elf, "--", str(PRESSURE_MEMORY_MIB)], timeout=2400)
    ours, theirs = parse(out_p), parse(out_l)
    keys = ["press_" + n for n, _ in PRESSURE]
    missing = [k for k in keys + [k + "_majflt" for k in keys] if k not in ours or k not in theirs]
    if missing:
        sys.stdout.write(out_p[-3000:] + "\n" + out_l[-3000:] + "\n")
        print("bench: FAILED: no pressure figure for %s" % ", ".join(missing), file=sys.stderr)
        return 1
    rows = ["| pattern | pageos (%s per page) | Linux 6.1 | pageos / Linux | pageos major faults | "
            "Linux major faults |" % ("instructions" if ICOUNT else "cycles"),
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for (name, label), key in zip(PRESSURE, keys):
        a, b = ours[key][0], theirs[key][0]
        rows.append("| %s | %s | %s | %.2f | %s | %s |" % (
            label, fmt(a), fmt(b), a / b, fmt(ours[key + "_majflt"][0]), fmt(theirs[key + "_majflt"][0])))
    text = "\n".join(rows) + "\n"
    print(text)
    for who, out in (("pageos", out_p), ("Linux", out_l)):
        for line in out.splitlines():
            if "events press_" in line:
                print(who, line[line.index("events press_"):])
    if write_docs:
        with open(docs_file("pressure.md"), "w") as f:
            f.write("<!-- Written by scripts/bench.py; do not edit. -->\n")
            f.write("Produced by `make bench` (scripts/bench.py%s): `-m %s`, a %s swap disk (virtio-blk), "
                    "TCG, one CPU, one round; %s per page touched, major faults from getrusage; host load "
                    "average %.1f at the start.\n\n" % (" --icount" if ICOUNT else "", memory, PRESSURE_SWAP,
                                                        unit(), LOAD))
            f.write(text)
    return 0


# Scaling with threads: scalebench's modes in table order, what an operation
# is, and the seconds each (mode, threads) runs. Two CPUs on both kernels.
SCALE = [
    ("page_fault1", "page_fault1: 4 KiB faults, own 64 MiB region per thread (MADV_NOHUGEPAGE)", "faults/s"),
    ("page_fault1_thp", "page_fault1 on each kernel's defaults (per 4 KiB page written)", "pages/s"),
    ("mmap1", "mmap1: mmap + munmap of 128 MiB, untouched", "ops/s"),
    ("stream", "stream: rewriting its own faulted-in 64 MiB, no faults (the host's ceiling)", "pages/s"),
]
SCALE_THREADS = (1, 2)
SCALE_SECONDS = 2
SCALE_CPUS = "2"
# Each figure is the best of this many rounds, the rounds interleaved: a
# single round's ratio moved by 0.3 with the shared host's load (the
# stream row, which is no kernel work at all, read 1.39-2.08 in one hour).
SCALE_ROUNDS = 3


def parse_scale(output):
    """{(mode, threads): the best ops per second} from `scale MODE THREADS RATE OPS NS` lines."""
    found = {}
    for m in re.finditer(r"scale (\w+) (\d+) (\d+) (\d+) (\d+)\s*$", output, re.M):
        key = (m.group(1), int(m.group(2)))
        found[key] = max(found.get(key, 0), int(m.group(3)))
    return found


def scale(memory, write_docs):
    """scalebench on both kernels with 2 CPUs: page_fault1 and mmap1 at 1 and 2 threads."""
    elf = compile_c("scalebench", "musl-gcc", ["-static", "-O2", "-pthread"],
                    [os.path.join(ROOT, "userland", "c", "scalebench.c")])
    plan = ["-r", str(SCALE_ROUNDS)]
    for mode, _, _ in SCALE:
        for threads in SCALE_THREADS:
            plan += [mode, str(threads), str(SCALE_SECONDS)]
    # The kernel and runner built first, so that the load read is the runs'.
    log("cargo", "build", "--release", "-q")
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    uptime = subprocess.run(["uptime"], stdout=subprocess.PIPE).stdout.decode().strip()
    log("uptime:", uptime)
    out_p = run(["cargo", "run", "--release", "-q", "--", "--memory", memory, "--cpus", SCALE_CPUS,
                 "--timeout", "900", "--exec", elf, "--"] + plan, timeout=1200)
    out_l = run([sys.executable, os.path.join(ROOT, "scripts", "linux-run.py"), "--memory", memory,
                 "--smp", SCALE_CPUS, "--elf", elf, "--"] + plan, timeout=1200)
    ours, theirs = parse_scale(out_p), parse_scale(out_l)
    keys = [(mode, t) for mode, _, _ in SCALE for t in SCALE_THREADS]
    failed = [l.strip() for l in (out_p + out_l).splitlines() if "FAIL" in l]
    missing = [k for k in keys if k not in ours or k not in theirs]
    if missing or failed:
        sys.stdout.write(out_p[-3000:] + "\n" + out_l[-3000:] + "\n")
        print("bench: FAILED: scale %s" % ", ".join(failed + ["no figure for %s %d" % k for k in missing]),
              file=sys.stderr)
        return 1
    rows = ["| benchmark | unit | pageos 1 thread | pageos 2 threads | pageos 2 / 1 | Linux 1 thread | "
            "Linux 2 threads | Linux 2 / 1 | pageos / Linux at 2 |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, label, unit_name in SCALE:
        a1, a2, b1, b2 = ours[(mode, 1)], ours[(mode, 2)], theirs[(mode, 1)], theirs[(mode, 2)]
        rows.append("| %s | %s | %s | %s | %.2f | %s | %s | %.2f | %.2f |" % (
            label, unit_name, fmt(a1), fmt(a2), a2 / a1, fmt(b1), fmt(b2), b2 / b1, a2 / b2))
    text = "\n".join(rows) + "\n"
    print(text)
    after = subprocess.run(["uptime"], stdout=subprocess.PIPE).stdout.decode().strip()
    print("host before: %s\nhost after: %s" % (uptime, after))
    if write_docs:
        with open(docs_file("scale.md"), "w") as f:
            f.write("<!-- Written by scripts/bench.py; do not edit. -->\n")
            f.write("Produced by `python3 scripts/bench.py --scale-only` (also part of `make bench`): "
                    "userland/c/scalebench.c as init of pageos (`--cpus 2`) and of Linux 6.1 (`-smp 2`), "
                    "guest RAM %s, `-cpu qemu64,+smep,+smap`, multi-threaded TCG; each figure the best "
                    "of %d rounds of %d s, interleaved; higher is better. Host (2 cores, shared) before: "
                    "`%s`; after: `%s`.\n\n"
                    % (memory, SCALE_ROUNDS, SCALE_SECONDS, uptime, after))
            f.write(text)
    return 0


def main():
    args = sys.argv[1:]
    memory = "1G"
    if "--memory" in args:
        memory = args[args.index("--memory") + 1]
    write_docs = "--no-docs" not in args
    global ICOUNT
    ICOUNT = "--icount" in args
    if "--only" in args:
        global ONLY
        names = args[args.index("--only") + 1].split(",")
        metrics = [k for k, _ in METRICS if k in names]
        ONLY = [p[0] for p in PROGRAMS if p[0] in names]
        unknown = [n for n in names if n not in metrics and n not in ONLY]
        if unknown:
            print("bench: no metric or program named %s" % ", ".join(unknown), file=sys.stderr)
            return 2
        status = 0
        if metrics:
            status = vmbench(memory, metrics, False)
        if ONLY:
            status |= programs(memory, False)
        return status
    if "--programs-only" in args:
        return programs(memory, write_docs)
    if "--pressure-only" in args:
        return pressure(write_docs)
    if "--scale-only" in args:
        return scale(memory, write_docs)
    status = vmbench(memory, [k for k, _ in METRICS], write_docs)
    if "--no-pressure" not in args:
        status |= pressure(write_docs)
    if "--no-scale" not in args and not ICOUNT:
        status |= scale(memory, write_docs)
    if status or "--no-programs" in args:
        return status
    return programs(memory, write_docs)


# The host's load average (1 minute) when the script started.
LOAD = os.getloadavg()[0]


def vmbench(memory, keys, write_docs):
    """vmbench's metrics `keys` on both kernels (all of them: no argument,
    and then the docs may be written); their table on stdout."""
    rows = [] if len(keys) == len(METRICS) else keys
    build()
    out_p, ours = pageos(memory, rows)
    out_l, theirs = linux(memory, rows)
    missing = [k for k in keys if k not in ours or k not in theirs]
    if missing:
        sys.stdout.write(out_p[-3000:] + "\n" + out_l[-3000:] + "\n")
        print("bench: FAILED: no figure for %s from %s" % (
            ", ".join(missing), "pageos" if any(k not in ours for k in missing) else "Linux"), file=sys.stderr)
        return 1
    text = table(ours, theirs, keys)
    print(text)
    for line in out_p.splitlines():
        if line.startswith("events "):
            print(line)  # pageos's /proc/vmstat events per operation
    load = "load average %.1f before, %.1f after" % (LOAD, os.getloadavg()[0])
    print(load)
    if write_docs:
        command = "make bench  (scripts/bench.py --memory %s%s)" % (memory, " --icount" if ICOUNT else "")
        with open(docs_file("table.md"), "w") as f:
            f.write("<!-- Written by scripts/bench.py; do not edit. -->\n")
            f.write("Produced by `%s`: guest RAM %s, `-cpu qemu64,+smep,+smap`, TCG, one CPU; "
                    "median of 7 rounds, %s per operation; host %s.\n\n" % (command, memory, unit(), load))
            f.write(text)
        with open(docs_file("chart.svg"), "w") as f:
            f.write(chart(ours, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
