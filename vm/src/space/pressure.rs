//! The madvise hints about memory pressure (docs/src/pressure.md,
//! "madvise under pressure"): MADV_FREE marks pages that reclaim may drop
//! instead of writing them to swap, and MADV_PAGEOUT finds the pages that
//! reclaim is to push out now (`Reclaim::page_out` does it).

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::Sharing;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{Backing, HUGE_PAGE, VmaFlags};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// MADV_FREE on [start, end), which the caller checked is mapped and
    /// not locked. Only private anonymous memory may be freed lazily
    /// (Linux's madvise_free_single_vma: EINVAL for anything else, nothing
    /// done). Pages out in swap go now, their slots freed (they read back
    /// as zeros, as on Linux); each present page this mapping alone holds
    /// is marked lazily freeable (`Pmap::mark_lazy_free`): until memory
    /// runs short it keeps its data, a write cancels the mark, and reclaim
    /// drops a page still marked without writing it. A page shared with a
    /// fork or the swap cache keeps its data. Returns the pages marked.
    pub fn lazy_free(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<u64, Errno> {
        if self
            .map
            .range(start, end)
            .any(|v| v.sharing != Sharing::Private || matches!(v.backing, Backing::Object { .. }))
        {
            return Err(Errno::EINVAL);
        }
        if phys.swap_used() {
            self.pmap
                .clear_swap(start, end, &mut |_, slot| phys.swap_release(slot));
        }
        let zero = phys.zero_frame();
        let mut marked = 0;
        for (s, e) in self.small_page_ranges(phys, start, end) {
            marked += self.pmap.mark_lazy_free(s, e, &mut |_, m| {
                m.pfn != zero && phys.refcount(m.pfn) == 1
            });
        }
        Ok(marked)
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

    /// MADV_PAGEOUT on [start, end): after its checks, the addresses of
    /// the pages reclaim may push out now, the present 4 KiB pages of
    /// private memory that this mapping alone holds (Linux leaves a page
    /// mapped by other processes alone too). A transparent 2 MiB page in
    /// the range is split in place first, as Linux splits a THP it pages out.
    pub fn pageout_candidates(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<Vec<u64>, Errno> {
        self.may_page_out(start, end)?;
        let zero = phys.zero_frame();
        let mut vas = Vec::new();
        for (s, e) in self.small_page_ranges(phys, start, end) {
            self.pmap.visit(s, e, &mut |va, m| {
                if !m.huge && m.pfn != zero && phys.refcount(m.pfn) == 1 {
                    vas.push(va);
                }
            });
        }
        Ok(vas)
    }

    /// The parts of [start, end) in private VMAs that reclaim may take from
    /// (not MAP_HUGETLB or MADV_HUGEPAGE), with the transparent 2 MiB pages
    /// that overlap them split in place. A split that finds no frame for
    /// its table leaves that page whole (and out of the hint's reach).
    fn small_page_ranges(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Vec<(u64, u64)> {
        let ranges: Vec<(u64, u64)> = self
            .map
            .range(start, end)
            .filter(|v| v.sharing == Sharing::Private && !v.flags.contains(VmaFlags::HUGE))
            .map(|v| (v.start.max(start), v.end.min(end)))
            .collect();
        for &(s, e) in &ranges {
            let mut base = s & !(HUGE_PAGE - 1);
            while base < e {
                if self.pmap.query(base).is_some_and(|m| m.huge) {
                    let _ = self.split_huge(phys, base);
                }
                base += HUGE_PAGE;
            }
        }
        ranges
    }
}
