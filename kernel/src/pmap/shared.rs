//! The page-table lock, and the entries a fault makes under the
//! address-space read lock (`vm::pmap::SharedPmap`, DESIGN §6).
//!
//! Faults of one process on different CPUs hold the read lock together
//! (kernel/src/mm.rs), so they may walk the same tables at once: each
//! operation here takes the space's page-table lock for its whole walk,
//! and makes its entry only if the slot is still empty under it (another
//! CPU may have resolved the same fault since this one looked). Nothing
//! here takes a right away, so nothing here needs a TLB shootdown: an
//! absent entry is in no TLB.
//!
//! munmap's second half runs here too, under the read lock
//! (vm/src/space/unmap.rs): its range is in no VMA any more, so no fault
//! adds to it, but faults beside it share its tables. It clears one 2 MiB
//! slot at a time under the lock, so those faults get in between; an
//! emptied table goes only with the lock held, so a fault either filled
//! it first (it is not empty) or finds it gone and makes a new one.
//!
//! The lock is a plain spin lock: its holder only walks tables, allocates
//! a frame for a missing table, adds to or takes from the reverse map,
//! and never waits for another CPU (the unmap's shootdown comes after it
//! let the lock go), so a CPU spinning for it (with interrupts masked)
//! waits a few microseconds at most.

use super::entry::{flags_for, frame_of, mapping_of, swap_slot, take};
use super::walk::{Visited, Walk};
use super::{Pmap, PtHeld, rmap};
use alloc::vec::Vec;
use vm::frame::Pfn;
use vm::pmap::{Mapping, NoMemory, Pmap as _, Pte, PteProt, SharedPmap};
use vm::rmap::Owner;
use vm::swap_map::Slot;

const HUGE: u64 = 2 << 20;

/// A shared unmap's gather: this many 2 MiB slots (up to 4096 frames, a
/// 96 KiB list) are cleared before one shootdown, then their frames go
/// back. Each shootdown is a round trip to every other CPU running the
/// space, and a CPU that does not answer at once (busy with interrupts
/// masked, or its vCPU waiting for a host CPU) makes it cost far more
/// than the clearing: a 64 MiB munmap on two threads spent most of its
/// time in 32 of them. Linux's mmu_gather frees its pages in batches of
/// thousands for the same reason.
const GATHER_SLOTS: usize = 8;

impl Pmap {
    /// The PTE of `va`, for a caller that holds the page-table lock.
    fn pte(&self, va: u64) -> Pte {
        match self.query(va) {
            Some(m) => Pte::Present(m),
            None if crate::swap::in_use() && self.query_swap(va).is_some() => Pte::Swapped,
            None => Pte::Absent,
        }
    }
}

impl Pmap {
    /// The 2 MiB slots meeting [start, end) that map anything (a 2 MiB
    /// page, or a leaf table), in address order: the shared unmap's
    /// batches, so that the untouched part of a range costs one walk of
    /// the tables above it rather than one walk per 2 MiB (mmap1 of
    /// 128 MiB on two CPUs went 28 times slower). As many as the range
    /// has tables or huge pages: memory the process uses, never the
    /// length it passed.
    fn populated_slots(&self, held: &PtHeld<'_>, start: u64, end: u64) -> Vec<u64> {
        let mut slots = Vec::new();
        self.walk_locked(held, &Walk::at(start, end, 2), &mut |va, _, entry| {
            if !entry.is_unused() {
                slots.push(va);
            }
            false
        });
        slots
    }

    /// Clear the PTEs of [start, end), handing each one's mapping to
    /// `cleared`; the leaves it changed, which nothing has flushed yet.
    pub(super) fn clear_range(
        &self,
        held: &PtHeld<'_>,
        start: u64,
        end: u64,
        cleared: &mut dyn FnMut(u64, Mapping),
    ) -> Visited {
        let mut unmapped = 0;
        let id = self.id();
        let visited = self.walk_locked(
            held,
            &Walk::clearing(start, end),
            &mut |va, level, entry| {
                let huge = level == 2;
                assert!(
                    !huge || (va >= start && va + HUGE <= end),
                    "pmap::unmap_range: splits a 2 MiB page"
                );
                // Taken in one exchange: the bits the MMU set are in it.
                let mapping = mapping_of(&take(entry), huge);
                rmap::remove(mapping.pfn, Owner::new(id, va));
                unmapped += if huge { 512 } else { 1 };
                cleared(va, mapping);
                true
            },
        );
        self.count_unmapped(unmapped);
        visited
    }
}

impl SharedPmap for Pmap {
    fn look(&self, va: u64) -> Pte {
        let _pt = self.pt_lock.lock();
        self.pte(va)
    }

    fn huge_slot_is_free(&self, va: u64) -> bool {
        let _pt = self.pt_lock.lock();
        self.huge_slot_free(va)
    }

    fn enter_if_absent(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        let _pt = self.pt_lock.lock();
        if self.pte(va) != Pte::Absent {
            return Ok(false);
        }
        // Absent and under no 2 MiB page: `enter_leaf` fails only for want
        // of a table or of room in the reverse map.
        if self.enter_leaf(va, frame_of(pfn), flags_for(prot)) {
            Ok(true)
        } else {
            Err(NoMemory)
        }
    }

    fn enter_huge_if_free(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        let _pt = self.pt_lock.lock();
        if !self.huge_slot_free(va) {
            return Ok(false);
        }
        self.enter_huge_entry(va, pfn, prot).map(|()| true)
    }

    fn unmap_range_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        if self.active_elsewhere().is_empty() {
            // No other CPU runs this space (none can start to: switching
            // to it takes the kernel lock, which the unmapping system call
            // holds), so no fault competes and nothing else can reach
            // these pages: one walk, each frame back as soon as its PTE is
            // clear, one flush here at the end.
            let held = self.lock_tables();
            let visited = self.clear_range(&held, start, end, release);
            drop(held);
            self.flush(&visited);
            return;
        }
        // Other CPUs run this space: a frame goes back only after the
        // shootdown, a gather of up to GATHER_SLOTS 2 MiB slots at a time.
        if super::lab7::on() {
            return self.lab7_unmap_shared(start, end, release);
        }
        let slots = self.populated_slots(&self.lock_tables(), start, end);
        for batch in slots.chunks(GATHER_SLOTS) {
            let mut gathered = Vec::new();
            let mut visited = Visited::default();
            for &slot in batch {
                let (from, to) = (slot.max(start), (slot + HUGE).min(end));
                // The lock for one slot at a time: the faults of the
                // space's other threads get in between.
                let held = self.lock_tables();
                let cleared = self.clear_range(&held, from, to, &mut |va, m| {
                    gathered.push((va, m));
                });
                visited.absorb(cleared);
            }
            self.flush(&visited);
            // The emptied tables go with `visited`, after the flush.
            drop(visited);
            for (va, m) in gathered {
                release(va, m);
            }
        }
    }

    fn clear_swap_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        let held = self.lock_tables();
        let visited = self.walk_locked(
            &held,
            &Walk::at(start, end, 1).freeing(),
            &mut |va, level, entry| {
                if level == 1
                    && let Some(slot) = swap_slot(entry)
                {
                    entry.set_unused();
                    release(va, slot);
                }
                false // not present: no translation to flush
            },
        );
        drop(held);
        // The tables it emptied, though, may be in paging-structure caches.
        self.flush(&visited);
    }
}
