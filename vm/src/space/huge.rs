//! 2 MiB pages: splitting one when a range operation ends inside it or a
//! write breaks copy-on-write on it (filling one is the fault path's,
//! `vm_fault.rs`).

use super::AddressSpace;
use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::vma::{HUGE_PAGE, PAGE};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// Split the 2 MiB pages that straddle `start` or `end`, so that a range
    /// operation on [start, end) touches only whole pages. All or nothing:
    /// if the second split fails, the first is undone.
    pub(super) fn split_huge_edges(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        let first = self.split_huge_keeping(phys, start)?;
        match self.split_huge_keeping(phys, end) {
            Ok(second) => {
                for old in [first, second].into_iter().flatten() {
                    phys.put(old.pfn);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(old) = first {
                    self.undo_demote(phys, start & !(HUGE_PAGE - 1), old);
                }
                Err(e)
            }
        }
    }

    /// If a 2 MiB page straddles `addr`, replace it by 512 small pages
    /// holding the same data, so a range operation can stop at `addr`.
    pub(super) fn split_huge_at(&mut self, phys: &mut dyn PhysMem, addr: u64) -> Result<(), Errno> {
        if let Some(old) = self.split_huge_keeping(phys, addr)? {
            phys.put(old.pfn);
        }
        Ok(())
    }

    /// `split_huge_at`, keeping a reference to the 2 MiB block it replaced
    /// (returned) so that the split can still be undone.
    fn split_huge_keeping(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
    ) -> Result<Option<Mapping>, Errno> {
        let base = addr & !(HUGE_PAGE - 1);
        match self.pmap.query(addr) {
            Some(m) if m.huge && base != addr => self.demote_keeping(phys, base),
            _ => Ok(None),
        }
    }

    /// Copy the huge page at `base` into 512 small frames (demotion by copy:
    /// the buddy block's head alone carries the reference count). On ENOMEM
    /// the 2 MiB page is mapped as before, its data intact.
    pub(crate) fn demote(&mut self, phys: &mut dyn PhysMem, base: u64) -> Result<(), Errno> {
        if let Some(old) = self.demote_keeping(phys, base)? {
            phys.put(old.pfn);
        }
        Ok(())
    }

    /// `demote`, returning the old 2 MiB mapping with one reference still
    /// held on its block (for `undo_demote`, or to be put).
    fn demote_keeping(
        &mut self,
        phys: &mut dyn PhysMem,
        base: u64,
    ) -> Result<Option<Mapping>, Errno> {
        let Some(huge) = self.pmap.query(base).filter(|m| m.huge) else {
            return Ok(None);
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
                self.undo_demote(phys, base, huge);
                return Err(Errno::ENOMEM);
            }
        }
        Ok(Some(huge))
    }

    /// Put the 2 MiB page `old` (whose block reference the caller holds
    /// and hands over) back at `base`, over the small pages there.
    fn undo_demote(&mut self, phys: &mut dyn PhysMem, base: u64, old: Mapping) {
        self.drop_pages(phys, base, base + HUGE_PAGE);
        // Dropping the small pages freed the page table they were in: that
        // frame is there for the huge entry's.
        if self.pmap.enter_huge(base, old.pfn, old.prot).is_err() {
            phys.put(old.pfn);
        }
    }
}
