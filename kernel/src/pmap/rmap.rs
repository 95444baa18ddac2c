//! The machine's reverse map (`vm::rmap`): one for every address space,
//! behind a lock taken for each PTE made present or cleared, and once for
//! each level-1 table or up to 512 2 MiB pages mremap moves whole
//! (`relocate`), never across a callback.
//! Lock order (DESIGN §6): page-table updates → this lock → the heap (a
//! table growth) → the frame allocator.

use crate::sync::Mutex;
use vm::frame::Pfn;
use vm::pmap::{NoMemory, PhysMem};
use vm::rmap::{Owner, Rmap};

static RMAP: Mutex<Rmap> = Mutex::new(Rmap::new());

/// Run `f` on the reverse map (the zero frame is never recorded in it).
pub fn with<R>(f: impl FnOnce(&mut Rmap) -> R) -> R {
    let mut rmap = RMAP.lock();
    if rmap.unrecorded().is_none() {
        rmap.set_unrecorded(crate::phys::KernelPhys.zero_frame());
    }
    f(&mut rmap)
}

pub(super) fn add(pfn: Pfn, owner: Owner) -> Result<(), NoMemory> {
    with(|r| r.add(pfn, owner))
}

pub(super) fn remove(pfn: Pfn, owner: Owner) {
    with(|r| r.remove(pfn, owner));
}
