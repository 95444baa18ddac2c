//! `pressbench RAM_MIB [PATTERN...]`: the memory-pressure benchmark of
//! `make bench` (scripts/bench.py, docs/src/performance.md), one binary
//! as init of pageos and as /init of Linux, both with `-m RAM_MIB` and the
//! same swap disk (on Linux it first enables /dev/vda with swapon(2)).
//!
//! Three access patterns over private anonymous memory, sized from the
//! machine's `-m` (not from MemTotal, so both kernels do the same work on
//! the same machine, each paying for its own footprint):
//!
//! - `sweep`: 2 × RAM, three sequential passes;
//! - `random`: 1.5 × RAM, as many touches as it has pages, at pages picked
//!   by a fixed-seed generator;
//! - `loop`: 1.2 × RAM, three sequential passes, the pattern that defeats
//!   LRU (the page evicted is always the one needed next but one).
//!
//! Each region is first written whole (not measured), then every touch
//! writes one word of its page, so every page that leaves RAM is dirty and
//! goes to disk. Each pattern prints `bench press_NAME CYCLES ...` (TSC
//! cycles per page touched) and `bench press_NAME_majflt N ...` (major
//! faults of the measured passes, from getrusage), in vmbench's format;
//! one round each, as one round is minutes under TCG; then an `events`
//! line with the swap and reclaim counters of /proc/vmstat over the
//! pattern. 4 KiB pages on both
//! kernels (MADV_NOHUGEPAGE): the work compared is paging, not zeroing.
#![no_std]
#![no_main]

use rt::rng::Rng;
use rt::sys::{self, poke};
use rt::{Args, println};

rt::main!(main);

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
const MADV_NOHUGEPAGE: usize = 15;
const SWAPON: usize = 167;
const GETRUSAGE: usize = 98;

/// The calling process's major faults so far (struct rusage's ru_majflt:
/// after two timevals, maxrss, ixrss, idrss, isrss and minflt).
fn major_faults() -> u64 {
    let mut usage = [0u64; 18];
    match sys::raw(GETRUSAGE, [0, usage.as_mut_ptr() as usize, 0, 0, 0, 0]) {
        Ok(_) => usage[9],
        Err(_) => 0,
    }
}

/// The /proc/vmstat counters printed per pattern (those the kernel has):
/// pages read from and written to swap, and how many pages reclaim scanned
/// and took (pageos's names; Linux splits the last two by kswapd/direct).
const EVENTS: [&str; 8] = [
    "pswpin",
    "pswpout",
    "pgscan",
    "pgsteal",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal_kswapd",
    "pgsteal_direct",
];

fn vmstat(name: &str) -> Option<u64> {
    rt::test::proc_number("/proc/vmstat\0", name).ok()
}

fn main(args: Args) -> i32 {
    let Ok(ram_mib) = args.get(1).parse::<usize>() else {
        println!("usage: pressbench RAM_MIB [sweep|random|loop...]");
        return 2;
    };
    let swap_kb = rt::test::proc_number("/proc/meminfo\0", "SwapTotal").unwrap_or(0);
    if swap_kb == 0 {
        let path = b"/dev/vda\0";
        if let Err(e) = sys::raw(SWAPON, [path.as_ptr() as usize, 0, 0, 0, 0, 0]) {
            println!("pressbench: no swap (swapon /dev/vda: errno {})", e.0);
            return 1;
        }
    }
    let ram = ram_mib * MIB;
    let wanted = |name: &str| args.len() == 2 || (2..args.len()).any(|i| args.get(i) == name);
    // (name, region size in tenths of RAM, passes; 0 passes = random)
    let patterns: [(&str, usize, usize); 3] =
        [("sweep", 20, 3), ("random", 15, 0), ("loop", 12, 3)];
    for (name, tenths, passes) in patterns {
        if !wanted(name) {
            continue;
        }
        let len = ram / 10 * tenths / PAGE * PAGE;
        let events = EVENTS.map(vmstat);
        let Some((per_page, majflt)) = run(len, passes) else {
            println!("pressbench: {name}: mmap of {} MiB failed", len / MIB);
            return 1;
        };
        println!("bench press_{name} {per_page} {per_page} {per_page} 1");
        println!("bench press_{name}_majflt {majflt} {majflt} {majflt} 1");
        rt::print!("events press_{name}");
        for (event, before) in EVENTS.iter().zip(events) {
            if let (Some(a), Some(b)) = (vmstat(event), before) {
                rt::print!(" {event}={}", a - b);
            }
        }
        println!();
    }
    0
}

/// Write a region of `len` bytes whole, then touch it `passes` times in
/// order (or, with 0 passes, as many times as it has pages at random):
/// cycles per page touched and the major faults of the touches.
fn run(len: usize, passes: usize) -> Option<(u64, u64)> {
    let a = sys::mmap_anon(len).ok()?;
    let _ = sys::madvise(a, len, MADV_NOHUGEPAGE);
    let pages = len / PAGE;
    for p in 0..pages {
        poke(a + p * PAGE, 1);
    }
    let faults = major_faults();
    let start = sys::rdtsc();
    let touches = if passes == 0 {
        let mut rng = Rng(1);
        for _ in 0..pages {
            poke(a + rng.below(pages) * PAGE, 2);
        }
        pages
    } else {
        for pass in 0..passes {
            for p in 0..pages {
                poke(a + p * PAGE, pass as u8);
            }
        }
        pages * passes
    };
    let per_page = (sys::rdtsc() - start) / touches as u64;
    let majflt = major_faults() - faults;
    let _ = sys::munmap(a, len);
    Some((per_page, majflt))
}
