//! The buddy allocator: physical frames in naturally aligned blocks of
//! 2^order frames, order 0 (4 KiB) to `MAX_ORDER` (4 MiB).
//!
//! A block of order k starting at frame p has one *buddy*: the block of the
//! same order at p XOR 2^k, its other half in the block of order k+1. To
//! allocate, take a block of the smallest order that fits, splitting a larger
//! one in halves as often as needed; to free, merge the block with its buddy
//! for as long as the buddy is a whole free block too:
//!
//! ```text
//!   order 2  [ 0  1  2  3 ]              free [0..4)
//!   alloc(0) [0][1][ 2  3 ]   split: 0 is handed out, 1 and [2..4) stay free
//!   free(0)  [ 0  1  2  3 ]   0 + buddy 1 -> [0..2), + buddy [2..4) -> [0..4)
//! ```
//!
//! Each order has a doubly linked free list threaded through the frames'
//! metadata (`FrameMeta::next/prev`), so allocation, freeing and every merge
//! step are O(1) per order: O(MAX_ORDER) in all. Alignment is by absolute
//! frame number, so an order-9 block is a 2 MiB-aligned physical range, as a
//! 2 MiB page needs.

use crate::frame::{FrameFlags, FrameMeta, NO_LINK, Pfn};
use core::sync::atomic::{AtomicU32, Ordering};

mod batch;
mod counts;
mod ring;
mod split;

pub use counts::{Counts, new_counts};
pub use ring::FrameRing;

/// The largest block: 2^10 frames = 4 MiB.
pub const MAX_ORDER: usize = 10;

/// The frame allocator over the metadata of frames `base .. base + meta.len()`.
pub struct FrameTable<'a> {
    meta: &'a mut [FrameMeta],
    /// The reference counts, atomic (counts.rs: who may change one
    /// without this table's lock).
    counts: Counts<'a>,
    base: u64,
    /// Table index of the first free block of each order, or `NO_LINK`.
    free_lists: [u32; MAX_ORDER + 1],
    free: usize,
    total: usize,
}

impl<'a> FrameTable<'a> {
    /// A table over `meta` and `counts`, whose first entries describe
    /// frame `base`. Every frame starts reserved: `add_free_range` hands
    /// RAM over.
    pub fn new(meta: &'a mut [FrameMeta], counts: &'a [AtomicU32], base: Pfn) -> Self {
        assert_eq!(meta.len(), counts.len(), "buddy::new: one count a frame");
        assert!(
            meta.len() < NO_LINK as usize,
            "buddy::new: table too large for u32 links"
        );
        assert!(
            base.0.checked_add(meta.len() as u64).is_some(),
            "buddy::new: table ends past the last frame number"
        );
        meta.fill(FrameMeta::RESERVED);
        counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        FrameTable {
            meta,
            counts: Counts::new(counts, base.0),
            base: base.0,
            free_lists: [NO_LINK; MAX_ORDER + 1],
            free: 0,
            total: 0,
        }
    }

    /// Hand the reserved frames [start, end) to the allocator, as the
    /// largest aligned blocks that fit, merging with free neighbours.
    /// Panics if a frame lies outside the table or was added before.
    pub fn add_free_range(&mut self, start: Pfn, end: Pfn) {
        assert!(
            start <= end,
            "buddy::add_free_range: {start:?} after {end:?}"
        );
        assert!(
            start.0 >= self.base && end.0 <= self.base + self.meta.len() as u64,
            "buddy::add_free_range: [{start:?}, {end:?}) outside the table"
        );
        for pfn in start.0..end.0 {
            let meta = self.meta_mut(pfn);
            assert!(
                meta.flags == FrameFlags::RESERVED,
                "buddy::add_free_range: frame {:?} added twice",
                Pfn(pfn)
            );
            meta.flags = FrameFlags::empty();
        }
        self.total += (end.0 - start.0) as usize;
        let mut pfn = start.0;
        while pfn < end.0 {
            let order = largest_block(pfn, end.0);
            self.release(pfn, order);
            pfn += 1 << order;
        }
    }

    /// A naturally aligned block of 2^order frames, its head's reference
    /// count 1; None if no free block is large enough.
    pub fn alloc(&mut self, order: usize) -> Option<Pfn> {
        assert!(order <= MAX_ORDER, "buddy::alloc: order {order} too large");
        let mut found = (order..=MAX_ORDER).find(|&o| self.free_lists[o] != NO_LINK)?;
        let pfn = self.base + u64::from(self.free_lists[found]);
        self.unlink(pfn, found);
        // Keep the lower half, free the upper one: the lower half of an
        // aligned block is aligned to its own size. The upper half cannot
        // merge (its buddy is the half we keep), so it goes straight on a list.
        while found > order {
            found -= 1;
            self.push(pfn + (1 << found), found);
        }
        let head = self.meta_mut(pfn);
        head.flags = FrameFlags::HEAD;
        head.order = order as u8;
        self.counts.at(pfn).store(1, Ordering::Relaxed);
        self.free -= 1 << order;
        Some(Pfn(pfn))
    }

    /// A single frame (order 0); None when memory is exhausted.
    pub fn alloc_frame(&mut self) -> Option<Pfn> {
        self.alloc(0)
    }

    /// Give back the allocated block headed by `head`, whatever its count.
    /// Panics on a double free, a reserved frame, or a frame that is not
    /// the head of its block.
    pub fn free(&mut self, head: Pfn) {
        let meta = self.head_mut(head, "free");
        let order = usize::from(meta.order);
        meta.flags = FrameFlags::empty();
        self.counts.at(head.0).store(0, Ordering::Relaxed);
        self.release(head.0, order);
    }

    /// Take one more reference to the allocated block headed by `head`.
    /// Panics if `head` heads no allocated block.
    pub fn get(&mut self, head: Pfn) {
        self.head_mut(head, "get");
        let old = self.counts.at(head.0).fetch_add(1, Ordering::Relaxed);
        assert!(old < u32::MAX, "buddy::get: reference count overflow");
    }

    /// Drop one reference to the block headed by `head`; the last one
    /// frees the block, and only then is true returned.
    pub fn put(&mut self, head: Pfn) -> bool {
        self.head_mut(head, "put");
        // Never underflows: a head's count is at least 1 (the last put
        // frees). Acquire for the last: the other holders' uses of the
        // frame, released by their puts (counts.rs), come before the free.
        let last = self.counts.at(head.0).fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.free(head);
        }
        last
    }

    /// The reference count of the block headed by `head`; 0 for any frame
    /// that heads no allocated block, inside the table or not.
    pub fn refcount(&self, head: Pfn) -> u32 {
        self.counts.get(head)
    }

    /// The counts, for the lock-free `try_share` and `try_put`.
    pub fn counts(&self) -> Counts<'a> {
        self.counts
    }

    /// Frames on the free lists.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Frames ever handed over with `add_free_range`.
    pub fn total_frames(&self) -> usize {
        self.total
    }

    /// The order of the largest free block, or None if nothing is free.
    /// Fragmentation shows as plenty of free frames but a small order.
    pub fn largest_free_order(&self) -> Option<usize> {
        (0..=MAX_ORDER)
            .rev()
            .find(|&o| self.free_lists[o] != NO_LINK)
    }

    /// The heads of the free blocks of `order`, in free-list order.
    pub fn free_blocks(&self, order: usize) -> impl Iterator<Item = Pfn> {
        let link = |index: u32| (index != NO_LINK).then_some(index);
        core::iter::successors(link(self.free_lists[order]), move |&i| {
            link(self.meta[i as usize].next)
        })
        .map(|i| Pfn(self.base + u64::from(i)))
    }

    /// Whether `pfn` lies inside a free block.
    pub fn is_free(&self, pfn: Pfn) -> bool {
        (0..=MAX_ORDER).any(|order| self.is_free_head(pfn.0 & !((1 << order) - 1), order))
    }

    /// Check every invariant, in O(frames), for tests: the free lists are
    /// linked both ways and hold FREE heads of their order, no two free
    /// buddies are left unmerged, the table splits into reserved frames and
    /// whole aligned blocks, and the counters match. Panics naming what broke.
    pub fn verify(&self) {
        let (mut listed, mut free) = (0, 0);
        for order in 0..=MAX_ORDER {
            let mut prev = NO_LINK;
            for pfn in self.free_blocks(order) {
                let index = self.index(pfn.0);
                let m = &self.meta[index];
                // This also ends a cycle: the node where it closes is
                // reached a second time from a node it does not point back to.
                assert!(m.prev == prev, "buddy::verify: {pfn:?} does not link back");
                assert!(
                    self.is_free_head(pfn.0, order),
                    "buddy::verify: {pfn:?} on the order-{order} list is no free block of it"
                );
                let buddy = pfn.0 ^ (1 << order);
                assert!(
                    order == MAX_ORDER || !self.is_free_head(buddy, order),
                    "buddy::verify: free buddies {pfn:?} and {:?} not merged",
                    Pfn(buddy)
                );
                listed += 1;
                free += 1 << order;
                prev = index as u32;
            }
        }
        let (mut free_heads, mut managed, mut i) = (0, 0, 0);
        while i < self.meta.len() {
            let pfn = Pfn(self.base + i as u64);
            let m = &self.meta[i];
            if m.flags == FrameFlags::RESERVED {
                i += 1;
                continue;
            }
            let is_free = m.flags == FrameFlags::FREE;
            assert!(
                is_free || m.flags == FrameFlags::HEAD,
                "buddy::verify: {pfn:?} lies in no block"
            );
            let order = usize::from(m.order);
            assert!(
                order <= MAX_ORDER,
                "buddy::verify: block {pfn:?} of order {order}"
            );
            let len = 1usize << order;
            assert!(
                pfn.0.is_multiple_of(len as u64) && i + len <= self.meta.len(),
                "buddy::verify: block {pfn:?} of order {order} misaligned or past the table"
            );
            let count = self.counts.get(pfn);
            assert!(
                is_free == (count == 0),
                "buddy::verify: block {pfn:?} has {count} references"
            );
            assert!(
                (1..len).all(|j| self.counts.get(Pfn(pfn.0 + j as u64)) == 0),
                "buddy::verify: a frame inside block {pfn:?} has a count"
            );
            assert!(
                self.meta[i + 1..i + len].iter().all(|f| f.flags.is_empty()),
                "buddy::verify: block {pfn:?} overlaps a reserved frame or another block"
            );
            free_heads += usize::from(is_free);
            managed += len;
            i += len;
        }
        assert_eq!(
            free_heads, listed,
            "buddy::verify: FREE heads missing from the lists"
        );
        assert_eq!(
            free, self.free,
            "buddy::verify: free counter disagrees with the lists"
        );
        assert_eq!(
            managed, self.total,
            "buddy::verify: frames in blocks but not added"
        );
    }

    /// Count the block of 2^order frames at `pfn` as free and put it on a
    /// list, merged with its buddy for as long as the buddy is a whole
    /// free block of the same order.
    fn release(&mut self, mut pfn: u64, mut order: usize) {
        self.free += 1 << order;
        while order < MAX_ORDER && self.is_free_head(pfn ^ (1 << order), order) {
            let buddy = pfn ^ (1 << order);
            self.unlink(buddy, order);
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push(pfn, order);
    }

    /// Whether `pfn` heads a free block of exactly `order`. A buddy that is
    /// split (partly allocated) has no FREE head of that order, and a buddy
    /// outside the table is never free: both stop a merge.
    fn is_free_head(&self, pfn: u64, order: usize) -> bool {
        self.contains(pfn) && {
            let m = &self.meta[self.index(pfn)];
            m.flags == FrameFlags::FREE && usize::from(m.order) == order
        }
    }

    fn push(&mut self, pfn: u64, order: usize) {
        let index = self.index(pfn) as u32;
        let old_first = self.free_lists[order];
        if old_first != NO_LINK {
            self.meta[old_first as usize].prev = index;
        }
        let m = self.meta_mut(pfn);
        m.flags = FrameFlags::FREE;
        m.order = order as u8;
        m.next = old_first;
        m.prev = NO_LINK;
        self.free_lists[order] = index;
    }

    /// Take a free block off its list; its head becomes a plain frame.
    fn unlink(&mut self, pfn: u64, order: usize) {
        let index = self.index(pfn);
        let FrameMeta { next, prev, .. } = self.meta[index];
        if prev == NO_LINK {
            self.free_lists[order] = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NO_LINK {
            self.meta[next as usize].prev = prev;
        }
        self.meta[index] = FrameMeta {
            flags: FrameFlags::empty(),
            ..FrameMeta::RESERVED
        };
    }

    fn head_mut(&mut self, head: Pfn, verb: &str) -> &mut FrameMeta {
        let meta = self.contains(head.0).then(|| self.meta_mut(head.0));
        match meta {
            Some(meta) if meta.flags == FrameFlags::HEAD => meta,
            _ => panic!("buddy::{verb}: frame {head:?} is not an allocated block head"),
        }
    }

    fn contains(&self, pfn: u64) -> bool {
        pfn >= self.base && pfn - self.base < self.meta.len() as u64
    }

    fn index(&self, pfn: u64) -> usize {
        assert!(
            self.contains(pfn),
            "buddy: frame {:?} outside the table",
            Pfn(pfn)
        );
        (pfn - self.base) as usize
    }

    fn meta_mut(&mut self, pfn: u64) -> &mut FrameMeta {
        let index = self.index(pfn);
        &mut self.meta[index]
    }
}

/// The order of the largest naturally aligned block that starts at `pfn`
/// and ends by `end`: how a range of RAM is cut into blocks.
fn largest_block(pfn: u64, end: u64) -> usize {
    let mut order = (pfn.trailing_zeros() as usize).min(MAX_ORDER);
    while pfn + (1 << order) > end {
        order -= 1;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A table over `meta` from frame `base`, with `ranges` of RAM added.
    fn table<'a>(
        meta: &'a mut [FrameMeta],
        counts: &'a [AtomicU32],
        base: u64,
        ranges: &[(u64, u64)],
    ) -> FrameTable<'a> {
        let mut t = FrameTable::new(meta, counts, Pfn(base));
        for &(start, end) in ranges {
            t.add_free_range(Pfn(start), Pfn(end));
        }
        t.verify();
        t
    }

    fn list(t: &FrameTable, order: usize) -> Vec<u64> {
        t.free_blocks(order).map(|p| p.0).collect()
    }

    #[test]
    fn split_hands_out_the_lower_half_and_lists_the_upper_ones() {
        let mut meta = vec![FrameMeta::RESERVED; 4];
        let counts = new_counts(4);
        let mut t = table(&mut meta, &counts, 0, &[(0, 4)]);
        assert_eq!(t.alloc(0), Some(Pfn(0)));
        assert_eq!(
            (list(&t, 0), list(&t, 1), list(&t, 2)),
            (vec![1], vec![2], vec![])
        );
        assert_eq!(t.alloc(1), Some(Pfn(2)));
        assert_eq!(t.alloc(0), Some(Pfn(1)));
        assert_eq!(t.free_frames(), 0);
        t.verify();
    }

    #[test]
    fn free_merges_only_with_a_whole_free_buddy() {
        let mut meta = vec![FrameMeta::RESERVED; 4];
        let counts = new_counts(4);
        let mut t = table(&mut meta, &counts, 0, &[(0, 4)]);
        let (a, b, c) = (
            t.alloc(0).unwrap(),
            t.alloc(0).unwrap(),
            t.alloc(1).unwrap(),
        );
        t.free(a); // its buddy 1 is allocated
        assert_eq!(list(&t, 0), vec![0]);
        t.free(c); // its buddy [0..2) is split
        assert_eq!(list(&t, 1), vec![2]);
        t.verify();
        t.free(b); // 1 + 0 -> [0..2), + [2..4) -> [0..4)
        assert_eq!(
            (list(&t, 0), list(&t, 1), list(&t, 2)),
            (vec![], vec![], vec![0])
        );
        t.verify();
    }

    #[test]
    fn order_9_blocks_are_2mib_aligned_even_with_an_unaligned_base() {
        let mut meta = vec![FrameMeta::RESERVED; 3000];
        let counts = new_counts(3000);
        let mut t = table(&mut meta, &counts, 100, &[(100, 3100)]);
        assert_eq!(t.largest_free_order(), Some(MAX_ORDER));
        let mut huge = 0;
        while let Some(p) = t.alloc(9) {
            assert_eq!(p.addr() % (2 << 20), 0);
            huge += 1;
        }
        // Only [512, 3072) holds whole 2 MiB-aligned blocks.
        assert_eq!(huge, 5);
        assert!(t.largest_free_order() < Some(9));
        t.verify();
    }

    #[test]
    fn blocks_never_merge_past_the_table_edge() {
        // Frame 3's buddy, 2, lies below the table: 3 stays an order-0 block.
        let mut meta = vec![FrameMeta::RESERVED; 5];
        let counts = new_counts(5);
        let mut t = table(&mut meta, &counts, 3, &[(3, 8)]);
        assert_eq!((list(&t, 0), list(&t, 2)), (vec![3], vec![4]));
        let p = t.alloc(0).unwrap();
        t.free(p);
        assert_eq!((list(&t, 0), list(&t, 2)), (vec![3], vec![4]));
        t.verify();
    }

    #[test]
    fn holes_stay_reserved() {
        let mut meta = vec![FrameMeta::RESERVED; 64];
        let counts = new_counts(64);
        let mut t = table(&mut meta, &counts, 0, &[(0, 10), (20, 64)]);
        assert_eq!(t.total_frames(), 54);
        assert!(!t.is_free(Pfn(15)) && t.is_free(Pfn(9)) && t.is_free(Pfn(20)));
        let mut got = vec![];
        while let Some(p) = t.alloc_frame() {
            got.push(p.0);
        }
        assert_eq!(got.len(), 54);
        assert!(got.iter().all(|&p| !(10..20).contains(&p)));
        t.verify();
    }

    #[test]
    fn exhaustion_returns_none_until_a_free() {
        let mut meta = vec![FrameMeta::RESERVED; 4];
        let counts = new_counts(4);
        let mut t = table(&mut meta, &counts, 0, &[(0, 4)]);
        let all: Vec<_> = (0..4).map(|_| t.alloc_frame().unwrap()).collect();
        assert_eq!((t.alloc_frame(), t.largest_free_order()), (None, None));
        t.free(all[2]);
        assert_eq!(t.alloc(1), None);
        assert_eq!(t.alloc_frame(), Some(all[2]));
    }

    #[test]
    fn last_put_frees() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        let mut t = table(&mut meta, &counts, 0, &[(0, 8)]);
        let p = t.alloc_frame().unwrap();
        t.get(p);
        assert_eq!(t.refcount(p), 2);
        assert!(!t.put(p));
        assert_eq!(t.free_frames(), 7);
        assert!(t.put(p));
        assert_eq!((t.free_frames(), t.refcount(p)), (8, 0));
        t.verify();
    }

    #[test]
    fn reference_counts_pass_65535() {
        // A frame shared by 300 forks of a process with many mappings of it.
        let mut meta = vec![FrameMeta::RESERVED; 2];
        let counts = new_counts(2);
        let mut t = table(&mut meta, &counts, 0, &[(0, 2)]);
        let p = t.alloc_frame().unwrap();
        for _ in 0..100_000 {
            t.get(p);
        }
        assert_eq!(t.refcount(p), 100_001);
    }

    #[test]
    #[should_panic(expected = "buddy::free: frame Pfn(0x0) is not an allocated block head")]
    fn double_free_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        let mut t = table(&mut meta, &counts, 0, &[(0, 8)]);
        let p = t.alloc_frame().unwrap();
        t.free(p);
        t.free(p);
    }

    #[test]
    #[should_panic(expected = "not an allocated block head")]
    fn freeing_a_reserved_frame_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        let mut t = table(&mut meta, &counts, 0, &[(0, 4)]);
        t.free(Pfn(6));
    }

    #[test]
    #[should_panic(expected = "not an allocated block head")]
    fn freeing_the_middle_of_a_block_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        let mut t = table(&mut meta, &counts, 0, &[(0, 8)]);
        let p = t.alloc(2).unwrap();
        t.free(Pfn(p.0 + 1));
    }

    #[test]
    #[should_panic(expected = "buddy::get: frame Pfn(0x1) is not an allocated block head")]
    fn get_on_a_free_frame_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        let mut t = table(&mut meta, &counts, 0, &[(0, 8)]);
        t.alloc_frame().unwrap();
        t.get(Pfn(1));
    }

    #[test]
    #[should_panic(expected = "added twice")]
    fn overlapping_ranges_panic() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let counts = new_counts(8);
        table(&mut meta, &counts, 0, &[(0, 6), (4, 8)]);
    }
}
