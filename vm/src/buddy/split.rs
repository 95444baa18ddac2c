//! Splitting an allocated block into frames with counts of their own, and
//! joining them back: how a 2 MiB page is split without copying (Linux's
//! `split_page`, done on the metadata only).
//!
//! A 2 MiB page starts as one allocated block of order 9 whose head alone
//! carries the reference count. When part of it must be mapped, unmapped
//! or copied on its own (a partial munmap, a copy-on-write), the block is
//! split: each of its 512 frames becomes an allocated block of order 0
//! with the block's count. The data stays where it is; a frame given back
//! later is freed alone and merges with its free buddies as any frame
//! does. A mapping of the whole 2 MiB (a level-2 entry) then holds one
//! reference on each of the 512 frames instead of one on the head: the
//! `*_block` calls of `PhysMem` look at `is_block` to know which.

use super::FrameTable;
use crate::frame::{FrameFlags, Pfn};
use core::sync::atomic::Ordering;

impl FrameTable<'_> {
    /// Whether `head` heads an allocated block of exactly `order` (a 2 MiB
    /// page not split yet, for order 9).
    pub fn is_block(&self, head: Pfn, order: usize) -> bool {
        self.contains(head.0) && {
            let m = &self.meta[self.index(head.0)];
            m.flags == FrameFlags::HEAD && usize::from(m.order) == order
        }
    }

    /// Give every frame of the allocated block headed by `head` a
    /// reference count of its own, equal to the block's: it becomes 2^order
    /// allocated single frames. Panics if `head` heads no allocated block.
    pub fn split_block(&mut self, head: Pfn) {
        let order = self.head_mut(head, "split_block").order;
        // The head's count goes to 0 while the counts move, so that a
        // holder's lock-free share or put meanwhile waits for this lock
        // (counts.rs); the exchange reads the count every such call left.
        let count = self.counts.at(head.0).swap(0, Ordering::Acquire);
        for pfn in head.0..head.0 + (1 << order) {
            let m = self.meta_mut(pfn);
            m.flags = FrameFlags::HEAD;
            m.order = 0;
            if pfn != head.0 {
                self.counts.at(pfn).store(count, Ordering::Relaxed);
            }
        }
        self.counts.at(head.0).store(count, Ordering::Release);
    }

    /// Undo `split_block` when it is safe: if the 2^order frames at `head`
    /// (aligned) are all allocated single frames with one reference each,
    /// they become one block of `order` with one reference, and true is
    /// returned; otherwise nothing changes.
    pub fn rejoin_block(&mut self, head: Pfn, order: usize) -> bool {
        self.join_frames(head, order, 1)
    }

    /// Undo a `split_block` that nothing has followed (a split whose page
    /// table could not be made): the frames all hold the block's count,
    /// `count`, and become the block again. False, nothing changed, if
    /// they do not.
    pub fn unsplit_block(&mut self, head: Pfn, order: usize) -> bool {
        let count = self.counts.get(head);
        count > 0 && self.join_frames(head, order, count)
    }

    /// The 2^order frames at `head` become one block of `order` with
    /// `count` references, if each is an allocated single frame with
    /// `count` references.
    fn join_frames(&mut self, head: Pfn, order: usize, count: u32) -> bool {
        let frames = head.0..head.0 + (1 << order);
        let single = |t: &Self, pfn: u64| {
            t.contains(pfn) && {
                let m = &t.meta[t.index(pfn)];
                m.flags == FrameFlags::HEAD && m.order == 0
            }
        };
        if !head.0.is_multiple_of(1 << order) || !frames.clone().all(|pfn| single(self, pfn)) {
            return false;
        }
        // Each count goes from `count` to 0 in one exchange, so that a
        // holder's lock-free share or put (counts.rs) cannot slip in
        // between the look and the join; one that differs undoes those
        // taken so far.
        for pfn in frames.clone() {
            let at = self.counts.at(pfn);
            if at
                .compare_exchange(count, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                for taken in head.0..pfn {
                    self.counts.at(taken).store(count, Ordering::Release);
                }
                return false;
            }
        }
        for pfn in frames.skip(1) {
            self.meta_mut(pfn).flags = FrameFlags::empty();
        }
        self.meta_mut(head.0).order = order as u8;
        self.counts.at(head.0).store(count, Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::buddy::{FrameTable, new_counts};
    use crate::frame::{FrameMeta, Pfn};
    use alloc::vec;

    #[test]
    fn a_split_block_frees_frame_by_frame_and_merges_back() {
        let mut meta = vec![FrameMeta::RESERVED; 1024];
        let counts = new_counts(1024);
        let mut t = FrameTable::new(&mut meta, &counts, Pfn(0));
        t.add_free_range(Pfn(0), Pfn(1024));
        let head = t.alloc(9).unwrap();
        t.get(head);
        assert!(t.is_block(head, 9));
        t.split_block(head);
        t.verify();
        assert!(!t.is_block(head, 9));
        for i in 0..512 {
            assert_eq!(t.refcount(Pfn(head.0 + i)), 2);
        }
        // One owner gives back every frame but the 7th: nothing is freed.
        for i in 0..512 {
            if i != 7 {
                assert!(!t.put(Pfn(head.0 + i)));
            }
        }
        assert_eq!(t.free_frames(), 512);
        // The other gives back all of them: all but the 7th are free.
        for i in 0..512 {
            t.put(Pfn(head.0 + i));
        }
        t.verify();
        assert_eq!(t.free_frames(), 1023);
        t.put(Pfn(head.0 + 7));
        t.verify();
        assert_eq!(t.free_frames(), 1024);
        assert_eq!(t.largest_free_order(), Some(10));
    }

    #[test]
    fn rejoin_needs_every_frame_held_once() {
        let mut meta = vec![FrameMeta::RESERVED; 512];
        let counts = new_counts(512);
        let mut t = FrameTable::new(&mut meta, &counts, Pfn(0));
        t.add_free_range(Pfn(0), Pfn(512));
        let head = t.alloc(9).unwrap();
        t.get(head);
        t.split_block(head);
        assert!(!t.rejoin_block(head, 9), "every frame has two references");
        for i in 0..512 {
            t.put(Pfn(head.0 + i));
        }
        assert!(t.rejoin_block(head, 9));
        t.verify();
        assert!(t.is_block(head, 9));
        assert!(t.put(head));
        assert_eq!(t.free_frames(), 512);
    }
}
