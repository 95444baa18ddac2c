//! Taking and giving back many single frames at once: a CPU's frame
//! cache refilled (kernel/src/phys/cache.rs), and munmap's give-back of
//! its small pages (kernel/src/phys/free.rs).
//!
//! `alloc_frames` takes what `alloc(0)` would take that many times, the
//! smallest free blocks first, but each block whole (or split once, down
//! to the part that fits) instead of one frame and one list operation at
//! a time.
//!
//! Freed one at a time, each frame starts its merge walk at order 0: a
//! look at its buddy's metadata, an unlink from that buddy's free list
//! (whose neighbours are anywhere in the table), and again one order up.
//! The frames a munmap gives back are mostly neighbours: a fault's frames
//! come from a CPU's cache, refilled 32 at a time from one split block,
//! and munmap hands them back in the order of their addresses. So
//! `put_frames` sorts the frames it frees and hands each run of
//! neighbours back as the largest aligned blocks it holds, as
//! `add_free_range` does with a range of RAM: a run of 32 aligned frames
//! is one walk from order 5, not 32 from order 0.
//!
//! The free lists end up holding the same blocks as after one `put` each:
//! a buddy allocator whose every free merges as far as it can has one
//! state for a given set of free frames (the largest aligned blocks that
//! tile it). Only the order of blocks within a list may differ.

use super::{FrameTable, MAX_ORDER, largest_block};
use crate::frame::{FrameFlags, NO_LINK, Pfn};
use core::sync::atomic::Ordering;

impl FrameTable<'_> {
    /// Fill `out` with single frames (order-0 blocks, each with one
    /// reference), as many as are free; how many. The same frames, and the
    /// same free blocks left, as `alloc(0)` once for each: the smallest
    /// free block first, its lower part kept when it is larger than what
    /// is left to take and its upper halves put back on their lists.
    pub fn alloc_frames(&mut self, out: &mut [Pfn]) -> usize {
        let mut taken = 0;
        while taken < out.len() {
            let Some(found) = (0..=MAX_ORDER).find(|&o| self.free_lists[o] != NO_LINK) else {
                break;
            };
            let pfn = self.base + u64::from(self.free_lists[found]);
            self.unlink(pfn, found);
            // The largest power of two not above what is left.
            let fits = (out.len() - taken).ilog2() as usize;
            let mut order = found;
            while order > fits {
                order -= 1;
                self.push(pfn + (1 << order), order);
            }
            for frame in pfn..pfn + (1 << order) {
                let meta = self.meta_mut(frame);
                meta.flags = FrameFlags::HEAD;
                meta.order = 0;
                self.counts.at(frame).store(1, Ordering::Relaxed);
                out[taken] = Pfn(frame);
                taken += 1;
            }
            self.free -= 1 << order;
        }
        taken
    }

    /// `put` on each of `heads`, single frames (order-0 blocks); the frames
    /// this freed are left at the front of `heads`, sorted, and their
    /// number is returned. Panics as `put` does, and on a larger block.
    pub fn put_frames(&mut self, heads: &mut [Pfn]) -> usize {
        let mut freed = 0;
        for i in 0..heads.len() {
            let head = heads[i];
            let meta = self.head_mut(head, "put_frames");
            assert!(
                meta.order == 0,
                "buddy::put_frames: {head:?} heads a larger block"
            );
            // As in `put`: Acquire for the last.
            if self.counts.at(head.0).fetch_sub(1, Ordering::AcqRel) == 1 {
                self.meta_mut(head.0).flags = FrameFlags::empty();
                heads[freed] = head;
                freed += 1;
            }
        }
        let frames = &mut heads[..freed];
        frames.sort_unstable();
        let mut run = 0;
        while run < frames.len() {
            let start = frames[run].0;
            let len = frames[run..]
                .iter()
                .zip(start..)
                .take_while(|(pfn, next)| pfn.0 == *next)
                .count();
            let end = start + len as u64;
            let mut pfn = start;
            while pfn < end {
                let order = largest_block(pfn, end);
                self.release(pfn, order);
                pfn += 1 << order;
            }
            run += len;
        }
        freed
    }
}
