//! Reclaim in the kernel: when to run vm::reclaim, and its state (the
//! clock over every user frame). docs/src/pressure.md, "Reclaim".
//!
//! Three watermarks, as Linux's: after each page fault and each system
//! call, if fewer frames than `low` are free, the page-out daemon
//! (kernel/src/pageout.rs, Linux's kswapd) is woken, and reclaims in
//! batches until `high` are; if fewer than `min` are, the daemon has not
//! kept up and the process that took the last frames reclaims itself
//! (direct reclaim) until `high` are. A fault that finds no frame at all
//! reclaims before the OOM killer is asked (`direct`). The reserve below
//! `min` is what the kernel's own allocations (page tables, the heap, the
//! reverse map) take from while reclaim catches up: a process's pages
//! leave `reserve_of` frames free (phys.rs, `For`).

use crate::vmstat::{self, Paging};
use crate::{phys, swap};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use vm::clock::{Clock, Policy};
use vm::reclaim::{Reclaim, Reclaimed};
use vm::rmap::SpaceId;

/// The clock, made at boot (`init`; None before: `Clock::new` is not const).
static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

/// Make the clock, its links for every frame of RAM, after the heap is up
/// and before any process runs: its one allocation, made while memory is
/// plentiful. It used to be made at the first reclaim and grew with the
/// pages listed, under pressure, when the heap may not be able to grow:
/// a kernel panic (docs/src/pressure.md, "The clock").
pub fn init() {
    let clock = Clock::new(Policy::Clock, phys::frames_end());
    log::info!(
        "clock: {} frames, {} KiB of links",
        clock.frames(),
        clock.frames() * Clock::LINK_BYTES / 1024
    );
    *CLOCK.lock() = Some(clock);
}

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

/// The watermarks, in frames. `min`: 1/32 of RAM (2 MiB of 64 MiB), at
/// least 256 (the heap grows 256 KiB at a time, and only while that is at
/// most half of what is free). `low` and `high` lie a quarter and a half
/// of it above, Linux's proportions (mm/page_alloc.c,
/// `__setup_per_zone_wmarks`).
fn min() -> usize {
    min_of(phys::total_frames())
}

fn min_of(total_frames: usize) -> usize {
    (total_frames / 32).max(256)
}

fn low() -> usize {
    min() + min() / 4
}

pub fn high() -> usize {
    min() + min() / 2
}

/// The kernel's reserve: half of `min`, frames a process's pages never
/// take (phys.rs, `For`), so that the kernel's own allocations find some
/// while reclaim, or the OOM killer, frees more. At least 128: the heap
/// grows by 64 frames only while that is at most half of what is free.
/// (Of the frame table's `total_frames`: phys.rs asks with its lock held.)
pub fn reserve_of(total_frames: usize) -> usize {
    min_of(total_frames) / 2
}

/// Who reclaims: the page-out daemon or an allocation (counted apart).
#[derive(Clone, Copy, Debug)]
enum Reclaimer {
    Daemon,
    Direct,
}

/// After a fault or a system call, with no lock held: below the low
/// watermark wake the daemon; below min reclaim here too.
pub fn balance() {
    if !due() {
        return;
    }
    crate::pageout::wake();
    let free = phys::free_frames();
    if free < min() {
        run(high().saturating_sub(free), Reclaimer::Direct);
    }
}

/// Whether `balance` has work now: wake the daemon, maybe reclaim (a
/// fault resolved without the kernel lock asks, and takes it only then).
pub fn due() -> bool {
    worthwhile() && phys::free_frames_roughly() < low()
}

/// A fault found no frame: reclaim some. Whether any came free (then the
/// fault is taken again; else it is the OOM killer's turn).
pub fn direct() -> bool {
    worthwhile()
        && run(
            high().saturating_sub(phys::free_frames()),
            Reclaimer::Direct,
        )
        .freed
            > 0
}

/// One batch of the page-out daemon: one round of reclaim for what the
/// high watermark is short of. Whether it should run again: it freed
/// some and the high watermark is not reached yet (the program took
/// frames meanwhile, or the round fell short).
///
/// Not Linux's batches of 32 (SWAP_CLUSTER_MAX): a round here walks the
/// clock's lists and every object whatever it wants, so with 12 000
/// shared pages mapped each round of 32 scanned 12 000 pages, and the
/// tmpfs case of `pressuretest` ran the kernel heap out of frames in 2
/// runs of 9 (docs/src/pressure.md, "When it runs").
pub fn background_batch() -> bool {
    let short = high().saturating_sub(phys::free_frames());
    if short == 0 || !worthwhile() {
        return false;
    }
    run(short, Reclaimer::Daemon).freed > 0 && phys::free_frames() < high()
}

/// MADV_PAGEOUT: push the pages of [start, end) in space `space` out now
/// (`Reclaim::page_out`); nothing when reclaim already runs.
pub fn page_out(space: SpaceId, start: u64, end: u64) {
    if let Some(done) = with_reclaim(|r| r.page_out(space, start, end)) {
        vmstat::paging(Paging::SwapOut, done.written);
        vmstat::paging(Paging::LazyFreed, done.lazy_freed);
    }
}

/// Page cache pages on the clock's active and inactive lists.
pub fn lengths() -> (usize, usize) {
    CLOCK.lock().as_ref().map_or((0, 0), Clock::lengths)
}

/// Free up to `want` frames, counted as `who`'s; nothing when reclaim
/// already runs or the address spaces are busy.
///
/// Direct reclaim writes its victims where it is, holding what it holds
/// (the kernel lock, the spaces, the swap cache): the process that
/// allocates waits for its frames anyway. The page-out daemon holds no
/// lock while it waits for the disk (DESIGN §6: nothing that others need
/// is held across a wait): it unmaps its victims and queues their writes
/// under the locks (`Reclaim::unmap_victims`: each victim goes into the
/// swap cache under writeback, where a fault that wants it meanwhile finds
/// it), lets every lock go, the kernel lock too, writes them, and then,
/// holding only the swap cache, frees the frames no one mapped again
/// (`SwapCache::written`). Meanwhile the other CPUs run system calls and
/// faults, reclaim directly if they must, and read swap (waiting for the
/// disks behind the daemon's transfer, block/mod.rs).
fn run(want: usize, who: Reclaimer) -> Reclaimed {
    let lazy_frees = LAZY_FREES.load(Ordering::Acquire);
    let done = match who {
        Reclaimer::Direct => with_reclaim(|r| r.reclaim(want)),
        Reclaimer::Daemon => with_reclaim(|r| r.unmap_victims(want)).map(|(mut done, wb)| {
            if !wb.is_empty() {
                let runs = wb.runs();
                let results = crate::kernel_lock::without(|| swap::write_runs(runs));
                let written = swap::with_cache(|c| {
                    c.written(&mut swap::Device, &mut phys::KernelPhys, results)
                });
                done.add_written(written);
            }
            done
        }),
    };
    let Some(done) = done else {
        return Reclaimed::default();
    };
    vmstat::paging(Paging::SwapOut, done.written);
    vmstat::paging(Paging::LazyFreed, done.lazy_freed);
    log::debug!(
        "reclaim ({who:?}): want {want}, free {}, {done:?}",
        phys::free_frames()
    );
    // A round that ran and freed nothing found no lazily freeable page of
    // the MADV_FREE calls before it (a busy round says nothing).
    if done.freed == 0 && !crate::swap::active() {
        LAZY_FREES_SEEN.fetch_max(lazy_frees, Ordering::AcqRel);
    }
    let (scan, steal) = match who {
        Reclaimer::Daemon => (Paging::ScanKswapd, Paging::StealKswapd),
        Reclaimer::Direct => (Paging::ScanDirect, Paging::StealDirect),
    };
    vmstat::paging(scan, done.scanned);
    vmstat::paging(steal, done.freed);
    done
}

/// Run `f` on the machine's reclaim state; None when reclaim already
/// runs or the address spaces are busy (both only try-locked: reclaim
/// meets them against the lock order).
fn with_reclaim<R>(f: impl FnOnce(&mut Reclaim<'_, crate::pmap::Pmap>) -> R) -> Option<R> {
    let mut clock = CLOCK.try_lock()?;
    // None only before boot made it, when there is nothing to reclaim.
    let clock = clock.as_mut()?;
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
    Some(done)
}
