//! The fault path as if another CPU resolved the same fault at the same
//! time (`AddressSpace::fault`, step 4 in docs/src/vm_fault.md): a page
//! table that, at its Nth lookup, finds the page mapped by "the other
//! CPU". The fault must then give back what it allocated and report a
//! spurious fault: one frame per page, never two, and no reference lost.
//! The same for a fault under the read lock (`AddressSpace::fault_shared`,
//! DESIGN §6), where the other CPU acts between the lookup and the enter.

use std::cell::{Cell, RefCell};
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap;
use vm::pmap::{Mapping, NoMemory, PhysMem, Pmap, Pte, PteProt, SharedPmap};
use vm::rmap::{Rmap, SpaceId};
use vm::space::AddressSpace;
use vm::swap_map::Slot;
use vm::thp::Mode;
use vm::vm_fault::{Access, Resolution};
use vm::vma::{HUGE_PAGE, PAGE, Vma};

/// What the other CPU does to the page tables.
type Other = Box<dyn FnOnce(&mut FakePmap)>;

/// `FakePmap` with another CPU that acts just before the `at`th `query`
/// after `arm`.
struct RacyPmap {
    inner: RefCell<FakePmap>,
    queries: Cell<usize>,
    at: usize,
    other: RefCell<Option<Other>>,
}

impl RacyPmap {
    fn new(at: usize, other: Other) -> RacyPmap {
        RacyPmap {
            inner: RefCell::new(FakePmap::default()),
            queries: Cell::new(usize::MAX / 2),
            at,
            other: RefCell::new(Some(other)),
        }
    }
}

impl RacyPmap {
    fn arm(&self) {
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

const TOP: u64 = 0x7f00_0000_0000;
const RW: PteProt = PteProt {
    user: true,
    write: true,
    exec: false,
};

fn anon(space: &mut AddressSpace<RacyPmap>, mem: &mut FakeMemory) -> u64 {
    anon_of(space, mem, PAGE)
}

fn anon_of(space: &mut AddressSpace<RacyPmap>, mem: &mut FakeMemory, len: u64) -> u64 {
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
    let req = mmap::validate_mmap(0, len, 3, flags, -1, 0).expect("valid");
    let vma = Vma::for_request(&req).expect("anonymous");
    space.mmap(mem, &req, vma).expect("mmap")
}

/// A write's first touch of a page that "the other CPU" maps just before
/// the fault enters its own frame, taken by `fault` (the write lock's
/// way or the read lock's): a spurious fault, the other CPU's frame
/// stays, no second one, and the frame the fault allocated goes back.
fn zero_fill_lost_to_another_cpu(
    thp: Mode,
    fault: impl FnOnce(&mut AddressSpace<RacyPmap>, &mut FakeMemory, u64) -> Option<Resolution>,
) {
    let mut mem = FakeMemory::new(64);
    let theirs = mem.alloc_zeroed().expect("a frame");
    mem.bytes_mut(theirs)[0] = 42;
    // Look 1 is the lookup, 2 the look again before entering.
    let other: Other = Box::new(move |p| p.enter(TOP - PAGE, theirs, RW).expect("enter"));
    let mut space = AddressSpace::new(RacyPmap::new(2, other), TOP);
    space.thp = thp;
    let addr = anon(&mut space, &mut mem);
    assert_eq!(addr, TOP - PAGE, "the page the other CPU maps");
    space.pmap.arm();
    assert_eq!(
        fault(&mut space, &mut mem, addr),
        Some(Resolution::Spurious)
    );
    let m = space.pmap.query(addr).expect("mapped");
    assert_eq!(m.pfn, theirs, "the other CPU's frame stays, no second one");
    assert_eq!(mem.bytes(m.pfn)[0], 42);
    assert_eq!(mem.in_use(), 1, "the frame this fault allocated went back");
    assert_eq!(mem.refcount(theirs), 1);
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_zero_fill_that_another_cpu_resolved_first_is_spurious_and_frees_its_frame() {
    zero_fill_lost_to_another_cpu(vm::thp::mode(), |space, mem, addr| {
        space.fault(mem, addr, Access::Write).ok()
    });
}

#[test]
fn a_copy_on_write_that_another_cpu_broke_first_is_spurious_and_frees_its_copy() {
    let mut mem = FakeMemory::new(64);
    // The page maps the zero frame read-only (a read fault), then a write
    // faults; the other CPU breaks copy-on-write with its own copy first.
    let theirs = mem.alloc_zeroed().expect("a frame");
    mem.bytes_mut(theirs)[0] = 7;
    // Armed after the read fault: query 1 is the write's lookup, 2 the
    // look again before entering the copy.
    let other: Other = Box::new(move |p| {
        let old = p.replace(TOP - PAGE, theirs, RW).expect("replace");
        assert_eq!(old.pfn, Pfn(0), "the zero frame was mapped");
    });
    let mut space = AddressSpace::new(RacyPmap::new(2, other), TOP);
    let addr = anon(&mut space, &mut mem);
    assert_eq!(
        space.fault(&mut mem, addr, Access::Read),
        Ok(Resolution::ZeroPage)
    );
    space.pmap.arm();
    assert_eq!(
        space.fault(&mut mem, addr, Access::Write),
        Ok(Resolution::Spurious)
    );
    let m = space.pmap.query(addr).expect("mapped");
    assert_eq!(m.pfn, theirs);
    assert_eq!(mem.bytes(m.pfn)[0], 7);
    assert_eq!(mem.in_use(), 1, "the copy this fault made went back");
    // The zero frame's reference went back with the other CPU's replace.
    mem.put(Pfn(0));
    assert_eq!(
        mem.refcount(Pfn(0)),
        1,
        "only the zero frame's own reference"
    );
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

/// The other CPU does nothing.
fn idle() -> Other {
    Box::new(|_| {})
}

#[test]
fn a_first_touch_under_the_read_lock_resolves_as_the_write_lock_fault_does() {
    let mut mem = FakeMemory::new(64);
    let mut space = AddressSpace::new(RacyPmap::new(usize::MAX, idle()), TOP);
    space.thp = Mode::Never;
    let addr = anon_of(&mut space, &mut mem, 2 * PAGE);
    let (read, written) = (addr, addr + PAGE);
    assert_eq!(
        space.fault_shared(&mut mem, read, Access::Read),
        Some(Resolution::ZeroPage)
    );
    assert_eq!(
        space.fault_shared(&mut mem, written, Access::Write),
        Some(Resolution::ZeroFill)
    );
    let m = space.pmap.query(written).expect("mapped");
    assert!(m.prot.write && !m.huge);
    assert_eq!(space.pmap.query(read).map(|m| m.pfn), Some(Pfn(0)));
    assert_eq!(
        space.fault_shared(&mut mem, written, Access::Write),
        Some(Resolution::Spurious)
    );
    // Nothing mapped is a SIGSEGV, and an access the VMA refuses too: the
    // write lock's.
    assert_eq!(
        space.fault_shared(&mut mem, addr + 2 * PAGE, Access::Read),
        None
    );
    assert_eq!(space.fault_shared(&mut mem, written, Access::Execute), None);
    // A write to the zero page is copy-on-write: a zeroed frame of its own.
    assert_eq!(
        space.fault_shared(&mut mem, read, Access::Write),
        Some(Resolution::CopyOnWrite)
    );
    let m = space.pmap.query(read).expect("mapped");
    assert!(m.prot.write && m.pfn != Pfn(0));
    assert_eq!(mem.in_use(), 2, "two frames: the written pages'");
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

/// A written page whose frame "another process" shares, as fork leaves
/// it: read-only here, one more reference (`share`), the byte 42 in it.
/// The space, its page and that frame.
fn shared_page(
    mem: &mut FakeMemory,
    other: Other,
    share: bool,
) -> (AddressSpace<RacyPmap>, u64, Pfn) {
    let mut space = AddressSpace::new(RacyPmap::new(2, other), TOP);
    space.thp = Mode::Never;
    let addr = anon(&mut space, mem);
    assert_eq!(
        space.fault(mem, addr, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    let pfn = space.pmap.query(addr).expect("mapped").pfn;
    mem.bytes_mut(pfn)[0] = 42;
    let read_only = PteProt { write: false, ..RW };
    space
        .pmap
        .protect_range(addr, addr + PAGE, &mut |_, _| read_only);
    if share {
        mem.get(pfn);
    }
    (space, addr, pfn)
}

#[test]
fn a_copy_on_write_under_the_read_lock_copies_a_shared_frame() {
    let mut mem = FakeMemory::new(64);
    let (mut space, addr, theirs) = shared_page(&mut mem, idle(), true);
    space.pmap.arm();
    assert_eq!(
        space.fault_shared(&mut mem, addr, Access::Write),
        Some(Resolution::CopyOnWrite)
    );
    let m = space.pmap.query(addr).expect("mapped");
    assert!(m.prot.write && m.pfn != theirs);
    assert_eq!(mem.bytes(m.pfn)[0], 42, "the copy has the page's bytes");
    assert_eq!(mem.refcount(theirs), 1, "the other process's reference");
    assert_eq!(mem.in_use(), 2);
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    mem.put(theirs);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_copy_on_write_under_the_read_lock_of_the_last_reference_reuses_the_frame() {
    let mut mem = FakeMemory::new(64);
    let (mut space, addr, pfn) = shared_page(&mut mem, idle(), false);
    space.pmap.arm();
    assert_eq!(
        space.fault_shared(&mut mem, addr, Access::Write),
        Some(Resolution::Reuse)
    );
    let m = space.pmap.query(addr).expect("mapped");
    assert!(m.prot.write && m.pfn == pfn);
    assert_eq!(mem.in_use(), 1, "no copy");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

/// Look 1 is the lookup, 2 the look again in `replace_if` or `protect_if`:
/// the other CPU broke the copy-on-write first, with its own copy.
#[test]
fn a_copy_on_write_under_the_read_lock_that_another_cpu_broke_first_is_spurious() {
    for share in [true, false] {
        let mut mem = FakeMemory::new(64);
        let ours = mem.alloc_zeroed().expect("a frame");
        mem.bytes_mut(ours)[0] = 7;
        let other: Other = Box::new(move |p| {
            p.replace(TOP - PAGE, ours, RW).expect("replace");
        });
        let (mut space, addr, theirs) = shared_page(&mut mem, other, share);
        space.pmap.arm();
        assert_eq!(
            space.fault_shared(&mut mem, addr, Access::Write),
            Some(Resolution::Spurious)
        );
        let m = space.pmap.query(addr).expect("mapped");
        assert_eq!((m.pfn, mem.bytes(m.pfn)[0]), (ours, 7));
        // The old PTE's reference, which the other CPU's fault gives back.
        mem.put(theirs);
        let left = if share { 2 } else { 1 };
        assert_eq!(mem.in_use(), left, "the copy this fault made went back");
        space.audit_rmap().expect("rmap matches");
        space.clear(&mut mem);
        if share {
            mem.put(theirs);
        }
        assert_eq!(mem.in_use(), 0);
    }
}

#[test]
fn a_first_touch_under_the_read_lock_that_another_cpu_resolved_first_is_spurious() {
    zero_fill_lost_to_another_cpu(Mode::Never, |space, mem, addr| {
        space.fault_shared(mem, addr, Access::Write)
    });
}

#[test]
fn a_huge_first_touch_that_lost_its_slot_to_a_small_page_takes_a_small_page() {
    let frames = 3 * (HUGE_PAGE / PAGE) as usize;
    let mut mem = FakeMemory::new(frames);
    let theirs = mem.alloc_zeroed().expect("a frame");
    // Look 1 the lookup, 2 the slot's look, 3 the 2 MiB enter: the other
    // CPU maps a 4 KiB page in the slot first.
    let at = std::rc::Rc::new(Cell::new(0));
    let slot = at.clone();
    let other: Other = Box::new(move |p| p.enter(slot.get(), theirs, RW).expect("enter"));
    let mut space = AddressSpace::new(RacyPmap::new(3, other), TOP);
    space.thp = Mode::Always;
    let base = anon_of(&mut space, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(base % HUGE_PAGE, 0, "2 MiB-aligned");
    at.set(base);
    space.pmap.arm();
    let touched = base + 5 * PAGE;
    assert_eq!(
        space.fault_shared(&mut mem, touched, Access::Write),
        Some(Resolution::ZeroFill),
        "the slot has a table now: a 4 KiB page"
    );
    assert!(!space.pmap.query(touched).expect("mapped").huge);
    assert_eq!(space.pmap.query(base).map(|m| m.pfn), Some(theirs));
    assert_eq!(mem.in_use(), 2, "the 2 MiB block went back");
    // The other 2 MiB of the mapping is free: a huge page.
    assert_eq!(
        space.fault_shared(&mut mem, base + HUGE_PAGE, Access::Write),
        Some(Resolution::HugeZeroFill)
    );
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

mod model {
    //! Any sequence of first touches and faults gives the same page tables
    //! and the same resolutions whether each fault first tries the read
    //! lock's way (falling back to `fault` when it declines) or not.

    use super::*;
    use proptest::prelude::*;

    /// A read-write mapping of two 2 MiB ranges and some 4 KiB pages, and
    /// a read-only one of 16 pages; its address.
    fn mappings(space: &mut AddressSpace<RacyPmap>, mem: &mut FakeMemory) -> (u64, u64) {
        let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
        let mut map = |len, prot| {
            let req = mmap::validate_mmap(0, len, prot, flags, -1, 0).expect("valid");
            let vma = Vma::for_request(&req).expect("anonymous");
            space.mmap(mem, &req, vma).expect("mmap")
        };
        (map(2 * HUGE_PAGE + 8 * PAGE, 3), map(16 * PAGE, 1))
    }

    fn access(kind: u8) -> Access {
        match kind {
            0 => Access::Read,
            1 => Access::Execute,
            _ => Access::Write,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_read_lock_way_resolves_as_the_write_lock_way(
            always in any::<bool>(),
            ops in proptest::collection::vec((0u64..2 * 512 + 8 + 16 + 2, 0u8..4), 1..48),
        ) {
            let frames = 2 * 3 * (HUGE_PAGE / PAGE) as usize;
            let mode = if always { Mode::Always } else { Mode::Never };
            let (mut mem_a, mut mem_b) = (FakeMemory::new(frames), FakeMemory::new(frames));
            let mut a = AddressSpace::new(RacyPmap::new(usize::MAX, idle()), TOP);
            let mut b = AddressSpace::new(RacyPmap::new(usize::MAX, idle()), TOP);
            a.thp = mode;
            b.thp = mode;
            let (rw, ro) = mappings(&mut a, &mut mem_a);
            prop_assert_eq!(mappings(&mut b, &mut mem_b), (rw, ro));
            let rw_pages = 2 * 512 + 8;
            for (page, kind) in ops {
                // Pages past both mappings' ends fault on nothing.
                let addr = if page < rw_pages {
                    rw + page * PAGE
                } else {
                    ro + (page - rw_pages) * PAGE
                };
                let access = access(kind);
                let want = a.fault(&mut mem_a, addr, access);
                let got = match b.fault_shared(&mut mem_b, addr, access) {
                    Some(done) => Ok(done),
                    None => b.fault(&mut mem_b, addr, access),
                };
                prop_assert_eq!(got, want, "fault at {:#x} ({:?})", addr, access);
                let shape = |s: &AddressSpace<RacyPmap>| s.pmap.query(addr).map(|m| (m.prot, m.huge));
                prop_assert_eq!(shape(&b), shape(&a));
                prop_assert_eq!(mem_b.in_use(), mem_a.in_use());
            }
            b.audit_rmap().expect("rmap matches");
            a.clear(&mut mem_a);
            b.clear(&mut mem_b);
            prop_assert_eq!(mem_b.in_use(), 0);
        }
    }
}

/// munmap in two halves (DESIGN §6, vm/src/space/unmap.rs): after
/// `munmap_detach` under the write lock the range has no VMA, and while
/// `munmap_finish` drops its pages under the read lock another thread's
/// fault maps a page beside it, in the same page table, and "the other
/// CPU" maps one more there in the middle of the unmap. Both stay; the
/// range's frames go back; a touch of the range is SIGSEGV.
#[test]
fn munmap_under_the_read_lock_keeps_the_neighbours_faults() {
    let mut mem = FakeMemory::new(64);
    let theirs = mem.alloc_zeroed().expect("a frame");
    // The unmap's first look at the tables is the other CPU's moment.
    let other: Other = Box::new(move |p| p.enter(TOP - PAGE, theirs, RW).expect("enter"));
    let mut space = AddressSpace::new(RacyPmap::new(1, other), TOP);
    space.thp = Mode::Never;
    let base = anon_of(&mut space, &mut mem, 8 * PAGE);
    assert_eq!(base, TOP - 8 * PAGE);
    for i in 0..6 {
        space
            .fault(&mut mem, base + i * PAGE, Access::Write)
            .expect("fault");
    }
    assert_eq!(mem.in_use(), 7, "six pages and the other CPU's frame");
    let (from, to) = (base + 2 * PAGE, base + 5 * PAGE);
    let detached = space.munmap_detach(&mut mem, from, to).expect("detach");
    let detached = detached.expect("the range was mapped");
    // Under the read lock from here on (`&space`).
    let space_ref = &space;
    let neighbour = space_ref.fault_shared(&mut mem, base + 6 * PAGE, Access::Write);
    assert_eq!(neighbour, Some(Resolution::ZeroFill));
    space_ref.pmap.arm();
    let unmapped = space_ref.munmap_finish(&mut mem, detached);
    for i in 0..8 {
        let mapped = space.pmap.query(base + i * PAGE).is_some();
        assert_eq!(mapped, !(2..5).contains(&i), "page {i}");
    }
    // Their frames are still the unmap's until it releases them, after
    // the read lock (kernel/src/syscall/memory.rs).
    assert_eq!(mem.in_use(), 8, "the range's frames held until release");
    unmapped.release(&mut mem);
    // Pages 0, 1 and 5, the neighbour's page 6, the other CPU's page 7.
    assert_eq!(mem.in_use(), 5, "the three pages of the range went back");
    assert!(
        space.fault(&mut mem, from, Access::Read).is_err(),
        "no VMA there"
    );
    space.audit_rmap().expect("rmap matches");
    space.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}
