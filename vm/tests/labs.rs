//! The labs' host tests (`docs/src/labs.md`). Each one fails until its lab
//! is done, so all are `#[ignore]`d: `cargo test -p vm` skips them, and
//! `make lab N=3` runs lab 3's with `--ignored`.
//!
//! The harness is a small copy of `address_space.rs`'s `Proc`: an address
//! space on the fake page tables, driven through the same validators the
//! kernel's syscalls use, with user accesses made as the CPU makes them.

use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::labs::PlacementPolicy;
use vm::mmap::{self, Placement, Prot, Sharing};
use vm::pmap::{Mapping, PhysMem, Pmap};
use vm::space::AddressSpace;
use vm::vm_fault::{Access, FaultError, Resolution, SegvCode};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, Inherit, PAGE, Vma};

const P: u64 = PAGE;
const TOP: u64 = 0x7f00_0000_0000;

const PROT_READ: u64 = 1;
const PROT_RW: u64 = 3;
const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const SHARED_ANON: u64 = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
const MADV_SEQUENTIAL: u64 = 2;
const MADV_COLD: u64 = 20;

const MAPERR: FaultError = FaultError::Segv(SegvCode::MapErr);

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

    fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64) -> Result<u64, Errno> {
        let req = mmap::validate_mmap(addr, len, prot, flags, -1, 0)?;
        let vma = Vma::for_request(&req).expect("no files here");
        let start = self.space.mmap(&mut self.mem, &req, vma)?;
        self.check();
        Ok(start)
    }

    /// A mapping of `object` from byte 0, private or shared.
    fn map_object(&mut self, object: &ObjectRef, len: u64, sharing: Sharing) -> u64 {
        let mut vma = Vma::anonymous(0, 0, Prot::READ | Prot::WRITE);
        vma.sharing = sharing;
        if sharing == Sharing::Shared {
            vma.inherit = Inherit::Share;
        }
        vma.backing = Backing::Object {
            object: object.clone(),
            offset: 0,
        };
        let anywhere = Placement::Anywhere { hint: 0 };
        let start = self
            .space
            .map(&mut self.mem, &anywhere, len, P, false, vma)
            .expect("map_object");
        self.check();
        start
    }

    fn munmap(&mut self, addr: u64, len: u64) {
        self.space
            .munmap(&mut self.mem, addr, addr + len)
            .expect("munmap");
        self.check();
    }

    fn madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<(), Errno> {
        let (span, advice) = mmap::validate_madvise(addr, len, advice)?;
        let r = self
            .space
            .madvise(&mut self.mem, span.start, span.end, advice);
        self.check();
        r
    }

    fn fault(&mut self, addr: u64, access: Access) -> Result<Resolution, FaultError> {
        let r = self.space.fault(&mut self.mem, addr, access);
        self.check();
        r
    }

    /// The frame and offset `addr` reaches, faulting until the PTE allows it.
    fn access(&mut self, addr: u64, access: Access) -> Result<(Pfn, usize), FaultError> {
        for _ in 0..4 {
            if let Some(m) = self.present(addr)
                && m.prot.user
                && (access == Access::Read || m.prot.write)
            {
                return Ok((m.pfn, (addr & (P - 1)) as usize));
            }
            self.fault(addr, access)?;
        }
        panic!("access to {addr:#x} ({access:?}) still faults after four faults");
    }

    fn read(&mut self, addr: u64) -> Result<u8, FaultError> {
        let (pfn, at) = self.access(addr, Access::Read)?;
        Ok(self.mem.bytes(pfn)[at])
    }

    fn write(&mut self, addr: u64, value: u8) -> Result<(), FaultError> {
        let (pfn, at) = self.access(addr, Access::Write)?;
        self.mem.bytes_mut(pfn)[at] = value;
        Ok(())
    }

    fn present(&self, addr: u64) -> Option<Mapping> {
        self.space.pmap.query(addr)
    }

    fn maps_zero_frame(&self, addr: u64) -> bool {
        self.present(addr)
            .is_some_and(|m| m.pfn == self.mem.zero_frame() && !m.prot.write)
    }

    /// The invariants every operation keeps (a subset of address_space.rs's).
    fn check(&self) {
        self.space.verify();
        let zero = self.mem.zero_frame();
        let mut zero_maps = 0;
        for (&va, m) in &self.space.pmap.ptes {
            let vma = self
                .space
                .find(va)
                .unwrap_or_else(|| panic!("PTE at {va:#x} outside any VMA"));
            assert!(
                !m.prot.write || vma.prot.contains(Prot::WRITE),
                "PTE at {va:#x} writable in a {:?} VMA",
                vma.prot
            );
            if m.pfn == zero {
                zero_maps += 1;
                assert!(!m.prot.write, "the zero frame is writable at {va:#x}");
            }
        }
        assert_eq!(
            self.mem.refcount(zero),
            1 + zero_maps,
            "zero frame references: one per PTE that maps it"
        );
        assert_eq!(self.mem.committed, self.space.charged_pages());
    }
}

// ---- lab 1: a wider stack guard gap ------------------------------------------

/// Linux's default stack_guard_gap: 256 pages (1 MiB).
const GAP: u64 = 256;

#[test]
#[ignore = "lab 1: see docs/src/labs.md"]
fn lab1_nothing_is_placed_in_a_256_page_guard_below_a_stack() {
    let mut p = Proc::new();
    p.space.set_stack_guard_gap(GAP);
    let pages = 64;
    let s = p
        .mmap(0, pages * P, PROT_RW, mmap::MAP_STACK)
        .expect("MAP_STACK");
    let guard = s - GAP * P;
    let below = p.space.find(guard).expect("a guard VMA below the stack");
    assert_eq!(
        (
            below.start,
            below.end,
            matches!(below.backing, Backing::Guard)
        ),
        (guard, s, true),
        "the guard is the {GAP} pages below the reservation"
    );
    // Top-down placement goes below the guard, and a hint inside it moves.
    let next = p.mmap(0, P, PROT_RW, ANON).expect("mmap");
    assert!(
        next + P <= guard,
        "a mapping at {next:#x} lies in the {GAP}-page guard at {guard:#x}"
    );
    let hinted = p.mmap(s - 8 * P, P, PROT_RW, ANON).expect("mmap");
    assert!(hinted + P <= guard || hinted >= s + pages * P);
    // Every page of the guard is SIGSEGV (MAPERR) and changes nothing.
    let ptes = p.space.pmap.ptes.len();
    for page in [1, 2, GAP / 2, GAP] {
        for access in [Access::Read, Access::Write] {
            assert_eq!(
                p.fault(s - page * P + 8, access),
                Err(MAPERR),
                "{page} pages below the reservation lies in the guard"
            );
        }
    }
    assert_eq!(
        p.space.pmap.ptes.len(),
        ptes,
        "a refused fault maps nothing"
    );
    // The whole reservation is still the stack's.
    p.write(s + 8, 1)
        .expect("the lowest page of the reservation grows the stack");
    assert_eq!(p.read(s + 8), Ok(1));
    p.munmap(s, pages * P);
    p.munmap(next, P);
    p.munmap(hinted, P);
    assert_eq!((p.mem.in_use(), p.mem.committed), (0, 0));
    assert_eq!(p.space.vma_count(), 0, "the guard goes with its stack");
}

#[test]
#[ignore = "lab 1: see docs/src/labs.md"]
fn lab1_a_growsdown_mapping_and_a_forked_child_keep_the_same_guard() {
    let mut p = Proc::new();
    p.space.set_stack_guard_gap(GAP);
    let pages = 4;
    let s = p
        .mmap(0, pages * P, PROT_RW, ANON | mmap::MAP_GROWSDOWN)
        .expect("MAP_GROWSDOWN");
    assert_eq!(
        p.space.find(s - GAP * P).map(|v| (v.start, v.end)),
        Some((s - GAP * P, s)),
        "the guard of a MAP_GROWSDOWN mapping is {GAP} pages too"
    );
    assert_eq!(p.write(s, 2), Ok(()));
    assert_eq!(p.read(s), Ok(2));
    p.munmap(s, pages * P);
    assert_eq!((p.mem.in_use(), p.mem.committed), (0, 0));
    let mut child = p.space.fork(&mut p.mem, FakePmap::default()).expect("fork");
    let req = mmap::validate_mmap(0, pages * P, PROT_RW, mmap::MAP_STACK, -1, 0).unwrap();
    let c = child
        .mmap(&mut p.mem, &req, Vma::for_request(&req).unwrap())
        .expect("the child's MAP_STACK");
    assert_eq!(
        child.find(c - GAP * P).map(|v| v.start),
        Some(c - GAP * P),
        "a forked child keeps its parent's guard gap"
    );
    child.clear(&mut p.mem);
}

// ---- lab 2: fault-around for anonymous memory ----------------------------------

/// The window, as `pager::FAULT_AROUND_PAGES` has it for files.
const WINDOW: u64 = vm::pager::FAULT_AROUND_PAGES * P;

/// A window-aligned address with nothing mapped around it.
const ALIGNED: u64 = 0x1000_0000_0000;

/// A private anonymous VMA of `pages` pages starting 4 pages into the
/// window at `ALIGNED`, so that windows stick out of both of its ends.
fn unaligned_anon(p: &mut Proc, pages: u64) -> u64 {
    let flags = ANON | mmap::MAP_FIXED_NOREPLACE;
    p.mmap(ALIGNED + 4 * P, pages * P, PROT_RW, flags).unwrap()
}

#[test]
#[ignore = "lab 2: see docs/src/labs.md"]
fn lab2_a_read_fault_maps_the_zero_frame_for_its_whole_window() {
    let mut p = Proc::new();
    let a = unaligned_anon(&mut p, 20);
    let base = a - 4 * P;
    let end = a + 20 * P;
    p.madvise(a, 20 * P, MADV_SEQUENTIAL).unwrap();
    p.write(base + 9 * P, 9).unwrap();

    // One read fault: the window [base, base + 16 pages), clipped to the
    // VMA's start, maps the zero frame except where a page is present.
    assert_eq!(p.read(base + 5 * P), Ok(0));
    for page in 4..16 {
        let va = base + page * P;
        if page == 9 {
            let m = p.present(va).expect("the written page stays");
            assert!(m.prot.write && m.pfn != p.mem.zero_frame());
        } else {
            assert!(
                p.maps_zero_frame(va),
                "page {page} of the window: want the zero frame, read-only; got {:?}",
                p.present(va)
            );
        }
    }
    assert!(
        p.present(base + 16 * P).is_none(),
        "the next window is not touched"
    );
    assert_eq!(p.mem.in_use(), 1, "fault-around allocates nothing");

    // The next window is clipped to the VMA's end.
    assert_eq!(p.read(base + 17 * P), Ok(0));
    for va in (base + 16 * P..end).step_by(P as usize) {
        assert!(p.maps_zero_frame(va), "{va:#x} in the second window");
    }
    assert_eq!(p.space.pmap.ptes.len(), 20);

    // A write to a page mapped by fault-around gets a private zeroed frame;
    // its neighbours keep sharing the zero frame.
    assert_eq!(
        p.fault(base + 6 * P, Access::Write),
        Ok(Resolution::CopyOnWrite)
    );
    p.write(base + 6 * P, 6).unwrap();
    assert_eq!(p.read(base + 6 * P), Ok(6));
    assert_eq!((p.read(base + 5 * P), p.read(base + 7 * P)), (Ok(0), Ok(0)));
    assert_eq!(p.mem.in_use(), 2);
    p.munmap(a, 20 * P);
    assert_eq!((p.mem.in_use(), p.mem.committed), (0, 0));
}

#[test]
#[ignore = "lab 2: see docs/src/labs.md"]
fn lab2_without_the_hint_a_read_fault_maps_one_page() {
    // Linux maps one page per anonymous fault, and vmtest's
    // pages_are_mapped_on_first_touch (run on Linux too) counts on it.
    let mut p = Proc::new();
    let a = unaligned_anon(&mut p, 20);
    assert_eq!(p.fault(a + 2 * P, Access::Read), Ok(Resolution::ZeroPage));
    assert_eq!(p.space.pmap.ptes.len(), 1);
    // A hinted read-only VMA gets fault-around too, a PROT_NONE one nothing.
    let r = p.mmap(0, 16 * P, PROT_READ, ANON).unwrap();
    p.madvise(r, 16 * P, MADV_SEQUENTIAL).unwrap();
    assert_eq!(p.read(r), Ok(0));
    let window = (r & !(WINDOW - 1))..((r & !(WINDOW - 1)) + WINDOW).min(r + 16 * P);
    for va in window.step_by(P as usize) {
        assert!(
            p.maps_zero_frame(va),
            "{va:#x}: a read-only VMA with MADV_SEQUENTIAL gets fault-around too"
        );
    }
    p.munmap(a, 20 * P);
    p.munmap(r, 16 * P);
    assert_eq!(p.space.pmap.ptes.len(), 0);
}

// ---- lab 3: MADV_COLD --------------------------------------------------------

/// A file object of `pages` pages, byte i of page k being k * 16 + i % 16.
fn file(p: &mut Proc, pages: u64) -> ObjectRef {
    let object = ObjectRef::new_file();
    let data: Vec<u8> = (0..pages * P)
        .map(|i| ((i / P) * 16 + i % 16) as u8)
        .collect();
    object.write_at(0, &data, &mut p.mem).unwrap();
    object
}

#[test]
#[ignore = "lab 3: see docs/src/labs.md"]
fn lab3_cold_drops_what_costs_nothing_to_bring_back() {
    let mut p = Proc::new();
    // Private anonymous: pages 0-1 hold data, 2-3 map the zero frame, 4-5 untouched.
    let a = p.mmap(0, 6 * P, PROT_RW, ANON).unwrap();
    p.write(a, 0xa0).unwrap();
    p.write(a + P + 5, 0xa1).unwrap();
    assert_eq!((p.read(a + 2 * P), p.read(a + 3 * P)), (Ok(0), Ok(0)));
    // Shared anonymous memory: every page written.
    let s = p.mmap(0, 3 * P, PROT_RW, SHARED_ANON).unwrap();
    for k in 0..3 {
        p.write(s + k * P + 1, 0xb0 + k as u8).unwrap();
    }
    // A file mapped shared (all read) and private (pages 0-1 read, 2 written).
    let f = file(&mut p, 3);
    let fs = p.map_object(&f, 3 * P, Sharing::Shared);
    let fp = p.map_object(&f, 3 * P, Sharing::Private);
    for k in 0..3 {
        assert_eq!(p.read(fs + k * P + 3), Ok((k * 16 + 3) as u8));
    }
    assert_eq!(p.read(fp + 7), Ok(7));
    assert_eq!(p.read(fp + P + 7), Ok(16 + 7));
    p.write(fp + 2 * P + 7, 0xc2).unwrap();
    let frames = p.mem.in_use();

    for (start, pages) in [(a, 6), (s, 3), (fs, 3), (fp, 3)] {
        assert_eq!(p.madvise(start, pages * P, MADV_COLD), Ok(()));
    }

    let gone = |p: &Proc, va: u64, what: &str| {
        assert!(
            p.present(va).is_none(),
            "{what} at {va:#x} costs nothing to re-create: MADV_COLD must unmap it"
        )
    };
    let kept = |p: &Proc, va: u64, what: &str| {
        assert!(
            p.present(va).is_some(),
            "{what} at {va:#x} holds the only copy of its data: it must stay mapped"
        )
    };
    kept(&p, a, "a private anonymous page");
    kept(&p, a + P, "a private anonymous page");
    gone(&p, a + 2 * P, "a page mapping the zero frame");
    gone(&p, a + 3 * P, "a page mapping the zero frame");
    for k in 0..3 {
        gone(&p, s + k * P, "a page of shared memory");
        gone(&p, fs + k * P, "a shared page of a file");
    }
    gone(&p, fp, "a file page mapped privately but not copied");
    gone(&p, fp + P, "a file page mapped privately but not copied");
    kept(&p, fp + 2 * P, "a private copy of a file page");
    assert_eq!(p.mem.in_use(), frames, "the data stays in memory");
    assert_eq!(p.mem.refcount(p.mem.zero_frame()), 1);

    // Every byte reads back as it was.
    assert_eq!((p.read(a), p.read(a + P + 5)), (Ok(0xa0), Ok(0xa1)));
    for k in 2..6 {
        assert_eq!(p.read(a + k * P + 9), Ok(0));
    }
    for k in 0..3 {
        assert_eq!(p.read(s + k * P + 1), Ok(0xb0 + k as u8));
        assert_eq!(p.read(fs + k * P + 3), Ok((k * 16 + 3) as u8));
    }
    assert_eq!(p.read(fp + 7), Ok(7));
    assert_eq!(p.read(fp + P + 7), Ok(16 + 7));
    assert_eq!(p.read(fp + 2 * P + 7), Ok(0xc2));
    assert_eq!(p.read(fs + 2 * P + 7), Ok(32 + 7), "the file never changed");

    for (start, pages) in [(a, 6), (s, 3), (fs, 3), (fp, 3)] {
        p.munmap(start, pages * P);
    }
    f.release(&mut p.mem);
    assert_eq!(p.mem.in_use(), 0);
}

#[test]
#[ignore = "lab 3: see docs/src/labs.md"]
fn lab3_cold_keeps_the_rules_of_madvise() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    assert_eq!(p.read(a), Ok(0));
    p.munmap(a + P, P);
    // A hole in the range: ENOMEM, as for every madvise advice.
    assert_eq!(p.madvise(a, 4 * P, MADV_COLD), Err(Errno::ENOMEM));
    assert!(p.maps_zero_frame(a), "a failed madvise changes nothing");
    assert_eq!(p.madvise(a, P, MADV_COLD), Ok(()));
    assert!(p.present(a).is_none(), "the zero frame's page is unmapped");
    p.munmap(a, 4 * P);
}

// ---- lab 4: bottom-up placement -------------------------------------------------

/// Linux's TASK_UNMAPPED_BASE on x86_64: a third of the user address space.
const BASE: u64 = 0x2aaa_aaaa_b000;

#[test]
#[ignore = "lab 4: see docs/src/labs.md"]
fn lab4_bottom_up_places_at_the_lowest_free_range_above_the_base() {
    let mut p = Proc::new();
    p.space
        .set_placement_policy(PlacementPolicy::BottomUp { base: BASE });
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    assert_eq!(a, BASE, "the first mapping goes at the base");
    let b = p.mmap(0, 2 * P, PROT_RW, ANON).unwrap();
    assert_eq!(b, BASE + 4 * P, "the next one right above it");
    let c = p.mmap(0, 8 * P, PROT_RW, ANON).unwrap();
    assert_eq!(c, BASE + 6 * P);

    // First fit: a hole that is big enough is reused, one too small is skipped.
    p.munmap(a, 4 * P);
    let d = p.mmap(0, 5 * P, PROT_RW, ANON).unwrap();
    assert_eq!(d, BASE + 14 * P, "4 free pages at the base cannot hold 5");
    let e = p.mmap(0, 3 * P, PROT_RW, ANON).unwrap();
    assert_eq!(e, BASE, "3 pages fit in the hole at the base");

    // Alignment is still honoured: the lowest 2 MiB-aligned free range.
    let huge = 2 << 20;
    let f = p.mmap(0, P, PROT_RW, ANON | mmap::map_aligned(21)).unwrap();
    assert_eq!(f, (BASE + 19 * P).next_multiple_of(huge));

    // A free hint still wins, wherever it is; MAP_32BIT keeps its range.
    let hint = 0x5000_0000_0000;
    assert_eq!(p.mmap(hint, P, PROT_RW, ANON), Ok(hint));
    let low = p.mmap(0, P, PROT_RW, ANON | mmap::MAP_32BIT).unwrap();
    assert!((0x4000_0000..0x8000_0000).contains(&low), "{low:#x}");
    // A taken hint falls back to the policy, not to the top.
    let g = p.mmap(b, P, PROT_RW, ANON).unwrap();
    assert_eq!(g, BASE + 3 * P);
}

#[test]
#[ignore = "lab 4: see docs/src/labs.md"]
fn lab4_bottom_up_never_looks_below_its_base() {
    let mut p = Proc::new();
    // Everything from the base to the end of the user half is taken but
    // one page, as if a huge mapping sat there.
    let end = vm::space::USER_END;
    p.mmap(BASE, end - BASE - P, PROT_RW, ANON | mmap::MAP_FIXED)
        .unwrap();
    p.space
        .set_placement_policy(PlacementPolicy::BottomUp { base: BASE });
    assert_eq!(
        p.mmap(0, P, PROT_RW, ANON),
        Ok(end - P),
        "the last page fits"
    );
    // Nothing is left above the base: ENOMEM, though there is room below
    // it (Linux's bottom-up search never looks below mmap_base either).
    assert_eq!(p.mmap(0, 2 * P, PROT_RW, ANON), Err(Errno::ENOMEM));

    // Back to top-down: as high as fits below mmap_top, which lies inside
    // the big mapping, so just below the base.
    p.space.set_placement_policy(PlacementPolicy::TopDown);
    assert_eq!(p.mmap(0, 2 * P, PROT_RW, ANON), Ok(BASE - 2 * P));
}

// ---- lab 6: FIFO page replacement (vm/src/clock.rs) ----------------------

use vm::clock::{self, Clock, Policy, Verdict};

/// A plain FIFO of `frames` frames over `refs`: the reference the lab's
/// Policy::Fifo must match, miss for miss.
fn fifo_reference(frames: usize, refs: &[u64]) -> u64 {
    let mut queue = std::collections::VecDeque::new();
    let mut misses = 0;
    for &page in refs {
        if queue.contains(&page) {
            continue;
        }
        misses += 1;
        if queue.len() == frames {
            queue.pop_front();
        }
        queue.push_back(page);
    }
    misses
}

#[test]
#[ignore = "lab 6: see docs/src/labs.md"]
fn lab6_fifo_evicts_in_arrival_order_used_or_not() {
    let mut c = Clock::new(Policy::Fifo, 4);
    for i in 0..4 {
        c.insert(Pfn(i));
    }
    let v = c.choose(2, 10, &mut |_| true, &mut |_| Verdict::Evict);
    assert_eq!(
        v,
        [Pfn(0), Pfn(1)],
        "FIFO takes the oldest, accessed or not"
    );
    // A page that may not go now stays listed, and the next one goes.
    let v = c.choose(1, 10, &mut |_| true, &mut |p| {
        if p == Pfn(2) {
            Verdict::Keep
        } else {
            Verdict::Evict
        }
    });
    assert_eq!(v, [Pfn(3)]);
}

#[test]
#[ignore = "lab 6: see docs/src/labs.md"]
fn lab6_fifo_counts_the_major_faults_the_clock_saves() {
    // 100 frames; 40 hot pages used between every two pages of a sweep
    // through 1000 cold ones.
    let mut refs = Vec::new();
    for cold in 1000..2000 {
        refs.extend(0..40);
        refs.push(cold);
    }
    let fifo = clock::misses(Policy::Fifo, 100, &refs);
    let second_chance = clock::misses(Policy::Clock, 100, &refs);
    assert_eq!(
        fifo,
        fifo_reference(100, &refs),
        "Policy::Fifo is not a FIFO yet"
    );
    assert!(
        fifo > second_chance * 3 / 2,
        "FIFO {fifo} major faults, the clock {second_chance}"
    );
    // A loop a little larger than memory defeats both (every page goes
    // before it is used again): Belady's worst case.
    let looped: Vec<u64> = (0..20).flat_map(|_| 0..120).collect();
    assert_eq!(
        clock::misses(Policy::Fifo, 100, &looped),
        looped.len() as u64
    );
}
