//! The fake frame allocator (`FakeMemory`, re-exported by `fake`): frames
//! with real contents and reference counts, 2 MiB blocks, commit charges,
//! failure injection and an optional swap device.

use super::countdown;
use crate::fake_swap::FakeSwapSpace;
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, PhysMem};
use crate::swap_cache::{SwapInError, SwappedIn};
use crate::swap_map::Slot;
use crate::vma::{HUGE_PAGE, PAGE};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// Frames with contents and reference counts; frame 0 is the zero frame.
#[derive(Debug)]
pub struct FakeMemory {
    /// Each frame's reference count and, outside 2 MiB blocks, its bytes.
    pages: Vec<Option<(u32, Vec<u8>)>>,
    /// Frames that may still be allocated (the tests make memory run out).
    pub limit: usize,
    /// Failure injection: `Some(n)` lets `n` more allocations (of a frame,
    /// a 2 MiB block or a copy) succeed, then fails the next one (once).
    pub fail_alloc_after: Option<usize>,
    pub committed: u64,
    pub commit_limit: u64,
    /// The 2 MiB blocks' bytes, by head frame, for as long as any of
    /// their frames is allocated (a split block's frames go one by one).
    blocks: BTreeMap<u64, Vec<u8>>,
    /// Each allocated frame of a block, to its head.
    in_block: BTreeMap<u64, u64>,
    /// The heads of the blocks not split yet: as in the kernel, such a
    /// block's count is on its head (its other frames count 0).
    whole: alloc::collections::BTreeSet<u64>,
    /// A swap device and its cache (None: no swap).
    pub swap: Option<FakeSwapSpace>,
}

impl FakeMemory {
    pub fn new(frames: usize) -> Self {
        FakeMemory {
            pages: vec![Some((1, vec![0; PAGE as usize]))],
            limit: frames,
            fail_alloc_after: None,
            committed: 0,
            commit_limit: u64::MAX,
            blocks: BTreeMap::new(),
            in_block: BTreeMap::new(),
            whole: alloc::collections::BTreeSet::new(),
            swap: None,
        }
    }

    /// Whether this allocation is the one to fail (`fail_alloc_after`).
    fn injected_failure(&mut self) -> bool {
        countdown(&mut self.fail_alloc_after)
    }

    /// Every frame's reference count, by frame number (the failure tests
    /// compare them before and after).
    pub fn refcounts(&self) -> Vec<u32> {
        self.pages
            .iter()
            .map(|p| p.as_ref().map_or(0, |p| p.0))
            .collect()
    }

    /// Every frame number handed out so far is below this (a test's
    /// clock must cover them: `CLOCK_FRAMES`).
    pub fn frame_numbers(&self) -> usize {
        self.pages.len()
    }

    /// Frames in use, the zero frame excluded.
    pub fn in_use(&self) -> usize {
        self.pages.iter().skip(1).filter(|p| p.is_some()).count()
    }

    /// The bytes of a frame (from a block's head: the whole 2 MiB; from
    /// another frame of a block: the rest of the block).
    pub fn bytes(&self, pfn: Pfn) -> &[u8] {
        match self.in_block.get(&pfn.0) {
            Some(head) => &self.blocks[head][((pfn.0 - head) * PAGE) as usize..],
            None => {
                &self.pages[pfn.0 as usize]
                    .as_ref()
                    .expect("FakeMemory: frame not allocated")
                    .1
            }
        }
    }

    pub fn bytes_mut(&mut self, pfn: Pfn) -> &mut [u8] {
        assert!(pfn.0 != 0, "FakeMemory: write to the zero frame");
        match self.in_block.get(&pfn.0) {
            Some(head) => {
                let block = self.blocks.get_mut(head).expect("FakeMemory: block bytes");
                &mut block[((pfn.0 - *head) * PAGE) as usize..]
            }
            None => {
                &mut self.pages[pfn.0 as usize]
                    .as_mut()
                    .expect("FakeMemory: frame not allocated")
                    .1
            }
        }
    }

    fn alloc_with(&mut self, bytes: Vec<u8>) -> Option<Pfn> {
        if self.in_use() >= self.limit || self.injected_failure() {
            return None;
        }
        let slot = self
            .pages
            .iter()
            .skip(1)
            .position(Option::is_none)
            .map(|i| i + 1);
        let index = slot.unwrap_or(self.pages.len());
        if index == self.pages.len() {
            self.pages.push(None);
        }
        self.pages[index] = Some((1, bytes));
        Some(Pfn(index as u64))
    }

    /// Frame `pfn` lost its last reference: free it, and its block's bytes
    /// with the block's last frame.
    fn free(&mut self, pfn: u64) {
        assert!(
            pfn != 0,
            "FakeMemory::put: the zero frame lost its last reference"
        );
        let frames = if self.whole.remove(&pfn) {
            BLOCK_FRAMES
        } else {
            1
        };
        for f in pfn..pfn + frames {
            self.pages[f as usize] = None;
            if let Some(head) = self.in_block.remove(&f)
                && self
                    .in_block
                    .range(head..head + BLOCK_FRAMES)
                    .next()
                    .is_none()
            {
                self.blocks.remove(&head);
            }
        }
    }
}

impl PhysMem for FakeMemory {
    fn alloc_zeroed(&mut self) -> Option<Pfn> {
        self.alloc_with(vec![0; PAGE as usize])
    }

    /// 512 consecutive frames at the end of the table, counted on the head.
    fn alloc_huge_zeroed(&mut self) -> Option<Pfn> {
        let frames = BLOCK_FRAMES as usize;
        if self.in_use() + frames > self.limit || self.injected_failure() {
            return None;
        }
        let head = self.pages.len() as u64;
        for f in head..head + BLOCK_FRAMES {
            self.pages.push(Some((u32::from(f == head), Vec::new())));
            self.in_block.insert(f, head);
        }
        self.blocks.insert(head, vec![0; HUGE_PAGE as usize]);
        self.whole.insert(head);
        Some(Pfn(head))
    }

    fn copy(&mut self, src: Pfn) -> Option<Pfn> {
        let bytes = self.bytes(src)[..PAGE as usize].to_vec();
        self.alloc_with(bytes)
    }

    fn copy_into(&mut self, src: Pfn, dst: Pfn) {
        let bytes = self.bytes(src)[..PAGE as usize].to_vec();
        self.bytes_mut(dst)[..PAGE as usize].copy_from_slice(&bytes);
    }

    fn read(&self, pfn: Pfn, offset: usize, buf: &mut [u8]) {
        assert!(
            offset + buf.len() <= PAGE as usize,
            "FakeMemory::read: past the frame"
        );
        buf.copy_from_slice(&self.bytes(pfn)[offset..offset + buf.len()]);
    }

    fn write(&mut self, pfn: Pfn, offset: usize, data: &[u8]) {
        assert!(
            offset + data.len() <= PAGE as usize,
            "FakeMemory::write: past the frame"
        );
        self.bytes_mut(pfn)[offset..offset + data.len()].copy_from_slice(data);
    }

    fn get(&mut self, pfn: Pfn) {
        let count = &mut self.pages[pfn.0 as usize]
            .as_mut()
            .expect("FakeMemory::get: free frame")
            .0;
        assert!(*count > 0, "FakeMemory::get: {pfn:?} inside a whole block");
        *count += 1;
    }

    fn put(&mut self, pfn: Pfn) {
        let entry = self.pages[pfn.0 as usize]
            .as_mut()
            .expect("FakeMemory::put: free frame");
        assert!(entry.0 > 0, "FakeMemory::put: {pfn:?} inside a whole block");
        entry.0 -= 1;
        if entry.0 == 0 {
            self.free(pfn.0);
        }
    }

    fn refcount(&self, pfn: Pfn) -> u32 {
        self.pages[pfn.0 as usize].as_ref().map_or(0, |p| p.0)
    }

    fn is_block(&self, head: Pfn) -> bool {
        self.whole.contains(&head.0)
    }

    fn split_block(&mut self, head: Pfn) {
        if self.whole.remove(&head.0) {
            let count = self.refcount(head);
            for f in head.0..head.0 + BLOCK_FRAMES {
                self.pages[f as usize].as_mut().expect("block frame").0 = count;
            }
        }
    }

    fn unsplit_block(&mut self, head: Pfn) {
        let count = self.refcount(head);
        let frames = head.0..head.0 + BLOCK_FRAMES;
        if self.whole.contains(&head.0) || !frames.clone().all(|f| self.refcount(Pfn(f)) == count) {
            return;
        }
        for f in frames.skip(1) {
            self.pages[f as usize].as_mut().expect("block frame").0 = 0;
        }
        self.whole.insert(head.0);
    }

    fn sole_block_owner(&mut self, head: Pfn) -> bool {
        if self.whole.contains(&head.0) {
            return self.refcount(head) == 1;
        }
        let frames = head.0..head.0 + BLOCK_FRAMES;
        if !frames.clone().all(|f| self.refcount(Pfn(f)) == 1) {
            return false;
        }
        for f in frames.skip(1) {
            self.pages[f as usize].as_mut().expect("block frame").0 = 0;
        }
        self.whole.insert(head.0);
        true
    }

    fn zero_frame(&self) -> Pfn {
        Pfn(0)
    }

    fn charge(&mut self, pages: u64) -> bool {
        match self.committed.checked_add(pages) {
            Some(total) if total <= self.commit_limit => {
                self.committed = total;
                true
            }
            _ => false,
        }
    }

    fn uncharge(&mut self, pages: u64) {
        self.committed = self
            .committed
            .checked_sub(pages)
            .expect("FakeMemory::uncharge: below zero");
    }

    fn swap_used(&self) -> bool {
        self.swap.as_ref().is_some_and(|s| s.dev.map.used() > 0)
    }

    fn swap_in(&mut self, slot: Slot) -> Result<SwappedIn, SwapInError> {
        let mut swap = self.swap.take().expect("FakeMemory::swap_in: no swap");
        let result = swap.cache.swap_in(&mut swap.dev, self, slot);
        self.swap = Some(swap);
        result
    }

    fn swap_dup(&mut self, slot: Slot) -> bool {
        let swap = self.swap.as_mut().expect("FakeMemory::swap_dup: no swap");
        swap.dev.map.dup(slot).is_ok()
    }

    fn swap_release(&mut self, slot: Slot) {
        let mut swap = self.swap.take().expect("FakeMemory::swap_release: no swap");
        swap.cache.release(&mut swap.dev, self, slot);
        self.swap = Some(swap);
    }

    fn free_swap(&mut self, pfn: Pfn) -> bool {
        let Some(mut swap) = self.swap.take() else {
            return true;
        };
        let out = swap.cache.free_swap(&mut swap.dev, self, pfn);
        self.swap = Some(swap);
        out
    }
}
