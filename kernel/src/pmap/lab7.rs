//! Lab 7 (docs/src/labs.md): the shootdown munmap forgot.
//!
//! With `lab7` on the kernel command line (`--kernel-arg lab7`), an
//! `unmap_range` of a space that other CPUs run — munmap, madvise
//! (MADV_DONTNEED), a truncated file's pages — comes here instead of
//! going through its gather in `vm_layer.rs`. This is the lab's starting
//! point: written as if the kernel still ran on one CPU. The lab's test
//! (`make lab N=7`) boots racetest on 2 CPUs with the switch on, and its
//! munmap race fails until this function is right.

use super::Pmap;
use core::sync::atomic::{AtomicBool, Ordering};
use vm::pmap::Mapping;

static ON: AtomicBool = AtomicBool::new(false);

/// The `lab7` switch of the kernel command line.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

pub(super) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

impl Pmap {
    /// Lab 7: clear the PTEs of [start, end) in this space, which other
    /// CPUs have loaded, and hand each mapping to `release` (which drops
    /// the frame's reference: a frame may be reused from then on) only once
    /// no CPU can still reach that frame through its TLB. `flush` returns
    /// once every CPU running this space has dropped the translations it
    /// is given.
    ///
    /// Not done yet: only this CPU's TLB is flushed, and each frame goes
    /// back as soon as its PTE is clear.
    pub(super) fn lab7_unmap_shared(
        &self,
        start: u64,
        end: u64,
        release: &mut dyn FnMut(u64, Mapping),
    ) {
        // The page-table lock: faults of the space's other threads may
        // walk these tables meanwhile (kernel/src/pmap/shared.rs).
        let held = self.lock_tables();
        let visited = self.clear_range(&held, start, end, release);
        drop(held);
        self.flush_here(&visited);
    }
}
