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
    pub(crate) fn grow_stack(
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

/// A growing stack reserving [start, end), lowest first: the guard over
/// [guard_start, start) if there is one, then the gap the stack grows into,
/// then the top page, mapped as the stack itself. The stack may grow down
/// to `start`, the address mmap returned ("the bottom of the stack at
/// maximum growth", FreeBSD's MAP_STACK): all `end - start` bytes are
/// usable, and the guard is the page below (DESIGN §2).
pub(super) fn stack_vmas(guard_start: u64, start: u64, end: u64, template: Vma) -> Vec<Vma> {
    let mut vmas = Vec::with_capacity(3);
    let below = Vma {
        prot: Prot::empty(),
        flags: template.flags - VmaFlags::GROWSDOWN,
        ..template.clone()
    };
    if guard_start < start {
        vmas.push(Vma {
            start: guard_start,
            end: start,
            backing: Backing::Guard,
            flags: VmaFlags::STACK_GUARD,
            ..below.clone()
        });
    }
    if end - start > PAGE {
        vmas.push(Vma {
            start,
            end: end - PAGE,
            backing: Backing::StackGap,
            ..below
        });
    }
    vmas.push(Vma {
        start: end - PAGE,
        end,
        ..template
    });
    vmas
}
