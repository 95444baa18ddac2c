//! Model test: a CPU's ring of free frames (`vm::buddy::FrameRing`,
//! kernel/src/phys/cache.rs) against a `VecDeque`. Random pushes under
//! random bounds, pops, give-backs of the coldest and refills, on a ring
//! small enough that its head wraps around many times: the ring must
//! hand back what the model does (the warmest frame from `pop`, the
//! coldest first from `take_coldest`), never hold more than its bound,
//! and refuse a push only when it is full.

use proptest::prelude::*;
use std::collections::VecDeque;
use vm::buddy::FrameRing;
use vm::frame::Pfn;

const N: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    Push {
        high: usize,
    },
    Pop,
    TakeColdest(usize),
    /// Refill with up to this many frames when empty (`fill` gives `got`).
    Refill {
        n: usize,
        got: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..N + 3).prop_map(|high| Op::Push { high }),
        3 => Just(Op::Pop),
        1 => (0..N + 3).prop_map(Op::TakeColdest),
        1 => (0..N + 3, 0..N + 3).prop_map(|(n, got)| Op::Refill { n, got }),
    ]
}

proptest! {
    #[test]
    fn the_ring_behaves_as_a_deque(ops in prop::collection::vec(op(), 1..300)) {
        let mut ring = FrameRing::<N>::new();
        let mut model: VecDeque<Pfn> = VecDeque::new();
        let mut next = 1u64;
        for op in ops {
            match op {
                Op::Push { high } => {
                    let pfn = Pfn(next);
                    next += 1;
                    let room = model.len() < high.min(N);
                    prop_assert_eq!(ring.push(pfn, high), room);
                    if room {
                        model.push_back(pfn);
                    }
                }
                Op::Pop => prop_assert_eq!(ring.pop(), model.pop_back()),
                Op::TakeColdest(n) => {
                    let got: Vec<Pfn> = ring.take_coldest(n).collect();
                    let want: Vec<Pfn> = (0..n.min(model.len()))
                        .map(|_| model.pop_front().unwrap())
                        .collect();
                    prop_assert_eq!(got, want);
                }
                Op::Refill { n, got } if model.is_empty() => {
                    let first = next;
                    let mut offered = 0;
                    ring.refill(n, |slice| {
                        offered = slice.len();
                        for (i, slot) in slice.iter_mut().enumerate().take(got) {
                            *slot = Pfn(first + i as u64);
                        }
                        got.min(slice.len())
                    });
                    prop_assert_eq!(offered, n.min(N));
                    for i in 0..got.min(n.min(N)) {
                        model.push_back(Pfn(first + i as u64));
                    }
                    next += got as u64;
                }
                Op::Refill { .. } => {}
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert!(ring.len() <= N);
        }
        // What is left comes back warmest first.
        while let Some(pfn) = model.pop_back() {
            prop_assert_eq!(ring.pop(), Some(pfn));
        }
        prop_assert_eq!(ring.pop(), None);
    }
}
