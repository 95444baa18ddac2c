//! Model test: the clock's lists against a plain set of evictable pages
//! with their accessed bits. Random sequences of inserts, removes, uses
//! (the hardware setting a bit) and reclaim scans must choose only pages
//! that are listed, never a page used since it was last looked at, never a
//! page the caller kept, never the same page twice; the lists' lengths add
//! up to the model's count. A page used before every scan stays active.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use vm::clock::{Clock, List, Policy, Verdict};
use vm::frame::Pfn;

const PAGES: u64 = 48;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Remove(u64),
    Use(u64),
    /// Choose up to n victims; pages in the set may not go now.
    Reclaim(usize, BTreeSet<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PAGES).prop_map(Op::Insert),
        1 => (0..PAGES).prop_map(Op::Remove),
        4 => (0..PAGES).prop_map(Op::Use),
        2 => (1..6usize, prop::collection::btree_set(0..PAGES, 0..8))
            .prop_map(|(n, kept)| Op::Reclaim(n, kept)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_clock_chooses_only_unused_listed_pages(ops in prop::collection::vec(op(), 1..300)) {
        let mut clock = Clock::new(Policy::Clock, PAGES as usize);
        // Listed pages and their accessed bits.
        let mut model: BTreeMap<u64, bool> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(p) => {
                    clock.insert(Pfn(p));
                    model.entry(p).or_insert(false);
                }
                Op::Remove(p) => {
                    clock.remove(Pfn(p));
                    model.remove(&p);
                }
                Op::Use(p) => {
                    if let Some(bit) = model.get_mut(&p) {
                        *bit = true;
                    }
                }
                Op::Reclaim(n, kept) => {
                    let mut looked_unused = BTreeSet::new();
                    let victims = {
                        let model = &mut model;
                        let looked = &mut looked_unused;
                        clock.choose(
                            n,
                            4 * PAGES as usize,
                            &mut |pfn| {
                                let bit = model.get_mut(&pfn.0).map(std::mem::take);
                                assert!(bit.is_some(), "asked about unlisted {pfn:?}");
                                if bit == Some(false) {
                                    looked.insert(pfn.0);
                                }
                                bit.unwrap_or(false)
                            },
                            &mut |pfn| {
                                if kept.contains(&pfn.0) { Verdict::Keep } else { Verdict::Evict }
                            },
                        )
                    };
                    let mut seen = BTreeSet::new();
                    for v in &victims {
                        prop_assert!(seen.insert(v.0), "{v:?} chosen twice");
                        prop_assert!(model.contains_key(&v.0), "{v:?} was not listed");
                        prop_assert!(!kept.contains(&v.0), "{v:?} was kept");
                        prop_assert!(looked_unused.contains(&v.0), "{v:?} chosen while used");
                        prop_assert!(!clock.contains(*v), "a victim is still listed");
                        model.remove(&v.0);
                    }
                }
            }
            let (active, inactive) = clock.lengths();
            prop_assert_eq!(active + inactive, model.len());
            prop_assert_eq!(clock.len(), model.len());
            for &p in model.keys() {
                prop_assert!(clock.list_of(Pfn(p)).is_some());
            }
        }
    }

    #[test]
    fn a_page_used_before_every_scan_is_never_chosen(scans in 1..40usize) {
        let mut clock = Clock::new(Policy::Clock, PAGES as usize);
        for p in 0..PAGES {
            clock.insert(Pfn(p));
        }
        let hot = Pfn(7);
        for _ in 0..scans {
            let victims = clock.choose(3, 100, &mut |pfn| pfn == hot, &mut |_| Verdict::Evict);
            prop_assert!(!victims.contains(&hot));
            for v in victims {
                clock.insert(v); // faulted straight back in
            }
        }
        // By the third scan the clock has reached it (3 victims a scan,
        // from the head), and promoted it for good.
        if scans >= 3 {
            prop_assert_eq!(clock.list_of(hot), Some(List::Active));
        }
    }
}

// The patterns (too long for miri, which runs only the unit tests).

#[test]
fn a_hot_set_survives_a_sweep() {
    // 100 frames: 40 hot pages used between every two pages of a sweep
    // through 1000 cold ones.
    let mut refs = Vec::new();
    for cold in 1000..2000 {
        refs.extend(0..40);
        refs.push(cold);
    }
    let clock = vm::clock::misses(Policy::Clock, 100, &refs);
    assert_eq!(clock, 1000 + 40, "only the first use of each page misses");
}

#[test]
fn a_loop_larger_than_memory_defeats_it() {
    let refs: Vec<u64> = (0..20).flat_map(|_| 0..120).collect();
    assert_eq!(
        vm::clock::misses(Policy::Clock, 100, &refs),
        refs.len() as u64
    );
}

/// The clock as plain queues (what the lists were before they were
/// intrusive: a page's place found by searching), for `the_lists_match_plain_queues`.
#[derive(Default)]
struct Queues {
    active: VecDeque<u64>,
    inactive: VecDeque<u64>,
}

impl Queues {
    fn list_of(&self, p: u64) -> Option<List> {
        if self.active.contains(&p) {
            Some(List::Active)
        } else if self.inactive.contains(&p) {
            Some(List::Inactive)
        } else {
            None
        }
    }

    fn remove(&mut self, p: u64) {
        self.active.retain(|&q| q != p);
        self.inactive.retain(|&q| q != p);
    }

    /// `Clock::choose`, step for step.
    fn choose(
        &mut self,
        want: usize,
        budget: usize,
        accessed: &mut dyn FnMut(u64) -> bool,
        verdict: &mut dyn FnMut(u64) -> Verdict,
    ) -> Vec<u64> {
        let mut victims = Vec::new();
        let (mut looked, mut balanced) = (0, 0);
        while victims.len() < want && looked < budget {
            let turns = self.active.len().min(budget - balanced);
            let mut moved = 0;
            while self.active.len() > self.inactive.len() && moved < turns {
                moved += 1;
                let p = self.active.pop_front().expect("longer than inactive");
                if accessed(p) {
                    self.active.push_back(p);
                } else {
                    self.inactive.push_back(p);
                }
            }
            balanced += moved;
            let Some(p) = self
                .inactive
                .pop_front()
                .or_else(|| self.active.pop_front())
            else {
                break;
            };
            looked += 1;
            if accessed(p) {
                self.active.push_back(p);
                continue;
            }
            match verdict(p) {
                Verdict::Evict => victims.push(p),
                Verdict::Keep => self.inactive.push_back(p),
                Verdict::Forget => {}
            }
        }
        victims
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The intrusive lists choose exactly what plain queues choose, in the
    /// same order, and leave every page on the same list; pages beyond the
    /// clock's frames are never tracked.
    #[test]
    fn the_lists_match_plain_queues(ops in prop::collection::vec(op(), 1..300)) {
        // The last few page numbers lie beyond the clock.
        let frames = PAGES as usize - 4;
        let mut clock = Clock::new(Policy::Clock, frames);
        let mut queues = Queues::default();
        let mut bits: BTreeMap<u64, bool> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(p) => {
                    clock.insert(Pfn(p));
                    if (p as usize) < frames && queues.list_of(p).is_none() {
                        queues.inactive.push_back(p);
                    }
                }
                Op::Remove(p) => {
                    clock.remove(Pfn(p));
                    queues.remove(p);
                }
                Op::Use(p) => {
                    bits.insert(p, true);
                }
                Op::Reclaim(n, kept) => {
                    let mut model_bits = bits.clone();
                    let verdict = |p: u64| if kept.contains(&p) { Verdict::Keep } else { Verdict::Evict };
                    let expected = queues.choose(
                        n,
                        2 * PAGES as usize,
                        &mut |p| model_bits.remove(&p).unwrap_or(false),
                        &mut |p| verdict(p),
                    );
                    let victims = clock.choose(
                        n,
                        2 * PAGES as usize,
                        &mut |pfn| bits.remove(&pfn.0).unwrap_or(false),
                        &mut |pfn| verdict(pfn.0),
                    );
                    let victims: Vec<u64> = victims.iter().map(|v| v.0).collect();
                    prop_assert_eq!(victims, expected);
                    prop_assert_eq!(&bits, &model_bits);
                }
            }
            prop_assert_eq!(clock.lengths(), (queues.active.len(), queues.inactive.len()));
            for p in 0..PAGES {
                prop_assert_eq!(clock.list_of(Pfn(p)), queues.list_of(p), "page {}", p);
            }
        }
    }
}
