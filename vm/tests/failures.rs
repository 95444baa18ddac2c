//! Failures leave the space as it was (issue 13 item 4): with the fake
//! page table's failure injection (`FakePmap::fail_enter_after`), an
//! operation that runs out of page-table memory part-way returns its error
//! and leaves the VMAs, the PTEs, the commit charge and the frame counts
//! exactly as before, and the data readable.

use proptest::prelude::*;
use vm::fake::{FakeMemory, FakePmap};
use vm::mmap::{self, Prot};
use vm::pmap::{Mapping, Pmap};
use vm::space::AddressSpace;
use vm::vm_fault::Access;
use vm::vma::{HUGE_PAGE, PAGE};

type Space = AddressSpace<FakePmap>;

/// Everything a failed operation must leave alone.
#[derive(Debug, PartialEq)]
struct State {
    vmas: Vec<(u64, u64, Prot)>,
    ptes: Vec<(u64, Mapping)>,
    committed: u64,
    frames: usize,
}

fn state(s: &Space, mem: &FakeMemory) -> State {
    State {
        vmas: s.vmas().map(|v| (v.start, v.end, v.prot)).collect(),
        ptes: s.pmap.ptes.iter().map(|(&va, &m)| (va, m)).collect(),
        committed: mem.committed,
        frames: mem.in_use(),
    }
}

/// A byte of user memory as a user would read it (through the PTE).
fn read(s: &Space, mem: &FakeMemory, addr: u64) -> u8 {
    let m = s.pmap.query(addr).expect("a present page");
    let within = if m.huge {
        addr & (HUGE_PAGE - 1)
    } else {
        addr & (PAGE - 1)
    };
    let pfn = vm::frame::Pfn(m.pfn.0 + within / PAGE);
    mem.bytes(pfn)[(within % PAGE) as usize]
}

/// A space holding one 2 MiB page with a pattern in it, at `a`.
fn with_a_huge_page() -> (Space, FakeMemory, u64) {
    let mut mem = FakeMemory::new(8192);
    let mut s = AddressSpace::new(FakePmap::default(), 0x7f00_0000_0000);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_ALIGNED_SUPER;
    let req = mmap::validate_mmap(0, 2 * HUGE_PAGE, 3, flags, -1, 0).unwrap();
    let a = s
        .mmap(&mut mem, &req, vm::vma::Vma::for_request(&req).unwrap())
        .unwrap();
    s.fault(&mut mem, a, Access::Write).unwrap();
    assert!(s.pmap.query(a).unwrap().huge);
    for i in 0..HUGE_PAGE / PAGE {
        let m = s.pmap.query(a).unwrap();
        mem.bytes_mut(vm::frame::Pfn(m.pfn.0 + i))[7] = i as u8;
    }
    (s, mem, a)
}

/// The operations that split a 2 MiB page (a level-1 table, no copy).
fn split_the_huge_page(s: &mut Space, mem: &mut FakeMemory, a: u64, op: u8) -> bool {
    let mid = a + 100 * PAGE;
    match op {
        0 => s.mprotect(mem, mid, mid + PAGE, Prot::READ).is_ok(),
        1 => s.munmap(mem, mid, mid + PAGE).is_ok(),
        2 => s.mlock(mem, mid, mid + PAGE, true).is_ok(),
        _ => s.fault(mem, mid, Access::Write).is_ok(),
    }
}

#[test]
fn a_demotion_that_runs_out_of_page_tables_keeps_the_huge_page() {
    let (mut s, mut mem, a) = with_a_huge_page();
    let before = state(&s, &mem);
    // The first small page needs the page table: fail it.
    s.pmap.fail_enter_after = Some(0);
    assert_eq!(
        s.mprotect(&mut mem, a + PAGE, a + 2 * PAGE, Prot::READ),
        Err(vm::errno::Errno::ENOMEM)
    );
    assert_eq!(state(&s, &mem), before);
    for i in 0..HUGE_PAGE / PAGE {
        assert_eq!(read(&s, &mem, a + i * PAGE + 7), i as u8, "page {i}");
    }
    s.clear(&mut mem);
    assert_eq!((mem.in_use(), mem.committed), (0, 0));
}

proptest! {
    /// Fail the Nth enter of an operation that demotes: it either succeeds
    /// or changes nothing at all.
    #[test]
    fn a_failed_demotion_changes_nothing(n in 0usize..600, op in 0u8..4) {
        let (mut s, mut mem, a) = with_a_huge_page();
        let before = state(&s, &mem);
        s.pmap.fail_enter_after = Some(n);
        if !split_the_huge_page(&mut s, &mut mem, a, op) {
            prop_assert_eq!(state(&s, &mem), before);
        }
        s.pmap.fail_enter_after = None;
        // Whatever is still mapped holds its data.
        for i in 0..HUGE_PAGE / PAGE {
            if s.pmap.query(a + i * PAGE).is_some() {
                prop_assert_eq!(read(&s, &mem, a + i * PAGE + 7), i as u8);
            }
        }
        s.clear(&mut mem);
        prop_assert_eq!((mem.in_use(), mem.committed), (0, 0));
    }
}

/// Regression (found by `syscall_failures`): munmap of a range whose two
/// ends both fall inside 2 MiB pages split the first, then failed on the
/// second and left the first split.
#[test]
fn a_munmap_that_cannot_split_its_second_edge_leaves_the_first_whole() {
    let mut mem = FakeMemory::new(8192);
    let mut s = AddressSpace::new(FakePmap::default(), 0x7f00_0000_0000);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_ALIGNED_SUPER;
    let req = mmap::validate_mmap(0, 2 * HUGE_PAGE, 3, flags, -1, 0).unwrap();
    let a = s
        .mmap(&mut mem, &req, vm::vma::Vma::for_request(&req).unwrap())
        .unwrap();
    s.fault(&mut mem, a, Access::Write).unwrap();
    s.fault(&mut mem, a + HUGE_PAGE, Access::Write).unwrap();
    let before = state(&s, &mem);
    // The first edge's split goes in (one level-1 table); the second's fails.
    s.pmap.fail_enter_after = Some(1);
    assert_eq!(
        s.munmap(&mut mem, a + 77 * PAGE, a + HUGE_PAGE + 5 * PAGE),
        Err(vm::errno::Errno::ENOMEM)
    );
    assert_eq!(state(&s, &mem), before);
    s.clear(&mut mem);
    assert_eq!((mem.in_use(), mem.committed), (0, 0));
}

/// Regression (found by `syscall_failures`): an mlock that ran out of
/// memory part-way kept its VMAs split and marked locked, and the pages
/// it had faulted in.
#[test]
fn a_failed_mlock_leaves_the_vmas_and_pages_as_they_were() {
    let mut mem = FakeMemory::new(8192);
    let mut s = AddressSpace::new(FakePmap::default(), 0x7f00_0000_0000);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
    let req = mmap::validate_mmap(0, 16 * PAGE, 3, flags, -1, 0).unwrap();
    let a = s
        .mmap(&mut mem, &req, vm::vma::Vma::for_request(&req).unwrap())
        .unwrap();
    s.fault(&mut mem, a + 3 * PAGE, Access::Write).unwrap();
    let before = state(&s, &mem);
    mem.fail_alloc_after = Some(4);
    assert_eq!(
        s.mlock(&mut mem, a + PAGE, a + 12 * PAGE, true),
        Err(vm::errno::Errno::ENOMEM)
    );
    assert_eq!(state(&s, &mem), before);
    assert!(
        s.vmas()
            .all(|v| !v.flags.contains(vm::vma::VmaFlags::LOCKED))
    );
    s.clear(&mut mem);
    assert_eq!((mem.in_use(), mem.committed), (0, 0));
}
