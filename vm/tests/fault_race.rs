//! The fault path as if another CPU resolved the same fault at the same
//! time (`AddressSpace::fault`, step 4 in docs/src/vm_fault.md): a page
//! table that, at its Nth lookup, finds the page mapped by "the other
//! CPU". The fault must then give back what it allocated and report a
//! spurious fault: one frame per page, never two, and no reference lost.
//! The same for a fault under the read lock (`AddressSpace::fault_shared`,
//! DESIGN §6), where the other CPU acts between the lookup and the enter.

mod racy;

use racy::{Other, RW, RacyPmap, TOP, anon, anon_of, idle};
use std::cell::Cell;
use vm::fake::FakeMemory;
use vm::frame::Pfn;
use vm::mmap;
use vm::pmap::{PhysMem, Pmap, PteProt};
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, Resolution};
use vm::vma::{HUGE_PAGE, PAGE, Vma};

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

/// The copy of a frame another process shares; the frame itself made
/// writable when this PTE holds its last reference.
#[test]
fn a_copy_on_write_under_the_read_lock_copies_a_shared_frame_and_reuses_a_sole_one() {
    for share in [true, false] {
        let mut mem = FakeMemory::new(64);
        let (mut space, addr, old) = shared_page(&mut mem, idle(), share);
        space.pmap.arm();
        let want = if share {
            Resolution::CopyOnWrite
        } else {
            Resolution::Reuse
        };
        assert_eq!(
            space.fault_shared(&mut mem, addr, Access::Write),
            Some(want)
        );
        let m = space.pmap.query(addr).expect("mapped");
        assert!(m.prot.write);
        assert_eq!(m.pfn != old, share, "a copy only of a shared frame");
        assert_eq!(mem.bytes(m.pfn)[0], 42, "the page's bytes");
        assert_eq!(mem.in_use(), if share { 2 } else { 1 });
        space.audit_rmap().expect("rmap matches");
        space.clear(&mut mem);
        if share {
            assert_eq!(mem.refcount(old), 1, "the other process's reference");
            mem.put(old);
        }
        assert_eq!(mem.in_use(), 0);
    }
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
