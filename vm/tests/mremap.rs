//! mremap on the fake page tables: every kind of resize and move, with the
//! data checked where a user would look, the frames counted (a move
//! allocates and copies none), the commit charge and the reverse map
//! audited after every step, and failures leaving everything as it was.

use std::collections::BTreeMap;
use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{self, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};
use vm::pmap::{Mapping, Pmap};
use vm::space::AddressSpace;
use vm::vm_fault::{Access, FaultError};
use vm::vma::{HUGE_PAGE, PAGE, Vma};

const P: u64 = PAGE;
const TOP: u64 = 0x7f00_0000_0000;
const PROT_RW: u64 = 3;
const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const SHARED: u64 = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
const MOVE: u64 = MREMAP_MAYMOVE;
const FIXED: u64 = MREMAP_MAYMOVE | MREMAP_FIXED;

struct Proc {
    space: AddressSpace<FakePmap>,
    mem: FakeMemory,
}

impl Proc {
    fn new() -> Proc {
        Proc {
            space: AddressSpace::new(FakePmap::default(), TOP),
            mem: FakeMemory::new(1 << 20),
        }
    }

    fn mmap(&mut self, addr: u64, len: u64, flags: u64) -> u64 {
        let req = mmap::validate_mmap(addr, len, PROT_RW, flags, -1, 0).expect("mmap args");
        let vma = Vma::for_request(&req).expect("anonymous");
        let start = self.space.mmap(&mut self.mem, &req, vma).expect("mmap");
        self.check();
        start
    }

    fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new: u64,
    ) -> Result<u64, Errno> {
        let req = mmap::validate_mremap(old, old_len, new_len, flags, new)?;
        let r = self.space.mremap(&mut self.mem, &req);
        self.check();
        r
    }

    fn access(&mut self, addr: u64, access: Access) -> Result<(Pfn, usize), FaultError> {
        for _ in 0..4 {
            if let Some(m) = self.space.pmap.query(addr)
                && m.prot.user
                && (access == Access::Read || m.prot.write)
            {
                let size = if m.huge { HUGE_PAGE } else { P };
                return Ok((m.pfn, (addr & (size - 1)) as usize));
            }
            self.space.fault(&mut self.mem, addr, access)?;
            self.check();
        }
        panic!("access to {addr:#x} still faults after four faults");
    }

    fn read(&mut self, addr: u64) -> Result<u8, FaultError> {
        let (pfn, at) = self.access(addr, Access::Read)?;
        Ok(self.mem.bytes(pfn)[at])
    }

    fn write(&mut self, addr: u64, value: u8) {
        let (pfn, at) = self.access(addr, Access::Write).expect("write");
        self.mem.bytes_mut(pfn)[at] = value;
    }

    /// Write `pages` pages from `a`, page i holding i + seed.
    fn fill(&mut self, a: u64, pages: u64, seed: u8) {
        for i in 0..pages {
            self.write(a + i * P + 5, seed.wrapping_add(i as u8));
        }
    }

    fn holds(&mut self, a: u64, pages: u64, seed: u8) -> bool {
        (0..pages).all(|i| self.read(a + i * P + 5) == Ok(seed.wrapping_add(i as u8)))
    }

    fn ptes(&self) -> BTreeMap<u64, Mapping> {
        self.space.pmap.ptes.clone()
    }

    fn check(&mut self) {
        self.space.verify();
        assert_eq!(
            self.mem.committed,
            self.space.charged_pages(),
            "commit charge"
        );
        self.space
            .audit_frames(&self.mem)
            .expect("frame references");
        self.space.audit_rmap().expect("reverse map");
    }
}

#[test]
fn growing_into_free_space_above_stays_in_place_and_charges_the_growth() {
    let mut p = Proc::new();
    let a = p.mmap(0, 16 * P, ANON);
    p.mremap(a, 16 * P, 4 * P, 0, 0).unwrap(); // room above now
    p.fill(a, 4, 1);
    let charged = p.mem.committed;
    assert_eq!(p.mremap(a, 4 * P, 12 * P, 0, 0), Ok(a));
    assert_eq!(p.mem.committed, charged + 8);
    assert_eq!(
        p.space.find(a).map(|v| (v.start, v.end)),
        Some((a, a + 12 * P))
    );
    assert!(p.holds(a, 4, 1));
    assert_eq!(p.read(a + 11 * P), Ok(0), "the growth is zero-filled");
}

#[test]
fn shrinking_unmaps_the_tail_and_gives_back_its_frames_and_charge() {
    let mut p = Proc::new();
    let a = p.mmap(0, 8 * P, ANON);
    p.fill(a, 8, 3);
    let frames = p.mem.in_use();
    assert_eq!(p.mremap(a, 8 * P, 2 * P + 1, 0, 0), Ok(a));
    assert_eq!(p.mem.in_use(), frames - 5);
    assert_eq!(p.mem.committed, 3);
    assert!(p.space.find(a + 3 * P).is_none());
    assert!(p.holds(a, 3, 3));
}

#[test]
fn blocked_growth_without_maymove_is_enomem_and_changes_nothing() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.mmap(a + 4 * P, P, ANON | mmap::MAP_FIXED);
    p.fill(a, 4, 9);
    let (ptes, charged) = (p.ptes(), p.mem.committed);
    assert_eq!(p.mremap(a, 4 * P, 8 * P, 0, 0), Err(Errno::ENOMEM));
    assert_eq!((p.ptes(), p.mem.committed), (ptes, charged));
}

#[test]
fn maymove_moves_the_entries_not_the_frames() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.mmap(a + 4 * P, P, ANON | mmap::MAP_FIXED);
    p.fill(a, 4, 20);
    let before: Vec<Pfn> = (0..4)
        .map(|i| p.space.pmap.query(a + i * P).unwrap().pfn)
        .collect();
    let (frames, charged) = (p.mem.in_use(), p.mem.committed);
    let b = p.mremap(a, 4 * P, 10 * P, MOVE, 0).unwrap();
    assert_ne!(b, a);
    let after: Vec<Pfn> = (0..4)
        .map(|i| p.space.pmap.query(b + i * P).unwrap().pfn)
        .collect();
    assert_eq!(after, before, "the same frames, at the new address");
    assert_eq!(p.mem.in_use(), frames, "no frame allocated or copied");
    assert_eq!(p.mem.committed, charged + 6, "only the growth is charged");
    assert!(p.space.find(a).is_none(), "the old range is unmapped");
    assert!(p.holds(b, 4, 20));
    assert_eq!(p.read(b + 9 * P), Ok(0));
}

#[test]
fn fixed_replaces_the_target_and_shrinks_on_the_way() {
    let mut p = Proc::new();
    let a = p.mmap(0, 6 * P, ANON);
    let t = p.mmap(0, 8 * P, ANON);
    p.fill(a, 6, 40);
    p.fill(t, 8, 90);
    assert_eq!(p.mremap(a, 6 * P, 3 * P, FIXED, t + P), Ok(t + P));
    assert!(p.space.find(a).is_none());
    assert!(p.holds(t + P, 3, 40));
    assert_eq!(p.read(t + 5), Ok(90), "the target's untouched page stays");
    assert_eq!(p.read(t + 4 * P + 5), Ok(94));
    assert_eq!(
        p.mem.committed, 8,
        "the target's 8 pages: the old mapping's charge went"
    );
    // Onto itself, or overlapping: EINVAL.
    assert_eq!(p.mremap(t, 2 * P, 2 * P, FIXED, t + P), Err(Errno::EINVAL));
    assert_eq!(
        p.mremap(t, 2 * P, 2 * P, FIXED, t + P + 1),
        Err(Errno::EINVAL)
    );
}

#[test]
fn dontunmap_leaves_the_old_mapping_empty_and_charges_the_new_one() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.fill(a, 4, 7);
    let (frames, charged) = (p.mem.in_use(), p.mem.committed);
    let b = p
        .mremap(a, 4 * P, 4 * P, MOVE | MREMAP_DONTUNMAP, 0)
        .unwrap();
    assert_eq!(p.mem.in_use(), frames);
    assert_eq!(p.mem.committed, charged + 4);
    assert!(p.holds(b, 4, 7));
    assert!(p.space.find(a).is_some(), "the old mapping stays");
    assert_eq!(p.read(a + 5), Ok(0), "and is empty");
    // A change of size is refused.
    assert_eq!(
        p.mremap(b, 4 * P, 5 * P, MOVE | MREMAP_DONTUNMAP, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn an_old_length_of_zero_duplicates_a_shared_mapping_only() {
    let mut p = Proc::new();
    let s = p.mmap(0, 2 * P, SHARED);
    p.fill(s, 2, 60);
    let d = p.mremap(s, 0, 2 * P, MOVE, 0).unwrap();
    assert_ne!(d, s);
    assert!(p.holds(d, 2, 60), "the same object's pages");
    p.write(d + 5, 77);
    assert_eq!(p.read(s + 5), Ok(77));
    let a = p.mmap(0, 2 * P, ANON);
    assert_eq!(p.mremap(a, 0, 2 * P, MOVE, 0), Err(Errno::EINVAL));
}

#[test]
fn nothing_mapped_or_a_range_past_its_mapping_is_efault() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.mremap(a, 4 * P, 2 * P, 0, 0).unwrap();
    assert_eq!(p.mremap(a + 2 * P, P, 2 * P, MOVE, 0), Err(Errno::EFAULT));
    assert_eq!(p.mremap(a, 3 * P, 4 * P, MOVE, 0), Err(Errno::EFAULT));
    // EFAULT comes before a bad fixed target is looked at.
    assert_eq!(p.mremap(a + 2 * P, P, P, FIXED, 1), Err(Errno::EFAULT));
}

#[test]
fn a_huge_page_moves_as_one_entry() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 << 20, ANON | mmap::MAP_ALIGNED_SUPER);
    p.write(a + 3 * P, 11);
    p.write(a + HUGE_PAGE + 3 * P, 12);
    let head = p.space.pmap.query(a).unwrap();
    assert!(head.huge);
    let frames = p.mem.in_use();
    p.mmap(a + (4 << 20), P, ANON | mmap::MAP_FIXED);
    let b = p.mremap(a, 4 << 20, 8 << 20, MOVE, 0).unwrap();
    assert!(
        b.is_multiple_of(HUGE_PAGE),
        "placed to keep the 2 MiB alignment"
    );
    assert_eq!(p.space.pmap.query(b), Some(head));
    assert_eq!(p.mem.in_use(), frames, "no copies");
    assert!(p.space.pmap.query(b + HUGE_PAGE).unwrap().huge);
    assert_eq!(p.read(b + 3 * P), Ok(11));
    assert_eq!(p.read(b + HUGE_PAGE + 3 * P), Ok(12));
}

#[test]
fn a_move_that_finds_no_page_table_changes_nothing() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.mmap(a + 4 * P, P, ANON | mmap::MAP_FIXED);
    p.fill(a, 4, 30);
    let (ptes, charged, vmas) = (p.ptes(), p.mem.committed, p.space.vma_count());
    p.space.pmap.fail_enter_after = Some(0);
    assert_eq!(p.mremap(a, 4 * P, 8 * P, MOVE, 0), Err(Errno::ENOMEM));
    assert_eq!(
        (p.ptes(), p.mem.committed, p.space.vma_count()),
        (ptes, charged, vmas)
    );
    assert!(p.holds(a, 4, 30));
}

#[test]
fn growth_past_the_commit_limit_is_enomem_and_changes_nothing() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, ANON);
    p.fill(a, 4, 50);
    p.mem.commit_limit = p.mem.committed + 2;
    let ptes = p.ptes();
    assert_eq!(p.mremap(a, 4 * P, 8 * P, MOVE, 0), Err(Errno::ENOMEM));
    assert_eq!(p.ptes(), ptes);
    assert_eq!(p.mremap(a, 4 * P, 6 * P, MOVE, 0), Ok(a), "two pages fit");
}

/// The shapes the kernel's whole-table move tells apart (kernel/src/pmap/
/// relocate.rs; remaptest runs the same on the real tables): two whole
/// 2 MiB regions of 4 KiB pages and 3 pages more, moved to an aligned
/// place, back, to an unaligned place, and on by a multiple of 2 MiB (a
/// partial region at each end). The data, the frames and the reverse map
/// (audited after every step) follow; nothing is copied.
#[test]
fn small_pages_move_there_back_unaligned_and_by_whole_regions() {
    let mut p = Proc::new();
    let pages = 2 * HUGE_PAGE / P + 3;
    let len = pages * P;
    let room = 2 * (len + HUGE_PAGE) + HUGE_PAGE;
    let m = p.mmap(0, room, ANON);
    p.space
        .madvise(&mut p.mem, m, m + room, mmap::Madvice::NoHugePage)
        .unwrap();
    let a = m.next_multiple_of(HUGE_PAGE);
    let t = (a + len).next_multiple_of(HUGE_PAGE) + HUGE_PAGE;
    p.fill(a, pages, 40);
    let frames = p.mem.in_use();
    let pfn_of = |p: &Proc, va: u64| p.space.pmap.query(va).map(|m| m.pfn);
    let first = pfn_of(&p, a).unwrap();
    for (from, to) in [(a, t), (t, a), (a, t + P), (t + P, a + P)] {
        assert_eq!(p.mremap(from, len, len, FIXED, to), Ok(to));
        assert_eq!(pfn_of(&p, to), Some(first), "the same frame, moved");
        assert!(!p.space.pmap.query(to).unwrap().huge);
        assert_eq!(pfn_of(&p, from), None);
        assert_eq!(p.mem.in_use(), frames, "no frame copied");
        assert!(p.holds(to, pages, 40));
    }
}
