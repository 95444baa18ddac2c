//! The madvise hints about memory pressure (docs/src/pressure.md,
//! "madvise under pressure"): MADV_FREE marks pages that reclaim may drop
//! instead of writing them to swap, and MADV_PAGEOUT finds, a batch at a
//! time, the pages reclaim is to push out now (`Reclaim::page_out` does it).

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::Sharing;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{Backing, HUGE_PAGE, Vma, VmaFlags};
use alloc::vec::Vec;

/// MADV_PAGEOUT takes at most this many pages from a space at a time: its
/// frames wait unmapped for one write, and the list is all it allocates,
/// however large the range.
pub const PAGEOUT_BATCH: usize = 64;

/// The address space one look of `pageout_batch` walks at first (one
/// level-1 table); it doubles while the walk finds nothing, up to what one
/// level-4 entry maps, so an empty terabyte costs some 20 walks.
const FIRST_WINDOW: u64 = HUGE_PAGE;
const LAST_WINDOW: u64 = 1 << 39;

/// Whether reclaim may take pages of `vma` (the rule of `vm/src/reclaim.rs`):
/// private, not locked, not asking for 2 MiB pages.
fn reclaimable(vma: &Vma) -> bool {
    vma.sharing == Sharing::Private && !vma.flags.intersects(VmaFlags::LOCKED | VmaFlags::HUGE)
}

impl<P: Pmap> AddressSpace<P> {
    /// MADV_FREE on [start, end), which the caller checked is mapped.
    /// Only private anonymous memory that is not locked may be freed
    /// lazily (Linux's madvise_dontneed_free_valid_vma and
    /// madvise_free_single_vma: EINVAL for anything else, nothing done).
    ///
    /// Pages out in swap go now, their slots freed (they read back as
    /// zeros, as on Linux). A transparent 2 MiB page in the range is split
    /// in place (Linux splits one the range covers in part; pageos also one
    /// it covers whole, since reclaim takes 4 KiB pages only); a split that
    /// finds no frame for its table leaves the page whole and unmarked.
    /// Then each present page this mapping alone holds is marked lazily
    /// freeable (`Pmap::mark_lazy_free`): it keeps its data until memory
    /// runs short, a write cancels the mark, and reclaim drops a page
    /// still marked without writing it. A page shared with a fork or the
    /// swap cache keeps its data, as on Linux, and so does every page of a
    /// VMA that asked for 2 MiB pages (reclaim never takes those). Returns
    /// how many pages were marked.
    pub fn lazy_free(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<u64, Errno> {
        let refused = |v: &Vma| {
            v.sharing != Sharing::Private
                || matches!(v.backing, Backing::Object { .. })
                || v.flags.contains(VmaFlags::LOCKED)
        };
        if self.map.range(start, end).any(refused) {
            return Err(Errno::EINVAL);
        }
        if phys.swap_used() {
            self.pmap
                .clear_swap(start, end, &mut |_, slot| phys.swap_release(slot));
        }
        // The 2 MiB pages: at most one per 2 MiB of RAM, so the list is
        // bounded by memory, not by the range.
        let mut blocks = Vec::new();
        let first = start & !(HUGE_PAGE - 1);
        if self.pmap.query(first).is_some_and(|m| m.huge) {
            blocks.push(first);
        }
        self.pmap.visit(start, end, &mut |va, m| {
            if m.huge && va != first {
                blocks.push(va);
            }
        });
        for base in blocks {
            if self.map.find(base.max(start)).is_some_and(reclaimable) {
                let _ = self.split_huge(phys, base);
            }
        }
        let zero = phys.zero_frame();
        // A page this mapping alone maps that the swap cache keeps (read
        // back and not written) leaves the cache first, as Linux frees its
        // swap (madvise_free_pte_range); one a swap PTE still wants stays.
        // (Looked at apart from the marking walk: the cache is not taken
        // inside a page-table walk.)
        let map = &self.map;
        if phys.swap_used() {
            let mut cached = Vec::new();
            self.pmap.visit(start, end, &mut |va, m| {
                if !m.huge && phys.refcount(m.pfn) == 2 && map.find(va).is_some_and(reclaimable) {
                    cached.push(m.pfn);
                }
            });
            for pfn in cached {
                phys.free_swap(pfn);
            }
        }
        Ok(self.pmap.mark_lazy_free(start, end, &mut |va, m| {
            m.pfn != zero && phys.refcount(m.pfn) == 1 && map.find(va).is_some_and(reclaimable)
        }))
    }

    /// MADV_PAGEOUT's checks: the range is mapped (ENOMEM) and holds no
    /// locked page (Linux's can_madv_lru_vma: EINVAL).
    pub(super) fn may_page_out(&self, start: u64, end: u64) -> Result<(), Errno> {
        self.covered(start, end)?;
        if self
            .map
            .range(start, end)
            .any(|v| v.flags.contains(VmaFlags::LOCKED))
        {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// One batch of MADV_PAGEOUT's walk over [start, end): the addresses of
    /// at most `PAGEOUT_BATCH` present 4 KiB pages of VMAs reclaim may take
    /// from, lowest first, pushed on `out` (the zero page is nobody's to
    /// push out). Returns where the next batch starts (`end`: the walk is
    /// done). A transparent 2 MiB page comes alone, at its aligned address,
    /// with the next batch after it: the caller splits it, as Linux splits
    /// a THP it pages out, and asks again from there.
    pub fn pageout_batch(
        &mut self,
        phys: &dyn PhysMem,
        start: u64,
        end: u64,
        out: &mut Vec<u64>,
    ) -> u64 {
        let zero = phys.zero_frame();
        let map = &self.map;
        let mut at = start;
        let mut window = FIRST_WINDOW;
        while at < end {
            // A 2 MiB page across `at` (the walk may not report it).
            let block = at & !(HUGE_PAGE - 1);
            if self.pmap.query(block).is_some_and(|m| m.huge)
                && map.find(at).is_some_and(reclaimable)
            {
                out.push(block);
                return block + HUGE_PAGE;
            }
            let to = at.saturating_add(window).min(end);
            // Where this batch stops, once it does (the walk itself goes on
            // to the window's end, changing nothing).
            let mut stop = None;
            self.pmap.visit(at, to, &mut |va, m| {
                if stop.is_some() || va < at || !map.find(va).is_some_and(reclaimable) {
                    return;
                }
                if m.huge {
                    stop = Some(if out.is_empty() {
                        out.push(va);
                        va + HUGE_PAGE
                    } else {
                        va
                    });
                } else if out.len() == PAGEOUT_BATCH {
                    stop = Some(va);
                } else if m.pfn != zero {
                    out.push(va);
                }
            });
            if let Some(next) = stop {
                return next;
            }
            if !out.is_empty() {
                return to;
            }
            at = to;
            window = (window * 2).min(LAST_WINDOW);
        }
        end
    }
}
