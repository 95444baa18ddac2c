//! The buddy allocator: physical frames in naturally aligned blocks of
//! 2^order frames, order 0 (4 KiB) to `MAX_ORDER` (4 MiB).
//!
//! A block of order k starting at frame p has one *buddy*: the block of the
//! same order at p XOR 2^k. To allocate, take a block of the smallest order
//! that fits, splitting a larger one in halves as often as needed; to free,
//! merge the block with its buddy while the buddy is free too:
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

/// The largest block: 2^10 frames = 4 MiB.
pub const MAX_ORDER: usize = 10;

/// The frame allocator over the metadata of frames `base .. base + meta.len()`.
pub struct FrameTable<'a> {
    meta: &'a mut [FrameMeta],
    base: u64,
    free_heads: [u32; MAX_ORDER + 1],
    free: usize,
    total: usize,
}

impl<'a> FrameTable<'a> {
    /// A table over `meta`, whose first entry describes frame `base`.
    /// Every frame starts reserved: `add_free_range` hands RAM over.
    pub fn new(meta: &'a mut [FrameMeta], base: Pfn) -> Self {
        assert!(
            meta.len() < NO_LINK as usize,
            "buddy::new: table too large for u32 links"
        );
        meta.fill(FrameMeta::RESERVED);
        FrameTable {
            meta,
            base: base.0,
            free_heads: [NO_LINK; MAX_ORDER + 1],
            free: 0,
            total: 0,
        }
    }

    /// Hand the reserved frames [start, end) to the allocator, as the
    /// largest aligned blocks that fit, merging with free neighbours.
    pub fn add_free_range(&mut self, start: Pfn, end: Pfn) {
        assert!(start <= end, "buddy::add_free_range: start after end");
        for pfn in start.0..end.0 {
            let meta = &mut self.meta[self.index(pfn)];
            assert!(
                meta.flags == FrameFlags::RESERVED,
                "buddy::add_free_range: frame {pfn:#x} already added"
            );
            meta.flags = FrameFlags::empty();
        }
        let mut pfn = start.0;
        while pfn < end.0 {
            let mut order = (pfn.trailing_zeros() as usize).min(MAX_ORDER);
            while pfn + (1 << order) > end.0 {
                order -= 1;
            }
            self.free += 1 << order;
            self.free_block(pfn, order);
            pfn += 1 << order;
        }
        self.total += (end.0 - start.0) as usize;
    }

    /// A naturally aligned block of 2^order frames with reference count 1,
    /// or None if no free block is large enough.
    pub fn alloc(&mut self, order: usize) -> Option<Pfn> {
        assert!(order <= MAX_ORDER, "buddy::alloc: order {order} too large");
        let mut found = (order..=MAX_ORDER).find(|&o| self.free_heads[o] != NO_LINK)?;
        let pfn = self.base + u64::from(self.free_heads[found]);
        self.unlink(pfn, found);
        // Split: keep the lower half, put the upper half on the free list below.
        while found > order {
            found -= 1;
            self.push(pfn + (1 << found), found);
        }
        let head = self.meta_mut(pfn);
        head.flags = FrameFlags::HEAD;
        head.order = order as u8;
        head.refcount = 1;
        self.free -= 1 << order;
        Some(Pfn(pfn))
    }

    /// A single frame (order 0).
    pub fn alloc_frame(&mut self) -> Option<Pfn> {
        self.alloc(0)
    }

    /// Give back the allocated block headed by `head`, whatever its count.
    pub fn free(&mut self, head: Pfn) {
        let meta = self.meta_mut(head.0);
        assert!(
            meta.flags == FrameFlags::HEAD,
            "buddy::free: frame {:#x} is not an allocated block head",
            head.0
        );
        let order = usize::from(meta.order);
        meta.flags = FrameFlags::empty();
        meta.refcount = 0;
        self.free += 1 << order;
        self.free_block(head.0, order);
    }

    /// Take one more reference to an allocated block.
    pub fn get(&mut self, head: Pfn) {
        let meta = self.head_mut(head, "get");
        meta.refcount = meta
            .refcount
            .checked_add(1)
            .expect("buddy::get: reference count overflow");
    }

    /// Drop one reference; the last one frees the block (returns true then).
    pub fn put(&mut self, head: Pfn) -> bool {
        let meta = self.head_mut(head, "put");
        assert!(
            meta.refcount > 0,
            "buddy::put: reference count already zero"
        );
        meta.refcount -= 1;
        let last = meta.refcount == 0;
        if last {
            self.free(head);
        }
        last
    }

    /// The reference count of an allocated block's head (0 if not allocated).
    pub fn refcount(&self, head: Pfn) -> u32 {
        self.meta.get(self.index(head.0)).map_or(0, |m| m.refcount)
    }

    /// Frames on the free lists.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Frames ever handed over with `add_free_range`.
    pub fn total_frames(&self) -> usize {
        self.total
    }

    /// Whether `pfn` lies inside a free block.
    pub fn is_free(&self, pfn: Pfn) -> bool {
        (0..=MAX_ORDER).any(|order| {
            let head = pfn.0 & !((1u64 << order) - 1);
            self.contains(head) && {
                let m = &self.meta[self.index(head)];
                m.flags == FrameFlags::FREE && usize::from(m.order) == order
            }
        })
    }

    /// Check every free list: links both ways, flags, alignment, full
    /// merging, and the free counter. Panics naming what is broken.
    pub fn verify(&self) {
        let mut counted = 0;
        for order in 0..=MAX_ORDER {
            let mut prev = NO_LINK;
            let mut link = self.free_heads[order];
            while link != NO_LINK {
                let pfn = self.base + u64::from(link);
                let m = &self.meta[link as usize];
                assert!(
                    m.flags == FrameFlags::FREE,
                    "buddy::verify: {pfn:#x} on a free list but not FREE"
                );
                assert!(
                    usize::from(m.order) == order,
                    "buddy::verify: {pfn:#x} on the wrong list"
                );
                assert!(
                    m.prev == prev,
                    "buddy::verify: broken prev link at {pfn:#x}"
                );
                assert!(
                    pfn.is_multiple_of(1 << order),
                    "buddy::verify: {pfn:#x} misaligned for order {order}"
                );
                let buddy = pfn ^ (1 << order);
                if order < MAX_ORDER && self.contains(buddy) {
                    let b = &self.meta[self.index(buddy)];
                    assert!(
                        !(b.flags == FrameFlags::FREE && usize::from(b.order) == order),
                        "buddy::verify: free buddies {pfn:#x} and {buddy:#x} not merged"
                    );
                }
                for frame in pfn..pfn + (1 << order) {
                    let f = &self.meta[self.index(frame)];
                    assert!(
                        !f.flags.contains(FrameFlags::RESERVED),
                        "buddy::verify: reserved {frame:#x} in a free block"
                    );
                }
                counted += 1 << order;
                prev = link;
                link = m.next;
            }
        }
        assert!(
            counted == self.free,
            "buddy::verify: free counter {} but lists hold {counted}",
            self.free
        );
    }

    /// Put a free block on its list, merging with its buddy as long as the
    /// buddy is a free block of the same order.
    fn free_block(&mut self, mut pfn: u64, mut order: usize) {
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if !self.contains(buddy) {
                break;
            }
            let b = &self.meta[self.index(buddy)];
            if b.flags != FrameFlags::FREE || usize::from(b.order) != order {
                break;
            }
            self.unlink(buddy, order);
            self.meta_mut(buddy).flags = FrameFlags::empty();
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push(pfn, order);
    }

    fn push(&mut self, pfn: u64, order: usize) {
        let index = self.index(pfn) as u32;
        let old_head = self.free_heads[order];
        if old_head != NO_LINK {
            self.meta[old_head as usize].prev = index;
        }
        let m = self.meta_mut(pfn);
        m.flags = FrameFlags::FREE;
        m.order = order as u8;
        m.next = old_head;
        m.prev = NO_LINK;
        self.free_heads[order] = index;
    }

    fn unlink(&mut self, pfn: u64, order: usize) {
        let index = self.index(pfn);
        let (next, prev) = (self.meta[index].next, self.meta[index].prev);
        if prev == NO_LINK {
            self.free_heads[order] = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NO_LINK {
            self.meta[next as usize].prev = prev;
        }
        let m = &mut self.meta[index];
        m.next = NO_LINK;
        m.prev = NO_LINK;
        m.flags = FrameFlags::empty();
    }

    fn head_mut(&mut self, head: Pfn, verb: &str) -> &mut FrameMeta {
        let meta = self.meta_mut(head.0);
        assert!(
            meta.flags == FrameFlags::HEAD,
            "buddy::{verb}: frame {:#x} is not an allocated block head",
            head.0
        );
        meta
    }

    fn contains(&self, pfn: u64) -> bool {
        pfn >= self.base && pfn - self.base < self.meta.len() as u64
    }

    fn index(&self, pfn: u64) -> usize {
        assert!(
            self.contains(pfn),
            "buddy: frame {pfn:#x} outside the table"
        );
        (pfn - self.base) as usize
    }

    fn meta_mut(&mut self, pfn: u64) -> &mut FrameMeta {
        let index = self.index(pfn);
        &mut self.meta[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn table(meta: &mut [FrameMeta], base: u64) -> FrameTable<'_> {
        FrameTable::new(meta, Pfn(base))
    }

    #[test]
    fn split_then_coalesce_back_to_one_block() {
        let mut meta = vec![FrameMeta::RESERVED; 1024];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(1024));
        assert_eq!(t.free_frames(), 1024);
        let a = t.alloc(0).unwrap();
        assert_eq!(t.free_frames(), 1023);
        t.verify();
        t.free(a);
        t.verify();
        // Fully merged again: the whole table is one order-10 block.
        assert_eq!(t.alloc(MAX_ORDER), Some(Pfn(0)));
    }

    #[test]
    fn order_9_blocks_are_2mib_aligned_even_with_an_unaligned_base() {
        let mut meta = vec![FrameMeta::RESERVED; 3000];
        let mut t = table(&mut meta, 100);
        t.add_free_range(Pfn(100), Pfn(3100));
        t.verify();
        while let Some(p) = t.alloc(9) {
            assert_eq!(p.0 % 512, 0);
        }
        t.verify();
    }

    #[test]
    fn holes_stay_reserved() {
        let mut meta = vec![FrameMeta::RESERVED; 64];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(10));
        t.add_free_range(Pfn(20), Pfn(64));
        assert_eq!(t.total_frames(), 54);
        let mut got = vec![];
        while let Some(p) = t.alloc_frame() {
            got.push(p.0);
        }
        assert_eq!(got.len(), 54);
        assert!(got.iter().all(|&p| !(10..20).contains(&p)));
        assert!(!t.is_free(Pfn(15)));
    }

    #[test]
    fn exhaustion_returns_none_until_a_free() {
        let mut meta = vec![FrameMeta::RESERVED; 4];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(4));
        let all: vec::Vec<_> = (0..4).map(|_| t.alloc_frame().unwrap()).collect();
        assert_eq!(t.alloc_frame(), None);
        t.free(all[2]);
        assert_eq!(t.alloc_frame(), Some(all[2]));
    }

    #[test]
    fn last_put_frees() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(8));
        let p = t.alloc_frame().unwrap();
        t.get(p);
        assert_eq!(t.refcount(p), 2);
        assert!(!t.put(p));
        assert_eq!(t.free_frames(), 7);
        assert!(t.put(p));
        assert_eq!(t.free_frames(), 8);
        t.verify();
    }

    #[test]
    fn many_references_do_not_overflow_a_narrow_count() {
        let mut meta = vec![FrameMeta::RESERVED; 2];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(2));
        let p = t.alloc_frame().unwrap();
        for _ in 0..100_000 {
            t.get(p);
        }
        assert_eq!(t.refcount(p), 100_001);
    }

    #[test]
    #[should_panic(expected = "not an allocated block head")]
    fn double_free_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(8));
        let p = t.alloc_frame().unwrap();
        t.free(p);
        t.free(p);
    }

    #[test]
    #[should_panic(expected = "not an allocated block head")]
    fn freeing_a_reserved_frame_panics() {
        let mut meta = vec![FrameMeta::RESERVED; 8];
        let mut t = table(&mut meta, 0);
        t.add_free_range(Pfn(0), Pfn(4));
        t.free(Pfn(6));
    }
}
