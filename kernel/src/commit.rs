//! Commit accounting, as Linux's vm.overcommit_memory (mm/util.c,
//! `__vm_enough_memory`; docs/src/pressure.md, "Overcommit").
//!
//! Private writable memory may need a frame of its own for every page, one
//! day. The kernel keeps a count of those pages (`Committed_AS`: every
//! private writable mapping, the heap, grown stacks, fork's copies) and,
//! depending on the mode, refuses a new promise at mmap time (ENOMEM)
//! rather than find out in a page fault that it cannot keep it:
//!
//! | mode | name | a new charge of n pages is refused when |
//! | --- | --- | --- |
//! | 0 | heuristic (the default) | n alone exceeds RAM + swap: only a request that could never fit |
//! | 1 | always | never |
//! | 2 | never overcommit | the committed total would reach CommitLimit = RAM × ratio / 100 + swap |
//!
//! MAP_NORESERVE asks for no charge; Linux honours it in modes 0 and 1 only
//! (`mmap` drops the flag in mode 2). The mode and the ratio (default 50)
//! come from the kernel command line (`sysctl.vm.overcommit_memory=2`,
//! `sysctl.vm.overcommit_ratio=80`) or a write to /proc/sys/vm. Linux's mode
//! 2 also keeps back a reserve for root and 1/32 of the caller's size
//! (admin_reserve_kbytes, user_reserve_kbytes); pageos does not, so its
//! mode 2 refuses a few megabytes later than Linux would.

use crate::phys;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// vm.overcommit_memory: 0, 1 or 2.
static MODE: AtomicUsize = AtomicUsize::new(HEURISTIC);
/// vm.overcommit_ratio: the percentage of RAM mode 2 lets be committed.
static RATIO: AtomicU64 = AtomicU64::new(50);
/// Pages charged now (Committed_AS).
static COMMITTED: AtomicU64 = AtomicU64::new(0);

pub const HEURISTIC: usize = 0;
pub const ALWAYS: usize = 1;
pub const NEVER: usize = 2;

pub fn mode() -> usize {
    MODE.load(Ordering::Relaxed)
}

/// Set vm.overcommit_memory; false (nothing changed) for a mode that is not 0, 1 or 2.
pub fn set_mode(mode: usize) -> bool {
    let valid = mode <= NEVER;
    if valid {
        MODE.store(mode, Ordering::Relaxed);
    }
    valid
}

pub fn ratio() -> u64 {
    RATIO.load(Ordering::Relaxed)
}

/// Set vm.overcommit_ratio (Linux takes any non-negative percentage).
pub fn set_ratio(ratio: u64) {
    RATIO.store(ratio, Ordering::Relaxed);
}

/// Whether MAP_NORESERVE means what it says (modes 0 and 1).
pub fn honours_noreserve() -> bool {
    mode() != NEVER
}

/// The swap device's slots, in pages (0 without swap).
fn swap_pages() -> u64 {
    crate::swap::totals().0
}

/// CommitLimit in pages: RAM × ratio / 100 + swap (shown in every mode;
/// only mode 2 enforces it).
pub fn limit() -> u64 {
    phys::total_frames() as u64 * ratio() / 100 + swap_pages()
}

/// Committed_AS in pages.
pub fn committed() -> u64 {
    COMMITTED.load(Ordering::Relaxed)
}

/// Charge `pages`: true, or false and no charge when the mode refuses.
pub fn charge(pages: u64) -> bool {
    if pages == 0 {
        return true;
    }
    let total = COMMITTED.fetch_add(pages, Ordering::Relaxed) + pages;
    let allowed = match mode() {
        ALWAYS => true,
        HEURISTIC => pages <= phys::total_frames() as u64 + swap_pages(),
        _ => total < limit(),
    };
    if !allowed {
        COMMITTED.fetch_sub(pages, Ordering::Relaxed);
    }
    allowed
}

pub fn uncharge(pages: u64) {
    COMMITTED.fetch_sub(pages, Ordering::Relaxed);
}
