//! `vmbench`: what the VM subsystem's basic operations cost, in TSC cycles,
//! measured from user mode. The same binary runs as init on pageos and on
//! Linux in the same QEMU (`make bench`, scripts/bench.py), so the figures
//! compare the two kernels on the same (emulated) machine. Figures and the
//! exact command: docs/src/performance.md.
//!
//! Every metric is the median of `ROUNDS` rounds; each round times a batch
//! of operations and divides. Output, one line per metric, for the script:
//!
//! ```text
//! bench <metric> <median cycles per op> <min> <max> <rounds>
//! ```
//!
//! Arguments, if any, name the metrics to run (`vmbench mremap_64m
//! zero_4k`, what `scripts/bench.py --only` passes); none runs them all.
//!
//! Transparent huge pages are switched off with MADV_NOHUGEPAGE wherever a
//! metric means 4 KiB pages, so that Linux (whose THP may be "always")
//! and pageos do the same work. The `_default` metrics are the same
//! operations on each kernel's default policy (no madvise on either side:
//! 2 MiB pages where the kernel puts them), over the 2 MiB-aligned part of
//! a mapping (Linux 6.1 does not place anonymous mappings 2 MiB-aligned);
//! `zero_4k` is the yardstick of the demand-zero one: writing zeros over a
//! resident 4 KiB page from user mode, eight 8-byte stores at a time, the
//! loop the kernels' zeroing comes down to.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, PROT_NONE, PROT_READ, RW, peek, poke};
use rt::{Args, println};

rt::main!(main);

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
const ROUNDS: usize = 7;
const MADV_HUGEPAGE: usize = 14;
const MADV_NOHUGEPAGE: usize = 15;
const MAP_SHARED: usize = sys::MAP_SHARED;

/// The metrics to run: those named by the arguments, or all.
#[derive(Clone, Copy)]
struct Only(Args);

impl Only {
    /// Whether any of `names` is to run (so that its setup is worth doing).
    fn wants(self, names: &[&str]) -> bool {
        let chosen = (1..self.0.len()).map(|i| self.0.get(i));
        self.0.len() <= 1 || chosen.into_iter().any(|c| names.contains(&c))
    }

    /// Run `round` ROUNDS times (each returns cycles per operation) and
    /// print the median, the fastest and the slowest round, if `name` is
    /// to run. Where the kernel has a /proc/vmstat with event counters
    /// (pageos), also print what one of the `ops` operations of a round
    /// cost in events (TLB flushes, frames zeroed...).
    fn measure(self, name: &str, ops: u64, round: impl FnMut() -> u64) {
        if self.wants(&[name]) {
            measure(name, ops, round);
        }
    }
}

fn measure(name: &str, ops: u64, mut round: impl FnMut() -> u64) {
    let before = Counters::read();
    let mut samples = [0u64; ROUNDS];
    for s in samples.iter_mut() {
        *s = round();
    }
    let after = Counters::read();
    samples.sort_unstable();
    println!(
        "bench {name} {} {} {} {ROUNDS}",
        samples[ROUNDS / 2],
        samples[0],
        samples[ROUNDS - 1]
    );
    if let (Some(before), Some(after)) = (before, after) {
        rt::print!("events {name}");
        for (i, event) in EVENTS.iter().enumerate() {
            let total = after.0[i] - before.0[i];
            let per_op = total as f64 / (ops * ROUNDS as u64) as f64;
            rt::print!(" {event}={per_op:.2}");
        }
        println!();
    }
}

/// The /proc/vmstat counters the benchmark reports per operation.
const EVENTS: [&str; 8] = [
    "pgfault",
    "tlb_flush_page",
    "tlb_flush_all",
    "cr3_load",
    "frames_zeroed",
    "frame_table_calls",
    "heap_allocs",
    "pgfault_around_mapped",
];

struct Counters([u64; EVENTS.len()]);

impl Counters {
    /// The counters now, or None where /proc/vmstat does not have them.
    fn read() -> Option<Counters> {
        let fd = sys::open("/proc/vmstat\0", sys::O_RDONLY).ok()?;
        let mut buf = [0u8; 2048];
        let len = sys::read(fd as i32, &mut buf).unwrap_or(0);
        let _ = sys::close(fd);
        let text = core::str::from_utf8(&buf[..len]).ok()?;
        let mut values = [0u64; EVENTS.len()];
        for (i, event) in EVENTS.iter().enumerate() {
            values[i] = text.lines().find_map(|line| {
                let (name, value) = line.split_once(' ')?;
                if name == *event {
                    value.trim().parse().ok()
                } else {
                    None
                }
            })?;
        }
        Some(Counters(values))
    }
}

/// Time `ops` calls of `op` and return the cost of one.
fn per_op(ops: usize, mut op: impl FnMut(usize)) -> u64 {
    let t = sys::rdtsc();
    for i in 0..ops {
        op(i);
    }
    (sys::rdtsc() - t) / ops as u64
}

fn anon(len: usize) -> usize {
    let a = sys::mmap_anon(len).unwrap_or_else(|e| fail("mmap", e));
    let _ = sys::madvise(a, len, MADV_NOHUGEPAGE);
    a
}

/// Write zeros over the 4 KiB at `page`, eight 8-byte stores at a time.
fn zero_page(page: usize) {
    let words = page as *mut u64;
    for chunk in (0..PAGE / 8).step_by(8) {
        for i in 0..8 {
            // SAFETY: `page` is a resident page of ours; chunk + i < 512.
            unsafe { words.add(chunk + i).write_volatile(0) };
        }
    }
}

fn fail(what: &str, e: sys::Errno) -> ! {
    println!("vmbench: {what} failed: errno {}", e.0);
    sys::exit(1)
}

fn main(args: Args) -> i32 {
    let only = Only(args);
    only.measure("getpid", 2000, || {
        per_op(2000, |_| {
            sys::getpid();
        })
    });

    // Demand-zero write faults over 64 MiB, in 4 KiB pages and on the
    // default policy.
    let pages = (64 << 20) / PAGE;
    for (name, policy) in [
        ("anon_write_fault", Policy::Small),
        ("anon_write_fault_default", Policy::Default),
    ] {
        only.measure(name, pages as u64, || {
            let region = Region::new(pages * PAGE, policy);
            let a = region.start;
            let c = per_op(pages, |p| poke(a + p * PAGE, 1));
            region.unmap();
            c
        });
    }
    if only.wants(&["zero_4k"]) {
        let page = anon(PAGE);
        poke(page, 1);
        measure("zero_4k", 1000, || per_op(1000, |_| zero_page(page)));
        let _ = sys::munmap(page, PAGE);
    }

    only.measure("mmap_munmap", 1000, || {
        per_op(1000, |_| {
            let a = sys::mmap_anon(PAGE).unwrap_or(0);
            let _ = sys::munmap(a, PAGE);
        })
    });

    only.measure("mmap_touch_munmap", 1000, || touch_cycle(1000));

    if only.wants(&["mprotect_4_pages"]) {
        let a = anon(4 * PAGE);
        for p in 0..4 {
            poke(a + p * PAGE, 1);
        }
        measure("mprotect_4_pages", 1000, || {
            per_op(1000, |i| {
                let prot = if i % 2 == 0 { PROT_READ } else { RW };
                let _ = sys::mprotect(a, 4 * PAGE, prot);
            })
        });
        let _ = sys::munmap(a, 4 * PAGE);
    }

    if only.wants(&["file_read_fault"]) {
        file_fault();
    }
    for (fork, cow, policy) in [
        ("fork_16m", "cow_fault", Policy::Small),
        ("fork_16m_default", "cow_fault_default", Policy::Default),
    ] {
        if only.wants(&[fork, cow]) {
            fork_metrics(only, fork, cow, policy);
        }
    }

    // The same mmap + touch + munmap with many VMAs in the address space.
    for (many, name) in [
        (10_000, "mmap_touch_munmap_10k_vmas"),
        (100_000, "mmap_touch_munmap_100k_vmas"),
    ] {
        if only.wants(&[name]) {
            let region = many_vmas(many);
            measure(name, 1000, || touch_cycle(1000));
            let _ = sys::munmap(region, many * PAGE);
        }
    }

    // One 2 MiB page against 512 small pages over the same 2 MiB.
    let window = sys::mmap_anon(2 * HUGE).unwrap_or_else(|e| fail("mmap", e));
    let base = (window + HUGE - 1) & !(HUGE - 1);
    only.measure("huge_fault_2m", 1, || {
        let _ = sys::madvise(base, HUGE, MADV_HUGEPAGE);
        let t = sys::rdtsc();
        poke(base, 1);
        let c = sys::rdtsc() - t;
        let _ = sys::madvise(base, HUGE, sys::MADV_DONTNEED);
        c
    });
    only.measure("small_faults_2m", 1, || {
        let _ = sys::madvise(base, HUGE, MADV_NOHUGEPAGE);
        let t = sys::rdtsc();
        for p in 0..HUGE / PAGE {
            poke(base + p * PAGE, 1);
        }
        let c = sys::rdtsc() - t;
        let _ = sys::madvise(base, HUGE, sys::MADV_DONTNEED);
        c
    });
    let _ = sys::munmap(window, 2 * HUGE);

    for (name, policy) in [
        ("mremap_64m", Policy::Small),
        ("mremap_64m_default", Policy::Default),
    ] {
        only.measure(name, 1, || mremap_round(policy));
    }

    println!("vmbench: done");
    0
}

/// Which pages a metric's memory gets.
#[derive(Clone, Copy, PartialEq)]
enum Policy {
    /// 4 KiB pages: MADV_NOHUGEPAGE, so that Linux's THP does not change the work.
    Small,
    /// The kernel's default (no madvise): 2 MiB pages where it puts them.
    Default,
}

/// Private anonymous memory at a 2 MiB-aligned `start`, `len` long, with
/// `policy`'s pages. The mapping around it is `len` + 2 MiB (Linux 6.1
/// does not place anonymous mappings 2 MiB-aligned).
struct Region {
    map: usize,
    start: usize,
    len: usize,
}

impl Region {
    fn new(len: usize, policy: Policy) -> Region {
        let map = sys::mmap_anon(len + HUGE).unwrap_or_else(|e| fail("mmap", e));
        let start = map.next_multiple_of(HUGE);
        if policy == Policy::Small {
            let _ = sys::madvise(map, len + HUGE, MADV_NOHUGEPAGE);
        }
        Region {
            map,
            start,
            len: len + HUGE,
        }
    }

    /// Exactly [start, start + len): the mapping's ends trimmed.
    fn trimmed(len: usize, policy: Policy) -> usize {
        let r = Region::new(len, policy);
        let _ = sys::munmap(r.map, r.start - r.map);
        let _ = sys::munmap(r.start + len, r.map + r.len - (r.start + len));
        r.start
    }

    fn unmap(self) {
        let _ = sys::munmap(self.map, self.len);
    }
}

const SYS_MREMAP: usize = 25;
const MREMAP_MAYMOVE: usize = 1;
const MREMAP_FIXED: usize = 2;

/// One round of `mremap_64m`: mremap of 64 MiB of resident memory to a
/// free 2 MiB-aligned address (MREMAP_FIXED, so that both kernels move
/// the same entries between the same alignments), what a realloc of a
/// large buffer costs: page-table entries moved and no byte copied. In
/// 4 KiB pages or, on the default policy, in the 2 MiB pages each kernel
/// gives an aligned region.
fn mremap_round(policy: Policy) -> u64 {
    let len = 64 << 20;
    let src = Region::trimmed(len, policy);
    for p in 0..len / PAGE {
        poke(src + p * PAGE, 1);
    }
    // A free aligned place: mapped to find it, then unmapped.
    let dst = Region::trimmed(len, policy);
    let _ = sys::munmap(dst, len);
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    let t = sys::rdtsc();
    let got = sys::raw(SYS_MREMAP, [src, len, len, flags, dst, 0]);
    let c = sys::rdtsc() - t;
    let moved = got.unwrap_or_else(|e| fail("mremap", e));
    if peek(moved + len - PAGE) != 1 {
        println!("vmbench: mremap lost the data");
        sys::exit(1);
    }
    let _ = sys::munmap(moved, len);
    c
}

/// mmap one page, write to it, munmap it; the cost of one such cycle.
fn touch_cycle(ops: usize) -> u64 {
    per_op(ops, |_| {
        let a = sys::mmap_anon(PAGE).unwrap_or(0);
        poke(a, 1);
        let _ = sys::munmap(a, PAGE);
    })
}

/// A PROT_NONE region of `n` pages with every other page made readable:
/// `n` VMAs that cannot merge. Returns the region.
fn many_vmas(n: usize) -> usize {
    let region = sys::mmap(0, n * PAGE, PROT_NONE, ANON, -1, 0).unwrap_or_else(|e| fail("mmap", e));
    for i in (0..n).step_by(2) {
        if let Err(e) = sys::mprotect(region + i * PAGE, PAGE, PROT_READ) {
            fail("mprotect (is max_map_count high enough?)", e);
        }
    }
    region
}

/// Read faults on a 16 MiB file of the root file system (ramfs on both
/// kernels), one byte per page: fault-around maps neighbours, as it should.
fn file_fault() {
    let len = 16 << 20;
    let fd = sys::open_mode(
        "/vmbench.dat",
        sys::O_RDWR | sys::O_CREAT | sys::O_TRUNC,
        0o644,
    )
    .unwrap_or_else(|e| fail("open", e));
    let buf = anon(64 << 10);
    for p in 0..(64 << 10) / PAGE {
        poke(buf + p * PAGE, p as u8 | 1);
    }
    // SAFETY: `buf` is a 64 KiB mapping of our own, readable and written above.
    let chunk = unsafe { core::slice::from_raw_parts(buf as *const u8, 64 << 10) };
    for _ in 0..len / chunk.len() {
        if let Err(e) = sys::write(fd as i32, chunk) {
            fail("write", e);
        }
    }
    let _ = sys::munmap(buf, 64 << 10);
    measure("file_read_fault", (len / PAGE) as u64, || {
        let a = sys::mmap(0, len, PROT_READ, MAP_SHARED, fd as i32, 0)
            .unwrap_or_else(|e| fail("mmap file", e));
        let c = per_op(len / PAGE, |p| {
            peek(a + p * PAGE);
        });
        let _ = sys::munmap(a, len);
        c
    });
    let _ = sys::close(fd);
    let _ = sys::unlink("/vmbench.dat");
}

/// fork of a process with 16 MiB resident (`policy`'s pages), and the
/// copy-on-write faults its child takes writing that memory, as the
/// metrics `fork` and `cow`.
fn fork_metrics(only: Only, fork: &str, cow: &str, policy: Policy) {
    let pages = (16 << 20) / PAGE;
    let region = Region::new(pages * PAGE, policy);
    let a = region.start;
    for p in 0..pages {
        poke(a + p * PAGE, 1);
    }
    let out = sys::mmap(0, PAGE, RW, MAP_SHARED | sys::MAP_ANONYMOUS, -1, 0)
        .unwrap_or_else(|e| fail("mmap shared", e));
    only.measure(fork, 1, || {
        let t = sys::rdtsc();
        let pid = sys::fork().unwrap_or_else(|e| fail("fork", e));
        if pid == 0 {
            sys::exit(0);
        }
        let c = sys::rdtsc() - t;
        wait(pid);
        c
    });
    only.measure(cow, pages as u64, || {
        let pid = sys::fork().unwrap_or_else(|e| fail("fork", e));
        if pid == 0 {
            let c = per_op(pages, |p| poke(a + p * PAGE, 2));
            // SAFETY: `out` is a shared page mapped before the fork.
            unsafe { core::ptr::write_volatile(out as *mut u64, c) };
            sys::exit(0);
        }
        wait(pid);
        // SAFETY: as above; the child has exited.
        unsafe { core::ptr::read_volatile(out as *const u64) }
    });
    region.unmap();
    let _ = sys::munmap(out, PAGE);
}

fn wait(pid: usize) {
    let mut status = 0;
    if let Err(e) = sys::wait4(pid as isize, &mut status, 0) {
        fail("wait4", e);
    }
    if status != 0 {
        println!("vmbench: child status {status:#x}");
        sys::exit(1);
    }
}
