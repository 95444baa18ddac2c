//! The pager: how an address space gets the pages of a VM object (shared
//! anonymous memory, a file's page cache) into its page tables, and takes
//! them out again when a file shrinks. FreeBSD calls the part that supplies
//! an object's pages its pager; here every page is already in memory, so
//! paging in is mapping the object's frame.
//!
//! | fault on an absent object page | what happens |
//! |--------------------------------|--------------|
//! | wholly past end of file        | SIGBUS (`FaultError::Bus`) |
//! | shared, any access             | map the object's frame (writable if the VMA is) |
//! | private, read or exec          | map the object's frame read-only: later stores to the file show through |
//! | private, write                 | copy the frame: the file never changes |
//!
//! A read fault also maps the object's resident neighbours in an aligned
//! window of `FAULT_AROUND_PAGES` (Linux's fault-around), so reading a
//! mapped file sequentially takes one fault per window instead of one per
//! page. Nothing is allocated for the neighbours: holes stay holes.
//!
//! The fault path (`vm_fault.rs`: `AddressSpace::fault`, its `object_page`
//! and `fault_around` steps) carries this table out; this file holds what
//! it calls on the object side, and the rest of the pager: prefaulting,
//! truncation and holes punched in an object.

use crate::mmap::Sharing;
use crate::pmap::{PhysMem, Pmap};
use crate::space::AddressSpace;
use crate::vm_fault::pte_prot;
use crate::vm_object::ObjectRef;
use crate::vma::{Backing, HUGE_PAGE, PAGE};

/// Linux's default fault_around_bytes is 64 KiB: 16 pages.
pub const FAULT_AROUND_PAGES: u64 = 16;

impl<P: Pmap> AddressSpace<P> {
    /// MAP_PREFAULT_READ: map every page of [start, end) whose object page
    /// is already in memory, as a read fault would. Returns how many.
    pub fn prefault(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> u32 {
        let mut mapped = 0;
        let mut at = start;
        while let Some(vma) = self.map.range(at, end).next() {
            let vma_end = vma.end;
            mapped += self.map_resident(phys, at.max(vma.start), vma_end.min(end));
            at = vma_end;
        }
        mapped
    }

    /// Map the absent pages of [start, end), which lies inside one VMA, that
    /// its object already holds (pages past the end of a file are never
    /// resident). Private pages go in read-only, as a read fault maps them.
    /// Without a page table for a page, the page is simply left out.
    pub(crate) fn map_resident(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> u32 {
        let Some(vma) = self.map.find(start) else {
            return 0;
        };
        let Backing::Object { object, .. } = &vma.backing else {
            return 0;
        };
        let object = object.clone();
        let prot = pte_prot(vma, vma.sharing == Sharing::Shared);
        let (from, to) = (start.max(vma.start), end.min(vma.end));
        let Some((_, first_offset)) = vma.object_offset(from) else {
            return 0;
        };
        // One look at the object and one walk of the page tables for the
        // whole run, not one of each per page.
        let frames = object.resident_run(first_offset / PAGE, (to - from) / PAGE, phys);
        self.pmap
            .enter_run(from, &frames, prot, &mut |pfn| phys.put(pfn))
    }

    /// `object` (a file) is now `size` bytes long: unmap every page of it
    /// wholly past the end from this space, private copies included (as
    /// Linux's truncate does, `unmap_mapping_range(.., even_cows)`), so
    /// that the next access is SIGBUS. Returns whether this space maps the
    /// object at all (the caller drops it from the object's mappers if
    /// not). The kernel calls it only for the spaces the object lists
    /// (`ObjectRef::mappers`): a private copy is a frame of its own, which
    /// the frame reverse map cannot lead to (docs/src/rmap.md).
    pub fn truncate_object(
        &mut self,
        phys: &mut dyn PhysMem,
        object: &ObjectRef,
        size: u64,
    ) -> bool {
        let maps = self
            .map
            .iter()
            .any(|v| matches!(&v.backing, Backing::Object { object: o, .. } if o.same(object)));
        let first_gone = size.div_ceil(PAGE) * PAGE;
        let doomed: alloc::vec::Vec<(u64, u64)> = self
            .map
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::Object { object: o, offset } if o.same(object) => {
                    let from = match first_gone.checked_sub(*offset) {
                        Some(skip) => v.start.saturating_add(skip),
                        None => v.start,
                    };
                    (from < v.end).then_some((from, v.end))
                }
                _ => None,
            })
            .collect();
        for (from, to) in doomed {
            self.drop_pages(phys, from, to);
        }
        maps
    }
}

impl<P: Pmap> AddressSpace<P> {
    /// Pages [first, end) of `object` are about to be freed (a hole
    /// punched: FALLOC_FL_PUNCH_HOLE, MADV_REMOVE): unmap the object's own
    /// frames there from this space, in shared and private mappings
    /// alike, so that the next access faults and finds the hole. Private
    /// copies a write made stay, as with Linux's `unmap_mapping_range`
    /// without `even_cows`: they are the process's data, not the file's.
    /// Returns whether this space maps the object at all (as
    /// `truncate_object`).
    pub fn punch_object(
        &mut self,
        phys: &mut dyn PhysMem,
        object: &ObjectRef,
        first: u64,
        end: u64,
    ) -> bool {
        let mut maps = false;
        // (start, end, shared) of each mapping's part of the hole, and the
        // object page its start maps.
        let mut ranges: alloc::vec::Vec<(u64, u64, bool, u64)> = alloc::vec::Vec::new();
        for v in self.map.iter() {
            let Backing::Object { object: o, offset } = &v.backing else {
                continue;
            };
            if !o.same(object) {
                continue;
            }
            maps = true;
            let (vma_first, pages) = (offset / PAGE, (v.end - v.start) / PAGE);
            let (from, to) = (first.max(vma_first), end.min(vma_first + pages));
            if from < to {
                let start = v.start + (from - vma_first) * PAGE;
                let shared = v.sharing == Sharing::Shared;
                ranges.push((start, start + (to - from) * PAGE, shared, from));
            }
        }
        for (start, end, shared, from) in ranges {
            if shared {
                // Every page here is the object's.
                self.drop_pages(phys, start, end);
                continue;
            }
            // Only the object's frames: a private write's copy is another.
            let last = from + (end - start) / PAGE;
            for (index, pfn) in object.resident_frames(from, last) {
                let va = start + (index - from) * PAGE;
                let Some(m) = self.pmap.query(va) else {
                    continue;
                };
                if m.huge {
                    let base = va & !(HUGE_PAGE - 1);
                    if m.pfn.0 + (va - base) / PAGE == pfn.0 {
                        self.drop_pages(phys, base, base + HUGE_PAGE);
                    }
                } else if m.pfn == pfn {
                    self.drop_pages(phys, va, va + PAGE);
                }
            }
        }
        maps
    }
}
