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
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use vm::clock::{Clock, Policy};
use vm::reclaim::{Reclaim, Reclaimed};
use vm::rmap::SpaceId;

/// The clock (None until first used: `Clock::new` is not const).
static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

/// MADV_FREE calls so far, and as many of them as the last round that
/// ran without swap and freed nothing had seen. Without swap, lazily
/// freeable pages are all reclaim can take, so it runs only while the two
/// differ: a MADV_FREE since that round may have left some. (Counts, not
/// a flag: a MADV_FREE during a fruitless round is not lost by its end.)
static LAZY_FREES: AtomicU64 = AtomicU64::new(0);
static LAZY_FREES_SEEN: AtomicU64 = AtomicU64::new(0);

/// MADV_FREE marked pages: reclaim has something to take even without swap.
pub fn note_lazy_free() {
    LAZY_FREES.fetch_add(1, Ordering::AcqRel);
}

/// Whether reclaim can free anything: there is swap, or lazily freeable
/// pages may be left.
fn worthwhile() -> bool {
    crate::swap::active()
        || LAZY_FREES.load(Ordering::Acquire) != LAZY_FREES_SEEN.load(Ordering::Acquire)
}

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
    if due() {
        run(high().saturating_sub(phys::free_frames()));
    }
}

/// Whether `balance` would reclaim now (a fault resolved without the
/// kernel lock asks, and takes it only then).
pub fn due() -> bool {
    worthwhile() && phys::free_frames() < low()
}

/// A fault found no frame: reclaim some. Whether any came free (then the
/// fault is taken again; else it is the OOM killer's turn).
pub fn direct() -> bool {
    worthwhile() && run(high().saturating_sub(phys::free_frames())).freed > 0
}

/// MADV_PAGEOUT: push the pages of [start, end) in space `space` out now
/// (`Reclaim::page_out`); nothing when reclaim already runs.
pub fn page_out(space: SpaceId, start: u64, end: u64) {
    let _ = with_reclaim(|r| r.page_out(space, start, end));
}

/// Page cache pages on the clock's active and inactive lists.
pub fn lengths() -> (usize, usize) {
    CLOCK.lock().as_ref().map_or((0, 0), Clock::lengths)
}

/// Free up to `want` frames; nothing when reclaim already runs or the
/// address spaces are busy.
fn run(want: usize) -> Reclaimed {
    let lazy_frees = LAZY_FREES.load(Ordering::Acquire);
    let Some(done) = with_reclaim(|r| r.reclaim(want)) else {
        return Reclaimed::default();
    };
    log::debug!(
        "reclaim: want {want}, free {}, {done:?}",
        phys::free_frames()
    );
    // A round that ran and freed nothing found no lazily freeable page of
    // the MADV_FREE calls before it (a busy round says nothing).
    if done.freed == 0 && !crate::swap::active() {
        LAZY_FREES_SEEN.fetch_max(lazy_frees, Ordering::AcqRel);
    }
    vmstat::paging(Paging::ScanDirect, done.scanned);
    vmstat::paging(Paging::StealDirect, done.freed);
    done
}

/// Run `f` on the machine's reclaim state and count what it wrote and
/// dropped; None when reclaim already runs or the address spaces are
/// busy (both only try-locked: reclaim meets them against the lock order).
fn with_reclaim(
    f: impl FnOnce(&mut Reclaim<'_, crate::pmap::Pmap>) -> Reclaimed,
) -> Option<Reclaimed> {
    let mut clock = CLOCK.try_lock()?;
    let clock = clock.get_or_insert_with(|| Clock::new(Policy::Clock));
    let done = crate::proc::try_with_spaces(|spaces| {
        crate::swap::with_cache(|cache| {
            f(&mut Reclaim {
                clock,
                cache,
                dev: &mut crate::swap::Device,
                phys: &mut phys::KernelPhys,
                spaces,
            })
        })
    })?;
    vmstat::paging(Paging::SwapOut, done.written);
    vmstat::paging(Paging::LazyFreed, done.lazy_freed);
    Some(done)
}
