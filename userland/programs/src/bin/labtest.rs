//! `labtest N`: the user-mode test of lab N of the labs chapter
//! (`docs/src/labs.md`), for the labs that need the kernel; the others are
//! host tests in `vm/tests/labs.rs`. It prints `ok NAME` / `FAIL NAME: why`
//! per case and `N passed, M failed`, like vmtest, and fails until the lab
//! is done. `boot/tests/labs.rs` boots it (`make lab N=5`).
//!
//! Lab 5's cases are pageos's (Linux 6.1 does not align a moved range to
//! 2 MiB), so as init of a Linux kernel they are skipped.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, RW, peek, poke};
use rt::test::{Outcome, Suite, proc_number, why};
use rt::{Args, ensure, fail, println};

rt::main!(main);

fn main(args: Args) -> i32 {
    match args.get(1) {
        "5" => lab5_mremap(),
        "1" | "2" | "3" | "4" => {
            println!(
                "labtest: lab {} is tested on the host: make lab N={}",
                args.get(1),
                args.get(1)
            );
            2
        }
        other => {
            println!("labtest: which lab? `labtest 5` (got {other:?})");
            2
        }
    }
}

// ---- lab 5: mremap that keeps 2 MiB pages ---------------------------------

const HUGE: usize = 2 << 20;
const SYS_MREMAP: usize = 25;
const MREMAP_MAYMOVE: usize = 1;
/// Page tables a move may make for its target (L1, L2, L3 at most).
const TABLES: u64 = 3;

fn mremap(old: usize, old_len: usize, new_len: usize, flags: usize) -> sys::Result<usize> {
    sys::raw(SYS_MREMAP, [old, old_len, new_len, flags, 0, 0])
}

/// Fill [addr, addr + len) with a pattern that depends on the offset from
/// `addr`, so that it can be checked wherever the pages end up.
fn fill(addr: usize, len: usize, seed: u8) {
    for off in (0..len).step_by(4096) {
        poke(addr + off, (off / 4096) as u8 ^ seed);
    }
}

fn check_fill(addr: usize, len: usize, seed: u8) -> Outcome {
    for off in (0..len).step_by(4096) {
        let (got, want) = (peek(addr + off), (off / 4096) as u8 ^ seed);
        ensure!(
            got == want,
            "byte at +{off:#x} is {got:#x}, expected {want:#x}"
        )?;
    }
    Ok(())
}

/// Map 4 MiB of 2 MiB pages (filled), block the page above, and grow
/// [a + skip, a + 4 MiB) to twice its size and a page with MREMAP_MAYMOVE:
/// the move must keep the offset within 2 MiB and demote (copy, zero)
/// nothing. (The extra page matters: a new length that is a multiple of
/// 2 MiB, placed top-down right below the 2 MiB-aligned mapping it moves
/// from, would land aligned by chance, and the test pass with the lab
/// undone.)
fn moves_whole(skip: usize, seed: u8) -> Outcome {
    let len = 2 * HUGE;
    let new_len = 2 * (len - skip) + 4096;
    let a = sys::mmap(0, len, RW, ANON | sys::MAP_ALIGNED_SUPER, -1, 0).map_err(why("mmap"))?;
    let blocker = sys::mmap(a + len, 4096, RW, ANON | sys::MAP_FIXED, -1, 0);
    fill(a, len, seed);
    let zeroed = proc_number("/proc/vmstat\0", "frames_zeroed")?;
    let got = mremap(a + skip, len - skip, new_len, MREMAP_MAYMOVE);
    let after = proc_number("/proc/vmstat\0", "frames_zeroed")?;
    let result = (|| {
        ensure!(
            blocker == Ok(a + len),
            "mmap of the page above: {blocker:?}"
        )?;
        let Ok(b) = got else {
            return fail!("mremap: {got:?}");
        };
        ensure!(
            b % HUGE == (a + skip) % HUGE,
            "moved from {:#x} to {b:#x}: the offset within 2 MiB changed",
            a + skip
        )?;
        ensure!(
            after <= zeroed + TABLES,
            "the move zeroed {} frames: its 2 MiB pages were demoted",
            after - zeroed
        )?;
        check_fill(b, len - skip, seed ^ (skip / 4096) as u8)
    })();
    if let Ok(b) = got {
        let _ = sys::munmap(b, new_len);
    }
    let _ = sys::munmap(a, len + 4096);
    result
}

fn lab5_mremap() -> i32 {
    let mut s = Suite::new("labtest 5 (mremap keeps 2 MiB pages)");
    s.pageos("mremap_moves_two_2mib_pages_as_they_are", || {
        moves_whole(0, 0x51)
    });
    s.pageos("mremap_moves_the_upper_2mib_page_as_it_is", || {
        moves_whole(HUGE, 0x52)
    });
    s.finish()
}
