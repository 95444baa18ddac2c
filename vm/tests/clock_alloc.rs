//! The clock allocates nothing after `Clock::new` (vm/src/clock.rs): its
//! lists are filled during reclaim, when the kernel heap may be unable to
//! grow. Every allocation of this test's thread is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use vm::clock::{Clock, Policy, Verdict};
use vm::frame::Pfn;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator unchanged; counting
// touches only a const-initialised thread-local (no allocation, no drop).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: GlobalAlloc's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: GlobalAlloc's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn inserts_removes_and_choices_allocate_nothing_but_the_victims() {
    const FRAMES: u64 = 4096;
    let mut clock = Clock::new(Policy::Clock, FRAMES as usize);
    let before = allocations();
    for round in 0..4u64 {
        for p in 0..FRAMES {
            clock.insert(Pfn(p));
        }
        for p in (0..FRAMES).step_by(3) {
            clock.remove(Pfn(p));
        }
        for p in (0..FRAMES).rev() {
            clock.insert(Pfn(p));
        }
        assert_eq!(allocations(), before + round, "insert and remove allocated");
        // Every other page used: promotions, balancing, victims kept and
        // evicted. The victims' vector is the one allocation.
        let victims = clock.choose(
            64,
            2 * FRAMES as usize,
            &mut |p| p.0 % 2 == round % 2,
            &mut |p| {
                if p.0 % 5 == 0 {
                    Verdict::Keep
                } else {
                    Verdict::Evict
                }
            },
        );
        assert_eq!(victims.len(), 64);
        assert_eq!(
            allocations(),
            before + round + 1,
            "choose allocated more than its victims"
        );
        for v in victims {
            clock.insert(v);
        }
    }
    assert_eq!(clock.len(), FRAMES as usize);
}
