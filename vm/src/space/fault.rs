//! Carrying out a page-fault decision (`vm_fault::decide`).

use super::AddressSpace;
use crate::frame::Pfn;
use crate::pmap::{Mapping, PhysMem, Pmap, PteProt};
use crate::vm_fault::{self, Access, Decision, FaultError, Resolution, pte_prot};
use crate::vma::{HUGE_PAGE, PAGE, Vma};

impl<P: Pmap> AddressSpace<P> {
    /// Resolve a fault at `addr` as `vm_fault::decide` says; on success the
    /// access can be retried. Also how the kernel faults pages in for its
    /// own copies into user memory.
    pub fn fault(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Resolution, FaultError> {
        let page = addr & !(PAGE - 1);
        let pte = self.pmap.query(addr);
        let decision = vm_fault::decide(self.map.find(addr), access, pte);
        let oom = FaultError::OutOfMemory;
        match decision {
            Decision::Fail(error) => Err(error),
            Decision::GrowStack => {
                self.grow_stack(phys, addr)?;
                self.fault(phys, addr, access)
                    .map(|_| Resolution::StackGrowth)
            }
            Decision::ZeroPage => {
                let vma = self.vma(addr);
                let zero = phys.zero_frame();
                phys.get(zero);
                let prot = pte_prot(vma, false);
                self.enter(phys, page, zero, prot)?;
                Ok(Resolution::ZeroPage)
            }
            Decision::ZeroFill => {
                let prot = pte_prot(self.vma(addr), true);
                let pfn = phys.alloc_zeroed().ok_or(oom)?;
                self.enter(phys, page, pfn, prot)?;
                Ok(Resolution::ZeroFill)
            }
            Decision::HugeZeroFill => self.huge_zero_fill(phys, addr, access),
            Decision::ObjectPage => self.object_fault(phys, addr, access),
            Decision::CopyOnWrite => {
                self.copy_on_write(phys, addr, pte.expect("cow without a PTE"))
            }
            Decision::MakeWritable => {
                let prot = pte_prot(self.vma(addr), true);
                self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
                Ok(Resolution::MakeWritable)
            }
            Decision::Spurious => Ok(Resolution::Spurious),
        }
    }

    pub(crate) fn vma(&self, addr: u64) -> &Vma {
        self.map
            .find(addr)
            .expect("space: decision made for a VMA that vanished")
    }

    /// Enter a page, giving the frame back if there is no memory for a page table.
    pub(crate) fn enter(
        &mut self,
        phys: &mut dyn PhysMem,
        page: u64,
        pfn: Pfn,
        prot: PteProt,
    ) -> Result<(), FaultError> {
        self.pmap.enter(page, pfn, prot).map_err(|_| {
            phys.put(pfn);
            FaultError::OutOfMemory
        })
    }

    /// A write to a read-only private page: copy it, unless this mapping
    /// holds the frame's only reference, in which case it is just made
    /// writable (the zero frame is always copied). The one copy-on-write
    /// copy of the crate: a private write to a file page comes here too.
    pub(crate) fn copy_on_write(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        old: Mapping,
    ) -> Result<Resolution, FaultError> {
        let page = addr & !(PAGE - 1);
        if old.huge {
            self.demote(phys, addr & !(HUGE_PAGE - 1))
                .map_err(|_| FaultError::OutOfMemory)?;
            return self.fault(phys, addr, Access::Write);
        }
        let prot = pte_prot(self.vma(addr), true);
        if old.pfn != phys.zero_frame() && phys.refcount(old.pfn) == 1 {
            self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
            return Ok(Resolution::Reuse);
        }
        let new = if old.pfn == phys.zero_frame() {
            phys.alloc_zeroed()
        } else {
            phys.copy(old.pfn)
        };
        let new = new.ok_or(FaultError::OutOfMemory)?;
        let Ok(replaced) = self.pmap.replace(page, new, prot) else {
            phys.put(new);
            return Err(FaultError::OutOfMemory);
        };
        phys.put(replaced.pfn);
        Ok(Resolution::CopyOnWrite)
    }
}
