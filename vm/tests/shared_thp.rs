//! 2 MiB blocks of objects on the fake page tables (vm/src/vm_object/huge.rs,
//! vm/src/vm_fault/huge_object.rs, docs/src/superpages.md "Objects"):
//! shared anonymous memory and files get a block on the first fault of a
//! huge-eligible shared mapping and map it with one 2 MiB entry; a partial
//! munmap splits the entry in place and frees nothing the object still
//! holds; truncate and MADV_REMOVE of part of a block free exactly the
//! pages removed; fork shares the block; private mappings map and copy
//! 4 KiB; placement and MAP_ALIGNED_SUPER follow the object's runs. Each
//! test checks the bytes, the frames in use and the audits.

use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{self, Madvice, Prot};
use vm::pmap::{Mapping, Pmap};
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, FaultError, Resolution};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, HUGE_PAGE, PAGE, Vma};

type Space = AddressSpace<FakePmap>;

const TOP: u64 = 0x7f00_0000_0000;
const SHARED_ANON: u64 = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
const FRAMES: usize = (HUGE_PAGE / PAGE) as usize;
const HUGE_OBJECT: Result<Resolution, FaultError> =
    Ok(Resolution::HugeObjectPage { allocated: true });
const HUGE_EXISTING: Result<Resolution, FaultError> =
    Ok(Resolution::HugeObjectPage { allocated: false });

fn space(mode: Mode) -> Space {
    let mut s = AddressSpace::new(FakePmap::default(), TOP);
    s.thp = mode;
    s
}

fn shared_anon(s: &mut Space, mem: &mut FakeMemory, len: u64) -> u64 {
    let req = mmap::validate_mmap(0, len, 3, SHARED_ANON, -1, 0).expect("valid mmap");
    s.mmap(mem, &req, Vma::for_request(&req).unwrap())
        .expect("mmap")
}

/// Map `len` bytes of `file` from `offset` with `flags` (MAP_SHARED or
/// MAP_PRIVATE, perhaps MAP_ALIGNED_SUPER).
fn map_file(
    s: &mut Space,
    mem: &mut FakeMemory,
    file: &ObjectRef,
    len: u64,
    flags: u64,
    offset: u64,
) -> u64 {
    let req = mmap::validate_mmap(0, len, 3, flags, 3, offset).expect("valid mmap");
    let vma = Vma::for_file(&req, file.clone(), Prot::all());
    s.mmap(mem, &req, vma).expect("mmap")
}

fn object(s: &Space, addr: u64) -> ObjectRef {
    match &s.find(addr).expect("a VMA").backing {
        Backing::Object { object, .. } => object.clone(),
        _ => panic!("not an object mapping"),
    }
}

fn pte(s: &Space, addr: u64) -> Mapping {
    s.pmap.query(addr).expect("a present page")
}

/// The 4 KiB frame behind `addr` (inside a 2 MiB entry's block if need be).
fn frame(s: &Space, addr: u64) -> Pfn {
    let m = pte(s, addr);
    if m.huge {
        Pfn(m.pfn.0 + (addr & (HUGE_PAGE - 1)) / PAGE)
    } else {
        m.pfn
    }
}

fn byte(s: &Space, mem: &FakeMemory, addr: u64) -> u8 {
    mem.bytes(frame(s, addr))[(addr % PAGE) as usize]
}

/// Write `value` at `addr` as the process would: fault until it may.
fn store(s: &mut Space, mem: &mut FakeMemory, addr: u64, value: u8) {
    for _ in 0..4 {
        if s.pmap.query(addr).is_some_and(|m| m.prot.write) {
            let f = frame(s, addr);
            mem.bytes_mut(f)[(addr % PAGE) as usize] = value;
            return;
        }
        s.fault(mem, addr, Access::Write).expect("write fault");
    }
    panic!("write to {addr:#x} still faults");
}

/// Every 4 KiB page of the 2 MiB at `a` holds its number at byte 9.
fn fill(s: &mut Space, mem: &mut FakeMemory, a: u64) {
    for i in 0..FRAMES as u64 {
        store(s, mem, a + i * PAGE + 9, i as u8);
    }
}

fn kept(s: &Space, mem: &FakeMemory, a: u64, pages: core::ops::Range<u64>) {
    for i in pages {
        assert_eq!(byte(s, mem, a + i * PAGE + 9), i as u8, "page {i}");
    }
}

fn check(s: &mut Space, mem: &FakeMemory) {
    s.verify();
    s.audit_frames(mem).expect("reference counts");
    s.audit_rmap().expect("reverse map");
}

#[test]
fn shared_anonymous_memory_gets_a_block_mapped_by_one_entry() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = shared_anon(&mut s, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(a % HUGE_PAGE, 0, "placed 2 MiB-aligned");
    // A read allocates too: shared memory takes a frame on any touch.
    assert_eq!(s.fault(&mut mem, a + 5 * PAGE, Access::Read), HUGE_OBJECT);
    let m = pte(&s, a + HUGE_PAGE - 1);
    assert!(m.huge && m.prot.write);
    assert_eq!(mem.in_use(), FRAMES);
    let o = object(&s, a);
    assert_eq!((o.huge_blocks(), o.pmd_maps(0)), (1, 1));
    // The object holds the block's frames as its pages, in order.
    for i in [0, 1, 300, 511] {
        assert_eq!(o.frame_at(i), Some(Pfn(m.pfn.0 + i)));
    }
    fill(&mut s, &mut mem, a);
    // The object's 4 KiB view sees the stores (one frame per page).
    let mut buf = [0u8; 1];
    o.read_at(77 * PAGE + 9, &mut buf, &mut mem).expect("read");
    assert_eq!(buf[0], 77);
    check(&mut s, &mem);
    drop(o);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0, "the last mapping freed the object");
}

#[test]
fn the_policy_allocates_but_a_block_already_there_is_mapped_in_any_mode() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = shared_anon(&mut s, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(s.fault(&mut mem, a, Access::Write), HUGE_OBJECT);
    s.thp = Mode::Never;
    // A new run gets 4 KiB pages under `never`...
    assert_eq!(
        s.fault(&mut mem, a + HUGE_PAGE, Access::Write),
        Ok(Resolution::ObjectPage { around: 0, read: 0 })
    );
    assert_eq!(mem.in_use(), FRAMES + 1);
    // ...but the block the object has is mapped whole again.
    s.madvise(&mut mem, a, a + HUGE_PAGE, Madvice::DontNeed)
        .unwrap();
    assert!(s.pmap.query(a).is_none());
    assert_eq!(s.fault(&mut mem, a + 8, Access::Read), HUGE_EXISTING);
    // MADV_NOHUGEPAGE maps it with 4 KiB entries (and fault-around).
    s.madvise(&mut mem, a, a + HUGE_PAGE, Madvice::DontNeed)
        .unwrap();
    s.madvise(&mut mem, a, a + HUGE_PAGE, Madvice::NoHugePage)
        .unwrap();
    assert_eq!(
        s.fault(&mut mem, a + 8, Access::Read),
        Ok(Resolution::ObjectPage {
            around: 15,
            read: 0
        })
    );
    assert!(!pte(&s, a).huge);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_2mib_entry_needs_the_whole_aligned_2mib_in_the_vma() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    // 2 MiB - 4 KiB: no room for a whole run: 4 KiB pages, no block.
    let a = shared_anon(&mut s, &mut mem, HUGE_PAGE - PAGE);
    assert_eq!(
        s.fault(&mut mem, a, Access::Write),
        Ok(Resolution::ObjectPage { around: 0, read: 0 })
    );
    assert_eq!(object(&s, a).huge_blocks(), 0);
    assert_eq!(mem.in_use(), 1);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_partial_munmap_splits_in_place_and_the_object_keeps_every_page() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = shared_anon(&mut s, &mut mem, 2 * HUGE_PAGE);
    fill(&mut s, &mut mem, a);
    let head = pte(&s, a).pfn;
    let o = object(&s, a);
    s.munmap(&mut mem, a + 100 * PAGE, a + 104 * PAGE).unwrap();
    assert_eq!(s.pmap.splits, 1);
    assert!(s.pmap.query(a + 100 * PAGE).is_none());
    assert!(!pte(&s, a).huge);
    assert_eq!(pte(&s, a + 105 * PAGE).pfn, Pfn(head.0 + 105), "same block");
    // Shared memory's pages are the object's: nothing is freed, and the
    // run is still one block (a new mapping may map it whole).
    assert_eq!(mem.in_use(), FRAMES);
    assert_eq!((o.huge_blocks(), o.pmd_maps(0)), (1, 0));
    kept(&s, &mem, a, 0..100);
    kept(&s, &mem, a, 104..FRAMES as u64);
    check(&mut s, &mem);
    // The pages of the unmapped hole are still the object's.
    let mut buf = [0u8; 1];
    o.read_at(101 * PAGE + 9, &mut buf, &mut mem).expect("read");
    assert_eq!(buf[0], 101);
    drop(o);
    s.munmap(&mut mem, a, a + 2 * HUGE_PAGE).unwrap();
    assert_eq!(
        mem.in_use(),
        0,
        "the last VMA took the object and its block"
    );
}

#[test]
fn mprotect_of_part_splits_the_shared_entry() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = shared_anon(&mut s, &mut mem, 2 * HUGE_PAGE);
    fill(&mut s, &mut mem, a);
    s.mprotect(&mut mem, a + 7 * PAGE, a + 8 * PAGE, Prot::READ)
        .unwrap();
    assert!(!pte(&s, a + 7 * PAGE).prot.write);
    assert!(pte(&s, a + 8 * PAGE).prot.write);
    assert_eq!(mem.in_use(), FRAMES);
    assert_eq!(object(&s, a).pmd_maps(0), 0);
    kept(&s, &mem, a, 0..FRAMES as u64);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn fork_shares_the_block_and_the_child_maps_it_whole() {
    let mut mem = FakeMemory::new(8192);
    let mut parent = space(Mode::Always);
    let a = shared_anon(&mut parent, &mut mem, 2 * HUGE_PAGE);
    fill(&mut parent, &mut mem, a);
    let mut child = parent.fork(&mut mem, FakePmap::default()).unwrap();
    assert_eq!(mem.in_use(), FRAMES, "fork copied nothing");
    assert_eq!(
        child.fault(&mut mem, a + 3 * PAGE, Access::Read),
        HUGE_EXISTING
    );
    let (p, c) = (pte(&parent, a), pte(&child, a));
    assert!(p.huge && c.huge && p.pfn == c.pfn && p.prot.write && c.prot.write);
    let o = object(&parent, a);
    assert_eq!(o.pmd_maps(0), 2);
    store(&mut child, &mut mem, a + 9 * PAGE + 9, 0xc9);
    assert_eq!(byte(&parent, &mem, a + 9 * PAGE + 9), 0xc9, "one memory");
    assert_eq!(mem.in_use(), FRAMES);
    check(&mut parent, &mem);
    check(&mut child, &mem);
    child.clear(&mut mem);
    assert_eq!(o.pmd_maps(0), 1);
    assert_eq!(mem.in_use(), FRAMES);
    drop(o);
    parent.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

/// A 4 MiB file with a block in its first run, mapped shared at `a`.
fn file_with_a_block(mode: Mode) -> (Space, FakeMemory, ObjectRef, u64) {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(mode);
    let file = ObjectRef::new_file();
    file.set_size(2 * HUGE_PAGE, &mut mem).unwrap();
    let a = map_file(&mut s, &mut mem, &file, 2 * HUGE_PAGE, mmap::MAP_SHARED, 0);
    assert_eq!(
        a % HUGE_PAGE,
        0,
        "a file of 2 MiB or more is placed aligned"
    );
    assert_eq!(s.fault(&mut mem, a, Access::Write), HUGE_OBJECT);
    fill(&mut s, &mut mem, a);
    (s, mem, file, a)
}

#[test]
fn truncating_part_of_a_block_frees_exactly_the_pages_past_the_end() {
    let (mut s, mut mem, file, a) = file_with_a_block(Mode::Always);
    // 1 MiB and 100 bytes: pages 0..=256 stay, the last one in part.
    let size = (HUGE_PAGE / 2) + 100;
    file.set_size(size, &mut mem).unwrap();
    s.truncate_object(&mut mem, &file, size);
    assert_eq!(mem.in_use(), 257, "the 255 pages past the end are freed");
    assert_eq!((file.huge_blocks(), file.pmd_maps(0)), (0, 0));
    assert_eq!(s.pmap.splits, 1, "the entry split, not unmapped whole");
    kept(&s, &mem, a, 0..256);
    assert_eq!(byte(&s, &mem, a + 256 * PAGE + 9), 0, "past the end: zeros");
    assert!(s.pmap.query(a + 257 * PAGE).is_none());
    assert_eq!(
        s.fault(&mut mem, a + 300 * PAGE, Access::Read),
        Err(FaultError::Bus)
    );
    check(&mut s, &mem);
    // Grown again, the run is 4 KiB pages now.
    file.set_size(2 * HUGE_PAGE, &mut mem).unwrap();
    assert_eq!(
        s.fault(&mut mem, a + 300 * PAGE, Access::Write),
        Ok(Resolution::ObjectPage { around: 0, read: 0 })
    );
    check(&mut s, &mem);
    s.clear(&mut mem);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn madv_remove_of_part_of_a_block_frees_exactly_that_part() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = shared_anon(&mut s, &mut mem, 2 * HUGE_PAGE);
    fill(&mut s, &mut mem, a);
    s.madvise(&mut mem, a + 10 * PAGE, a + 20 * PAGE, Madvice::Remove)
        .unwrap();
    assert_eq!(mem.in_use(), FRAMES - 10);
    assert_eq!(object(&s, a).huge_blocks(), 0, "the block is broken");
    kept(&s, &mem, a, 0..10);
    kept(&s, &mem, a, 20..FRAMES as u64);
    // The hole reads back as zeros, in a fresh 4 KiB page.
    assert_eq!(
        s.fault(&mut mem, a + 12 * PAGE, Access::Read),
        Ok(Resolution::ObjectPage { around: 0, read: 0 })
    );
    assert_eq!(byte(&s, &mem, a + 12 * PAGE + 9), 0);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_private_mapping_of_a_block_maps_and_copies_4k() {
    let (mut s, mut mem, file, a) = file_with_a_block(Mode::Always);
    let b = map_file(&mut s, &mut mem, &file, 2 * HUGE_PAGE, mmap::MAP_PRIVATE, 0);
    assert_eq!(
        s.fault(&mut mem, b + 6 * PAGE, Access::Read),
        Ok(Resolution::ObjectPage {
            around: 15,
            read: 0
        })
    );
    let m = pte(&s, b + 6 * PAGE);
    assert!(!m.huge && !m.prot.write);
    assert_eq!(
        m.pfn,
        frame(&s, a + 6 * PAGE),
        "the block's frame, read-only"
    );
    store(&mut s, &mut mem, b + 6 * PAGE + 9, 0xee);
    assert_eq!(mem.in_use(), FRAMES + 1, "one 4 KiB copy");
    assert_eq!(byte(&s, &mem, a + 6 * PAGE + 9), 6, "the file is unchanged");
    assert_eq!(file.huge_blocks(), 1);
    check(&mut s, &mem);
    s.clear(&mut mem);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_file_mapping_is_placed_by_its_offset_and_aligned_super_follows_the_blocks() {
    let (mut s, mut mem, file, a) = file_with_a_block(Mode::Always);
    assert_eq!(s.fault(&mut mem, a + HUGE_PAGE, Access::Write), HUGE_OBJECT);
    assert_eq!(file.huge_blocks(), 2);
    s.thp = Mode::Never;
    // From offset 1 MiB: the object's first run starts 1 MiB before the
    // mapping, its second 1 MiB in, which lies on an aligned 2 MiB.
    let half = HUGE_PAGE / 2;
    let flags = mmap::MAP_SHARED | mmap::MAP_ALIGNED_SUPER;
    let b = map_file(&mut s, &mut mem, &file, 3 * half, flags, half);
    assert_eq!(b % HUGE_PAGE, half, "start = offset modulo 2 MiB");
    // Under `never` the block already there is still mapped whole
    // (FreeBSD: "an object that is already backed by large pages").
    assert_eq!(s.fault(&mut mem, b + half + 4, Access::Read), HUGE_EXISTING);
    assert_eq!(file.pmd_maps(1), 2);
    assert_eq!(pte(&s, b + half).pfn, pte(&s, a + HUGE_PAGE).pfn);
    // The first run lies across b's start: 4 KiB pages there.
    assert_eq!(
        s.fault(&mut mem, b, Access::Read),
        Ok(Resolution::ObjectPage {
            around: 15,
            read: 0
        })
    );
    assert_eq!(frame(&s, b), frame(&s, a + half));
    assert_eq!(mem.in_use(), 2 * FRAMES);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(file.pmd_maps(1), 0);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}
