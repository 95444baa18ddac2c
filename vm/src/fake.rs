//! Host-side stand-ins for the kernel's page tables and frame allocator, so
//! the whole VM layer — faults, mmap, munmap, mprotect, fork — runs in
//! `cargo test`. The fake memory keeps real page contents, so tests can
//! check what a user would see: zeros after mmap, isolation after a
//! copy-on-write break, data surviving in shared memory.

pub use crate::fake_swap::{FakeSwap, FakeSwapSpace};
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, Mapping, NoMemory, Pmap, PteProt};
use crate::rmap::{Owner, Rmap, SpaceId};
use crate::swap_map::Slot;
use crate::vma::{HUGE_PAGE, PAGE};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

mod memory;
pub use memory::FakeMemory;

/// The frames a test's clock covers (`Clock::new`): more than any fake
/// machine of the reclaim tests numbers (their helpers check,
/// `FakeMemory::frame_numbers`). 768 KiB of links.
pub const CLOCK_FRAMES: usize = 1 << 16;

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
    rmap: Rc<RefCell<Rmap<'static>>>,
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
pub(crate) fn countdown(left: &mut Option<usize>) -> bool {
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
