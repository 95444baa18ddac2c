//! Reclaim in the kernel: when to run vm::reclaim, and its state (the
//! clock over every user frame). docs/src/pressure.md, "Reclaim".
//!
//! Free frames are kept above a low watermark: after each page fault and
//! each system call, if fewer are free than `low`, reclaim runs until
//! `high` are (Linux's kswapd does this from a thread; here the process
//! that took the last frames pays, which Linux calls direct reclaim). A
//! fault that finds no frame at all reclaims before the OOM killer is
//! asked (`direct`). The reserve between 0 and `low` is what the kernel's
//! own allocations (page tables, the heap, the reverse map) take from
//! while reclaim catches up.

use crate::phys;
use crate::vmstat::{self, Paging};
use spin::Mutex;
use vm::clock::{Clock, Policy};
use vm::reclaim::{Reclaim, Reclaimed};

/// The clock (None until first used: `Clock::new` is not const).
static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

/// The watermarks, in frames: 1/32 of RAM (2 MiB of 64 MiB), at least
/// 256 (the heap grows 256 KiB at a time, and only while that is at most
/// half of what is free).
fn low() -> usize {
    (phys::total_frames() / 32).max(256)
}

pub fn high() -> usize {
    low() + low() / 2
}

/// Reclaim if free frames are below the low watermark (after a fault or a
/// system call, with no lock held).
pub fn balance() {
    if !crate::swap::active() {
        return;
    }
    let free = phys::free_frames();
    if free < low() {
        run(high() - free);
    }
}

/// A fault found no frame: reclaim some. Whether any came free (then the
/// fault is taken again; else it is the OOM killer's turn).
pub fn direct() -> bool {
    crate::swap::active() && run(high().saturating_sub(phys::free_frames())).freed > 0
}

/// Page cache pages on the clock's active and inactive lists.
pub fn lengths() -> (usize, usize) {
    CLOCK.lock().as_ref().map_or((0, 0), Clock::lengths)
}

/// Free up to `want` frames; nothing when reclaim already runs or the
/// address spaces are busy.
fn run(want: usize) -> Reclaimed {
    let Some(mut clock) = CLOCK.try_lock() else {
        return Reclaimed::default();
    };
    let clock = clock.get_or_insert_with(|| Clock::new(Policy::Clock));
    let done = crate::proc::try_with_spaces(|spaces| {
        crate::swap::with_cache(|cache| {
            Reclaim {
                clock,
                cache,
                dev: &mut crate::swap::Device,
                phys: &mut phys::KernelPhys,
                spaces,
            }
            .reclaim(want)
        })
    })
    .unwrap_or_default();
    log::debug!(
        "reclaim: want {want}, free {}, {done:?}",
        phys::free_frames()
    );
    vmstat::paging(Paging::ScanDirect, done.scanned);
    vmstat::paging(Paging::StealDirect, done.freed);
    vmstat::paging(Paging::SwapOut, done.written);
    done
}
