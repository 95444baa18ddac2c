//! 2 MiB blocks in an object: how shared anonymous memory and ramfs files
//! (memfds included) hold the pages a shared mapping can map with one
//! level-2 entry (Linux's shmem huge pages, FreeBSD's "an object that is
//! already backed by large pages in RAM").
//!
//! A **run** is an aligned group of 512 pages of the object: run `r` is
//! pages `512 r .. 512 r + 512`. The first fault of a huge-eligible shared
//! mapping in a run with no page yet (`vm_fault/huge_object.rs`) asks for
//! a 2 MiB block (`huge_block`): a buddy block of order 9, split at once
//! into 512 frames with counts of their own (`PhysMem::split_block`, the
//! metadata only), which become the run's 512 pages. So the object keeps
//! one reference per 4 KiB page, as for any page, and everything else —
//! `read_at`, `write_at`, `page`, fault-around, a private copy — works per
//! 4 KiB frame of the block without knowing it is one. A 2 MiB entry of
//! the block holds one reference on each of its 512 frames (what
//! `PhysMem::get_block` takes for a block that is split).
//!
//! The run stays a block (`Inner::blocks`) while all its 512 pages are
//! there in order. Taking any page out (truncate, MADV_REMOVE, page-out
//! to swap once no 2 MiB entry maps it: `swap.rs`) breaks it
//! (`break_blocks`): from then on the run is 4 KiB pages, the ones taken
//! out are freed one by one, and a fault maps the rest with 4 KiB entries.
//!
//! Counters, Linux 6.1's names: `ShmemHugePages` (runs that are blocks,
//! `shmem_huge_frames`) and `ShmemPmdMapped` (blocks at least one 2 MiB
//! entry maps, `shmem_pmd_mapped_frames`).

use super::{Inner, ObjectRef};
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, PhysMem};
use core::sync::atomic::{AtomicU64, Ordering};

/// Runs held as 2 MiB blocks, in every object (/proc/meminfo ShmemHugePages).
static BLOCKS: AtomicU64 = AtomicU64::new(0);
/// Runs that some 2 MiB entry maps (ShmemPmdMapped: a run mapped by two
/// spaces counts once, as Linux counts a page).
static PMD_MAPPED: AtomicU64 = AtomicU64::new(0);

/// The frames of every object's 2 MiB blocks (ShmemHugePages).
pub fn shmem_huge_frames() -> u64 {
    BLOCKS.load(Ordering::Relaxed) * BLOCK_FRAMES
}

/// The frames of the object blocks mapped by 2 MiB entries (ShmemPmdMapped).
pub fn shmem_pmd_mapped_frames() -> u64 {
    PMD_MAPPED.load(Ordering::Relaxed) * BLOCK_FRAMES
}

/// An object with `blocks` blocks went away.
pub(super) fn forget_blocks(blocks: usize) {
    BLOCKS.fetch_sub(blocks as u64, Ordering::Relaxed);
}

/// What `huge_block` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block's first frame (2 MiB aligned).
    pub head: Pfn,
    /// It was allocated for this call (Linux's thp_file_alloc).
    pub allocated: bool,
}

impl ObjectRef {
    /// The 2 MiB block holding run `run`, with the reference a 2 MiB entry
    /// holds (`PhysMem::get_block`). A run with no page yet gets a fresh
    /// zeroed block if `allocate` (the policy allows it). None, and
    /// nothing taken, when the run is not one block (some of its pages are
    /// 4 KiB frames of their own, or it reaches past the end of a file) or
    /// no block is free: the caller maps 4 KiB pages.
    pub fn huge_block(&self, run: u64, allocate: bool, phys: &mut dyn PhysMem) -> Option<Block> {
        let first = run.checked_mul(BLOCK_FRAMES)?;
        let last = first.checked_add(BLOCK_FRAMES - 1)?;
        let mut inner = self.0.inner.lock();
        if !inner.holds(last) {
            return None;
        }
        if inner.blocks.contains(&run) {
            let head = inner.pages[&first];
            phys.get_block(head);
            return Some(Block {
                head,
                allocated: false,
            });
        }
        // A run with a page out in swap is not empty: it maps 4 KiB pages.
        let range = first..first + BLOCK_FRAMES;
        let empty = inner.pages.range(range.clone()).next().is_none()
            && inner.swapped.range(range).next().is_none();
        if !allocate || !empty {
            return None;
        }
        let head = phys.alloc_huge_zeroed()?;
        // The object's reference on each page, as for a 4 KiB page.
        phys.split_block(head);
        for i in 0..BLOCK_FRAMES {
            inner.pages.insert(first + i, Pfn(head.0 + i));
        }
        inner.blocks.insert(run);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        phys.get_block(head);
        Some(Block {
            head,
            allocated: true,
        })
    }

    /// A 2 MiB entry of run `run` was made (`mapped`) or went (unmapped,
    /// split into 4 KiB entries) in some space.
    pub fn note_pmd(&self, run: u64, mapped: bool) {
        let mut inner = self.0.inner.lock();
        let count = inner.pmd_maps.entry(run).or_insert(0);
        if mapped {
            *count += 1;
            if *count == 1 {
                PMD_MAPPED.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        debug_assert!(*count > 0, "ObjectRef::note_pmd: run {run} not mapped");
        *count = count.saturating_sub(1);
        if *count == 0 {
            inner.pmd_maps.remove(&run);
            PMD_MAPPED.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// How many runs are 2 MiB blocks now.
    pub fn huge_blocks(&self) -> usize {
        self.0.inner.lock().blocks.len()
    }

    /// How many 2 MiB entries map run `run`, in every space.
    pub fn pmd_maps(&self, run: u64) -> u32 {
        self.0.inner.lock().pmd_maps.get(&run).copied().unwrap_or(0)
    }
}

impl Inner {
    /// Pages [first, last) are about to leave: the runs they are in are
    /// blocks no more (their other pages stay, as 4 KiB pages).
    pub(super) fn break_blocks(&mut self, first: u64, last: u64) {
        if first >= last || self.blocks.is_empty() {
            return;
        }
        let runs = first / BLOCK_FRAMES..=(last - 1) / BLOCK_FRAMES;
        let broken: alloc::vec::Vec<u64> = self.blocks.range(runs).copied().collect();
        for run in broken {
            self.blocks.remove(&run);
            BLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
