//! Changing what a range allows: mprotect, and minherit (what fork does with it).

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::{Prot, Sharing};
use crate::pmap::{PhysMem, Pmap};
use crate::vm_fault::pte_prot;
use crate::vma::{Backing, Inherit, PAGE};

impl<P: Pmap> AddressSpace<P> {
    /// mprotect: every page of [start, end) must be mapped (ENOMEM), and
    /// the new protection within each VMA's max_prot (EACCES).
    pub fn mprotect(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        self.covered(start, end)?;
        // Rights beyond max_prot (EACCES), and the commit charge before and after.
        let (mut old, mut new) = (0, 0);
        for v in self.map.range(start, end) {
            if !v.max_prot.contains(prot) || matches!(v.backing, Backing::Guard) {
                return Err(Errno::EACCES);
            }
            let pages = (v.end.min(end) - v.start.max(start)) / PAGE;
            old += if v.is_charged() { pages } else { 0 };
            new += if v.is_charged_with(prot) { pages } else { 0 };
        }
        self.map_count_room(start, end, 0, false)?;
        self.split_huge_edges(phys, start, end)?;
        if new > old && !phys.charge(new - old) {
            return Err(Errno::ENOMEM);
        }
        if new < old {
            phys.uncharge(old - new);
        }
        self.map.update_range(start, end, |v| v.prot = prot);
        let map = &self.map;
        // Private pages stay read-only when their frame may be shared
        // (zero frame, copy-on-write): the next write fault sorts them out.
        self.pmap.protect_range(start, end, &mut |va, m| {
            let vma = map.find(va).expect("space::mprotect: PTE outside any VMA");
            let exclusive =
                vma.sharing == Sharing::Shared || (m.prot.write && m.pfn != phys.zero_frame());
            pte_prot(vma, exclusive)
        });
        Ok(())
    }

    /// minherit (FreeBSD): what fork does with [start, end).
    pub fn minherit(&mut self, start: u64, end: u64, inherit: Inherit) -> Result<(), Errno> {
        self.covered(start, end).map_err(|_| Errno::EINVAL)?;
        self.map_count_room(start, end, 0, false)?;
        self.map.update_range(start, end, |v| v.inherit = inherit);
        Ok(())
    }
}
