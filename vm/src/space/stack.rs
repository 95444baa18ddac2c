//! Stacks that grow down: the MAP_STACK/MAP_GROWSDOWN layout and its growth.

use super::AddressSpace;
use crate::mmap::Prot;
use crate::pmap::{PhysMem, Pmap};
use crate::vm_fault::{FaultError, SegvCode};
use crate::vma::{Backing, PAGE, Vma, VmaFlags};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// A fault in a stack gap: move the stack VMA's bottom down to the
    /// faulting page, charging the new pages.
    pub(super) fn grow_stack(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
    ) -> Result<(), FaultError> {
        let segv = FaultError::Segv(SegvCode::MapErr);
        let gap = self.vma(addr).clone();
        let stack = self
            .map
            .find(gap.end)
            .filter(|s| s.flags.contains(VmaFlags::GROWSDOWN))
            .ok_or(segv)?
            .clone();
        let new_start = addr & !(PAGE - 1);
        let grown = Vma {
            start: new_start,
            end: gap.end,
            ..stack
        };
        if !phys.charge(grown.charge()) {
            return Err(segv);
        }
        self.map.remove_range(new_start, gap.end);
        let inserted = self.map.insert(grown);
        debug_assert!(inserted.is_ok(), "space::grow_stack: gap not free");
        Ok(())
    }
}

/// A growing stack over [start, end): the top page mapped as the stack
/// itself, the rest a gap it grows into (FreeBSD's MAP_STACK layout).
pub(super) fn stack_vmas(start: u64, end: u64, template: Vma) -> Vec<Vma> {
    let top = Vma {
        start: end - PAGE,
        end,
        ..template.clone()
    };
    if end - start == PAGE {
        return alloc::vec![top];
    }
    let gap = Vma {
        start,
        end: end - PAGE,
        prot: Prot::empty(),
        backing: Backing::StackGap,
        flags: template.flags - VmaFlags::GROWSDOWN,
        ..template
    };
    alloc::vec![gap, top]
}
