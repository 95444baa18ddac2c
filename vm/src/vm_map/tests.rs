//! The tree's own unit tests; `tests/vm_map_model.rs` checks it against a
//! page-granular model.

use super::*;

/// A segment with a colour: neighbours of one colour merge.
#[derive(Clone, Debug, PartialEq)]
struct Seg(u64, u64, u8);

impl Segment for Seg {
    fn start(&self) -> u64 {
        self.0
    }
    fn end(&self) -> u64 {
        self.1
    }
    fn split_off(&mut self, at: u64) -> Self {
        let upper = Seg(at, self.1, self.2);
        self.1 = at;
        upper
    }
    fn can_merge(&self, next: &Self) -> bool {
        self.2 == next.2
    }
    fn merge(&mut self, next: Self) {
        self.1 = next.1;
    }
}

fn tree(segs: &[(u64, u64, u8)]) -> VmaTree<Seg> {
    let mut t = VmaTree::new();
    for &(s, e, c) in segs {
        t.insert(Seg(s, e, c)).unwrap();
    }
    t.verify();
    t
}

fn contents(t: &VmaTree<Seg>) -> Vec<(u64, u64, u8)> {
    t.iter().map(|s| (s.0, s.1, s.2)).collect()
}

#[test]
fn overlapping_insert_is_refused() {
    let mut t = tree(&[(10, 20, 0)]);
    assert_eq!(t.insert(Seg(15, 25, 1)), Err(Seg(15, 25, 1)));
    assert_eq!(t.insert(Seg(5, 11, 1)), Err(Seg(5, 11, 1)));
    assert_eq!(t.insert(Seg(0, 100, 1)), Err(Seg(0, 100, 1)));
    assert_eq!(t.insert(Seg(12, 12, 1)), Err(Seg(12, 12, 1)));
    assert_eq!(t.len(), 1);
}

#[test]
fn insert_merges_with_the_left_the_right_and_both() {
    let mut t = tree(&[(10, 20, 0), (30, 40, 0)]);
    t.insert(Seg(20, 25, 0)).unwrap();
    assert_eq!(contents(&t), [(10, 25, 0), (30, 40, 0)]);
    t.insert(Seg(27, 30, 0)).unwrap();
    assert_eq!(contents(&t), [(10, 25, 0), (27, 40, 0)]);
    t.insert(Seg(25, 27, 0)).unwrap();
    assert_eq!(contents(&t), [(10, 40, 0)]);
    t.verify();
}

#[test]
fn different_neighbours_do_not_merge() {
    let t = tree(&[(10, 20, 0), (20, 30, 1), (30, 40, 0)]);
    assert_eq!(t.len(), 3);
}

#[test]
fn remove_range_splits_a_segment_in_three() {
    let mut t = tree(&[(10, 40, 0)]);
    let taken = t.remove_range(20, 30);
    assert_eq!(taken, [Seg(20, 30, 0)]);
    assert_eq!(contents(&t), [(10, 20, 0), (30, 40, 0)]);
    t.verify();
}

#[test]
fn remove_range_clips_both_edges_and_takes_the_middle() {
    let mut t = tree(&[(10, 20, 0), (20, 30, 1), (30, 40, 2), (50, 60, 3)]);
    let taken = t.remove_range(15, 35);
    assert_eq!(taken, [Seg(15, 20, 0), Seg(20, 30, 1), Seg(30, 35, 2)]);
    assert_eq!(contents(&t), [(10, 15, 0), (35, 40, 2), (50, 60, 3)]);
    assert!(t.remove_range(40, 50).is_empty());
    t.verify();
}

#[test]
fn update_range_splits_then_merges_back() {
    let mut t = tree(&[(10, 40, 0)]);
    t.update_range(20, 30, |s| s.2 = 1);
    assert_eq!(contents(&t), [(10, 20, 0), (20, 30, 1), (30, 40, 0)]);
    t.update_range(20, 30, |s| s.2 = 0);
    assert_eq!(contents(&t), [(10, 40, 0)]);
    t.update_range(0, 100, |s| s.2 = 7);
    assert_eq!(contents(&t), [(10, 40, 7)]);
    t.verify();
}

#[test]
fn find_and_range() {
    let t = tree(&[(10, 20, 0), (30, 40, 1), (50, 60, 2)]);
    assert_eq!(t.find(10), Some(&Seg(10, 20, 0)));
    assert_eq!(t.find(19), Some(&Seg(10, 20, 0)));
    assert_eq!(t.find(20), None);
    assert_eq!(t.find(59), Some(&Seg(50, 60, 2)));
    let r: Vec<_> = t.range(15, 51).map(|s| s.0).collect();
    assert_eq!(r, [10, 30, 50]);
    assert_eq!(t.range(20, 30).count(), 0);
    assert_eq!(t.range(40, 50).count(), 0);
    assert_eq!(t.range(39, 40).count(), 1);
}

#[test]
fn find_free_both_ways_with_alignment() {
    let t = tree(&[
        (0x1000, 0x3000, 0),
        (0x5000, 0x8000, 1),
        (0x20000, 0x21000, 2),
    ]);
    // Gaps: [0, 0x1000) [0x3000, 0x5000) [0x8000, 0x20000) [0x21000, hi).
    assert_eq!(
        t.find_free_top_down(0, 0x30000, 0x1000, 0x1000),
        Some(0x2f000)
    );
    assert_eq!(
        t.find_free_top_down(0, 0x20000, 0x2000, 0x1000),
        Some(0x1e000)
    );
    assert_eq!(
        t.find_free_top_down(0, 0x8000, 0x2000, 0x1000),
        Some(0x3000)
    );
    assert_eq!(t.find_free_top_down(0, 0x8000, 0x3000, 0x1000), None);
    assert_eq!(t.find_free(0, 0x30000, 0x1000, 0x1000), Some(0));
    assert_eq!(t.find_free(0x1000, 0x30000, 0x2000, 0x1000), Some(0x3000));
    assert_eq!(t.find_free(0x1000, 0x30000, 0x3000, 0x1000), Some(0x8000));
    assert_eq!(t.find_free(0x1000, 0x30000, 0x1000, 0x10000), Some(0x10000));
    assert_eq!(
        t.find_free_top_down(0, 0x30000, 0x1000, 0x10000),
        Some(0x10000)
    );
    assert_eq!(
        tree(&[]).find_free_top_down(0x1000, 0x9000, 0x1000, 0x1000),
        Some(0x8000)
    );
}

#[test]
fn a_thousand_inserts_stay_balanced() {
    let mut t = VmaTree::new();
    for i in 0..1000u64 {
        // Scatter the order so that every rotation case happens.
        let k = (i * 7919) % 1000;
        t.insert(Seg(k * 0x2000, k * 0x2000 + 0x1000, (k % 3) as u8))
            .unwrap();
    }
    t.verify();
    assert_eq!(t.len(), 1000);
    assert!(
        t.root.as_ref().unwrap().height <= 15,
        "height {}",
        t.root.as_ref().unwrap().height
    );
    for k in (0..1000u64).step_by(2) {
        t.remove_range(k * 0x2000, k * 0x2000 + 0x1000);
    }
    t.verify();
    assert_eq!(t.len(), 500);
}

#[test]
fn from_sorted_builds_what_inserts_build() {
    // Runs of segments of every length up to 40, adjacent or not, some of
    // one colour (they merge): the same contents as one insert each, and a
    // tree that passes `verify` (balance, augmented fields, no neighbours
    // left unmerged).
    let mut seed = 7u64;
    for n in 0..40 {
        let mut segs = Vec::new();
        let mut at = 0;
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            at += (seed >> 33) % 3 * 10;
            let len = 10 + (seed >> 40) % 3 * 10;
            segs.push((at, at + len, ((seed >> 50) % 2) as u8));
            at += len;
        }
        let built = VmaTree::from_sorted(segs.iter().map(|&(s, e, c)| Seg(s, e, c))).unwrap();
        built.verify();
        assert_eq!(contents(&built), contents(&tree(&segs)), "{segs:?}");
        assert_eq!(built.len(), tree(&segs).len());
    }
}

#[test]
fn from_sorted_refuses_overlaps_and_disorder() {
    let overlap = [Seg(10, 20, 0), Seg(15, 30, 1)];
    assert!(VmaTree::from_sorted(overlap).is_none());
    let backwards = [Seg(30, 40, 0), Seg(10, 20, 1)];
    assert!(VmaTree::from_sorted(backwards).is_none());
    let empty = [Seg(10, 10, 0)];
    assert!(VmaTree::from_sorted(empty).is_none());
}
