//! Taking mappings away: munmap, and tearing a whole space down.

use super::{AddressSpace, USER_END};
use crate::errno::Errno;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::Backing;

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
        let removed = self.map.remove_range(start, end);
        if removed.is_empty() {
            return;
        }
        self.drop_pages(phys, start, end);
        for vma in removed {
            if uncharge {
                phys.uncharge(vma.charge());
            }
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
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
