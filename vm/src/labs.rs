//! Hooks for the exercises of the labs chapter (`docs/src/labs.md`).
//!
//! A lab's test (`vm/tests/labs.rs`) must compile against the code as it
//! is, so that `cargo test -p vm` stays green while the lab is undone. Each
//! hook below is the entry point a lab's test calls: it exists, is
//! documented, and does nothing yet. Doing the lab means giving it a body
//! (and usually a field in `AddressSpace` to remember the setting); move
//! the method next to the code it steers if you like.

use crate::pmap::Pmap;
use crate::space::AddressSpace;

/// How mmap picks an address when the caller gives no usable hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementPolicy {
    /// Below `mmap_top`, as high as fits: Linux's default layout.
    TopDown,
    /// The lowest free range at or above `base`: Linux's legacy layout
    /// (`vm.legacy_va_layout`, from TASK_UNMAPPED_BASE up).
    BottomUp { base: u64 },
}

impl<P: Pmap> AddressSpace<P> {
    /// Lab 1: keep `pages` pages below every new growing stack's
    /// reservation as its guard, where the kernel places nothing else
    /// (Linux's `stack_guard_gap`, FreeBSD's `security.bsd.stack_guard_page`).
    /// The default is `vma::STACK_GUARD_PAGES`.
    ///
    /// Not done yet: the guard stays `STACK_GUARD_PAGES` whatever is asked.
    pub fn set_stack_guard_gap(&mut self, pages: u64) {
        let _ = pages;
    }

    /// Lab 4: choose how mmap places mappings without a hint (and MAP_TRYFIXED
    /// ones whose address is taken). The default is `PlacementPolicy::TopDown`.
    ///
    /// Not done yet: placement stays top-down whatever is asked.
    pub fn set_placement_policy(&mut self, policy: PlacementPolicy) {
        let _ = policy;
    }
}
