//! Taking mappings away: munmap, and tearing a whole space down.

use super::{AddressSpace, USER_END};
use crate::errno::Errno;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{Backing, VmaFlags};

impl<P: Pmap> AddressSpace<P> {
    /// munmap: remove [start, end) from the tree and the page tables.
    /// Unmapping a range with nothing in it succeeds (Linux).
    pub fn munmap(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> Result<(), Errno> {
        if self.map.range(start, end).next().is_none() {
            return Ok(());
        }
        // Unmapping the middle of a VMA leaves two.
        self.map_count_room(start, end, 0, true)?;
        self.split_huge_edges(phys, start, end)?;
        self.unmap_range(phys, start, end, true);
        Ok(())
    }

    /// Remove [start, end) from tree and page tables, giving back frames,
    /// objects and (if `uncharge`) the commit charge.
    pub(super) fn unmap_range(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        uncharge: bool,
    ) {
        if self.map.range(start, end).next().is_none() {
            return;
        }
        // The pages first, while their VMAs tell whose 2 MiB entries they are.
        self.drop_pages(phys, start, end);
        let removed = self.map.remove_range(start, end);
        for vma in removed {
            if uncharge {
                phys.uncharge(vma.charge());
            }
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
        }
        self.drop_orphaned_stack_guard(start);
    }

    /// A stack's guard goes with the bottom of the stack it guards: remove
    /// the guard ending at `at` if no stack starts there any more. (It holds
    /// no pages and no charge.)
    fn drop_orphaned_stack_guard(&mut self, at: u64) {
        let guards_nothing = !self.map.find(at).is_some_and(|v| {
            matches!(v.backing, Backing::StackGap) || v.flags.contains(VmaFlags::GROWSDOWN)
        });
        let guard = at.checked_sub(1).and_then(|below| self.map.find(below));
        if let Some(guard) = guard
            && guard.flags.contains(VmaFlags::STACK_GUARD)
            && guard.end == at
            && guards_nothing
        {
            let (from, to) = (guard.start, guard.end);
            self.map.remove_range(from, to);
        }
    }

    /// Tear everything down (exit, execve): every frame, object and charge.
    /// Allocates nothing: exit may come right after memory ran out.
    pub fn clear(&mut self, phys: &mut dyn PhysMem) {
        self.drop_pages(phys, 0, USER_END);
        while let Some(vma) = self.map.pop_first() {
            phys.uncharge(vma.charge());
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
        }
        self.brk_start = 0;
        self.brk = 0;
    }
}
