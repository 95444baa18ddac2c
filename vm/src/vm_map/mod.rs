//! The VMA tree: an AVL tree of non-overlapping segments keyed by start
//! address, augmented so that finding a free gap is as cheap as a lookup.
//!
//! Every node also records, for its whole subtree, the lowest start, the
//! highest end and the widest gap *between* two of its segments. A gap in
//! the address space is exactly an empty child link of the tree (the gap
//! between a node and its in-order neighbour), so a search for "a free
//! range of `size` bytes" can skip every subtree whose widest gap is too
//! small and only walks down towards one that fits: O(log n), as Linux's
//! `rb_subtree_gap` and FreeBSD's `max_free` do it.
//!
//! The tree knows nothing about memory: it stores anything that is a
//! `Segment`, which lets the host tests drive it with a tiny segment type
//! and a page-granular model (`tests/vm_map_model.rs`).

use alloc::boxed::Box;
use alloc::vec::Vec;

mod search;
#[cfg(test)]
mod tests;

/// A half-open range [start, end) that the tree can split and merge.
pub trait Segment: Sized {
    fn start(&self) -> u64;
    fn end(&self) -> u64;
    /// Cut `self` at `at` (strictly inside it): `self` keeps the lower part,
    /// the upper part is returned.
    fn split_off(&mut self, at: u64) -> Self;
    /// Whether `next`, which starts where `self` ends, could be one segment with it.
    fn can_merge(&self, next: &Self) -> bool;
    /// Absorb `next` (for which `can_merge` said yes).
    fn merge(&mut self, next: Self);
}

/// Segment bounds are multiples of this (a page), which is what lets the
/// free-range search know how wide a gap must be to hold an aligned range.
pub const GRANULE: u64 = 4096;

type Link<T> = Option<Box<Node<T>>>;

struct Node<T> {
    seg: T,
    left: Link<T>,
    right: Link<T>,
    height: u8,
    /// Lowest start and highest end of the subtree's segments.
    min_start: u64,
    max_end: u64,
    /// Widest gap between two consecutive segments of the subtree.
    max_gap: u64,
}

fn height<T>(link: &Link<T>) -> u8 {
    link.as_ref().map_or(0, |n| n.height)
}

impl<T: Segment> Node<T> {
    fn leaf(seg: T) -> Box<Self> {
        let (min_start, max_end) = (seg.start(), seg.end());
        Box::new(Node {
            seg,
            left: None,
            right: None,
            height: 1,
            min_start,
            max_end,
            max_gap: 0,
        })
    }

    /// Recompute the augmented fields from the children's: the only place
    /// they are written, called on every node whose children changed.
    fn update(&mut self) {
        self.height = 1 + height(&self.left).max(height(&self.right));
        self.min_start = self.left.as_ref().map_or(self.seg.start(), |l| l.min_start);
        self.max_end = self.right.as_ref().map_or(self.seg.end(), |r| r.max_end);
        let mut gap = 0;
        if let Some(l) = &self.left {
            gap = l.max_gap.max(self.seg.start() - l.max_end);
        }
        if let Some(r) = &self.right {
            gap = gap.max(r.max_gap).max(r.min_start - self.seg.end());
        }
        self.max_gap = gap;
    }

    fn balance_factor(&self) -> i32 {
        i32::from(height(&self.left)) - i32::from(height(&self.right))
    }
}

fn rotate_right<T: Segment>(mut n: Box<Node<T>>) -> Box<Node<T>> {
    let mut l = n
        .left
        .take()
        .expect("vm_map: rotate_right without a left child");
    n.left = l.right.take();
    n.update();
    l.right = Some(n);
    l.update();
    l
}

fn rotate_left<T: Segment>(mut n: Box<Node<T>>) -> Box<Node<T>> {
    let mut r = n
        .right
        .take()
        .expect("vm_map: rotate_left without a right child");
    n.right = r.left.take();
    n.update();
    r.left = Some(n);
    r.update();
    r
}

/// Restore the AVL property at `n` (children already balanced, heights
/// differing by at most 2) and refresh its augmented fields.
fn rebalance<T: Segment>(mut n: Box<Node<T>>) -> Box<Node<T>> {
    n.update();
    let bf = n.balance_factor();
    if bf > 1 {
        if n.left.as_ref().is_some_and(|l| l.balance_factor() < 0) {
            n.left = n.left.take().map(rotate_left);
        }
        return rotate_right(n);
    }
    if bf < -1 {
        if n.right.as_ref().is_some_and(|r| r.balance_factor() > 0) {
            n.right = n.right.take().map(rotate_right);
        }
        return rotate_left(n);
    }
    n
}

fn insert_node<T: Segment>(link: Link<T>, seg: T) -> Box<Node<T>> {
    let Some(mut n) = link else {
        return Node::leaf(seg);
    };
    if seg.start() < n.seg.start() {
        n.left = Some(insert_node(n.left.take(), seg));
    } else {
        n.right = Some(insert_node(n.right.take(), seg));
    }
    rebalance(n)
}

/// A balanced subtree of the next `n` segments of `segs` (in order): the
/// first half on the left, the middle one at the root, the rest on the
/// right. Subtree sizes differ by at most one, so heights do too.
fn build_balanced<T: Segment>(segs: &mut impl Iterator<Item = T>, n: usize) -> Link<T> {
    if n == 0 {
        return None;
    }
    let left = build_balanced(segs, n / 2);
    let mut node = Node::leaf(segs.next().expect("vm_map: fewer segments than counted"));
    node.left = left;
    node.right = build_balanced(segs, n - n / 2 - 1);
    node.update();
    Some(node)
}

/// Remove the segment starting exactly at `start`, if any.
fn remove_node<T: Segment>(link: Link<T>, start: u64, removed: &mut Option<T>) -> Link<T> {
    let mut n = link?;
    if start < n.seg.start() {
        n.left = remove_node(n.left.take(), start, removed);
    } else if start > n.seg.start() {
        n.right = remove_node(n.right.take(), start, removed);
    } else {
        let Node {
            seg, left, right, ..
        } = *n;
        *removed = Some(seg);
        return match (left, right) {
            (None, child) | (child, None) => child,
            (Some(left), Some(right)) => {
                // Replace the node by its in-order successor.
                let (right, mut successor) = remove_min(right);
                successor.left = Some(left);
                successor.right = right;
                Some(rebalance(successor))
            }
        };
    }
    Some(rebalance(n))
}

fn remove_min<T: Segment>(mut n: Box<Node<T>>) -> (Link<T>, Box<Node<T>>) {
    match n.left.take() {
        None => (n.right.take(), n),
        Some(left) => {
            let (left, min) = remove_min(left);
            n.left = left;
            (Some(rebalance(n)), min)
        }
    }
}

/// The tree. Segments never overlap; `insert` merges a segment with equal
/// neighbours, so the tree holds as few segments as the contents allow.
pub struct VmaTree<T> {
    root: Link<T>,
    len: usize,
}

impl<T: Segment> Default for VmaTree<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Segment> VmaTree<T> {
    pub const fn new() -> Self {
        VmaTree { root: None, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&T> {
        let mut cur = self.root.as_deref();
        while let Some(n) = cur {
            if addr < n.seg.start() {
                cur = n.left.as_deref();
            } else if addr >= n.seg.end() {
                cur = n.right.as_deref();
            } else {
                return Some(&n.seg);
            }
        }
        None
    }

    /// The segment containing `addr`, to change in place: the caller must
    /// not move its bounds.
    fn find_mut(&mut self, addr: u64) -> Option<&mut T> {
        let mut cur = self.root.as_deref_mut();
        while let Some(n) = cur {
            if addr < n.seg.start() {
                cur = n.left.as_deref_mut();
            } else if addr >= n.seg.end() {
                cur = n.right.as_deref_mut();
            } else {
                return Some(&mut n.seg);
            }
        }
        None
    }

    /// Every segment, in address order.
    pub fn iter(&self) -> Range<'_, T> {
        self.range(0, u64::MAX)
    }

    /// The segments overlapping [start, end), in address order.
    pub fn range(&self, start: u64, end: u64) -> Range<'_, T> {
        let mut range = Range {
            stack: [None; MAX_HEIGHT],
            depth: 0,
            end,
        };
        // An empty range overlaps nothing, not even the segment around it.
        let mut cur = if start < end {
            self.root.as_deref()
        } else {
            None
        };
        while let Some(n) = cur {
            if n.seg.end() > start {
                range.push(n);
                cur = n.left.as_deref();
            } else {
                cur = n.right.as_deref();
            }
        }
        range
    }

    /// A tree of `segs`, which come in address order without overlapping
    /// (another tree's segments, as fork copies them), neighbours merged
    /// as `insert` would: built balanced in O(n), not by n inserts. None
    /// if they overlap or are out of order (or one is empty).
    pub fn from_sorted(segs: impl IntoIterator<Item = T>) -> Option<Self> {
        let mut merged: Vec<T> = Vec::new();
        for seg in segs {
            if seg.start() >= seg.end() {
                return None;
            }
            match merged.last_mut() {
                Some(prev) if prev.end() > seg.start() => return None,
                Some(prev) if prev.end() == seg.start() && prev.can_merge(&seg) => prev.merge(seg),
                _ => merged.push(seg),
            }
        }
        let len = merged.len();
        let root = build_balanced(&mut merged.into_iter(), len);
        Some(VmaTree { root, len })
    }

    /// Add `seg`, merging it with neighbours that `can_merge`. Refused (and
    /// handed back) if it overlaps a segment already there.
    pub fn insert(&mut self, mut seg: T) -> Result<(), T> {
        if seg.start() >= seg.end() || self.range(seg.start(), seg.end()).next().is_some() {
            return Err(seg);
        }
        if let Some(prev) = seg.start().checked_sub(1).and_then(|a| self.find(a))
            && prev.end() == seg.start()
            && prev.can_merge(&seg)
        {
            let prev_start = prev.start();
            let mut prev = self.remove_exact(prev_start);
            prev.merge(seg);
            seg = prev;
        }
        if let Some(next) = self.find(seg.end())
            && next.start() == seg.end()
            && seg.can_merge(next)
        {
            let next_start = next.start();
            let next = self.remove_exact(next_start);
            seg.merge(next);
        }
        self.insert_raw(seg);
        Ok(())
    }

    /// Insert without looking for neighbours to merge (the caller knows).
    fn insert_raw(&mut self, seg: T) {
        self.root = Some(insert_node(self.root.take(), seg));
        self.len += 1;
    }

    fn remove_exact(&mut self, start: u64) -> T {
        let mut removed = None;
        self.root = remove_node(self.root.take(), start, &mut removed);
        self.len -= 1;
        removed.expect("vm_map: no segment starts there")
    }

    /// Take the lowest segment out of the tree (emptying a tree this way
    /// allocates nothing, which matters when the kernel tears down a
    /// process because memory ran out).
    pub fn pop_first(&mut self) -> Option<T> {
        let (rest, min) = remove_min(self.root.take()?);
        self.root = rest;
        self.len -= 1;
        Some(min.seg)
    }

    /// Take [start, end) out of the tree and return what was there, in
    /// address order; segments straddling an edge are split at it and keep
    /// their outside part in the tree.
    pub fn remove_range(&mut self, start: u64, end: u64) -> Vec<T> {
        let mut taken = Vec::new();
        while let Some(first) = self.range(start, end).next() {
            let first_start = first.start();
            let mut seg = self.remove_exact(first_start);
            if seg.start() < start {
                let upper = seg.split_off(start);
                self.insert_raw(seg);
                seg = upper;
            }
            if seg.end() > end {
                let rest = seg.split_off(end);
                self.insert_raw(rest);
            }
            taken.push(seg);
        }
        taken
    }

    /// Apply `f` to the part of every segment inside [start, end), splitting
    /// at the edges first and merging whatever has become equal afterwards.
    /// `f` must not move a segment's bounds.
    pub fn update_range(&mut self, start: u64, end: u64, mut f: impl FnMut(&mut T)) {
        // The common case (mprotect of a whole mapping): change it in place,
        // unless it may now merge with a neighbour. Saves a removal and an
        // insertion, each a rebalancing and a node freed or allocated.
        if let Some(seg) = self.find_mut(start)
            && seg.start() == start
            && seg.end() == end
        {
            f(seg);
            let merges_left = start
                .checked_sub(1)
                .and_then(|a| self.find(a))
                .is_some_and(|prev| {
                    prev.end() == start && self.find(start).is_some_and(|s| prev.can_merge(s))
                });
            let merges_right = self.find(end).is_some_and(|next| {
                next.start() == end && self.find(start).is_some_and(|s| s.can_merge(next))
            });
            if merges_left || merges_right {
                let seg = self.remove_exact(start);
                let inserted = self.insert(seg);
                debug_assert!(inserted.is_ok(), "vm_map::update_range: f moved a segment");
            }
            return;
        }
        for mut seg in self.remove_range(start, end) {
            f(&mut seg);
            let inserted = self.insert(seg);
            debug_assert!(inserted.is_ok(), "vm_map::update_range: f moved a segment");
        }
    }

    /// Check every invariant; panics with the first one broken. Tests call
    /// it after each step, debug kernels after each change.
    pub fn verify(&self) {
        let count = verify_node(self.root.as_deref());
        assert_eq!(
            count, self.len,
            "vm_map: len {} but {} nodes",
            self.len, count
        );
        let mut prev: Option<&T> = None;
        for seg in self.iter() {
            if let Some(p) = prev {
                assert!(
                    p.end() <= seg.start(),
                    "vm_map: {:#x}..{:#x} overlaps the next segment",
                    p.start(),
                    p.end()
                );
                assert!(
                    p.end() < seg.start() || !p.can_merge(seg),
                    "vm_map: mergeable neighbours left apart at {:#x}",
                    seg.start()
                );
            }
            prev = Some(seg);
        }
    }
}

/// Check a subtree's order, balance and augmented fields; returns its size.
fn verify_node<T: Segment>(link: Option<&Node<T>>) -> usize {
    let Some(n) = link else { return 0 };
    assert!(
        n.seg.start() < n.seg.end(),
        "vm_map: empty segment at {:#x}",
        n.seg.start()
    );
    let count = 1 + verify_node(n.left.as_deref()) + verify_node(n.right.as_deref());
    if let Some(l) = &n.left {
        assert!(
            l.max_end <= n.seg.start(),
            "vm_map: left subtree not below {:#x}",
            n.seg.start()
        );
    }
    if let Some(r) = &n.right {
        assert!(
            r.min_start >= n.seg.end(),
            "vm_map: right subtree not above {:#x}",
            n.seg.end()
        );
    }
    assert!(
        n.balance_factor().abs() <= 1,
        "vm_map: unbalanced at {:#x}",
        n.seg.start()
    );
    let left_gap = n
        .left
        .as_ref()
        .map_or(0, |l| l.max_gap.max(n.seg.start() - l.max_end));
    let right_gap = n
        .right
        .as_ref()
        .map_or(0, |r| r.max_gap.max(r.min_start - n.seg.end()));
    let fresh = (
        1 + height(&n.left).max(height(&n.right)),
        n.left.as_ref().map_or(n.seg.start(), |l| l.min_start),
        n.right.as_ref().map_or(n.seg.end(), |r| r.max_end),
        left_gap.max(right_gap),
    );
    assert_eq!(
        (n.height, n.min_start, n.max_end, n.max_gap),
        fresh,
        "vm_map: stale augmentation at {:#x}",
        n.seg.start()
    );
    count
}

/// An AVL tree of height h holds at least Fib(h + 2) - 1 nodes, so 64
/// levels would need more nodes than a 64-bit address space has pages:
/// a walk's stack never holds more.
const MAX_HEIGHT: usize = 64;

/// In-order iterator over the segments overlapping a range. Its stack is
/// an array, not a vector: every memory syscall walks a range or two, and
/// a heap allocation each time showed up in the benchmark.
pub struct Range<'a, T> {
    /// The nodes still to visit, the next one on top (a threaded walk).
    stack: [Option<&'a Node<T>>; MAX_HEIGHT],
    depth: usize,
    end: u64,
}

impl<'a, T> Range<'a, T> {
    fn push(&mut self, n: &'a Node<T>) {
        self.stack[self.depth] = Some(n);
        self.depth += 1;
    }
}

impl<'a, T: Segment> Iterator for Range<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        self.depth = self.depth.checked_sub(1)?;
        let n = self.stack[self.depth]?;
        if n.seg.start() >= self.end {
            self.depth = 0;
            return None;
        }
        let mut cur = n.right.as_deref();
        while let Some(c) = cur {
            self.push(c);
            cur = c.left.as_deref();
        }
        Some(&n.seg)
    }
}
