//! The frames' reference counts, atomic, in an array of their own beside
//! the metadata (DESIGN §6: "reference counts are atomic").
//!
//! Every other field of a frame's metadata changes only under the frame
//! table's lock. A count changes without it, by whoever holds one of the
//! references it counts: `try_share` (another reference, as Linux's
//! `get_page`) and `try_put` of one that is not the last. So faults on two
//! CPUs sharing and dropping frames do not meet at the lock; only the last
//! put (the block goes back to a CPU's cache or the buddy allocator),
//! allocation, and the splits and joins of 2 MiB blocks take it.
//!
//! The rules that make that safe:
//! - **Only a holder changes a count without the lock.** A count is at
//!   least 1 while anyone holds a reference, and stays so while that
//!   holder looks; so a count of 1 read by the one holder is stable, and a
//!   frame whose count reached 0 (free, or in no block) is reached by no
//!   one: nothing holds a reference through which to find it.
//! - **0 means "ask under the lock".** The lock-free calls never move a
//!   count to or from 0: `try_put` leaves the last reference to the locked
//!   path, and both give up on a count of 0, which is what the locked
//!   split and join of a block (`split.rs`) set while they move counts
//!   between a block's head and its frames. The caller then takes the lock,
//!   which waits for the split or join to finish.

use crate::frame::Pfn;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// A shared view of the counts of frames `base ..`: its lock-free calls
/// need no `&mut` on the table.
#[derive(Clone, Copy)]
pub struct Counts<'a> {
    counts: &'a [AtomicU32],
    base: u64,
}

/// An array of `n` zero counts for a table of `n` frames (tests; the kernel
/// carves its array out of RAM beside the metadata).
pub fn new_counts(n: usize) -> Vec<AtomicU32> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

impl<'a> Counts<'a> {
    pub(super) fn new(counts: &'a [AtomicU32], base: u64) -> Self {
        Counts { counts, base }
    }

    pub(super) fn len(&self) -> usize {
        self.counts.len()
    }

    /// The count of `pfn` (panics outside the table: a caller's bug).
    pub(super) fn at(&self, pfn: u64) -> &'a AtomicU32 {
        let i = pfn
            .checked_sub(self.base)
            .expect("buddy: frame below the table");
        &self.counts[i as usize]
    }

    /// The reference count of `pfn` now; 0 outside the table.
    pub fn get(&self, pfn: Pfn) -> u32 {
        let inside = pfn.0 >= self.base && pfn.0 - self.base < self.len() as u64;
        if inside {
            self.at(pfn.0).load(Ordering::Acquire)
        } else {
            0
        }
    }

    /// Take another reference to the block headed by `pfn`, which the
    /// caller holds one on. False, nothing changed, when the count is 0 (a
    /// split or join is moving it): take the table's lock and `get`.
    pub fn try_share(&self, pfn: Pfn) -> bool {
        // Relaxed as Arc's clone: the caller's reference already orders
        // its uses of the frame.
        self.at(pfn.0)
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c != 0).then(|| {
                    c.checked_add(1)
                        .expect("buddy::get: reference count overflow")
                })
            })
            .is_ok()
    }

    /// Drop the caller's reference to the block headed by `pfn` if it is
    /// not the last. False, nothing changed, when it may be (count 1) or a
    /// split or join is moving it (0): take the lock and `put`.
    pub fn try_put(&self, pfn: Pfn) -> bool {
        // Release, as Arc's drop: this holder's uses of the frame come
        // before the last put's free (which acquires, `FrameTable::put`).
        self.at(pfn.0)
            .try_update(Ordering::Release, Ordering::Relaxed, |c| {
                (c > 1).then(|| c - 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::new_counts;
    use crate::buddy::FrameTable;
    use crate::frame::{FrameMeta, Pfn};
    use std::sync::Mutex;
    use std::vec;
    use std::vec::Vec;

    /// Four threads share and drop the same frames, lock-free when they
    /// may and under the table's lock when not (the kernel's `Frame`),
    /// while a fifth splits and joins a 2 MiB block they hold frames of.
    /// At the end every count is back where it was: the table verifies and
    /// everything frees.
    #[test]
    fn threads_share_and_drop_the_same_frames() {
        const FRAMES: usize = 2048;
        // Miri (`make test`'s miri-short) checks the same interleavings for
        // data races, a hundred times slower per step: fewer rounds there.
        let (shares, splits) = if cfg!(miri) {
            (200, 20)
        } else {
            (20_000, 2000)
        };
        let mut meta = vec![FrameMeta::RESERVED; FRAMES];
        let counts = new_counts(FRAMES);
        let mut t = FrameTable::new(&mut meta, &counts, Pfn(0));
        t.add_free_range(Pfn(0), Pfn(FRAMES as u64));
        let singles: Vec<Pfn> = (0..16).map(|_| t.alloc(0).unwrap()).collect();
        let block = t.alloc(9).unwrap();
        let view = t.counts();
        let table = Mutex::new(t);
        let share = |pfn| {
            if !view.try_share(pfn) {
                table.lock().unwrap().get(pfn);
            }
        };
        let put = |pfn| {
            if !view.try_put(pfn) {
                table.lock().unwrap().put(pfn);
            }
        };
        let held_by_all = &singles;
        std::thread::scope(|s| {
            for seed in 0..4u64 {
                s.spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..shares {
                        let pfn = held_by_all[((i * 7 + seed * 3) % 16) as usize];
                        share(pfn);
                        held.push(pfn);
                        if held.len() > 8 {
                            put(held.swap_remove((i % 8) as usize));
                        }
                    }
                    held.into_iter().for_each(put);
                });
            }
            // The block's holder splits it, shares and drops its frames
            // and joins it back, over and over: its counts move under the
            // lock while the threads above change theirs without it.
            s.spawn(|| {
                for i in 0..splits {
                    table.lock().unwrap().split_block(block);
                    let frame = Pfn(block.0 + i % 512);
                    share(frame);
                    put(frame);
                    assert!(table.lock().unwrap().unsplit_block(block, 9));
                }
            });
        });
        let mut t = table.into_inner().unwrap();
        t.verify();
        for &pfn in &singles {
            assert_eq!(t.refcount(pfn), 1, "{pfn:?}");
            assert!(t.put(pfn));
        }
        assert!(t.is_block(block, 9) && t.put(block));
        t.verify();
        assert_eq!(t.free_frames(), FRAMES);
    }
}
