//! A fault in a shared mapping of an object that may map the object's
//! 2 MiB block whole (`Decision::HugeObjectPage`; the object side is
//! `vm_object/huge.rs`, the policy `thp::object_huge`).
//!
//! One level-2 entry maps the block when the VMA covers the aligned 2 MiB
//! around the fault, that 2 MiB maps exactly one aligned run of the
//! object (the address and the object offset agree modulo 2 MiB, which
//! mmap's placement arranges), nothing is mapped there yet, and the run is
//! a block — or has no page yet and the policy lets the object allocate
//! one. Otherwise the fault maps one 4 KiB page (`object_page`), a frame
//! of the block if the run is one.

use super::{Access, FaultError, Resolution, Step, pte_prot};
use crate::pmap::{PhysMem, Pmap};
use crate::space::AddressSpace;
use crate::thp::{self, ObjectHuge};
use crate::vma::{Backing, HUGE_PAGE};

impl<P: Pmap> AddressSpace<P> {
    /// Map the object's 2 MiB block around `addr` with one entry if it may
    /// be (the module comment), else its 4 KiB page.
    pub(super) fn huge_object_page(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Step, FaultError> {
        let base = addr & !(HUGE_PAGE - 1);
        let vma = self.vma(addr);
        let fits = vma.start <= base && base + HUGE_PAGE <= vma.end;
        let allocate = thp::object_huge(vma, self.thp) == Some(ObjectHuge::Allocate);
        let prot = pte_prot(vma, true);
        let run = match &vma.backing {
            Backing::Object { object, offset } if fits => {
                let at = offset + (base - vma.start);
                at.is_multiple_of(HUGE_PAGE)
                    .then(|| (object.clone(), at / HUGE_PAGE))
            }
            _ => None,
        };
        if let Some((object, run)) = run
            && self.pmap.huge_slot_free(base)
            && let Some(block) = object.huge_block(run, allocate, phys)
        {
            // Still empty once the block is ours (step 4 for a 2 MiB page).
            if !self.pmap.huge_slot_free(base) {
                phys.put_block(block.head);
                return Ok(Step::Again);
            }
            if self.pmap.enter_huge(base, block.head, prot).is_ok() {
                object.note_pmd(run, true);
                return Ok(Step::Done(Resolution::HugeObjectPage {
                    allocated: block.allocated,
                }));
            }
            phys.put_block(block.head);
        }
        self.object_page(phys, addr, access)
    }
}
