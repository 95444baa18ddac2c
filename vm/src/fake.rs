//! Host-side stand-ins for the kernel's page tables and frame allocator, so
//! the whole VM layer — faults, mmap, munmap, mprotect, fork — runs in
//! `cargo test`. The fake memory keeps real page contents, so tests can
//! check what a user would see: zeros after mmap, isolation after a
//! copy-on-write break, data surviving in shared memory.

pub use crate::fake_swap::{FakeSwap, FakeSwapSpace};
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, Mapping, NoMemory, PhysMem, Pmap, PteProt};
use crate::rmap::{Owner, Rmap, SpaceId};
use crate::swap_cache::{READAHEAD_WINDOW, SwapInError, SwappedIn};
use crate::swap_map::Slot;
use crate::vma::{HUGE_PAGE, PAGE};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Page tables as a sorted map from page address to mapping.
///
/// Each `FakePmap` records its PTEs in a reverse map shared by the spaces
/// of one "machine": `default()` starts a new machine, `on_machine_of`
/// joins another space's, and `copy_to` (fork) moves a still-empty child
/// onto its parent's machine, so the fork tests' `FakePmap::default()`
/// children share their parent's reverse map.
#[derive(Debug)]
pub struct FakePmap {
    pub ptes: BTreeMap<u64, Mapping>,
    /// Swap PTEs: page address to the slot it holds.
    pub swapped: BTreeMap<u64, Slot>,
    /// Present pages whose accessed bit is set: a PTE is made accessed (the
    /// access that faulted it in), and the tests `touch` pages.
    pub accessed: BTreeSet<u64>,
    /// Present pages marked lazily freeable (MADV_FREE, `mark_lazy_free`).
    pub lazy_free: BTreeSet<u64>,
    /// TLB flushes requested (the tests count them).
    pub flushes: usize,
    /// 2 MiB entries split into 4 KiB ones (`split_huge`).
    pub splits: usize,
    /// Failure injection: `Some(n)` lets `n` more PTEs be made (by
    /// `enter`, `enter_huge`, `enter_run`, `replace`, in the child by
    /// `copy_to`; a whole `move_range` or `split_huge` counts as one), then fails the next one as if no frame could be had for
    /// a page table or a reverse-map entry (once; then it is `None` again).
    pub fail_enter_after: Option<usize>,
    id: SpaceId,
    rmap: Rc<RefCell<Rmap>>,
}

impl Default for FakePmap {
    fn default() -> Self {
        let mut rmap = Rmap::new();
        rmap.set_unrecorded(Pfn(0)); // FakeMemory's zero frame
        FakePmap {
            ptes: BTreeMap::new(),
            swapped: BTreeMap::new(),
            accessed: BTreeSet::new(),
            lazy_free: BTreeSet::new(),
            flushes: 0,
            splits: 0,
            fail_enter_after: None,
            id: SpaceId::fresh(),
            rmap: Rc::new(RefCell::new(rmap)),
        }
    }
}

impl FakePmap {
    /// An empty space on the same machine (reverse map) as `other`.
    pub fn on_machine_of(other: &FakePmap) -> FakePmap {
        let mut pmap = FakePmap::default();
        pmap.rmap = other.rmap.clone();
        pmap
    }

    /// Whether this enter is the one to fail (see `fail_enter_after`).
    fn injected_failure(&mut self) -> bool {
        countdown(&mut self.fail_enter_after)
    }

    fn owner(&self, va: u64) -> Owner {
        Owner::new(self.id, va)
    }

    /// Make the PTE of `va` present, recording it in the reverse map.
    fn set(&mut self, va: u64, m: Mapping) -> Result<(), NoMemory> {
        self.rmap.borrow_mut().add(m.pfn, self.owner(va))?;
        let previous = self.ptes.insert(va, m);
        assert!(
            previous.is_none(),
            "FakePmap: remap of a present page {va:#x}"
        );
        self.accessed.insert(va);
        Ok(())
    }

    /// Clear the PTE of `va`, forgetting it in the reverse map.
    fn clear(&mut self, va: u64) -> Mapping {
        let m = self.ptes.remove(&va).expect("FakePmap: page not present");
        self.rmap.borrow_mut().remove(m.pfn, self.owner(va));
        self.accessed.remove(&va);
        self.lazy_free.remove(&va);
        m
    }

    /// The process used the page at `va`: the MMU sets its accessed bit.
    pub fn touch(&mut self, va: u64) {
        let page = va & !(PAGE - 1);
        if self.ptes.contains_key(&page) {
            self.accessed.insert(page);
        }
    }
}

impl Drop for FakePmap {
    /// A space going away takes its PTEs out of the shared reverse map
    /// (the references they held are the test's business, as before).
    fn drop(&mut self) {
        let vas: Vec<u64> = self.ptes.keys().copied().collect();
        for va in vas {
            self.clear(va);
        }
    }
}

impl Pmap for FakePmap {
    fn id(&self) -> SpaceId {
        self.id
    }

    fn with_rmap(&self, f: &mut dyn FnMut(&Rmap)) {
        f(&self.rmap.borrow());
    }

    fn enter(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        if self.injected_failure() {
            return Err(NoMemory);
        }
        assert!(
            self.query(va).is_none() && !self.swapped.contains_key(&va),
            "FakePmap::enter: remap of a present or swapped page {va:#x}"
        );
        let huge = false;
        self.set(va, Mapping { pfn, prot, huge })
    }

    fn enter_huge(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        if self.injected_failure() {
            return Err(NoMemory);
        }
        assert!(
            va.is_multiple_of(HUGE_PAGE),
            "FakePmap::enter_huge: unaligned"
        );
        assert!(
            self.ptes.range(va..va + HUGE_PAGE).next().is_none()
                && self.swapped.range(va..va + HUGE_PAGE).next().is_none(),
            "FakePmap::enter_huge: pages present or swapped"
        );
        let huge = true;
        self.set(va, Mapping { pfn, prot, huge })
    }

    fn split_huge(&mut self, va: u64) -> Result<(), NoMemory> {
        let huge = *self
            .ptes
            .get(&va)
            .filter(|m| m.huge)
            .expect("FakePmap::split_huge: no 2 MiB page there");
        if self.injected_failure() {
            return Err(NoMemory);
        }
        // The 2 MiB entry's record (head frame, first page) is the first
        // small page's too: only the other 511 are new.
        let small = |i: u64| (Pfn(huge.pfn.0 + i), va + i * PAGE);
        for i in 1..BLOCK_FRAMES {
            let (pfn, at) = small(i);
            if self.rmap.borrow_mut().add(pfn, self.owner(at)).is_err() {
                for j in 1..i {
                    let (pfn, at) = small(j);
                    self.rmap.borrow_mut().remove(pfn, self.owner(at));
                }
                return Err(NoMemory);
            }
        }
        for i in 0..BLOCK_FRAMES {
            let (pfn, at) = small(i);
            let prot = huge.prot;
            self.ptes.insert(
                at,
                Mapping {
                    pfn,
                    prot,
                    huge: false,
                },
            );
        }
        self.splits += 1;
        self.flushes += 1;
        Ok(())
    }

    fn join_huge(&mut self, va: u64) {
        let first = *self.ptes.get(&va).expect("FakePmap::join_huge: no page");
        for i in 1..BLOCK_FRAMES {
            let at = va + i * PAGE;
            let m = self.ptes.remove(&at).expect("FakePmap::join_huge: a hole");
            assert!(
                !m.huge && m.pfn.0 == first.pfn.0 + i && m.prot == first.prot,
                "FakePmap::join_huge: not a split 2 MiB page"
            );
            self.rmap.borrow_mut().remove(m.pfn, self.owner(at));
        }
        let marked: Vec<u64> = self.lazy_free.range(va..va + HUGE_PAGE).copied().collect();
        marked.iter().for_each(|at| _ = self.lazy_free.remove(at));
        let huge = true;
        self.ptes.insert(va, Mapping { huge, ..first });
        self.flushes += 1;
    }

    fn huge_slot_free(&self, va: u64) -> bool {
        self.ptes.range(va..va + HUGE_PAGE).next().is_none()
    }

    fn query(&self, va: u64) -> Option<Mapping> {
        let page = va & !(PAGE - 1);
        if let Some(m) = self.ptes.get(&page) {
            return Some(*m);
        }
        let huge = va & !(HUGE_PAGE - 1);
        self.ptes.get(&huge).filter(|m| m.huge).copied()
    }

    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        let keys: Vec<u64> = self.ptes.range(start..end).map(|(&va, _)| va).collect();
        for va in keys {
            let m = self.clear(va);
            assert!(
                !m.huge || va + HUGE_PAGE <= end,
                "FakePmap::unmap_range: splits a huge page"
            );
            release(va, m);
        }
        self.flushes += 1;
    }

    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    ) {
        for (&va, m) in self.ptes.range_mut(start..end) {
            m.prot = rights(va, *m);
            self.lazy_free.remove(&va);
        }
        self.flushes += 1;
    }

    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<Mapping, NoMemory> {
        let va = va & !(PAGE - 1);
        let old = *self
            .ptes
            .get(&va)
            .expect("FakePmap::replace: page not present");
        if self.injected_failure() {
            return Err(NoMemory);
        }
        // The new frame first: if it cannot be recorded nothing changed.
        self.rmap.borrow_mut().add(pfn, self.owner(va))?;
        self.rmap.borrow_mut().remove(old.pfn, self.owner(va));
        let huge = false;
        self.ptes.insert(va, Mapping { pfn, prot, huge });
        self.lazy_free.remove(&va);
        self.flushes += 1;
        Ok(old)
    }

    fn visit(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Mapping)) {
        for (&va, m) in self.ptes.range(start..end) {
            visit(va, *m);
        }
    }

    fn enter_run(
        &mut self,
        va: u64,
        frames: &[Option<Pfn>],
        prot: PteProt,
        refuse: &mut dyn FnMut(Pfn),
    ) -> u32 {
        let mut entered = 0;
        for (i, pfn) in frames.iter().enumerate() {
            let Some(pfn) = *pfn else { continue };
            let at = va + i as u64 * PAGE;
            let huge = false;
            if self.query(at).is_some()
                || self.swapped.contains_key(&at)
                || self.injected_failure()
                || self.set(at, Mapping { pfn, prot, huge }).is_err()
            {
                refuse(pfn);
            } else {
                entered += 1;
            }
        }
        entered
    }

    fn move_range(&mut self, from: u64, to: u64, len: u64) -> Result<(), NoMemory> {
        // One injected failure covers the whole move (its page tables).
        if self.injected_failure() {
            return Err(NoMemory);
        }
        let present: Vec<u64> = self
            .ptes
            .range(from..from + len)
            .map(|(&va, _)| va)
            .collect();
        assert!(
            self.ptes.range(to..to + len).next().is_none()
                && self.swapped.range(to..to + len).next().is_none(),
            "FakePmap::move_range: target not empty"
        );
        let swapped: Vec<(u64, Slot)> = self
            .swapped
            .range(from..from + len)
            .map(|(&va, &slot)| (va, slot))
            .collect();
        for (va, slot) in swapped {
            self.swapped.remove(&va);
            self.swapped.insert(to + (va - from), slot);
        }
        for va in present {
            let m = self.ptes.remove(&va).expect("listed");
            let new = to + (va - from);
            assert!(
                !m.huge || (new.is_multiple_of(HUGE_PAGE) && va + HUGE_PAGE <= from + len),
                "FakePmap::move_range: a 2 MiB page moved out of shape"
            );
            self.rmap
                .borrow_mut()
                .moved(m.pfn, self.owner(va), self.owner(new));
            self.ptes.insert(new, m);
            if self.accessed.remove(&va) {
                self.accessed.insert(new);
            }
            if self.lazy_free.remove(&va) {
                self.lazy_free.insert(new);
            }
        }
        self.flushes += 1;
        Ok(())
    }

    fn copy_to(
        &mut self,
        child: &mut Self,
        start: u64,
        end: u64,
        share: &mut dyn FnMut(u64, Mapping),
    ) -> Result<(), NoMemory> {
        if !Rc::ptr_eq(&self.rmap, &child.rmap) {
            assert!(
                child.ptes.is_empty(),
                "FakePmap::copy_to: spaces of two machines"
            );
            child.rmap = self.rmap.clone();
        }
        let present: Vec<u64> = self.ptes.range(start..end).map(|(&va, _)| va).collect();
        let mut result = Ok(());
        for va in present {
            if self.injected_failure() {
                result = Err(NoMemory);
                break;
            }
            let m = self.ptes.get_mut(&va).expect("listed");
            let copy = Mapping {
                prot: PteProt {
                    write: false,
                    ..m.prot
                },
                ..*m
            };
            assert!(
                child.query(va).is_none(),
                "FakePmap::copy_to: child range not empty"
            );
            if let Err(e) = child.set(va, copy) {
                result = Err(e);
                break;
            }
            m.prot.write = false;
            share(va, copy);
        }
        self.flushes += 1;
        result
    }

    fn query_swap(&self, va: u64) -> Option<Slot> {
        self.swapped.get(&(va & !(PAGE - 1))).copied()
    }

    fn swap_out(&mut self, va: u64, pfn: Pfn, slot: Slot) -> Option<Mapping> {
        let m = self.ptes.get(&va)?;
        if m.pfn != pfn || m.huge {
            return None;
        }
        let m = self.clear(va);
        self.swapped.insert(va, slot);
        self.flushes += 1;
        Some(m)
    }

    fn swap_in(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        assert!(
            self.swapped.contains_key(&va),
            "FakePmap::swap_in: {va:#x} holds no slot"
        );
        if self.injected_failure() {
            return Err(NoMemory);
        }
        let huge = false;
        self.set(va, Mapping { pfn, prot, huge })?;
        self.swapped.remove(&va);
        Ok(())
    }

    fn set_swap(&mut self, va: u64, slot: Slot) -> Result<(), NoMemory> {
        if self.injected_failure() {
            return Err(NoMemory);
        }
        assert!(
            self.query(va).is_none() && !self.swapped.contains_key(&va),
            "FakePmap::set_swap: {va:#x} not empty"
        );
        self.swapped.insert(va, slot);
        Ok(())
    }

    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        let gone: Vec<(u64, Slot)> = self
            .swapped
            .range(start..end)
            .map(|(&va, &slot)| (va, slot))
            .collect();
        for (va, slot) in gone {
            self.swapped.remove(&va);
            release(va, slot);
        }
    }

    fn visit_swap(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Slot)) {
        for (&va, &slot) in self.swapped.range(start..end) {
            visit(va, slot);
        }
    }

    fn take_accessed(&mut self, va: u64) -> bool {
        self.accessed.remove(&va)
    }

    fn mark_lazy_free(
        &mut self,
        start: u64,
        end: u64,
        pick: &mut dyn FnMut(u64, Mapping) -> bool,
    ) -> u64 {
        let mut marked = 0;
        for (&va, m) in self.ptes.range_mut(start..end) {
            if !m.huge && pick(va, *m) {
                m.prot.write = false;
                self.accessed.remove(&va);
                self.lazy_free.insert(va);
                marked += 1;
            }
        }
        self.flushes += 1;
        marked
    }

    fn discard_lazy_free(&mut self, va: u64, pfn: Pfn) -> Option<Mapping> {
        let m = self.ptes.get(&va)?;
        if m.pfn != pfn || m.huge || !self.lazy_free.contains(&va) {
            return None;
        }
        self.flushes += 1;
        Some(self.clear(va))
    }
}

/// One step of a failure injection's countdown: true (and disarmed) when
/// it reaches the call to fail.
fn countdown(left: &mut Option<usize>) -> bool {
    match *left {
        Some(0) => {
            *left = None;
            true
        }
        Some(n) => {
            *left = Some(n - 1);
            false
        }
        None => false,
    }
}

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
        let result = swap
            .cache
            .swap_in(&mut swap.dev, self, slot, READAHEAD_WINDOW);
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
}
