//! Each CPU's cache of free 4 KiB frames (Linux's per-CPU pagesets, the
//! `pcp` lists; DESIGN §6: "per-CPU caches of order-0 frames, batches of
//! 32").
//!
//! The buddy allocator has one lock for the whole machine. A fault takes
//! one frame and munmap gives frames back one at a time, so with faults
//! running on several CPUs every one of them would meet at that lock, and
//! pay a split or a merge walk for each frame. Instead each CPU keeps free
//! frames of its own: it takes from them without the lock, refills them
//! with `BATCH` frames under one take of the lock when they run out, and
//! gives its `BATCH` coldest back the same way when they overflow.
//!
//! How many it keeps, `high`, is a sixteenth of memory (at most
//! `CAPACITY`, 64 MiB of frames; at least 64): a munmap of 64 MiB on a
//! 1 GiB machine leaves nearly all of its frames here, and the faults of
//! the next round take them back without the lock, where a cache of 64
//! sent all but 64 through the buddy allocator each round (page_fault1
//! rose on one thread and on two: docs/src/frames.md). Linux bounds
//! its lists by the zone's low watermark instead, because its watermark
//! checks do not count them as free; here they are counted free (below),
//! so the bound says only how much one CPU may hold back from the others
//! until an allocation that finds nothing drains every cache.
//!
//! A second list holds frames known to be all zeros (page tables that came
//! back empty when a range was unmapped or a space torn down): the next
//! `alloc_zeroed` takes one of those first and saves the 4 KiB memset.
//!
//! The rules:
//! - **Only the owning CPU touches its lists**, with interrupts masked
//!   (kernel code runs masked here) and never across anything that could
//!   answer a cross-call: a batch moves inside `with_table`, the frame
//!   table's lock held, so a drain that another CPU asks for
//!   (`drain_all`) never finds a list half moved. Another CPU reads only
//!   `count`.
//! - **A cached frame is free**: `phys::free_frames` (MemFree, reclaim's
//!   watermarks, the leak check at init's exit) adds every CPU's `count`,
//!   under the frame table's lock, so a batch in flight is counted once.
//!   (The look after every fault, `free_frames_roughly`, adds them
//!   without it: a batch in flight may count twice or not at all there.)
//! - **A cached frame is allocated in the frame table**, an order-0 block
//!   with one reference, the cache's: taking it from the cache hands that
//!   reference over and writes no metadata, so it needs no lock. Nothing
//!   else holds a reference, so nothing else finds it; the one walk over
//!   other frames' counts, `rejoin_block`, is only asked about a 2 MiB
//!   range that one entry maps whole, whose frames are all referenced.
//! - **Reference counts change without the lock only by a holder**
//!   (`vm::buddy::Counts`): a share, or a put that is not the last. The
//!   last put comes here under the lock, with the count at 1 and the
//!   caller its only holder, so no lock-free call can move it meanwhile,
//!   and a cached frame's count of 1 is the cache's alone.
//! - **Before any allocation fails, every cache is drained** into the
//!   buddy allocator (`drain_all`, a cross-call), so that no frame hides
//!   in another CPU's cache when the OOM killer is asked.

use crate::arch::ipi::{self, CpuSet, Request};
use crate::arch::percpu;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use vm::buddy::{FrameRing, FrameTable};
use vm::frame::Pfn;

/// Frames a CPU keeps at most on its list of unknown contents (Linux's
/// `pcp->high`, here fixed at boot: `high`); a power of two, for the ring.
const CAPACITY: usize = 16384;
/// Frames it keeps at most on its list of zeroed frames (empty page
/// tables: a few per munmap).
const ZEROED_CAPACITY: usize = 64;
/// Frames moved to or from the buddy allocator at once (`pcp->batch`).
const BATCH: usize = 32;

/// The bound on a CPU's list of unknown contents: a sixteenth of memory,
/// between 64 frames and `CAPACITY`. Set once at boot (`set_high`), before
/// any frame is freed.
static HIGH: AtomicUsize = AtomicUsize::new(64);

/// Size the caches for `total_frames` of RAM (phys/boot.rs).
pub(super) fn set_high(total_frames: usize) {
    HIGH.store((total_frames / 16).clamp(64, CAPACITY), Ordering::Relaxed);
}

/// One CPU's cache, in its `PerCpu`.
pub struct FrameCache {
    lists: UnsafeCell<Lists>,
    /// Frames on both lists: what other CPUs may read.
    count: AtomicUsize,
}

/// Each list a ring (vm/src/buddy/ring.rs, tested on the host against a
/// deque): the warmest frame taken first, the coldest given back first.
struct Lists {
    /// Frames whose bytes are unknown (debug builds poisoned them).
    dirty: FrameRing<CAPACITY>,
    /// Frames known to hold only zeros.
    zeroed: FrameRing<ZEROED_CAPACITY>,
}

// SAFETY: `lists` is used only by the CPU that owns the cache, with
// interrupts masked and never re-entered (the rules above); `count` is atomic.
unsafe impl Sync for FrameCache {}

impl FrameCache {
    pub const fn new() -> Self {
        FrameCache {
            lists: UnsafeCell::new(Lists {
                dirty: FrameRing::new(),
                zeroed: FrameRing::new(),
            }),
            count: AtomicUsize::new(0),
        }
    }

    /// Frames this cache holds now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

/// Run `f` on this CPU's lists and publish their new length.
fn with_lists<R>(f: impl FnOnce(&mut Lists) -> R) -> R {
    let cache = &percpu::this().frames;
    // SAFETY: this CPU's cache, used by this CPU alone with interrupts
    // masked; `f` is one of the short list operations below, which call
    // nothing that could run another of them on this CPU.
    let lists = unsafe { &mut *cache.lists.get() };
    let result = f(lists);
    cache
        .count
        .store(lists.dirty.len() + lists.zeroed.len(), Ordering::Relaxed);
    result
}

/// Frames every CPU's cache holds (its lists only change under the frame
/// table's lock when a batch moves, so called under that lock the sum
/// counts each frame once).
pub fn cached_frames() -> usize {
    // Every slot, online or not: the boot CPU caches frames before it is
    // counted online, and a slot never used holds none.
    percpu::all().iter().map(|cpu| cpu.frames.count()).sum()
}

/// A frame known to hold zeros, from this CPU's cache.
pub fn take_zeroed() -> Option<Pfn> {
    with_lists(|l| l.zeroed.pop())
}

/// A frame of unknown contents from this CPU's cache, refilled with a
/// batch from `table` (the caller holds its lock) when empty.
pub fn take(table: &mut FrameTable<'static>) -> Option<Pfn> {
    with_lists(|l| {
        if l.dirty.is_empty() {
            // In one call, a block at a time (buddy/batch.rs).
            l.dirty.refill(BATCH, |pfns| table.alloc_frames(pfns));
        }
        l.dirty.pop().or_else(|| l.zeroed.pop())
    })
}

/// A frame of unknown contents if this CPU's cache has one, without the lock.
pub fn take_cached() -> Option<Pfn> {
    with_lists(|l| l.dirty.pop())
}

/// Keep `pfn`, whose last reference its holder gives up, in this CPU's
/// cache (on the zeroed list if `zeroed` and there is room). A full list
/// first gives its `BATCH` coldest frames back to `table` (the caller
/// holds its lock).
pub fn put(table: &mut FrameTable<'static>, pfn: Pfn, zeroed: bool) {
    let high = HIGH.load(Ordering::Relaxed);
    with_lists(|l| {
        if zeroed && l.zeroed.push(pfn, ZEROED_CAPACITY) {
            return;
        }
        if !l.dirty.push(pfn, high) {
            for cold in l.dirty.take_coldest(BATCH) {
                table.put(cold);
            }
            l.dirty.push(pfn, high);
        }
    })
}

/// Keep `pfn`, whose last reference its holder gives up, in this CPU's
/// cache if there is room; false, and nothing done, if it is full.
pub fn keep(pfn: Pfn) -> bool {
    let high = HIGH.load(Ordering::Relaxed);
    with_lists(|l| l.dirty.push(pfn, high))
}

/// Give every frame of this CPU's cache back to `table` (the caller holds
/// its lock).
pub fn drain(table: &mut FrameTable<'static>) {
    with_lists(|l| {
        while let Some(pfn) = l.dirty.pop().or_else(|| l.zeroed.pop()) {
            table.put(pfn);
        }
    });
}

/// Empty every CPU's cache into the buddy allocator: the last thing an
/// allocation tries before it fails. The other CPUs that hold frames
/// drain their own, by a cross-call (which returns once all have): their
/// lists are theirs alone.
pub fn drain_all() {
    super::free::drain_this_cpu();
    let me = percpu::this().index();
    let mut holders = CpuSet::default();
    for cpu in percpu::online().filter(|c| c.index() != me && c.frames.count() > 0) {
        holders.insert(cpu.index());
    }
    if !holders.is_empty() {
        ipi::call(holders, Request::Run(super::free::drain_this_cpu));
    }
}
