//! An object's pages in swap: how shared anonymous memory and ramfs files
//! (tmpfs, memfds) leave RAM under pressure and come back (Linux's
//! shmem_writepage and shmem_swapin_folio; docs/src/pressure.md, "Pages of
//! objects").
//!
//! A page out in swap is an entry of `Inner::swapped`: its slot, holding
//! one count, in place of the frame. No PTE holds an object's slot (as on
//! Linux, whose shmem PTEs are cleared, not made swap entries): reclaim
//! unmaps the page from every PTE first (`reclaim/objects.rs`), and every
//! mapper's next fault, like read() and write(), asks the object, which
//! reads the slot back through the swap cache under its own lock. So one
//! slot gives one frame for every mapper: the first to come back puts the
//! frame in `pages` and lets go of the slot (the object's count, and with
//! it the swap cache's entry), and everyone after finds the frame.
//!
//! The lock order (DESIGN §6): the object's lock comes before the swap
//! cache's (a swap-in here takes the cache with the object held), so
//! reclaim, which holds the swap cache from the start, only try-locks an
//! object (`scan`, `page_out`) and skips it when busy.

use super::{Inner, ObjectRef, PageError};
use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, PhysMem};
use crate::swap_cache::{SwapCache, SwapDevice, SwapInError, Writeback};
use crate::swap_map::Slot;
use alloc::vec::Vec;

/// A page `scan` offers reclaim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedPage {
    pub index: u64,
    pub pfn: Pfn,
    /// Its run is a 2 MiB block: it must be split (and broken) first.
    pub in_block: bool,
}

/// What one `page_out` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectPageOut {
    /// Pages given a slot and sent to the swap cache on their way out.
    pub queued: u64,
    /// No free slot was left.
    pub swap_full: bool,
}

impl PageError {
    /// The errno read() and write() give for it.
    pub fn errno(self) -> Errno {
        match self {
            PageError::PastEof | PageError::Io => Errno::EIO,
            PageError::NoMemory => Errno::ENOMEM,
        }
    }
}

impl ObjectRef {
    /// Up to `count` of the pages in memory, from where the last scan
    /// stopped on (round the object, as a clock hand goes round); None
    /// when the object is busy.
    pub fn scan(&self, count: usize) -> Option<Vec<ScannedPage>> {
        let mut inner = self.0.inner.try_lock()?;
        let hand = inner.hand;
        let pages: Vec<ScannedPage> = inner
            .pages
            .range(hand..)
            .chain(inner.pages.range(..hand))
            .take(count)
            .map(|(&index, &pfn)| ScannedPage {
                index,
                pfn,
                in_block: inner.blocks.contains(&(index / BLOCK_FRAMES)),
            })
            .collect();
        if let Some(last) = pages.last() {
            inner.hand = last.index + 1;
        }
        Some(pages)
    }

    /// The head frame of run `run` if it is a 2 MiB block (None too when
    /// the object is busy).
    pub fn block_head(&self, run: u64) -> Option<Pfn> {
        let inner = self.0.inner.try_lock()?;
        inner
            .blocks
            .contains(&run)
            .then(|| inner.pages[&(run * BLOCK_FRAMES)])
    }

    /// Make run `run` 4 KiB pages for page-out, if no 2 MiB entry maps it
    /// any more (the caller split them); whether it is 4 KiB pages now.
    pub fn break_block_for_page_out(&self, run: u64) -> bool {
        let Some(mut inner) = self.0.inner.try_lock() else {
            return false;
        };
        if inner.pmd_maps.contains_key(&run) {
            return false;
        }
        let first = run * BLOCK_FRAMES;
        inner.break_blocks(first, first + BLOCK_FRAMES);
        true
    }

    /// Page-out of `victims` (each a page and the frame it had when the
    /// caller unmapped it from every PTE): each that still has that frame,
    /// which nothing but the object holds now, not in a 2 MiB block, gets
    /// a slot, which the object holds from then on in place of the frame;
    /// the frame (the object's reference) goes to the swap cache under
    /// writeback, in `wb`, for the caller to write
    /// (`SwapCache::written` frees it). Whoever asks for the page before
    /// that finds it in the cache through its slot. None when the object
    /// is busy.
    pub fn page_out(
        &self,
        victims: &[(u64, Pfn)],
        phys: &mut dyn PhysMem,
        dev: &mut dyn SwapDevice,
        cache: &mut SwapCache,
        wb: &mut Writeback,
    ) -> Option<ObjectPageOut> {
        let mut inner = self.0.inner.try_lock()?;
        let mut done = ObjectPageOut::default();
        for &(index, pfn) in victims {
            let still = inner.pages.get(&index) == Some(&pfn)
                && phys.refcount(pfn) == 1
                && !inner.blocks.contains(&(index / BLOCK_FRAMES));
            if !still {
                continue;
            }
            let Some(slot) = dev.alloc() else {
                done.swap_full = true;
                break;
            };
            if !cache.start_writeback(dev, slot, pfn, wb) {
                dev.free(slot);
                continue;
            }
            inner.pages.remove(&index);
            inner.swapped.insert(index, slot);
            done.queued += 1;
        }
        Some(done)
    }

    /// `resident_pages`, or None when the object is busy (reclaim).
    pub fn try_resident_pages(&self) -> Option<u64> {
        Some(self.0.inner.try_lock()?.pages.len() as u64)
    }

    /// Pages out in swap (the tests look).
    pub fn swapped_pages(&self) -> u64 {
        self.0.inner.lock().swapped.len() as u64
    }

    /// The slot of page `index` if it is out in swap.
    pub fn slot_at(&self, index: u64) -> Option<Slot> {
        self.0.inner.lock().swapped.get(&index).copied()
    }
}

impl Inner {
    /// The frame of page `index` (the object's reference; none for a
    /// hole), read back from its slot through the swap cache if it is out
    /// (Linux's shmem_swapin_folio): the frame becomes the page again and
    /// the slot goes, as it would be stale after the next store.
    pub(super) fn swap_in(
        &mut self,
        index: u64,
        phys: &mut dyn PhysMem,
    ) -> Result<Option<Pfn>, PageError> {
        self.swap_in_counted(index, phys).map(|(pfn, _)| pfn)
    }

    /// `swap_in`, and how many pages it read from the disk (the page and
    /// its read-ahead; 0 when it was in memory or in the swap cache).
    pub(super) fn swap_in_counted(
        &mut self,
        index: u64,
        phys: &mut dyn PhysMem,
    ) -> Result<(Option<Pfn>, u32), PageError> {
        if let Some(&pfn) = self.pages.get(&index) {
            return Ok((Some(pfn), 0));
        }
        let Some(&slot) = self.swapped.get(&index) else {
            return Ok((None, 0));
        };
        let got = phys.swap_in(slot).map_err(|e| match e {
            SwapInError::NoMemory => PageError::NoMemory,
            SwapInError::Io => PageError::Io,
        })?;
        // The page is written in place through every mapping and by
        // write(): its slot would be stale, so it leaves the cache. One
        // still on its way to the disk cannot leave yet (the disk may be
        // reading the frame): the object takes a copy, and the cached frame
        // goes when its write is done.
        let pfn = if got.writeback {
            let copy = phys.copy(got.pfn);
            phys.put(got.pfn);
            copy.ok_or(PageError::NoMemory)?
        } else {
            got.pfn
        };
        self.swapped.remove(&index);
        self.pages.insert(index, pfn);
        phys.swap_release(slot);
        phys.free_swap(pfn);
        Ok((Some(pfn), got.read))
    }
}
