//! "Another CPU" for the fault-path race tests (`fault_race.rs`): a
//! `FakePmap` that lets a closure change the page tables just before the
//! Nth look, as another CPU resolving the same fault would.

use std::cell::{Cell, RefCell};
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap;
use vm::pmap::{Mapping, NoMemory, Pmap, Pte, PteProt, SharedPmap};
use vm::rmap::{Rmap, SpaceId};
use vm::space::AddressSpace;
use vm::swap_map::Slot;
use vm::vma::{PAGE, Vma};

/// What the other CPU does to the page tables.
pub type Other = Box<dyn FnOnce(&mut FakePmap)>;

/// `FakePmap` with another CPU that acts just before the `at`th `query`
/// after `arm`.
pub struct RacyPmap {
    inner: RefCell<FakePmap>,
    queries: Cell<usize>,
    at: usize,
    other: RefCell<Option<Other>>,
}

impl RacyPmap {
    pub fn new(at: usize, other: Other) -> RacyPmap {
        RacyPmap {
            inner: RefCell::new(FakePmap::default()),
            queries: Cell::new(usize::MAX / 2),
            at,
            other: RefCell::new(Some(other)),
        }
    }
}

impl RacyPmap {
    pub fn arm(&self) {
        self.queries.set(0);
    }

    /// One more look at the tables; the other CPU acts before the `at`th.
    fn tick(&self) {
        self.queries.set(self.queries.get() + 1);
        if self.queries.get() == self.at
            && let Some(other) = self.other.borrow_mut().take()
        {
            other(&mut self.inner.borrow_mut());
        }
    }
}

/// The fake's page-table lock is the RefCell: one operation at a time.
impl SharedPmap for RacyPmap {
    fn look(&self, va: u64) -> Pte {
        self.tick();
        let inner = self.inner.borrow();
        match (inner.query(va), inner.query_swap(va)) {
            (Some(m), _) => Pte::Present(m),
            (None, Some(_)) => Pte::Swapped,
            (None, None) => Pte::Absent,
        }
    }
    fn huge_slot_is_free(&self, va: u64) -> bool {
        self.tick();
        self.inner.borrow().huge_slot_free(va)
    }
    fn enter_if_absent(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        self.tick();
        let mut inner = self.inner.borrow_mut();
        if inner.query(va).is_some() || inner.query_swap(va).is_some() {
            return Ok(false);
        }
        inner.enter(va, pfn, prot).map(|()| true)
    }
    fn enter_huge_if_free(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        self.tick();
        let mut inner = self.inner.borrow_mut();
        if !inner.huge_slot_free(va) {
            return Ok(false);
        }
        inner.enter_huge(va, pfn, prot).map(|()| true)
    }
    fn replace_if(&self, va: u64, old: Mapping, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        self.tick();
        let mut inner = self.inner.borrow_mut();
        if inner.query(va) != Some(old) {
            return Ok(false);
        }
        inner.replace(va, pfn, prot).map(|_| true)
    }
    fn protect_if(&self, va: u64, old: Mapping, prot: PteProt) -> bool {
        self.tick();
        let mut inner = self.inner.borrow_mut();
        if inner.query(va) != Some(old) {
            return false;
        }
        inner.protect_range(va, va + PAGE, &mut |_, _| prot);
        true
    }
    fn unmap_range_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        self.tick();
        self.inner.borrow_mut().unmap_range(start, end, release)
    }
    fn clear_swap_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        self.inner.borrow_mut().clear_swap(start, end, release)
    }
}

impl Pmap for RacyPmap {
    fn id(&self) -> SpaceId {
        self.inner.borrow().id()
    }
    fn with_rmap(&self, f: &mut dyn FnMut(&Rmap)) {
        self.inner.borrow().with_rmap(f)
    }
    fn enter(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        self.inner.get_mut().enter(va, pfn, prot)
    }
    fn enter_huge(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        self.inner.get_mut().enter_huge(va, pfn, prot)
    }
    fn split_huge(&mut self, va: u64) -> Result<(), NoMemory> {
        self.inner.get_mut().split_huge(va)
    }
    fn join_huge(&mut self, va: u64) {
        self.inner.get_mut().join_huge(va)
    }
    fn huge_slot_free(&self, va: u64) -> bool {
        self.inner.borrow().huge_slot_free(va)
    }
    fn query(&self, va: u64) -> Option<Mapping> {
        self.tick();
        self.inner.borrow().query(va)
    }
    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        self.inner.get_mut().unmap_range(start, end, release)
    }
    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    ) {
        self.inner.get_mut().protect_range(start, end, rights)
    }
    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<Mapping, NoMemory> {
        self.inner.get_mut().replace(va, pfn, prot)
    }
    fn visit(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Mapping)) {
        self.inner.get_mut().visit(start, end, visit)
    }
    fn enter_run(
        &mut self,
        va: u64,
        frames: &[Option<Pfn>],
        prot: PteProt,
        refuse: &mut dyn FnMut(Pfn),
    ) -> u32 {
        self.inner.get_mut().enter_run(va, frames, prot, refuse)
    }
    fn move_range(&mut self, from: u64, to: u64, len: u64) -> Result<(), NoMemory> {
        self.inner.get_mut().move_range(from, to, len)
    }
    fn copy_to(
        &mut self,
        child: &mut Self,
        start: u64,
        end: u64,
        share: &mut dyn FnMut(u64, Mapping),
    ) -> Result<(), NoMemory> {
        self.inner
            .get_mut()
            .copy_to(child.inner.get_mut(), start, end, share)
    }
    fn query_swap(&self, va: u64) -> Option<Slot> {
        self.inner.borrow().query_swap(va)
    }
    fn swap_out(&mut self, va: u64, pfn: Pfn, slot: Slot) -> Option<Mapping> {
        self.inner.get_mut().swap_out(va, pfn, slot)
    }
    fn swap_in(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        self.inner.get_mut().swap_in(va, pfn, prot)
    }
    fn set_swap(&mut self, va: u64, slot: Slot) -> Result<(), NoMemory> {
        self.inner.get_mut().set_swap(va, slot)
    }
    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        self.inner.get_mut().clear_swap(start, end, release)
    }
    fn visit_swap(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Slot)) {
        self.inner.get_mut().visit_swap(start, end, visit)
    }
    fn take_accessed(&mut self, va: u64) -> bool {
        self.inner.get_mut().take_accessed(va)
    }
    fn mark_lazy_free(
        &mut self,
        start: u64,
        end: u64,
        pick: &mut dyn FnMut(u64, Mapping) -> bool,
    ) -> u64 {
        self.inner.get_mut().mark_lazy_free(start, end, pick)
    }
    fn discard_lazy_free(&mut self, va: u64, pfn: Pfn) -> Option<Mapping> {
        self.inner.get_mut().discard_lazy_free(va, pfn)
    }
}

pub const TOP: u64 = 0x7f00_0000_0000;
pub const RW: PteProt = PteProt {
    user: true,
    write: true,
    exec: false,
};

pub fn anon(space: &mut AddressSpace<RacyPmap>, mem: &mut FakeMemory) -> u64 {
    anon_of(space, mem, PAGE)
}

pub fn anon_of(space: &mut AddressSpace<RacyPmap>, mem: &mut FakeMemory, len: u64) -> u64 {
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
    let req = mmap::validate_mmap(0, len, 3, flags, -1, 0).expect("valid");
    let vma = Vma::for_request(&req).expect("anonymous");
    space.mmap(mem, &req, vma).expect("mmap")
}

/// The other CPU does nothing.
pub fn idle() -> Other {
    Box::new(|_| {})
}
