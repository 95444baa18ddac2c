//! Model test: the buddy allocator against a plain "which frames are taken"
//! array. Random sequences of allocations (of every order), frees and
//! reference-count changes must never hand out overlapping, misaligned or
//! reserved frames, must keep the free counter exact, and must merge
//! everything back into maximal blocks at the end.

use proptest::prelude::*;
use vm::buddy::{FrameTable, MAX_ORDER};
use vm::frame::{FrameMeta, Pfn};

const FRAMES: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize),
    Get(usize),
    Put(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![5 => 0..3usize, 1 => 0..=MAX_ORDER].prop_map(Op::Alloc),
        3 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Put),
    ]
}

/// Usable RAM with holes, as a firmware memory map has.
fn ranges() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((0..FRAMES, 1..700u64), 1..6).prop_map(|mut v| {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn buddy_matches_the_model(ranges in ranges(), ops in prop::collection::vec(op(), 1..300)) {
        let mut meta = vec![FrameMeta::RESERVED; FRAMES as usize];
        let mut table = FrameTable::new(&mut meta, Pfn(0));
        // Model: None = reserved, Some(false) = free, Some(true) = taken.
        let mut model = vec![None; FRAMES as usize];
        for &(start, end) in &ranges {
            table.add_free_range(Pfn(start), Pfn(end));
            for f in start..end {
                model[f as usize] = Some(false);
            }
        }
        let mut live: Vec<(u64, usize, u32)> = Vec::new(); // (head, order, refcount)
        for op in ops {
            match op {
                Op::Alloc(order) => {
                    if let Some(p) = table.alloc(order) {
                        prop_assert_eq!(p.0 % (1 << order), 0, "misaligned block");
                        for f in p.0..p.0 + (1 << order) {
                            prop_assert_eq!(model[f as usize], Some(false), "frame {} handed out twice or reserved", f);
                            model[f as usize] = Some(true);
                        }
                        live.push((p.0, order, 1));
                    }
                }
                Op::Free(i) if !live.is_empty() => {
                    let (head, order, _) = live.swap_remove(i % live.len());
                    table.free(Pfn(head));
                    for f in head..head + (1 << order) {
                        model[f as usize] = Some(false);
                    }
                }
                Op::Get(i) if !live.is_empty() => {
                    let n = live.len();
                    let entry = &mut live[i % n];
                    table.get(Pfn(entry.0));
                    entry.2 += 1;
                }
                Op::Put(i) if !live.is_empty() => {
                    let index = i % live.len();
                    let (head, order, count) = live[index];
                    let freed = table.put(Pfn(head));
                    prop_assert_eq!(freed, count == 1);
                    if freed {
                        live.swap_remove(index);
                        for f in head..head + (1 << order) {
                            model[f as usize] = Some(false);
                        }
                    } else {
                        live[index].2 -= 1;
                    }
                }
                _ => {}
            }
            let model_free = model.iter().filter(|s| **s == Some(false)).count();
            prop_assert_eq!(table.free_frames(), model_free);
            for &(head, _, count) in &live {
                prop_assert_eq!(table.refcount(Pfn(head)), count);
            }
            table.verify();
        }
        for (head, _, _) in live {
            table.free(Pfn(head));
        }
        table.verify();
        let total: u64 = ranges.iter().map(|&(s, e)| e - s).sum();
        prop_assert_eq!(table.free_frames() as u64, total);
        // Fully merged: every range splits into exactly the maximal aligned
        // blocks, so allocating in descending order consumes each of them.
        for &(start, end) in &ranges {
            let mut pfn = start;
            while pfn < end {
                let mut order = (pfn.trailing_zeros() as usize).min(MAX_ORDER);
                while pfn + (1 << order) > end {
                    order -= 1;
                }
                prop_assert!(table.is_free(Pfn(pfn)));
                pfn += 1 << order;
            }
        }
    }
}
