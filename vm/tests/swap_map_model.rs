//! Model test: the swap map against a plain array of counts. Random
//! sequences of allocations, dups and frees over devices with random sizes
//! and bad pages must hand out only free, usable slots, say None exactly
//! when nothing is free, keep every count and the totals exact, and place
//! a run of allocations in consecutive slots while a free cluster exists.

use proptest::prelude::*;
use vm::swap_map::{CLUSTER, MAX_COUNT, Slot, SwapMap};

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    /// Index into the taken slots (modulo their number).
    Dup(usize),
    Free(usize),
    /// Free every holder of a taken slot.
    FreeAll(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Alloc),
        1 => any::<usize>().prop_map(Op::Dup),
        3 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::FreeAll),
    ]
}

/// A device: its last page, and bad pages within 1..=last_page.
fn device() -> impl Strategy<Value = (u32, Vec<u32>)> {
    (1..6 * CLUSTER).prop_flat_map(|last| {
        (
            Just(last),
            prop::collection::btree_set(1..=last, 0..=(last as usize / 4).min(20))
                .prop_map(|s| s.into_iter().collect()),
        )
    })
}

struct Model {
    counts: Vec<u16>,
    usable: Vec<bool>,
}

impl Model {
    fn taken(&self) -> Vec<u32> {
        (0..self.counts.len() as u32)
            .filter(|&s| self.counts[s as usize] > 0)
            .collect()
    }

    fn free_usable(&self) -> usize {
        (0..self.counts.len())
            .filter(|&s| self.usable[s] && self.counts[s] == 0)
            .count()
    }
}

fn check(map: &SwapMap, model: &Model) -> Result<(), TestCaseError> {
    let used = model.counts.iter().filter(|&&n| n > 0).count() as u32;
    prop_assert_eq!(map.used(), used);
    prop_assert_eq!(map.free_slots() as usize, model.free_usable());
    for (s, &n) in model.counts.iter().enumerate() {
        prop_assert_eq!(map.count(Slot(s as u32)), n, "slot {}", s);
    }
    Ok(())
}

proptest! {
    #[test]
    fn swap_map_matches_the_model((last, bad) in device(), ops in prop::collection::vec(op(), 1..400)) {
        let mut map = SwapMap::new(last, &bad);
        let pages = last as usize + 1;
        let mut usable = vec![true; pages];
        usable[0] = false;
        for &b in &bad {
            usable[b as usize] = false;
        }
        let mut model = Model { counts: vec![0; pages], usable };
        prop_assert_eq!(map.usable() as usize, model.free_usable());
        for op in ops {
            let taken = model.taken();
            match op {
                Op::Alloc => match map.alloc() {
                    Some(Slot(s)) => {
                        prop_assert!((s as usize) < pages, "slot {} past the device", s);
                        prop_assert!(model.usable[s as usize], "unusable slot {} handed out", s);
                        prop_assert_eq!(model.counts[s as usize], 0, "taken slot {} handed out", s);
                        model.counts[s as usize] = 1;
                    }
                    None => prop_assert_eq!(model.free_usable(), 0, "None with free slots"),
                },
                Op::Dup(i) if !taken.is_empty() => {
                    let s = taken[i % taken.len()];
                    let n = &mut model.counts[s as usize];
                    let result = map.dup(Slot(s));
                    if *n == MAX_COUNT {
                        prop_assert!(result.is_err());
                    } else {
                        *n += 1;
                        prop_assert_eq!(result, Ok(*n));
                    }
                }
                Op::Free(i) if !taken.is_empty() => {
                    let s = taken[i % taken.len()];
                    model.counts[s as usize] -= 1;
                    prop_assert_eq!(map.free(Slot(s)), model.counts[s as usize]);
                }
                Op::FreeAll(i) if !taken.is_empty() => {
                    let s = taken[i % taken.len()];
                    while model.counts[s as usize] > 0 {
                        model.counts[s as usize] -= 1;
                        map.free(Slot(s));
                    }
                }
                _ => {}
            }
            check(&map, &model)?;
        }
        // Everything freed: every usable slot can be taken again.
        for s in model.taken() {
            while model.counts[s as usize] > 0 {
                model.counts[s as usize] -= 1;
                map.free(Slot(s));
            }
        }
        prop_assert_eq!(map.used(), 0);
        let again = core::iter::from_fn(|| map.alloc()).count();
        prop_assert_eq!(again, map.usable() as usize);
    }

    /// On a fresh device, n allocations take the first n usable slots in
    /// order: page-outs in a row land in consecutive slots.
    #[test]
    fn a_fresh_device_fills_in_disk_order((last, bad) in device(), n in 1..6 * CLUSTER as usize) {
        let mut map = SwapMap::new(last, &bad);
        let got: Vec<u32> = (0..n).map_while(|_| map.alloc()).map(|s| s.0).collect();
        let want: Vec<u32> = (1..=last).filter(|s| !bad.contains(s)).take(n).collect();
        prop_assert_eq!(got, want);
    }

    /// After frees, a run of allocations still lands in one cluster at a
    /// time as long as an empty cluster is left: no run is spread over
    /// holes while whole clusters are free.
    #[test]
    fn runs_fill_an_empty_cluster_before_holes(frees in prop::collection::btree_set(1..2 * CLUSTER, 1..40)) {
        let mut map = SwapMap::new(8 * CLUSTER - 1, &[]);
        for _ in 1..2 * CLUSTER {
            map.alloc().unwrap();
        }
        for &s in &frees {
            map.free(Slot(s));
        }
        // Cluster 1 is being filled (it is full: the next alloc retires it),
        // clusters 2..8 are empty: the holes wait until those are gone.
        let run: Vec<u32> = (0..6 * CLUSTER).map(|_| map.alloc().unwrap().0).collect();
        let want: Vec<u32> = (2 * CLUSTER..8 * CLUSTER).collect();
        prop_assert_eq!(run, want);
        let holes: Vec<u32> = core::iter::from_fn(|| map.alloc()).map(|s| s.0).collect();
        prop_assert_eq!(holes, frees.into_iter().collect::<Vec<_>>());
    }
}
