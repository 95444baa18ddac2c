//! The split page-table lock (DESIGN §6): one lock per group of 2 MiB
//! slots instead of one per space, so that two threads faulting in
//! different parts of their shared address space do not meet at a lock.
//!
//! A **slot** is the 2 MiB of addresses one level-2 entry covers: that
//! entry (a 2 MiB page, or the pointer to a level-1 table) and the 512
//! PTEs of its table. Whoever changes a slot's entries under the
//! address-space read lock holds the slot's lock. Linux keeps one
//! spinlock in the `struct page` of each level-1 table (`pte_lockptr`);
//! here the slots are hashed onto `SLOTS` locks, each on a cache line of
//! its own. Two slots may share a lock (a fault then waits for a fault
//! elsewhere, never for long), and never the other way round.
//!
//! The tables above the slots (levels 4, 3 and 2 themselves) are made by
//! whoever needs one, with one compare-and-exchange on the empty entry
//! (the loser frees its table: shared.rs), and freed only by a holder of
//! **every** slot lock (`all`): nothing is then half-way through making an
//! entry under them. Readers take no lock at all: a fault's first look
//! (`SharedPmap::look`) reads the entries as they are, because a table
//! is freed only after a shootdown that every CPU running the space has
//! answered, and a CPU answers only between faults (shared.rs).

use crate::sync::Mutex;
use spin::MutexGuard;

/// Locks per space: 32 cache lines, 2 KiB. Two threads' current slots
/// share a lock one time in 32.
pub(super) const SLOTS: usize = 32;

#[repr(align(64))]
struct Line(Mutex<()>);

pub(super) struct PtLocks([Line; SLOTS]);

/// Every slot lock of a space, held (`PtLocks::all`).
pub(super) struct AllHeld<'a>(#[allow(dead_code)] [MutexGuard<'a, ()>; SLOTS]);

impl PtLocks {
    pub(super) const fn new() -> PtLocks {
        PtLocks([const { Line(Mutex::new(())) }; SLOTS])
    }

    /// The lock of the slot holding `va`.
    pub(super) fn slot(&self, va: u64) -> MutexGuard<'_, ()> {
        self.0[index(va)].0.lock()
    }

    /// Every slot's lock, in index order (the one order, so two holders
    /// of `all` never wait for each other's half).
    pub(super) fn all(&self) -> AllHeld<'_> {
        AllHeld(core::array::from_fn(|i| self.0[i].0.lock()))
    }
}

/// The lock of the slot at `va`: the slot number hashed (Fibonacci
/// hashing), because neighbouring regions of equal size (each thread's
/// 64 MiB in will-it-scale) are a fixed number of slots apart, and a plain
/// `slot % SLOTS` would give their slots the same lock every time.
fn index(va: u64) -> usize {
    let slot = va >> 21;
    (slot.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}
