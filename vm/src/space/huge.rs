//! 2 MiB pages: splitting one in place when a range operation ends inside
//! it or a write breaks copy-on-write on it (filling one is the fault
//! path's, `vm_fault.rs`).
//!
//! A split copies nothing: the block's frames get reference counts of
//! their own (`PhysMem::split_block`), and the level-2 entry becomes a
//! level-1 table of 512 entries pointing into the same block
//! (`Pmap::split_huge`). What is unmapped afterwards frees just its 4 KiB
//! frames; the rest keeps its data where it was.
//!
//! A 2 MiB entry of an object's block (a shared mapping) splits the same
//! way; the object keeps its pages, and its count of 2 MiB entries per run
//! (ShmemPmdMapped) follows every entry made whole or split (`note_pmd`).

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::Sharing;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{Backing, HUGE_PAGE, Vma};

impl<P: Pmap> AddressSpace<P> {
    /// Split the 2 MiB pages that straddle `start` or `end`, so that a range
    /// operation on [start, end) touches only whole pages. All or nothing:
    /// if the second split fails (ENOMEM: no frame for a level-1 table),
    /// the first is joined back.
    pub(super) fn split_huge_edges(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        let first = self.split_huge_at(phys, start)?;
        self.split_huge_at(phys, end).inspect_err(|_| {
            if let Some((base, was_whole)) = first {
                self.undo_split(phys, base, was_whole);
            }
        })?;
        Ok(())
    }

    /// Make the 2 MiB page at `base`, split a moment ago by a call that
    /// then failed, whole again: its entry, and its block's count if the
    /// block was whole before (`was_whole`), so the call changes nothing.
    pub(crate) fn undo_split(&mut self, phys: &mut dyn PhysMem, base: u64, was_whole: bool) {
        self.pmap.join_huge(base);
        note_pmd(self.map.find(base), base, true);
        if was_whole && let Some(m) = self.pmap.query(base).filter(|m| m.huge) {
            phys.unsplit_block(m.pfn);
        }
    }

    /// If a 2 MiB page straddles `addr`, split it into 512 small pages
    /// (the same frames), so a range operation can stop at `addr`; returns
    /// the split page's address and whether its block was whole before.
    pub(super) fn split_huge_at(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
    ) -> Result<Option<(u64, bool)>, Errno> {
        let base = addr & !(HUGE_PAGE - 1);
        if base != addr
            && let Some(m) = self.pmap.query(base).filter(|m| m.huge)
        {
            let was_whole = phys.is_block(m.pfn);
            self.split_huge(phys, base)?;
            return Ok(Some((base, was_whole)));
        }
        Ok(None)
    }

    /// Split the 2 MiB page at `base`, if there is one, into 512 small
    /// pages mapping the same frames with the same rights. ENOMEM, nothing
    /// changed that a program can see, without a frame for the table.
    pub(crate) fn split_huge(&mut self, phys: &mut dyn PhysMem, base: u64) -> Result<(), Errno> {
        let Some(huge) = self.pmap.query(base).filter(|m| m.huge) else {
            return Ok(());
        };
        // The counts first: each small PTE holds a reference of its own.
        // A block split but still mapped whole is fine (its 2 MiB entry
        // then holds one reference on each frame: `PhysMem::put_block`).
        let was_whole = phys.is_block(huge.pfn);
        phys.split_block(huge.pfn);
        if self.pmap.split_huge(base).is_err() {
            // No level-1 table: join the counts again, so that the failed
            // call leaves the frame table as it found it, for a block of
            // one owner or shared by several.
            if was_whole {
                phys.unsplit_block(huge.pfn);
            }
            return Err(Errno::ENOMEM);
        }
        note_pmd(self.map.find(base), base, false);
        Ok(())
    }

    /// The range to unmap for [start, end): a 2 MiB entry of an object's
    /// block across either edge is split in place, or, without a frame for
    /// the level-1 table, the range grows to take it whole (the object
    /// keeps the data; the rest of the 2 MiB faults back in). Private
    /// 2 MiB pages were split by the caller (`split_huge_edges`, which can
    /// fail the operation), so truncate and MADV_REMOVE, which cannot
    /// fail, meet only shared ones here.
    pub(super) fn object_huge_edges(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> (u64, u64) {
        let mut range = (start, end);
        for at in [start, end] {
            let base = at & !(HUGE_PAGE - 1);
            let straddles = base != at && self.pmap.query(base).is_some_and(|m| m.huge);
            if straddles
                && self.map.find(base).is_some_and(maps_object_blocks)
                && self.split_huge(phys, base).is_err()
            {
                range = (range.0.min(base), range.1.max(base + HUGE_PAGE));
            }
        }
        range
    }
}

/// Whether `vma`'s 2 MiB entries map an object's blocks (shared mappings
/// of an object; private ones map 4 KiB pages of it only).
fn maps_object_blocks(vma: &Vma) -> bool {
    vma.sharing == Sharing::Shared && matches!(vma.backing, Backing::Object { .. })
}

/// A 2 MiB entry at `va` was made whole again (`mapped`) or is gone
/// (unmapped, split): if it maps an object's block, tell the object.
pub(super) fn note_pmd(vma: Option<&Vma>, va: u64, mapped: bool) {
    if let Some(vma) = vma.filter(|v| maps_object_blocks(v))
        && let Some((object, offset)) = vma.object_offset(va)
    {
        object.note_pmd(offset / HUGE_PAGE, mapped);
    }
}
