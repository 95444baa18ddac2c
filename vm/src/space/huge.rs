//! 2 MiB pages: splitting one when a range operation ends inside it or a
//! write breaks copy-on-write on it (filling one is the fault path's,
//! `vm_fault.rs`).

use super::AddressSpace;
use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{HUGE_PAGE, PAGE};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// Split the 2 MiB pages that straddle `start` or `end`, so that a range
    /// operation on [start, end) touches only whole pages.
    pub(super) fn split_huge_edges(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        self.split_huge_at(phys, start)?;
        self.split_huge_at(phys, end)
    }

    /// If a 2 MiB page straddles `addr`, replace it by 512 small pages
    /// holding the same data, so a range operation can stop at `addr`.
    pub(super) fn split_huge_at(&mut self, phys: &mut dyn PhysMem, addr: u64) -> Result<(), Errno> {
        let base = addr & !(HUGE_PAGE - 1);
        if base == addr && self.pmap.query(addr).is_none_or(|m| !m.huge) {
            return Ok(());
        }
        match self.pmap.query(addr) {
            Some(m) if m.huge && base != addr => self.demote(phys, base),
            _ => Ok(()),
        }
    }

    /// Copy the huge page at `base` into 512 small frames (demotion by copy:
    /// the buddy block's head alone carries the reference count). On ENOMEM
    /// the 2 MiB page is mapped as before, its data intact.
    pub(crate) fn demote(&mut self, phys: &mut dyn PhysMem, base: u64) -> Result<(), Errno> {
        let Some(huge) = self.pmap.query(base).filter(|m| m.huge) else {
            return Ok(());
        };
        let mut frames = Vec::with_capacity((HUGE_PAGE / PAGE) as usize);
        for i in 0..HUGE_PAGE / PAGE {
            let Some(frame) = phys.alloc_zeroed() else {
                frames.into_iter().for_each(|f| phys.put(f));
                return Err(Errno::ENOMEM);
            };
            phys.copy_into(Pfn(huge.pfn.0 + i), frame);
            frames.push(frame);
        }
        // The block is kept (one more reference) until the small pages are
        // all in: entering one may need a page table there is no memory for.
        phys.get(huge.pfn);
        self.drop_pages(phys, base, base + HUGE_PAGE);
        let mut frames = frames.into_iter().enumerate();
        for (i, frame) in frames.by_ref() {
            if self
                .pmap
                .enter(base + i as u64 * PAGE, frame, huge.prot)
                .is_err()
            {
                phys.put(frame);
                frames.for_each(|(_, f)| phys.put(f));
                self.drop_pages(phys, base, base + HUGE_PAGE);
                // Dropping the small pages freed the page table they were
                // going into: that frame is there for the huge entry's.
                if self.pmap.enter_huge(base, huge.pfn, huge.prot).is_err() {
                    phys.put(huge.pfn);
                }
                return Err(Errno::ENOMEM);
            }
        }
        phys.put(huge.pfn);
        Ok(())
    }
}
