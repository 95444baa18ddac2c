//! Transparent superpages on the fake page tables (vm/src/thp.rs,
//! docs/src/superpages.md): the default policy's 2 MiB pages, the split
//! in place that copies nothing and frees exactly what was unmapped, fork
//! copying the 2 MiB entry and a write after it copying 4 KiB, the
//! fallback to 4 KiB pages, and the policy switches. Every test checks the
//! bytes a process would see, the frames in use, and the reverse map and
//! reference counts (the audits).

use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{self, Madvice, Prot};
use vm::pmap::{PhysMem, Pmap};
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, Resolution};
use vm::vma::{HUGE_PAGE, PAGE, Vma};

type Space = AddressSpace<FakePmap>;

const TOP: u64 = 0x7f00_0000_0000;
const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const FRAMES: usize = (HUGE_PAGE / PAGE) as usize;

fn space(mode: Mode) -> Space {
    let mut s = AddressSpace::new(FakePmap::default(), TOP);
    s.thp = mode;
    s
}

fn mmap(s: &mut Space, mem: &mut FakeMemory, len: u64) -> u64 {
    let req = mmap::validate_mmap(0, len, 3, ANON, -1, 0).expect("valid mmap");
    s.mmap(mem, &req, Vma::for_request(&req).unwrap())
        .expect("mmap")
}

/// The byte at `addr` as the process sees it (through its PTE).
fn byte(s: &Space, mem: &FakeMemory, addr: u64) -> u8 {
    let m = s.pmap.query(addr).expect("a present page");
    let size = if m.huge { HUGE_PAGE } else { PAGE };
    let within = addr & (size - 1);
    mem.bytes(Pfn(m.pfn.0 + within / PAGE))[(within % PAGE) as usize]
}

/// Write `value` at `addr` as the process would: fault until it may.
fn store(s: &mut Space, mem: &mut FakeMemory, addr: u64, value: u8) {
    for _ in 0..4 {
        if let Some(m) = s.pmap.query(addr).filter(|m| m.prot.write) {
            let size = if m.huge { HUGE_PAGE } else { PAGE };
            let within = addr & (size - 1);
            mem.bytes_mut(Pfn(m.pfn.0 + within / PAGE))[(within % PAGE) as usize] = value;
            return;
        }
        s.fault(mem, addr, Access::Write).expect("write fault");
    }
    panic!("write to {addr:#x} still faults");
}

/// A 2 MiB page at the (aligned) start of a 4 MiB mapping, every 4 KiB
/// page of it holding its number at byte 9.
fn filled(mode: Mode) -> (Space, FakeMemory, u64) {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(mode);
    let a = mmap(&mut s, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(
        s.fault(&mut mem, a, Access::Write),
        Ok(Resolution::HugeZeroFill)
    );
    for i in 0..FRAMES as u64 {
        store(&mut s, &mut mem, a + i * PAGE + 9, i as u8);
    }
    (s, mem, a)
}

fn check(s: &mut Space, mem: &FakeMemory) {
    s.verify();
    s.audit_frames(mem).expect("reference counts");
    s.audit_rmap().expect("reverse map");
}

fn kept(s: &Space, mem: &FakeMemory, a: u64, skip: &[u64]) {
    for i in (0..FRAMES as u64).filter(|i| !skip.contains(i)) {
        assert_eq!(byte(s, mem, a + i * PAGE + 9), i as u8, "page {i}");
    }
}

#[test]
fn by_default_a_write_gets_a_2mib_page_and_a_read_the_zero_frame() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    let a = mmap(&mut s, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(a % HUGE_PAGE, 0, "4 MiB placed 2 MiB-aligned");
    assert_eq!(
        s.fault(&mut mem, a + 5, Access::Read),
        Ok(Resolution::ZeroPage)
    );
    assert_eq!(mem.in_use(), 0);
    let b = a + HUGE_PAGE;
    assert_eq!(
        s.fault(&mut mem, b + 77 * PAGE, Access::Write),
        Ok(Resolution::HugeZeroFill)
    );
    assert!(s.pmap.query(b + HUGE_PAGE - 1).unwrap().huge);
    assert_eq!(mem.in_use(), FRAMES);
    // The read left a page (and, in the kernel, a table) in the first
    // 2 MiB: a write there gets a 4 KiB page.
    assert_eq!(
        s.fault(&mut mem, a + PAGE, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn the_policy_and_madv_nohugepage_keep_4k_pages() {
    for (mode, advice) in [
        (Mode::Never, None),
        (Mode::Madvise, None),
        (Mode::Always, Some(Madvice::NoHugePage)),
    ] {
        let mut mem = FakeMemory::new(8192);
        let mut s = space(mode);
        let a = mmap(&mut s, &mut mem, 2 * HUGE_PAGE);
        if let Some(advice) = advice {
            s.madvise(&mut mem, a, a + 2 * HUGE_PAGE, advice).unwrap();
        }
        assert_eq!(
            s.fault(&mut mem, a, Access::Write),
            Ok(Resolution::ZeroFill),
            "{mode:?} {advice:?}"
        );
        assert_eq!(mem.in_use(), 1);
        // MADV_HUGEPAGE asks for them in every mode.
        s.madvise(&mut mem, a, a + 2 * HUGE_PAGE, Madvice::HugePage)
            .unwrap();
        assert_eq!(
            s.fault(&mut mem, a + HUGE_PAGE, Access::Read),
            Ok(Resolution::HugeZeroFill)
        );
        s.clear(&mut mem);
        assert_eq!(mem.in_use(), 0);
    }
}

#[test]
fn without_a_free_2mib_block_a_fault_falls_back_to_4k() {
    let mut mem = FakeMemory::new(100);
    let mut s = space(Mode::Always);
    let a = mmap(&mut s, &mut mem, 2 * HUGE_PAGE);
    assert_eq!(
        s.fault(&mut mem, a, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    assert_eq!(mem.in_use(), 1);
    s.clear(&mut mem);
}

#[test]
fn a_2mib_page_needs_the_whole_aligned_2mib_inside_the_vma() {
    let mut mem = FakeMemory::new(8192);
    let mut s = space(Mode::Always);
    // 2 MiB + 8 KiB, aligned: the first 2 MiB fit, the tail does not.
    let a = mmap(&mut s, &mut mem, HUGE_PAGE + 2 * PAGE);
    assert_eq!(a % HUGE_PAGE, 0);
    assert_eq!(
        s.fault(&mut mem, a + HUGE_PAGE, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    assert_eq!(
        s.fault(&mut mem, a, Access::Write),
        Ok(Resolution::HugeZeroFill)
    );
    // Under 2 MiB: placed anywhere, 4 KiB pages.
    let b = mmap(&mut s, &mut mem, HUGE_PAGE - PAGE);
    assert_eq!(
        s.fault(&mut mem, b, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_partial_munmap_frees_exactly_the_unmapped_frames_and_keeps_the_rest() {
    let (mut s, mut mem, a) = filled(Mode::Always);
    assert_eq!(mem.in_use(), FRAMES);
    s.munmap(&mut mem, a + 100 * PAGE, a + 104 * PAGE).unwrap();
    assert_eq!(mem.in_use(), FRAMES - 4, "four 4 KiB frames freed, no copy");
    assert_eq!(s.pmap.splits, 1);
    assert!(s.pmap.query(a + 100 * PAGE).is_none());
    assert!(!s.pmap.query(a).unwrap().huge);
    kept(&s, &mem, a, &[100, 101, 102, 103]);
    // Still the same block: page 5 is the head's fifth frame.
    let head = s.pmap.query(a).unwrap().pfn;
    assert_eq!(s.pmap.query(a + 5 * PAGE).unwrap().pfn, Pfn(head.0 + 5));
    check(&mut s, &mem);
    // The rest goes page by page, and with its last page the block.
    s.munmap(&mut mem, a, a + 50 * PAGE).unwrap();
    assert_eq!(mem.in_use(), FRAMES - 54);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn mprotect_and_dontneed_of_part_split_in_place() {
    let (mut s, mut mem, a) = filled(Mode::Always);
    s.mprotect(&mut mem, a + 7 * PAGE, a + 8 * PAGE, Prot::READ)
        .unwrap();
    assert_eq!(mem.in_use(), FRAMES, "nothing copied");
    assert!(!s.pmap.query(a + 7 * PAGE).unwrap().prot.write);
    assert!(s.pmap.query(a + 8 * PAGE).unwrap().prot.write);
    kept(&s, &mem, a, &[]);
    s.madvise(&mut mem, a + 20 * PAGE, a + 22 * PAGE, Madvice::DontNeed)
        .unwrap();
    assert_eq!(mem.in_use(), FRAMES - 2);
    assert_eq!(s.pmap.splits, 1, "already split");
    kept(&s, &mem, a, &[20, 21]);
    check(&mut s, &mem);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn fork_copies_the_2mib_entry_and_a_write_copies_4k() {
    let (mut parent, mut mem, a) = filled(Mode::Always);
    let mut child = parent.fork(&mut mem, FakePmap::default()).unwrap();
    assert_eq!(child.thp, Mode::Always, "the policy is inherited");
    let (p, c) = (parent.pmap.query(a).unwrap(), child.pmap.query(a).unwrap());
    assert!(p.huge && c.huge && p.pfn == c.pfn && !p.prot.write && !c.prot.write);
    assert_eq!(mem.refcount(p.pfn), 2, "one more reference on the block");
    assert_eq!(mem.in_use(), FRAMES, "fork copied no frame");

    store(&mut child, &mut mem, a + 3 * PAGE + 9, 0xc3);
    assert_eq!(mem.in_use(), FRAMES + 1, "one 4 KiB copy");
    assert_eq!(child.pmap.splits, 1);
    store(&mut child, &mut mem, a + 300 * PAGE + 9, 0xc4);
    assert_eq!(mem.in_use(), FRAMES + 2, "one more");
    assert!(
        parent.pmap.query(a).unwrap().huge,
        "the parent's entry stays"
    );
    kept(&parent, &mem, a, &[]);
    kept(&child, &mem, a, &[3, 300]);
    assert_eq!(byte(&child, &mem, a + 3 * PAGE + 9), 0xc3);
    check(&mut parent, &mem);
    check(&mut child, &mem);

    // The parent writes too: its 2 MiB page is still shared, so it
    // splits and a page both map is copied, 4 KiB.
    store(&mut parent, &mut mem, a + 4 * PAGE + 9, 0xa4);
    assert_eq!(mem.in_use(), FRAMES + 3);
    assert_eq!(parent.pmap.splits, 1);
    // A page the child copied away from is the parent's alone: reused.
    store(&mut parent, &mut mem, a + 300 * PAGE + 9, 0xa5);
    assert_eq!(mem.in_use(), FRAMES + 3);
    assert_eq!(byte(&child, &mem, a + 300 * PAGE + 9), 0xc4);
    assert_eq!(byte(&child, &mem, a + 4 * PAGE + 9), 4);
    check(&mut parent, &mem);
    check(&mut child, &mem);
    child.clear(&mut mem);
    parent.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn once_the_child_is_gone_a_write_reuses_the_2mib_page_whole() {
    let (mut parent, mut mem, a) = filled(Mode::Always);
    let mut child = parent.fork(&mut mem, FakePmap::default()).unwrap();
    // The child splits its copy (the block's counts go per frame) and exits.
    store(&mut child, &mut mem, a + 9, 0xc0);
    child.clear(&mut mem);
    assert_eq!(mem.in_use(), FRAMES);
    assert_eq!(
        parent.fault(&mut mem, a + 8 * PAGE, Access::Write),
        Ok(Resolution::Reuse)
    );
    let m = parent.pmap.query(a).unwrap();
    assert!(m.huge && m.prot.write && mem.is_block(m.pfn), "whole again");
    assert_eq!(parent.pmap.splits, 0);
    kept(&parent, &mem, a, &[]);
    check(&mut parent, &mem);
    parent.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_split_block_still_mapped_whole_elsewhere_is_freed_frame_by_frame() {
    let (mut parent, mut mem, a) = filled(Mode::Always);
    let mut child = parent.fork(&mut mem, FakePmap::default()).unwrap();
    // The parent unmaps most of its copy: the block splits, the child's
    // 2 MiB entry now holds a reference on each frame.
    parent.munmap(&mut mem, a + PAGE, a + HUGE_PAGE).unwrap();
    assert_eq!(mem.in_use(), FRAMES);
    assert!(child.pmap.query(a).unwrap().huge);
    kept(&child, &mem, a, &[]);
    check(&mut child, &mem);
    child.clear(&mut mem);
    assert_eq!(mem.in_use(), 1, "the parent's last page stays");
    assert_eq!(byte(&parent, &mem, a + 9), 0);
    parent.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}
