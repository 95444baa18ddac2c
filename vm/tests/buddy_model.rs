//! Model test: the buddy allocator against a plain array saying, for every
//! frame, whether it is reserved, free or taken. Random sequences of
//! allocations (of every order, and single frames many at once:
//! `alloc_frames`), frees (one at a time, and single frames many at once:
//! `put_frames`) and reference-count changes must
//! never hand out overlapping, misaligned or reserved frames, must keep the
//! counters exact, and must merge everything back into maximal blocks at
//! the end. The table starts at a random, usually unaligned, frame number so
//! that blocks at its edges have buddies outside it.

use proptest::prelude::*;
use vm::buddy::{FrameTable, MAX_ORDER, new_counts};
use vm::frame::{FrameMeta, Pfn};

const FRAMES: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Reserved,
    Free,
    Taken,
}

/// An allocated block as the test remembers it.
struct Live {
    head: u64,
    order: usize,
    refs: u32,
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
    Get(usize),
    Put(usize),
    /// `put_frames` on up to this many single frames, from this index on.
    PutFrames(usize, usize),
    /// `alloc_frames` of this many single frames.
    AllocFrames(usize),
}

/// Mostly small orders, as a kernel asks for, but every order now and then.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![6 => 0..3usize, 1 => 0..=MAX_ORDER].prop_map(Op::Alloc),
        3 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Put),
        1 => (any::<usize>(), 1..40usize).prop_map(|(i, n)| Op::PutFrames(i, n)),
        1 => (1..40usize).prop_map(Op::AllocFrames),
    ]
}

/// Usable RAM as table-relative ranges with holes between them, as a
/// firmware memory map has.
fn ranges() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((0..FRAMES, 1..1500u64), 1..6).prop_map(|mut v| {
        v.sort();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (start, len) in v {
            let start = out.last().map_or(start, |&(_, end)| start.max(end + 1));
            let end = (start + len).min(FRAMES);
            if start < end {
                out.push((start, end));
            }
        }
        out
    })
}

/// The largest naturally aligned blocks that tile [start, end): what a
/// fully merged allocator must hold for a range with reserved frames (or
/// the table's edge) on both sides.
fn maximal_blocks(start: u64, end: u64) -> Vec<(u64, usize)> {
    let mut blocks = Vec::new();
    let mut pfn = start;
    while pfn < end {
        let order = (0..=MAX_ORDER)
            .rev()
            .find(|&o| pfn.is_multiple_of(1 << o) && pfn + (1 << o) <= end)
            .unwrap();
        blocks.push((pfn, order));
        pfn += 1 << order;
    }
    blocks
}

/// Mark a block's frames in the model, checking each was in state `from`.
fn mark(model: &mut [State], base: u64, head: u64, order: usize, from: State, to: State) {
    for f in head..head + (1 << order) {
        let state = &mut model[(f - base) as usize];
        assert_eq!(
            *state, from,
            "frame {f:#x} was {state:?}, expected {from:?}"
        );
        *state = to;
    }
}

proptest! {
    #![proptest_config(cases(96))]
    #[test]
    fn buddy_matches_the_model(
        base in 0..3 * 1024u64,
        ranges in ranges(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let mut meta = vec![FrameMeta::RESERVED; FRAMES as usize];
        let counts = new_counts(FRAMES as usize);
        let mut table = FrameTable::new(&mut meta, &counts, Pfn(base));
        let mut model = vec![State::Reserved; FRAMES as usize];
        let ranges: Vec<_> = ranges.iter().map(|&(s, e)| (base + s, base + e)).collect();
        for &(start, end) in &ranges {
            table.add_free_range(Pfn(start), Pfn(end));
            for f in start..end {
                model[(f - base) as usize] = State::Free;
            }
        }
        let total: u64 = ranges.iter().map(|&(s, e)| e - s).sum();
        prop_assert_eq!(table.total_frames() as u64, total);
        table.verify();

        let mut live: Vec<Live> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(order) => match table.alloc(order) {
                    Some(p) => {
                        prop_assert_eq!(p.0 % (1 << order), 0, "misaligned order-{} block", order);
                        mark(&mut model, base, p.0, order, State::Free, State::Taken);
                        live.push(Live { head: p.0, order, refs: 1 });
                    }
                    // Allowed only if no free run of that size and alignment exists.
                    None => prop_assert!(table.largest_free_order() < Some(order)),
                },
                Op::Free(i) if !live.is_empty() => {
                    let block = live.swap_remove(i % live.len());
                    table.free(Pfn(block.head));
                    mark(&mut model, base, block.head, block.order, State::Taken, State::Free);
                }
                Op::Get(i) if !live.is_empty() => {
                    let n = live.len();
                    let block = &mut live[i % n];
                    table.get(Pfn(block.head));
                    block.refs += 1;
                }
                Op::Put(i) if !live.is_empty() => {
                    let index = i % live.len();
                    let freed = table.put(Pfn(live[index].head));
                    live[index].refs -= 1;
                    prop_assert_eq!(freed, live[index].refs == 0);
                    if freed {
                        let block = live.swap_remove(index);
                        mark(&mut model, base, block.head, block.order, State::Taken, State::Free);
                    }
                }
                Op::AllocFrames(n) => {
                    let mut out = vec![Pfn(0); n];
                    let free_before = table.free_frames();
                    let got = table.alloc_frames(&mut out);
                    // Short only when nothing is left.
                    prop_assert_eq!(got, n.min(free_before));
                    for &p in &out[..got] {
                        mark(&mut model, base, p.0, 0, State::Free, State::Taken);
                        live.push(Live { head: p.0, order: 0, refs: 1 });
                    }
                }
                Op::PutFrames(i, n) if !live.is_empty() => {
                    // Single frames only, as munmap gives back.
                    let from = i % live.len();
                    let picked: Vec<usize> = (from..live.len())
                        .filter(|&k| live[k].order == 0)
                        .take(n)
                        .collect();
                    let mut heads: Vec<Pfn> = picked.iter().map(|&k| Pfn(live[k].head)).collect();
                    let freed = table.put_frames(&mut heads);
                    let mut expect = Vec::new();
                    // From the back, so that `swap_remove` moves only
                    // blocks already looked at.
                    for &k in picked.iter().rev() {
                        live[k].refs -= 1;
                        if live[k].refs == 0 {
                            let block = live.swap_remove(k);
                            expect.push(block.head);
                            mark(&mut model, base, block.head, 0, State::Taken, State::Free);
                        }
                    }
                    expect.sort();
                    let got: Vec<u64> = heads[..freed].iter().map(|p| p.0).collect();
                    prop_assert_eq!(got, expect, "the frames freed, sorted");
                }
                _ => {}
            }
            table.verify();
            let model_free = model.iter().filter(|&&s| s == State::Free).count();
            prop_assert_eq!(table.free_frames(), model_free);
            for (i, &state) in model.iter().enumerate() {
                let pfn = Pfn(base + i as u64);
                prop_assert_eq!(table.is_free(pfn), state == State::Free, "{:?}", pfn);
            }
            for block in &live {
                prop_assert_eq!(table.refcount(Pfn(block.head)), block.refs);
            }
        }

        for block in live {
            table.free(Pfn(block.head));
        }
        table.verify();
        prop_assert_eq!(table.free_frames() as u64, total);
        // Fully merged: the free lists hold exactly the maximal blocks.
        let mut expected: Vec<_> = ranges.iter().flat_map(|&(s, e)| maximal_blocks(s, e)).collect();
        let mut listed: Vec<_> = (0..=MAX_ORDER)
            .flat_map(|order| table.free_blocks(order).map(move |p| (p.0, order)))
            .collect();
        expected.sort();
        listed.sort();
        prop_assert_eq!(listed, expected);
    }
}

proptest! {
    #![proptest_config(cases(96))]
    /// `alloc_frames(n)` takes the frames `n` calls of `alloc(0)` take and
    /// leaves the same free blocks, whatever the table looked like.
    #[test]
    fn alloc_frames_takes_what_alloc_0_takes(
        base in 0..3 * 1024u64,
        ranges in ranges(),
        before in prop::collection::vec((0..4usize, any::<bool>()), 0..60),
        n in 1..70usize,
    ) {
        let (mut meta_a, mut meta_b) = (vec![FrameMeta::RESERVED; FRAMES as usize], vec![FrameMeta::RESERVED; FRAMES as usize]);
        let (counts_a, counts_b) = (new_counts(FRAMES as usize), new_counts(FRAMES as usize));
        let mut a = FrameTable::new(&mut meta_a, &counts_a, Pfn(base));
        let mut b = FrameTable::new(&mut meta_b, &counts_b, Pfn(base));
        for &(s, e) in &ranges {
            a.add_free_range(Pfn(base + s), Pfn(base + e));
            b.add_free_range(Pfn(base + s), Pfn(base + e));
        }
        // The same history on both: some blocks taken, some of them freed.
        let mut held = Vec::new();
        for (order, free_one) in before {
            if let (Some(x), Some(y)) = (a.alloc(order), b.alloc(order)) {
                prop_assert_eq!(x, y);
                held.push(x);
            }
            if free_one && held.len() > 1 {
                let x = held.swap_remove(held.len() / 2);
                a.free(x);
                b.free(x);
            }
        }
        let mut one_by_one: Vec<Pfn> = (0..n).map_while(|_| a.alloc(0)).collect();
        let mut out = vec![Pfn(0); n];
        let got = b.alloc_frames(&mut out);
        let mut at_once = out[..got].to_vec();
        one_by_one.sort();
        at_once.sort();
        prop_assert_eq!(at_once, one_by_one);
        for order in 0..=MAX_ORDER {
            let mut left_a: Vec<Pfn> = a.free_blocks(order).collect();
            let mut left_b: Vec<Pfn> = b.free_blocks(order).collect();
            left_a.sort();
            left_b.sort();
            prop_assert_eq!(left_b, left_a, "order {}", order);
        }
        b.verify();
    }
}

/// `n` proptest cases, unless PROPTEST_CASES says otherwise (`make
/// miri-short` runs a handful under Miri, where each case is slow).
fn cases(n: u32) -> ProptestConfig {
    let from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok());
    ProptestConfig::with_cases(from_env.unwrap_or(n))
}
