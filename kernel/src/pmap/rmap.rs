//! The machine's reverse map (`vm::rmap`): one for every address space.
//!
//! A frame's first mapping goes in the frame's own word
//! (`phys::first_owners`, `vm::rmap::FirstOwners`) with no lock: a fault
//! mapping a new private page, and munmap clearing it, take no lock that
//! every CPU shares. A frame's further mappings (copy-on-write sharing,
//! shared memory, page-cache pages) go to the table behind `RMAP`, a lock
//! taken for each of those PTEs made present or cleared, and once for each
//! level-1 table or up to 512 2 MiB pages mremap moves whole (`relocate`),
//! never across a callback.
//! Lock order (DESIGN §6): page-table updates → this lock → the heap (a
//! table growth) → the frame allocator.

use crate::phys::{self, KernelPhys};
use crate::sync::Mutex;
use vm::frame::Pfn;
use vm::pmap::{NoMemory, PhysMem};
use vm::rmap::{Owner, Rmap};

static RMAP: Mutex<Rmap<'static>> = Mutex::new(Rmap::new());

/// Run `f` on the reverse map (the zero frame is never recorded in it).
pub fn with<R>(f: impl FnOnce(&mut Rmap<'static>) -> R) -> R {
    let mut rmap = RMAP.lock();
    if rmap.unrecorded().is_none() {
        rmap.set_unrecorded(KernelPhys.zero_frame());
        rmap.set_first(phys::first_owners());
    }
    f(&mut rmap)
}

pub(super) fn add(pfn: Pfn, owner: Owner) -> Result<(), NoMemory> {
    if pfn == KernelPhys.zero_frame() || phys::first_owners().try_add(pfn, owner) {
        return Ok(());
    }
    with(|r| r.add(pfn, owner))
}

pub(super) fn remove(pfn: Pfn, owner: Owner) {
    if pfn == KernelPhys.zero_frame() || phys::first_owners().try_remove(pfn, owner) {
        return;
    }
    with(|r| r.remove(pfn, owner));
}
