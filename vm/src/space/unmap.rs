//! Taking mappings away: munmap, and tearing a whole space down.

use super::{AddressSpace, USER_END};
use super::{Exclusive, Shared, drop_pages_of};
use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{PhysMem, Pmap, SharedPmap};
use crate::vma::{Backing, Vma, VmaFlags};
use alloc::vec::Vec;

/// What munmap's first half took out of the tree, for its second half
/// (`AddressSpace::munmap_detach`, `munmap_finish`).
#[must_use = "the pages of a detached range are still mapped until munmap_finish"]
pub struct Detached {
    /// The pages to drop: the range, widened to whole 2 MiB entries of an
    /// object that could not be split (`object_huge_edges`).
    start: u64,
    end: u64,
    /// The VMAs taken out, whose objects and charge go last.
    vmas: Vec<Vma>,
}

impl Detached {
    /// The VMA a page of the range belonged to.
    fn vma_of(&self, va: u64) -> Option<&Vma> {
        self.vmas.iter().find(|v| v.start <= va && va < v.end)
    }

    /// Give the VMAs' charge and objects back (after their pages went).
    fn release(self, phys: &mut dyn PhysMem) {
        for vma in self.vmas {
            phys.uncharge(vma.charge());
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
        }
    }
}

impl<P: Pmap> AddressSpace<P> {
    /// munmap: remove [start, end) from the tree and the page tables.
    /// Unmapping a range with nothing in it succeeds (Linux).
    pub fn munmap(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> Result<(), Errno> {
        if let Some(detached) = self.munmap_detach(phys, start, end)? {
            let AddressSpace { pmap, map, .. } = self;
            let vma_of = |va| detached.vma_of(va).or_else(|| map.find(va));
            let (from, to) = (detached.start, detached.end);
            drop_pages_of(phys, &mut Exclusive(pmap), &vma_of, from, to, None);
            detached.release(phys);
        }
        Ok(())
    }

    /// Whether every VMA that [start, end) meets is private anonymous
    /// memory, a guard or a stack gap, and none is locked: a range whose
    /// munmap releases no object and changes no mlock count, only the
    /// space, its frames and its page tables (the kernel's munmap without
    /// its big lock, kernel/src/syscall/memory.rs).
    pub fn holds_only_anonymous(&self, start: u64, end: u64) -> bool {
        self.map.range(start, end).all(|vma| {
            !vma.flags.contains(VmaFlags::LOCKED)
                && matches!(
                    vma.backing,
                    Backing::Anonymous | Backing::Guard | Backing::StackGap
                )
        })
    }

    /// munmap's first half, the part that needs the write lock: every
    /// check that can fail, the 2 MiB pages across the edges split, and
    /// the VMAs out of the tree. From here on no fault finds the range
    /// mapped, so its pages can go under the read lock (`munmap_finish`),
    /// while the other threads' faults elsewhere go on: Linux's munmap
    /// downgrades its mmap_lock after detaching the VMAs the same way.
    /// None: nothing is mapped there.
    pub fn munmap_detach(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<Option<Detached>, Errno> {
        if self.map.range(start, end).next().is_none() {
            return Ok(None);
        }
        // Unmapping the middle of a VMA leaves two.
        self.map_count_room(start, end, 0, true)?;
        self.split_huge_edges(phys, start, end)?;
        let (from, to) = self.object_huge_edges(phys, start, end);
        let vmas = self.map.remove_range(start, end);
        self.drop_orphaned_stack_guard(start);
        Ok(Some(Detached {
            start: from,
            end: to,
            vmas,
        }))
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

impl<P: Pmap + SharedPmap> AddressSpace<P> {
    /// munmap's second half, under the read lock: the detached range's
    /// entries, swap slots, objects and charge go. Faults of other threads
    /// run meanwhile; none of them is in the range (it has no VMA), and
    /// the page-table lock keeps their walks and this one's apart.
    ///
    /// Its small pages' frames come back in `Unmapped`, still referenced,
    /// for the caller to give back after it let the read lock go: by then
    /// no entry and no TLB maps them (the pmap's shootdown is over when
    /// `unmap_range_shared` returns), so giving them back needs nothing of
    /// the space. Giving back was two thirds of a 64 MiB munmap's second
    /// half on two threads, and every mmap and munmap of the other thread
    /// waits for the read lock to go (docs/src/concurrency.md).
    pub fn munmap_finish(&self, phys: &mut dyn PhysMem, detached: Detached) -> Unmapped {
        let vma_of = |va| detached.vma_of(va).or_else(|| self.map.find(va));
        let (from, to) = (detached.start, detached.end);
        let mut kept = Vec::new();
        let tables = &mut Shared(&self.pmap);
        drop_pages_of(phys, tables, &vma_of, from, to, Some(&mut kept));
        detached.release(phys);
        Unmapped { frames: kept }
    }
}

/// Frames munmap's second half took out of the page tables and the TLBs
/// but still holds a reference to (`munmap_finish`).
#[must_use = "the frames of an unmapped range go back only with release"]
pub struct Unmapped {
    frames: Vec<Pfn>,
}

impl Unmapped {
    /// Give the frames back (the caller holds no lock of the space now):
    /// `put_many` batches its takes of the allocator's lock itself.
    pub fn release(self, phys: &mut dyn PhysMem) {
        phys.put_many(&self.frames);
    }
}
