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
//! The lock is a plain spin lock: its holder only walks tables, allocates
//! a frame for a missing table and adds to the reverse map, and never
//! waits for another CPU, so a CPU spinning for it (with interrupts
//! masked) waits a few microseconds at most.

use super::Pmap;
use super::entry::{flags_for, frame_of};
use vm::frame::Pfn;
use vm::pmap::{NoMemory, Pmap as _, Pte, PteProt, SharedPmap};

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
}
