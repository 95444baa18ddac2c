//! `vmbench`: what the VM subsystem's basic operations cost, in TSC cycles,
//! measured from user mode. The same binary runs on pageos
//! (`cargo run -- --kernel-arg init=/bin/vmbench`) and as init of Linux in
//! the same QEMU (`scripts/linux-run.py vmbench`), so the figures compare
//! the two kernels on the same (emulated) machine. Figures in docs/src/benchmarks.md.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, PROT_NONE, PROT_READ, RW, peek, poke};
use rt::{Args, println};

rt::main!(main);

const PAGE: usize = 4096;

fn cycles() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Print the mean cost of one of `ops` operations that took `total` cycles.
fn report(name: &str, total: u64, ops: usize) {
    println!("bench {name:<40} {:>9} cycles/op", total / ops as u64);
}

fn main(_: Args) -> i32 {
    let pages = 4096; // 16 MiB
    let len = pages * PAGE;

    let a = sys::mmap_anon(len).unwrap_or(0);
    let t = cycles();
    for p in 0..pages {
        poke(a + p * PAGE, 1);
    }
    report("write fault, zero-fill (per page)", cycles() - t, pages);
    let t = cycles();
    let _ = sys::munmap(a, len);
    report(
        "munmap 16 MiB of resident pages (per page)",
        cycles() - t,
        pages,
    );

    let a = sys::mmap_anon(len).unwrap_or(0);
    let t = cycles();
    for p in 0..pages {
        peek(a + p * PAGE);
    }
    report("read fault, zero page (per page)", cycles() - t, pages);
    let t = cycles();
    for p in 0..pages {
        poke(a + p * PAGE, 1);
    }
    report(
        "write after read: copy-on-write of zero page",
        cycles() - t,
        pages,
    );
    let _ = sys::munmap(a, len);

    let t = cycles();
    let a = sys::mmap(0, len, RW, ANON | sys::MAP_POPULATE, -1, 0).unwrap_or(0);
    report("mmap MAP_POPULATE 16 MiB (per page)", cycles() - t, pages);
    let _ = sys::munmap(a, len);

    let n = 5000;
    let t = cycles();
    for _ in 0..n {
        let a = sys::mmap_anon(PAGE).unwrap_or(0);
        let _ = sys::munmap(a, PAGE);
    }
    report("mmap + munmap of one page", cycles() - t, n);

    let a = sys::mmap_anon(PAGE).unwrap_or(0);
    poke(a, 1);
    let t = cycles();
    for i in 0..n {
        let _ = sys::mprotect(a, PAGE, if i % 2 == 0 { PROT_READ } else { RW });
    }
    report("mprotect of one resident page", cycles() - t, n);
    let _ = sys::munmap(a, PAGE);

    // The same mmap + munmap with 10 000 VMAs in the address space.
    let many = 10_000;
    let region = sys::mmap(0, many * PAGE, PROT_NONE, ANON, -1, 0).unwrap_or(0);
    for i in (0..many).step_by(2) {
        let _ = sys::mprotect(region + i * PAGE, PAGE, PROT_READ);
    }
    let t = cycles();
    for _ in 0..n {
        let a = sys::mmap_anon(PAGE).unwrap_or(0);
        let _ = sys::munmap(a, PAGE);
    }
    report("mmap + munmap, 10 000 VMAs present", cycles() - t, n);
    let _ = sys::munmap(region, many * PAGE);

    println!("vmbench: done");
    0
}
