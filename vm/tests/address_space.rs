//! Integration tests of `space::AddressSpace` over the fake page tables and
//! fake physical memory, driven the way the kernel's memory syscalls drive
//! it (`kernel/src/syscall/memory.rs`): raw arguments through `vm::mmap`'s
//! validators, a template VMA, `map` and `populate`; user accesses as the
//! CPU makes them (look at the PTE, fault, retry).
//!
//! Every test asserts what a user would observe: the bytes in memory, the
//! fault results and errnos, how many frames are in use, the commit charge.

use proptest::prelude::*;
use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{self, OnConflict, Placement, Prot, Sharing};
use vm::pmap::{Mapping, PhysMem, Pmap};
use vm::space::{AddressSpace, USER_START};
use vm::vm_fault::{Access, FaultError, Resolution, SegvCode};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, HUGE_PAGE, Inherit, PAGE, STACK_GUARD_PAGES, Vma, VmaFlags};

type Space = AddressSpace<FakePmap>;

const P: u64 = PAGE;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Where top-down placement starts in most tests.
const TOP: u64 = 0x7f00_0000_0000;

// Raw syscall arguments, Linux's values.
const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const PROT_RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const SHARED_ANON: u64 = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
const MADV_WILLNEED: u64 = 3;
const MADV_DONTNEED: u64 = 4;
const MADV_REMOVE: u64 = 9;

const MAPERR: FaultError = FaultError::Segv(SegvCode::MapErr);
const ACCERR: FaultError = FaultError::Segv(SegvCode::AccErr);

/// One process: its address space and the machine's memory.
struct Proc {
    space: Space,
    mem: FakeMemory,
}

/// What a VMA looks like from outside (Vma has no PartialEq).
#[derive(Clone, Debug, PartialEq, Eq)]
struct VmaView {
    start: u64,
    end: u64,
    prot: Prot,
    max_prot: Prot,
    sharing: Sharing,
    backing: &'static str,
    flags: VmaFlags,
    inherit: Inherit,
}

fn view(v: &Vma) -> VmaView {
    VmaView {
        start: v.start,
        end: v.end,
        prot: v.prot,
        max_prot: v.max_prot,
        sharing: v.sharing,
        backing: backing_kind(&v.backing),
        flags: v.flags,
        inherit: v.inherit,
    }
}

fn backing_kind(b: &Backing) -> &'static str {
    match b {
        Backing::Anonymous => "anonymous",
        Backing::Object { .. } => "object",
        Backing::Guard => "guard",
        Backing::StackGap => "stack-gap",
    }
}

/// Everything an operation that fails must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    vmas: Vec<VmaView>,
    ptes: Vec<(u64, Mapping)>,
    in_use: usize,
    committed: u64,
    charged: u64,
}

/// A template of `prot` for shared memory of `object` from byte `offset`.
fn shared_template(object: ObjectRef, offset: u64, prot: Prot) -> Vma {
    let mut vma = Vma::anonymous(0, 0, prot);
    vma.sharing = Sharing::Shared;
    vma.inherit = Inherit::Share;
    vma.backing = Backing::Object { object, offset };
    vma
}

fn page_addrs(start: u64, pages: u64) -> impl Iterator<Item = u64> {
    (0..pages).map(move |i| start + i * P)
}

impl Proc {
    fn new() -> Proc {
        Proc::with_top(TOP)
    }

    fn with_top(top: u64) -> Proc {
        Proc {
            space: AddressSpace::new(FakePmap::default(), top),
            mem: FakeMemory::new(1 << 20),
        }
    }

    // ---- the syscalls, as kernel/src/syscall/memory.rs makes them ----

    fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64) -> Result<u64, Errno> {
        let req = mmap::validate_mmap(addr, len, prot, flags, -1, 0)?;
        let vma = Vma::for_request(&req).expect("no files in these tests");
        let start = self.space.mmap(&mut self.mem, &req, vma)?;
        self.check();
        Ok(start)
    }

    /// `map` with a template of our own (shared objects, several mappings of one).
    fn map(&mut self, placement: Placement, len: u64, template: Vma) -> Result<u64, Errno> {
        let r = self
            .space
            .map(&mut self.mem, &placement, len, P, false, template);
        self.check();
        r
    }

    fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let span = mmap::validate_munmap(addr, len)?;
        let r = self.space.munmap(&mut self.mem, span.start, span.end);
        self.check();
        r
    }

    fn mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let (span, prot) = mmap::validate_mprotect(addr, len, prot)?;
        if span.is_empty() {
            return Ok(());
        }
        let r = self
            .space
            .mprotect(&mut self.mem, span.start, span.end, prot);
        self.check();
        r
    }

    fn madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<(), Errno> {
        let (span, advice) = mmap::validate_madvise(addr, len, advice)?;
        if span.is_empty() {
            return Ok(());
        }
        let r = self
            .space
            .madvise(&mut self.mem, span.start, span.end, advice);
        self.check();
        r
    }

    fn msync(&mut self, addr: u64, len: u64, flags: u64) -> Result<(), Errno> {
        let span = mmap::validate_msync(addr, len, flags)?;
        if span.is_empty() {
            return Ok(());
        }
        self.space
            .msync(span.start, span.end, flags & mmap::MS_INVALIDATE != 0)
    }

    fn mincore(&mut self, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let span = mmap::validate_mincore(addr, len)?;
        let mut out = vec![0xff; span.pages() as usize];
        self.space.mincore(span.start, span.end, &mut out)?;
        Ok(out)
    }

    fn mlock(&mut self, addr: u64, len: u64, lock: bool) -> Result<(), Errno> {
        let span = mmap::validate_mlock(addr, len)?;
        if span.is_empty() {
            return Ok(());
        }
        let r = self.space.mlock(&mut self.mem, span.start, span.end, lock);
        self.check();
        r
    }

    fn minherit(&mut self, addr: u64, len: u64, inherit: u64) -> Result<(), Errno> {
        let (span, inherit) = mmap::validate_minherit(addr, len, inherit)?;
        if span.is_empty() {
            return Ok(());
        }
        let r = self.space.minherit(span.start, span.end, inherit);
        self.check();
        r
    }

    fn brk(&mut self, addr: u64) -> u64 {
        let r = self.space.brk(&mut self.mem, addr);
        self.check();
        r
    }

    // ---- user accesses, as the CPU and the fault handler make them ----

    /// The frame and the byte offset in it that `addr` reaches with
    /// `access`, faulting as the CPU would until the PTE allows it.
    fn access(&mut self, addr: u64, access: Access) -> Result<(Pfn, usize), FaultError> {
        for _ in 0..4 {
            if let Some(m) = self.space.pmap.query(addr) {
                let allowed = m.prot.user
                    && match access {
                        Access::Read => true,
                        Access::Write => m.prot.write,
                        Access::Execute => m.prot.exec,
                    };
                if allowed {
                    let size = if m.huge { HUGE_PAGE } else { P };
                    // A fake huge block is one 2 MiB frame at its head.
                    return Ok((m.pfn, (addr & (size - 1)) as usize));
                }
            }
            self.space.fault(&mut self.mem, addr, access)?;
            self.check();
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

    fn fault(&mut self, addr: u64, access: Access) -> Result<Resolution, FaultError> {
        let r = self.space.fault(&mut self.mem, addr, access);
        self.check();
        r
    }

    // ---- observations ----

    fn vmas(&self) -> Vec<VmaView> {
        self.space.vmas().map(view).collect()
    }

    fn ranges(&self) -> Vec<(u64, u64)> {
        self.space.vmas().map(|v| (v.start, v.end)).collect()
    }

    fn in_use(&self) -> usize {
        self.mem.in_use()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            vmas: self.vmas(),
            ptes: self
                .space
                .pmap
                .ptes
                .iter()
                .map(|(&va, &m)| (va, m))
                .collect(),
            in_use: self.mem.in_use(),
            committed: self.mem.committed,
            charged: self.space.charged_pages(),
        }
    }

    fn present(&self, addr: u64) -> Option<Mapping> {
        self.space.pmap.query(addr)
    }

    /// The space's invariants, after every step.
    fn check(&self) {
        self.space.verify();
        let zero = self.mem.zero_frame();
        let mut zero_maps = 0;
        for (&va, m) in &self.space.pmap.ptes {
            let vma = self
                .space
                .find(va)
                .unwrap_or_else(|| panic!("PTE at {va:#x} outside any VMA"));
            if m.huge {
                assert!(
                    va.is_multiple_of(HUGE_PAGE),
                    "huge PTE at unaligned {va:#x}"
                );
                assert!(
                    vma.start <= va && va + HUGE_PAGE <= vma.end,
                    "huge PTE at {va:#x} sticks out of its VMA"
                );
            }
            assert!(
                matches!(vma.backing, Backing::Anonymous | Backing::Object { .. }),
                "PTE at {va:#x} in a {:?} VMA",
                vma.backing
            );
            assert!(
                !m.prot.user || !vma.prot.is_empty(),
                "PTE at {va:#x} user-accessible in a PROT_NONE VMA"
            );
            assert!(
                !m.prot.write || vma.prot.contains(Prot::WRITE),
                "PTE at {va:#x} writable in a {:?} VMA",
                vma.prot
            );
            assert!(
                !m.prot.exec || vma.prot.contains(Prot::EXEC),
                "PTE at {va:#x} executable in a {:?} VMA",
                vma.prot
            );
            if m.pfn == zero {
                zero_maps += 1;
                assert!(!m.prot.write, "the zero frame is writable at {va:#x}");
            } else if m.prot.write && vma.sharing == Sharing::Private {
                assert_eq!(
                    self.mem.refcount(m.pfn),
                    1,
                    "private writable page at {va:#x} is shared"
                );
            }
        }
        assert_eq!(
            self.mem.refcount(zero),
            1 + zero_maps,
            "zero frame references"
        );
        assert_eq!(
            self.space.charged_pages(),
            self.space.vmas().map(Vma::charge).sum::<u64>()
        );
        assert_eq!(
            self.mem.committed,
            self.space.charged_pages(),
            "commit charge of the machine vs the space"
        );
    }
}

// ---- zero fill ------------------------------------------------------------

#[test]
fn read_maps_the_zero_frame_and_write_copies_it() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    assert_eq!(p.in_use(), 0, "mmap allocates nothing");

    assert_eq!(p.fault(a + 8, Access::Read), Ok(Resolution::ZeroPage));
    let m = p.present(a).expect("read fault maps a page");
    assert_eq!(m.pfn, p.mem.zero_frame());
    assert!(
        m.prot.user && !m.prot.write,
        "zero frame must be mapped read-only: {m:?}"
    );
    assert_eq!(p.in_use(), 0, "a read fault allocates no frame");
    assert_eq!(p.read(a + 8), Ok(0));
    assert_eq!(p.fault(a + 9, Access::Read), Ok(Resolution::Spurious));

    // The first write copies to a fresh zeroed frame of its own.
    assert_eq!(p.fault(a + 8, Access::Write), Ok(Resolution::CopyOnWrite));
    let m = p.present(a).unwrap();
    assert_ne!(m.pfn, p.mem.zero_frame());
    assert!(m.prot.write);
    assert_eq!(p.in_use(), 1);
    assert!(
        p.mem.bytes(m.pfn).iter().all(|&b| b == 0),
        "the copy of the zero frame is zeros"
    );
    assert_eq!(
        p.mem.refcount(p.mem.zero_frame()),
        1,
        "the zero frame's mapping was released"
    );

    // A first write to an untouched page allocates directly.
    assert_eq!(p.fault(a + P, Access::Write), Ok(Resolution::ZeroFill));
    assert_eq!(p.in_use(), 2);
    assert!(p.present(a + P).unwrap().prot.write);
    assert_eq!(p.read(a + P + 100), Ok(0));

    // Untouched pages stay unmapped.
    assert!(p.present(a + 2 * P).is_none() && p.present(a + 3 * P).is_none());
}

#[test]
fn private_pages_keep_their_data_and_munmap_frees_every_frame() {
    let mut p = Proc::new();
    let start_frames = p.in_use();
    let a = p.mmap(0, 8 * P, PROT_RW, ANON).unwrap();
    let b = p.mmap(0, 4 * P, PROT_READ, ANON).unwrap();
    for (i, page) in page_addrs(a, 8).enumerate() {
        p.write(page + i as u64 * 3, 0x40 + i as u8).unwrap();
        p.write(page + P - 1, 0x80 + i as u8).unwrap();
    }
    for page in page_addrs(b, 4) {
        assert_eq!(p.read(page), Ok(0));
    }
    for (i, page) in page_addrs(a, 8).enumerate() {
        assert_eq!(p.read(page + i as u64 * 3), Ok(0x40 + i as u8));
        assert_eq!(p.read(page + P - 1), Ok(0x80 + i as u8));
        assert_eq!(p.read(page + P / 2), Ok(0));
    }
    assert_eq!(p.in_use(), start_frames + 8);
    assert_eq!(p.space.pmap.ptes.len(), 12);
    assert_eq!(p.mem.refcount(p.mem.zero_frame()), 5);

    p.munmap(a, 8 * P).unwrap();
    p.munmap(b, 4 * P).unwrap();
    assert_eq!(p.in_use(), start_frames, "munmap gives every frame back");
    assert!(p.space.pmap.ptes.is_empty(), "no PTE left");
    assert_eq!(p.mem.refcount(p.mem.zero_frame()), 1);
    assert_eq!(p.space.vma_count(), 0);
    assert_eq!(p.read(a), Err(MAPERR));
    assert_eq!(p.write(b, 1), Err(MAPERR));
}

// ---- MAP_FIXED ------------------------------------------------------------

#[test]
fn map_fixed_replaces_the_middle_of_a_mapping() {
    let mut p = Proc::new();
    let x = 0x1000_0000;
    assert_eq!(p.mmap(x, 8 * P, PROT_RW, ANON | mmap::MAP_FIXED), Ok(x));
    for (i, page) in page_addrs(x, 8).enumerate() {
        p.write(page + 1, 1 + i as u8).unwrap();
    }
    assert_eq!(p.ranges(), [(x, x + 8 * P)]);
    assert_eq!(p.in_use(), 8);
    assert_eq!(p.space.charged_pages(), 8);

    assert_eq!(
        p.mmap(x + 3 * P, 2 * P, PROT_READ, ANON | mmap::MAP_FIXED),
        Ok(x + 3 * P)
    );
    assert_eq!(
        p.ranges(),
        [
            (x, x + 3 * P),
            (x + 3 * P, x + 5 * P),
            (x + 5 * P, x + 8 * P)
        ]
    );
    let prots: Vec<Prot> = p.space.vmas().map(|v| v.prot).collect();
    assert_eq!(
        prots,
        [
            Prot::READ | Prot::WRITE,
            Prot::READ,
            Prot::READ | Prot::WRITE
        ]
    );
    assert_eq!(p.in_use(), 6, "the two replaced frames are freed");
    assert_eq!(p.space.charged_pages(), 6);
    for (i, page) in page_addrs(x, 8).enumerate() {
        let want = if (3..5).contains(&i) { 0 } else { 1 + i as u8 };
        assert_eq!(p.read(page + 1), Ok(want), "page {i}");
    }
    assert_eq!(
        p.write(x + 3 * P, 9),
        Err(ACCERR),
        "the new mapping is read-only"
    );
}

#[test]
fn fixed_noreplace_and_excl_refuse_and_change_nothing() {
    let mut p = Proc::new();
    let x = 0x1000_0000;
    p.mmap(x, 4 * P, PROT_RW, ANON | mmap::MAP_FIXED).unwrap();
    p.write(x + P, 7).unwrap();
    p.read(x + 2 * P).unwrap();
    let before = p.snapshot();

    // Overlapping any part of the mapping, from inside or across an edge.
    for (addr, len) in [
        (x, P),
        (x + P, 2 * P),
        (x - 2 * P, 3 * P),
        (x + 3 * P, 4 * P),
        (x - P, 6 * P),
    ] {
        assert_eq!(
            p.mmap(addr, len, PROT_READ, ANON | mmap::MAP_FIXED_NOREPLACE),
            Err(Errno::EEXIST),
            "{addr:#x}+{len:#x}"
        );
        assert_eq!(p.snapshot(), before);
        assert_eq!(
            p.mmap(
                addr,
                len,
                PROT_READ,
                ANON | mmap::MAP_FIXED | mmap::MAP_EXCL
            ),
            Err(Errno::EINVAL),
            "{addr:#x}+{len:#x}"
        );
        assert_eq!(p.snapshot(), before);
        let placement = Placement::Fixed {
            addr,
            on_conflict: OnConflict::FailEexist,
        };
        assert_eq!(
            p.map(placement, len, Vma::anonymous(0, 0, Prot::READ)),
            Err(Errno::EEXIST)
        );
        let placement = Placement::Fixed {
            addr,
            on_conflict: OnConflict::FailEinval,
        };
        assert_eq!(
            p.map(placement, len, Vma::anonymous(0, 0, Prot::READ)),
            Err(Errno::EINVAL)
        );
        assert_eq!(p.snapshot(), before);
    }
    assert_eq!(p.read(x + P), Ok(7));

    // Right next to it they are fine.
    assert_eq!(
        p.mmap(x + 4 * P, P, PROT_READ, ANON | mmap::MAP_FIXED_NOREPLACE),
        Ok(x + 4 * P)
    );
    assert_eq!(
        p.mmap(x - P, P, PROT_READ, ANON | mmap::MAP_FIXED | mmap::MAP_EXCL),
        Ok(x - P)
    );
}

// ---- munmap -----------------------------------------------------------------

#[test]
fn munmap_in_the_middle_leaves_two_vmas_with_their_data() {
    let mut p = Proc::new();
    let a = p.mmap(0, 6 * P, PROT_RW, ANON).unwrap();
    for (i, page) in page_addrs(a, 6).enumerate() {
        p.write(page + 17, 0x10 + i as u8).unwrap();
    }
    p.munmap(a + 2 * P, 2 * P).unwrap();
    assert_eq!(p.ranges(), [(a, a + 2 * P), (a + 4 * P, a + 6 * P)]);
    assert_eq!(p.in_use(), 4);
    assert_eq!(p.space.charged_pages(), 4);
    for i in [0u64, 1, 4, 5] {
        assert_eq!(p.read(a + i * P + 17), Ok(0x10 + i as u8), "page {i}");
    }
    assert_eq!(p.read(a + 2 * P), Err(MAPERR));
    assert_eq!(p.write(a + 3 * P + 17, 1), Err(MAPERR));

    // Unmapping nothing succeeds and changes nothing.
    let before = p.snapshot();
    p.munmap(a + 2 * P, 2 * P).unwrap();
    p.munmap(0x10_0000, 64 * P).unwrap();
    assert_eq!(p.snapshot(), before);
    // A range across the hole takes the parts on both sides.
    p.munmap(a + P, 4 * P).unwrap();
    assert_eq!(p.ranges(), [(a, a + P), (a + 5 * P, a + 6 * P)]);
    assert_eq!(p.in_use(), 2);
    assert_eq!(p.read(a + 5 * P + 17), Ok(0x15));
    assert_eq!(p.munmap(a + 1, P), Err(Errno::EINVAL));
    assert_eq!(p.munmap(a, 0), Err(Errno::EINVAL));
}

// ---- mprotect ---------------------------------------------------------------

#[test]
fn mprotect_splits_and_merges_back() {
    let mut p = Proc::new();
    let a = p.mmap(0, 6 * P, PROT_RW, ANON).unwrap();
    for (i, page) in page_addrs(a, 6).enumerate() {
        p.write(page, 1 + i as u8).unwrap();
    }
    assert_eq!(p.space.vma_count(), 1);
    p.mprotect(a + 2 * P, 2 * P, PROT_READ).unwrap();
    assert_eq!(p.space.vma_count(), 3);
    assert_eq!(p.space.find(a + 2 * P).unwrap().prot, Prot::READ);
    assert!(
        !p.present(a + 2 * P).unwrap().prot.write,
        "the PTE lost its write right"
    );
    assert!(
        p.present(a + P).unwrap().prot.write,
        "outside the range PTEs are untouched"
    );

    // A write to the read-only page is SIGSEGV with SEGV_ACCERR; reads still work.
    assert_eq!(p.fault(a + 2 * P, Access::Write), Err(ACCERR));
    assert_eq!(p.write(a + 3 * P, 0xee), Err(ACCERR));
    assert_eq!(p.read(a + 2 * P), Ok(3));
    assert_eq!(p.read(a + 3 * P), Ok(4));
    // Executing is not allowed either.
    assert_eq!(p.fault(a + 2 * P, Access::Execute), Err(ACCERR));

    // Restoring the protection merges the VMAs back; the page is written in place.
    p.mprotect(a + 2 * P, 2 * P, PROT_RW).unwrap();
    assert_eq!(p.space.vma_count(), 1);
    let frame = p.present(a + 2 * P).unwrap().pfn;
    assert!(matches!(
        p.fault(a + 2 * P, Access::Write),
        Ok(Resolution::Reuse | Resolution::Spurious)
    ));
    p.write(a + 2 * P, 0x33).unwrap();
    assert_eq!(
        p.present(a + 2 * P).unwrap().pfn,
        frame,
        "no copy of an exclusive page"
    );
    assert_eq!(p.in_use(), 6);

    // PROT_NONE keeps the data; any access is ACCERR until it is lifted.
    p.mprotect(a, 6 * P, PROT_NONE).unwrap();
    assert_eq!(p.space.charged_pages(), 0);
    assert_eq!(p.read(a), Err(ACCERR));
    assert_eq!(p.in_use(), 6);
    p.mprotect(a, 6 * P, PROT_READ).unwrap();
    assert_eq!(p.read(a), Ok(1));
    assert_eq!(p.read(a + 2 * P), Ok(0x33));

    // Reads outside any VMA are SIGSEGV with SEGV_MAPERR.
    assert_eq!(p.fault(a + 6 * P, Access::Read), Err(MAPERR));
    assert_eq!(p.fault(a - P, Access::Read), Err(MAPERR));
    assert_eq!(p.fault(0, Access::Read), Err(MAPERR));
}

#[test]
fn mprotect_refuses_holes_and_rights_beyond_max_prot() {
    let mut p = Proc::new();
    let x = 0x2000_0000;
    p.mmap(x, 4 * P, PROT_RW, ANON | mmap::MAP_FIXED).unwrap();
    p.mmap(x + 6 * P, 2 * P, PROT_RW, ANON | mmap::MAP_FIXED)
        .unwrap();
    let guard = p
        .mmap(
            x + 8 * P,
            2 * P,
            PROT_NONE,
            mmap::MAP_GUARD | mmap::MAP_FIXED,
        )
        .unwrap();
    p.write(x, 5).unwrap();
    let before = p.snapshot();

    // Holes: ENOMEM, nothing changed (not even the mapped part).
    assert_eq!(p.mprotect(x, 8 * P, PROT_READ), Err(Errno::ENOMEM));
    assert_eq!(p.mprotect(x + 4 * P, P, PROT_READ), Err(Errno::ENOMEM));
    assert_eq!(p.mprotect(x - P, 2 * P, PROT_READ), Err(Errno::ENOMEM));
    assert_eq!(p.snapshot(), before);

    // A guard's max_prot is empty: any mprotect of it is EACCES.
    for prot in [PROT_READ, PROT_RW, PROT_EXEC, PROT_NONE] {
        assert_eq!(
            p.mprotect(guard, 2 * P, prot),
            Err(Errno::EACCES),
            "prot {prot}"
        );
        assert_eq!(
            p.mprotect(x + 6 * P, 4 * P, prot),
            Err(Errno::EACCES),
            "across the guard, prot {prot}"
        );
    }
    assert_eq!(p.snapshot(), before);

    // A VMA whose max_prot lacks WRITE (a read-only shared file, say).
    let mut ro = Vma::anonymous(0, 0, Prot::READ);
    ro.max_prot = Prot::READ | Prot::EXEC;
    let r = p.map(Placement::Anywhere { hint: 0 }, 2 * P, ro).unwrap();
    assert_eq!(p.mprotect(r, 2 * P, PROT_RW), Err(Errno::EACCES));
    assert_eq!(p.space.find(r).unwrap().prot, Prot::READ);
    p.mprotect(r, P, PROT_READ | PROT_EXEC).unwrap();
    assert_eq!(p.space.find(r).unwrap().prot, Prot::READ | Prot::EXEC);
}

// ---- commit charge ----------------------------------------------------------

#[test]
fn commit_charge_follows_private_writable_pages() {
    let mut p = Proc::new();
    let rw = p.mmap(0, 10 * P, PROT_RW, ANON).unwrap();
    assert_eq!((p.space.charged_pages(), p.mem.committed), (10, 10));
    let ro = p.mmap(0, 5 * P, PROT_READ, ANON).unwrap();
    assert_eq!(
        p.space.charged_pages(),
        10,
        "read-only private memory is not charged"
    );
    let nr = p
        .mmap(0, 4 * P, PROT_RW, ANON | mmap::MAP_NORESERVE)
        .unwrap();
    assert_eq!(p.space.charged_pages(), 10, "MAP_NORESERVE is not charged");
    let sh = p.mmap(0, 4 * P, PROT_RW, SHARED_ANON).unwrap();
    assert_eq!(p.space.charged_pages(), 10, "shared memory is not charged");
    // Touching changes nothing: the charge is taken at mmap time.
    for page in page_addrs(rw, 10)
        .chain(page_addrs(nr, 4))
        .chain(page_addrs(sh, 4))
    {
        p.write(page, 1).unwrap();
    }
    assert_eq!(p.mem.committed, 10);

    p.mprotect(rw, 3 * P, PROT_READ).unwrap();
    assert_eq!(
        (p.space.charged_pages(), p.mem.committed),
        (7, 7),
        "mprotect read-only releases the charge"
    );
    p.mprotect(rw + 8 * P, 2 * P, PROT_NONE).unwrap();
    assert_eq!(p.mem.committed, 5);
    p.munmap(rw + 5 * P, 2 * P).unwrap();
    assert_eq!(p.mem.committed, 3, "munmap releases the charge");
    p.mprotect(ro, 5 * P, PROT_RW).unwrap();
    assert_eq!(p.mem.committed, 8, "mprotect writable takes a charge");
    p.mprotect(nr, 4 * P, PROT_READ).unwrap();
    p.mprotect(nr, 4 * P, PROT_RW).unwrap();
    assert_eq!(
        p.mem.committed, 8,
        "NORESERVE stays uncharged through mprotect"
    );
    // Replacing charged memory by charged memory of the same size is even.
    p.mmap(ro, 5 * P, PROT_RW, ANON | mmap::MAP_FIXED).unwrap();
    assert_eq!(p.mem.committed, 8);
    p.mmap(ro, 5 * P, PROT_READ, ANON | mmap::MAP_FIXED)
        .unwrap();
    assert_eq!(p.mem.committed, 3, "replacing by read-only memory releases");
    p.space.clear(&mut p.mem);
    assert_eq!((p.mem.committed, p.in_use()), (0, 0));
}

#[test]
fn commit_limit_refuses_mappings_and_changes_nothing() {
    let mut p = Proc::new();
    p.mem.commit_limit = 16;
    let a = p.mmap(0, 8 * P, PROT_RW, ANON).unwrap();
    p.write(a, 1).unwrap();
    let before = p.snapshot();

    assert_eq!(p.mmap(0, 9 * P, PROT_RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(
        p.mmap(0x3000_0000, 9 * P, PROT_RW, ANON | mmap::MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    // A fixed mapping over `a` and past it: the replaced charge counts, 9 more pages do not fit.
    assert_eq!(
        p.mmap(a, 17 * P, PROT_RW, ANON | mmap::MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(p.snapshot(), before, "a refused mapping changes nothing");
    assert_eq!(p.read(a), Ok(1));

    // Uncharged kinds of memory still map at the limit.
    let nr = p
        .mmap(0, 64 * P, PROT_RW, ANON | mmap::MAP_NORESERVE)
        .unwrap();
    let ro = p.mmap(0, 64 * P, PROT_READ, ANON).unwrap();
    p.mmap(0, 64 * P, PROT_RW, SHARED_ANON).unwrap();
    assert_eq!(p.mem.committed, 8);

    // Exactly up to the limit is fine; then mprotect cannot make more writable.
    let b = p.mmap(0, 8 * P, PROT_RW, ANON).unwrap();
    assert_eq!(p.mem.committed, 16);
    let before = p.snapshot();
    assert_eq!(p.mprotect(ro, P, PROT_RW), Err(Errno::ENOMEM));
    assert_eq!(p.mmap(0, P, PROT_RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(p.snapshot(), before);
    // Replacing charged memory by as much charged memory fits, at the limit.
    assert_eq!(p.mmap(b, 8 * P, PROT_RW, ANON | mmap::MAP_FIXED), Ok(b));
    assert_eq!(p.mem.committed, 16);
    // Writes to NORESERVE memory are still served.
    p.write(nr + 63 * P, 2).unwrap();
    // Giving charge back makes room again.
    p.munmap(a, 4 * P).unwrap();
    assert_eq!(p.mprotect(ro, 4 * P, PROT_RW), Ok(()));
    assert_eq!(p.mem.committed, 16);
}

// ---- shared anonymous memory ------------------------------------------------

#[test]
fn two_mappings_of_one_object_share_their_pages() {
    let mut p = Proc::new();
    let object = ObjectRef::new_anonymous();
    let rw = Prot::READ | Prot::WRITE;
    let x = p
        .map(
            Placement::Anywhere { hint: 0 },
            2 * P,
            shared_template(object.clone(), 0, rw),
        )
        .unwrap();
    let y = p
        .map(
            Placement::Anywhere { hint: 0 },
            2 * P,
            shared_template(object.clone(), 0, rw),
        )
        .unwrap();
    // A third view of the object's second page only.
    let z = p
        .map(
            Placement::Anywhere { hint: 0 },
            P,
            shared_template(object, P, Prot::READ),
        )
        .unwrap();
    assert_eq!(
        p.space.vma_count(),
        3,
        "different views of one object stay apart"
    );
    assert_eq!(p.mem.committed, 0);

    p.write(x + 10, 0x11).unwrap();
    assert_eq!(p.read(y + 10), Ok(0x11));
    p.write(y + P + 5, 0x22).unwrap();
    assert_eq!(p.read(x + P + 5), Ok(0x22));
    assert_eq!(p.read(z + 5), Ok(0x22));
    p.write(x + P + 5, 0x23).unwrap();
    assert_eq!(p.read(y + P + 5), Ok(0x23));
    assert_eq!(p.read(z + 5), Ok(0x23));
    assert_eq!(p.write(z, 1), Err(ACCERR));
    assert_eq!(p.in_use(), 2, "two object pages, whoever maps them");
    assert_eq!(p.present(x).unwrap().pfn, p.present(y).unwrap().pfn);
    let second = p.present(x + P).unwrap().pfn;
    assert_eq!(p.mem.refcount(second), 4, "the object and three PTEs");
    assert_eq!(p.mincore(z, P), Ok(vec![1]));

    p.munmap(x, 2 * P).unwrap();
    assert_eq!(
        p.in_use(),
        2,
        "the object keeps its pages while mapped elsewhere"
    );
    assert_eq!(p.read(y + 10), Ok(0x11));
    p.munmap(z, P).unwrap();
    assert_eq!(p.read(y + P + 5), Ok(0x23));
    p.munmap(y, 2 * P).unwrap();
    assert_eq!(p.in_use(), 0, "the last unmapping frees the object's pages");
    assert!(p.space.pmap.ptes.is_empty());
}

#[test]
fn mmap_shared_anonymous_is_one_object() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, SHARED_ANON).unwrap();
    assert_eq!(
        p.fault(a, Access::Read),
        Ok(Resolution::ObjectPage { around: 0, read: 0 })
    );
    assert_eq!(p.in_use(), 1, "an object page, not the zero frame");
    p.write(a + 3 * P, 9).unwrap();
    // Splitting the VMA keeps both halves on the same object.
    p.mprotect(a + 2 * P, 2 * P, PROT_READ).unwrap();
    assert_eq!(p.read(a + 3 * P), Ok(9));
    assert_eq!(p.write(a + 3 * P, 1), Err(ACCERR));
    p.mprotect(a + 2 * P, 2 * P, PROT_RW).unwrap();
    assert_eq!(p.space.vma_count(), 1, "the halves merge back");
    p.write(a + 3 * P, 10).unwrap();
    assert_eq!(p.read(a + 3 * P), Ok(10));
    p.munmap(a, 4 * P).unwrap();
    assert_eq!(p.in_use(), 0);
}

// ---- stacks -----------------------------------------------------------------

/// DESIGN §2: the whole len is the stack's ("the bottom of the stack at
/// maximum growth is the starting address returned by the call"); the
/// guard is the page below the reservation.
#[test]
fn growsdown_stack_grows_page_by_page_down_to_its_guard() {
    let mut p = Proc::new();
    let len = 64 * 1024;
    let pages = len / P;
    let s = p.mmap(0, len, PROT_RW, ANON | mmap::MAP_GROWSDOWN).unwrap();
    let e = s + len;
    let guard = s - STACK_GUARD_PAGES * P;
    let vmas = p.vmas();
    assert_eq!(vmas.len(), 3, "{vmas:#?}");
    assert_eq!(
        (vmas[0].start, vmas[0].end, vmas[0].backing, vmas[0].prot),
        (guard, s, "guard", Prot::empty())
    );
    assert!(vmas[0].flags.contains(VmaFlags::STACK_GUARD));
    assert_eq!(
        (vmas[1].start, vmas[1].end, vmas[1].backing, vmas[1].prot),
        (s, e - P, "stack-gap", Prot::empty())
    );
    assert_eq!(
        (vmas[2].start, vmas[2].end, vmas[2].backing),
        (e - P, e, "anonymous")
    );
    assert!(vmas[2].flags.contains(VmaFlags::GROWSDOWN));
    assert!(!vmas[1].flags.contains(VmaFlags::GROWSDOWN));
    assert_eq!(p.mem.committed, 1, "only the mapped top page is charged");

    assert_eq!(p.fault(e - 8, Access::Write), Ok(Resolution::ZeroFill));
    p.write(e - 8, 0xff).unwrap();
    for k in (1..pages - 1).rev() {
        let page = s + k * P;
        assert_eq!(
            p.fault(page + P - 8, Access::Write),
            Ok(Resolution::StackGrowth),
            "page {k}"
        );
        p.write(page + P - 8, k as u8).unwrap();
        let stack = p.space.find(page).unwrap();
        assert_eq!(
            (stack.start, stack.end),
            (page, e),
            "the stack VMA now starts at page {k}"
        );
        assert!(stack.flags.contains(VmaFlags::GROWSDOWN));
        let gap = p.space.find(s).unwrap();
        assert_eq!(
            (gap.start, gap.end, backing_kind(&gap.backing)),
            (s, page, "stack-gap")
        );
        assert_eq!(p.mem.committed, pages - k);
        assert_eq!(p.space.vma_count(), 3);
    }
    // The lowest page grows too: the gap is gone, the stack is all of len.
    assert_eq!(p.fault(s, Access::Write), Ok(Resolution::StackGrowth));
    p.write(s, 0xee).unwrap();
    assert_eq!(p.space.find(s).map(|v| (v.start, v.end)), Some((s, e)));
    assert_eq!(p.mem.committed, pages);
    assert_eq!(p.space.vma_count(), 2);
    // The guard below never grows anything.
    let before = p.snapshot();
    for k in 0..STACK_GUARD_PAGES {
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(p.fault(guard + k * P, access), Err(MAPERR));
        }
    }
    assert_eq!(p.snapshot(), before);

    for k in 1..pages - 1 {
        assert_eq!(p.read(s + k * P + P - 8), Ok(k as u8));
    }
    assert_eq!(p.read(s), Ok(0xee));
    assert_eq!(p.read(e - 8), Ok(0xff));
    assert_eq!(p.in_use() as u64, pages);

    // munmap of the reservation takes its guard with it.
    p.munmap(s, len).unwrap();
    assert_eq!(
        (p.in_use(), p.mem.committed, p.space.vma_count()),
        (0, 0, 0)
    );
}

/// Nothing the kernel places lands on a stack's guard; MAP_FIXED may.
#[test]
fn a_stack_guard_is_kept_free_but_fixed_mappings_may_replace_it() {
    let mut p = Proc::new();
    let s = p.mmap(0, 16 * P, PROT_RW, mmap::MAP_STACK).unwrap();
    let guard = s - P;
    // Top-down placement goes below the guard, and a hint on it moves.
    let below = p.mmap(0, P, PROT_RW, ANON).unwrap();
    assert!(
        below + P <= guard,
        "{below:#x} next to the guard {guard:#x}"
    );
    let hinted = p.mmap(guard, P, PROT_RW, ANON).unwrap();
    assert_ne!(hinted, guard);
    assert_eq!(
        p.mmap(guard, P, PROT_RW, ANON | mmap::MAP_FIXED_NOREPLACE),
        Err(Errno::EEXIST)
    );
    assert_eq!(p.mmap(guard, P, PROT_RW, ANON | mmap::MAP_FIXED), Ok(guard));
    // The stack still has all its pages.
    assert_eq!(p.write(s, 1), Ok(()));
    assert_eq!(p.space.find(s).map(|v| v.start), Some(s));
    p.munmap(guard, 17 * P).unwrap();
    p.munmap(below, P).unwrap();
    p.munmap(hinted, P).unwrap();
    assert_eq!(
        (p.in_use(), p.mem.committed, p.space.vma_count()),
        (0, 0, 0)
    );
}

#[test]
fn stack_growth_jumps_and_respects_the_commit_limit() {
    let mut p = Proc::new();
    let s = p.mmap(0, 16 * P, PROT_RW, mmap::MAP_STACK).unwrap();
    // A fault well below the top grows the stack all the way there.
    assert_eq!(p.write(s + 4 * P, 1), Ok(()));
    assert_eq!(p.space.find(s + 4 * P).unwrap().start, s + 4 * P);
    assert_eq!(p.mem.committed, 12);
    assert_eq!(p.read(s + 10 * P), Ok(0), "pages in between read as zeros");

    // No charge left: the growth fails with SIGSEGV and changes nothing.
    p.mem.commit_limit = p.mem.committed;
    let before = p.snapshot();
    assert_eq!(p.fault(s + 3 * P, Access::Write), Err(MAPERR));
    assert_eq!(p.snapshot(), before);

    // A gap whose stack was unmapped grows nothing.
    p.mem.commit_limit = u64::MAX;
    p.munmap(s + 4 * P, 12 * P).unwrap();
    assert_eq!(p.fault(s + 3 * P, Access::Write), Err(MAPERR));
    p.munmap(s, 16 * P).unwrap();
    assert_eq!((p.in_use(), p.mem.committed), (0, 0));
}

// ---- MAP_GUARD --------------------------------------------------------------

#[test]
fn guard_is_untouchable_and_only_fixed_mappings_replace_it() {
    let lo = USER_START;
    let mut p = Proc::with_top(lo + 16 * P);
    let g = p.mmap(0, 8 * P, PROT_NONE, mmap::MAP_GUARD).unwrap();
    assert_eq!(g, lo + 8 * P);
    assert_eq!(p.vmas()[0].backing, "guard");
    assert_eq!(p.mem.committed, 0);
    for page in page_addrs(g, 8) {
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(p.fault(page + 123, access), Err(MAPERR));
        }
    }
    assert!(p.space.pmap.ptes.is_empty());
    assert_eq!(p.mprotect(g, P, PROT_READ), Err(Errno::EACCES));
    assert_eq!(p.madvise(g, 8 * P, MADV_WILLNEED), Ok(()));
    assert!(
        p.space.pmap.ptes.is_empty(),
        "nothing is faulted into a guard"
    );
    assert_eq!(p.mincore(g, 8 * P), Ok(vec![0; 8]));

    // Anywhere placement goes around the guard, whatever the hint says.
    let a = p.mmap(g + 2 * P, 8 * P, PROT_RW, ANON).unwrap();
    assert_eq!(a, lo);
    assert_eq!(
        p.mmap(0, P, PROT_RW, ANON),
        Err(Errno::ENOMEM),
        "the guard is not free space"
    );
    assert_eq!(
        p.mmap(g, P, PROT_RW, ANON),
        Err(Errno::ENOMEM),
        "a hint into the guard is not honoured"
    );
    assert_eq!(
        p.mmap(g + P, P, PROT_RW, ANON | mmap::MAP_TRYFIXED),
        Err(Errno::ENOMEM)
    );
    p.munmap(a, 8 * P).unwrap();
    let b = p.mmap(g + 3 * P, 2 * P, PROT_RW, ANON).unwrap();
    assert!(b + 2 * P <= g, "{b:#x} lands below the guard at {g:#x}");

    // Fixed placement: NOREPLACE refuses, MAP_FIXED replaces.
    assert_eq!(
        p.mmap(g + P, P, PROT_RW, ANON | mmap::MAP_FIXED_NOREPLACE),
        Err(Errno::EEXIST)
    );
    assert_eq!(p.mmap(g + P, P, PROT_RW, ANON | mmap::MAP_FIXED), Ok(g + P));
    p.write(g + P, 4).unwrap();
    assert_eq!(p.read(g + P), Ok(4));
    assert_eq!(p.read(g), Err(MAPERR));
    assert_eq!(p.read(g + 2 * P), Err(MAPERR));
    assert_eq!(
        p.ranges(),
        [
            (b, b + 2 * P),
            (g, g + P),
            (g + P, g + 2 * P),
            (g + 2 * P, g + 8 * P)
        ]
    );
}

// ---- huge pages -------------------------------------------------------------

/// A 4 MiB private mapping with VmaFlags::HUGE at a 2 MiB boundary.
fn huge_mapping(p: &mut Proc) -> u64 {
    let a = p
        .mmap(0, 4 * MIB, PROT_RW, ANON | mmap::MAP_ALIGNED_SUPER)
        .unwrap();
    assert!(a.is_multiple_of(HUGE_PAGE));
    assert!(p.space.find(a).unwrap().flags.contains(VmaFlags::HUGE));
    a
}

#[test]
fn huge_vma_faults_in_2mib_pages() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    assert_eq!(
        p.fault(a + 0x1234, Access::Write),
        Ok(Resolution::HugeZeroFill)
    );
    let m = p.present(a).unwrap();
    assert!(m.huge && m.prot.write);
    assert_eq!(
        p.present(a + 300 * P),
        Some(m),
        "one PTE covers the whole 2 MiB"
    );
    assert_eq!(p.in_use(), 512, "one 2 MiB block: 512 frames");
    let resident = p.mincore(a, 4 * MIB).unwrap();
    assert_eq!(resident.iter().filter(|&&b| b == 1).count(), 512);
    assert!(resident[..512].iter().all(|&b| b == 1) && resident[512..].iter().all(|&b| b == 0));

    p.write(a + 5 * P + 1, 0x5a).unwrap();
    p.write(a + HUGE_PAGE - 1, 0x5b).unwrap();
    assert_eq!(p.read(a + 5 * P + 1), Ok(0x5a));
    assert_eq!(p.read(a + HUGE_PAGE - 1), Ok(0x5b));
    assert_eq!(p.read(a + 7 * P), Ok(0));
    // A read of the second half fills it with a huge page too.
    assert_eq!(
        p.fault(a + HUGE_PAGE + 7, Access::Read),
        Ok(Resolution::HugeZeroFill)
    );
    assert_eq!(p.mincore(a, 4 * MIB).unwrap(), vec![1; 1024]);
    assert_eq!(p.in_use(), 1024);
    assert_eq!(p.mem.committed, 1024);

    p.munmap(a, 4 * MIB).unwrap();
    assert_eq!((p.in_use(), p.mem.committed), (0, 0));
}

#[test]
fn huge_pages_fall_back_to_small_pages_where_no_2mib_fits() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    // Shrink the VMA to 2 MiB + 8 KiB: the second 2 MiB no longer fits.
    p.munmap(a + HUGE_PAGE + 2 * P, HUGE_PAGE - 2 * P).unwrap();
    assert_eq!(
        p.fault(a + HUGE_PAGE, Access::Write),
        Ok(Resolution::ZeroFill)
    );
    assert!(!p.present(a + HUGE_PAGE).unwrap().huge);
    // A small page inside an aligned 2 MiB prevents a huge page there.
    p.munmap(a, 4 * MIB).unwrap();
    let a = huge_mapping(&mut p);
    p.mmap(a + P, P, PROT_RW, ANON | mmap::MAP_FIXED).unwrap();
    p.write(a + P, 1).unwrap();
    assert_eq!(p.space.vma_count(), 3);
    assert_eq!(
        p.fault(a + HUGE_PAGE + 8, Access::Write),
        Ok(Resolution::HugeZeroFill)
    );
    assert_eq!(
        p.fault(a + 8 * P, Access::Write),
        Ok(Resolution::ZeroFill),
        "the first 2 MiB is split in VMAs"
    );
    p.space.clear(&mut p.mem);
    assert_eq!((p.in_use(), p.mem.committed), (0, 0));
}

#[test]

fn munmap_inside_a_huge_page_demotes_it_and_keeps_the_rest() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    for i in [0u64, 99, 100, 101, 511] {
        p.write(a + i * P + 7, (i % 250) as u8 + 1).unwrap();
    }
    assert!(p.present(a).unwrap().huge);
    p.munmap(a + 100 * P, P).unwrap();
    assert!(!p.present(a).unwrap().huge, "demoted to small pages");
    assert_eq!(p.ranges(), [(a, a + 100 * P), (a + 101 * P, a + 4 * MIB)]);
    assert_eq!(p.in_use(), 511, "511 small frames left, the block freed");
    assert_eq!(p.read(a + 100 * P + 7), Err(MAPERR));
    for i in [0u64, 99, 101, 511] {
        assert_eq!(
            p.read(a + i * P + 7),
            Ok((i % 250) as u8 + 1),
            "page {i} after the demotion"
        );
    }
    assert_eq!(p.read(a + 300 * P), Ok(0));
    p.munmap(a, 4 * MIB).unwrap();
    assert_eq!((p.in_use(), p.mem.committed), (0, 0));
}

#[test]

fn map_fixed_inside_a_huge_page_replaces_its_contents() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    p.write(a + 5 * P, 0xaa).unwrap();
    assert!(p.present(a).unwrap().huge);
    // mmap(a + 5 pages, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
    // without the invariant check, to see what the user sees.
    let req = mmap::validate_mmap(a + 5 * P, P, PROT_READ, ANON | mmap::MAP_FIXED, -1, 0).unwrap();
    let template = Vma::anonymous(0, 0, req.prot);
    assert_eq!(
        p.space.map(
            &mut p.mem,
            &req.placement,
            req.len,
            req.align,
            false,
            template
        ),
        Ok(a + 5 * P)
    );
    // The new mapping is fresh read-only memory.
    assert_eq!(
        p.read(a + 5 * P),
        Ok(0),
        "the old data shows through the new mapping"
    );
    assert_eq!(
        p.write(a + 5 * P, 1),
        Err(ACCERR),
        "the new read-only mapping is writable"
    );
    let m = p.present(a + 5 * P);
    assert!(
        m.is_none_or(|m| !m.huge && !m.prot.write),
        "a huge writable PTE still covers the new read-only page: {m:?}"
    );
    p.check();
}

#[test]

fn failed_mprotect_on_a_huge_page_leaves_the_charge_alone() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    p.write(a, 1).unwrap();
    // No page table to split the 2 MiB page into 512 small ones (a split
    // copies nothing, so it needs no frames but the table's).
    let before = p.snapshot();
    p.space.pmap.fail_enter_after = Some(0);
    assert_eq!(
        p.space
            .mprotect(&mut p.mem, a + 4 * P, a + 5 * P, Prot::READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(p.snapshot(), before, "a failed mprotect changes nothing");
    assert_eq!(p.mem.committed, p.space.charged_pages());
}

#[test]

fn brk_shrink_inside_a_huge_heap_page_unmaps_the_top() {
    const MADV_HUGEPAGE: u64 = 14;
    let mut p = Proc::new();
    p.space.set_brk_start(0x40_0000);
    assert_eq!(p.brk(0x80_0000), 0x80_0000);
    p.madvise(0x40_0000, 4 * MIB, MADV_HUGEPAGE).unwrap();
    p.write(0x60_0000 + 5 * P, 1).unwrap();
    p.write(0x70_0000, 2).unwrap();
    assert!(p.present(0x60_0000).unwrap().huge);
    // Shrink to the middle of the 2 MiB page at 6 MiB, without the invariant check.
    assert_eq!(p.space.brk(&mut p.mem, 0x70_0000), 0x70_0000);
    assert_eq!(
        p.read(0x70_0000),
        Err(MAPERR),
        "memory above the break is still mapped"
    );
    assert_eq!(p.read(0x60_0000 + 5 * P), Ok(1));
    p.check();
}

// ---- user_frame -----------------------------------------------------------------

#[test]
fn user_frame_faults_as_a_user_access_would() {
    let mut p = Proc::new();
    let a = p.mmap(0, 2 * P, PROT_RW, ANON).unwrap();
    let r = p.mmap(0, P, PROT_READ, ANON).unwrap();
    let n = p.mmap(0, P, PROT_NONE, ANON).unwrap();
    let g = p.mmap(0, P, PROT_NONE, mmap::MAP_GUARD).unwrap();
    let zero = p.mem.zero_frame();

    // Reading untouched memory gives the zero frame; writing gives a frame of its own.
    assert_eq!(p.space.user_frame(&mut p.mem, a + 5, false), Ok(zero));
    let frame = p.space.user_frame(&mut p.mem, a + 5, true).unwrap();
    assert_ne!(frame, zero);
    p.mem.bytes_mut(frame)[5] = 0x42;
    assert_eq!(
        p.read(a + 5),
        Ok(0x42),
        "the kernel's store is what the user reads"
    );
    assert_eq!(p.space.user_frame(&mut p.mem, a + 5, false), Ok(frame));
    p.write(a + P + 9, 0x43).unwrap();
    let second = p.space.user_frame(&mut p.mem, a + P, false).unwrap();
    assert_eq!(p.mem.bytes(second)[9], 0x43);
    p.check();

    // Whatever would be SIGSEGV for the user is EFAULT for the kernel.
    assert_eq!(p.space.user_frame(&mut p.mem, r, true), Err(Errno::EFAULT));
    assert_eq!(p.space.user_frame(&mut p.mem, r, false), Ok(zero));
    assert_eq!(p.space.user_frame(&mut p.mem, n, false), Err(Errno::EFAULT));
    assert_eq!(p.space.user_frame(&mut p.mem, g, false), Err(Errno::EFAULT));
    assert_eq!(
        p.space.user_frame(&mut p.mem, a + 2 * P, false),
        Err(Errno::EFAULT)
    );
    assert_eq!(p.space.user_frame(&mut p.mem, 0, false), Err(Errno::EFAULT));
    p.check();
    assert_eq!(p.in_use(), 2);
}

#[test]

fn user_frame_inside_a_huge_page_reaches_that_page() {
    let mut p = Proc::new();
    let a = huge_mapping(&mut p);
    p.write(a + 5 * P + 3, 0x99).unwrap();
    let frame = p
        .space
        .user_frame(&mut p.mem, a + 5 * P + 3, false)
        .unwrap();
    assert_eq!(
        p.mem.bytes(frame)[3],
        0x99,
        "the 4 KiB frame behind a + 5 pages"
    );
}

// ---- madvise ----------------------------------------------------------------

#[test]
fn madvise_dontneed_zeroes_private_memory_and_frees_it() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    for (i, page) in page_addrs(a, 4).enumerate() {
        p.write(page + 42, 1 + i as u8).unwrap();
    }
    assert_eq!(p.in_use(), 4);
    p.madvise(a + P, 2 * P, MADV_DONTNEED).unwrap();
    assert_eq!(p.in_use(), 2, "the pages' frames are freed");
    assert_eq!(p.mem.committed, 4, "the range stays mapped and charged");
    assert_eq!(p.mincore(a, 4 * P), Ok(vec![1, 0, 0, 1]));
    assert_eq!(p.read(a + P + 42), Ok(0));
    assert_eq!(p.read(a + 2 * P + 42), Ok(0));
    assert_eq!(p.read(a + 42), Ok(1));
    assert_eq!(p.read(a + 3 * P + 42), Ok(4));
    assert_eq!(p.in_use(), 2, "reads map the zero frame");

    assert_eq!(
        p.madvise(a, 8 * P, MADV_DONTNEED),
        Err(Errno::ENOMEM),
        "holes"
    );
    assert_eq!(
        p.madvise(a, 4 * P, MADV_REMOVE),
        Err(Errno::EINVAL),
        "only shared memory has holes to punch"
    );
    p.mlock(a, P, true).unwrap();
    assert_eq!(
        p.madvise(a, 4 * P, MADV_DONTNEED),
        Err(Errno::EINVAL),
        "locked pages"
    );
    assert_eq!(p.read(a + 42), Ok(1));
}

#[test]
fn madvise_dontneed_keeps_shared_memory_and_remove_punches_it() {
    let mut p = Proc::new();
    let a = p.mmap(0, 2 * P, PROT_RW, SHARED_ANON).unwrap();
    p.write(a + 1, 0x77).unwrap();
    p.write(a + P + 1, 0x78).unwrap();
    p.madvise(a, 2 * P, MADV_DONTNEED).unwrap();
    assert!(
        p.present(a).is_none() && p.present(a + P).is_none(),
        "the PTEs are gone"
    );
    assert_eq!(p.in_use(), 2, "the object keeps its pages");
    assert_eq!(
        p.mincore(a, 2 * P),
        Ok(vec![1, 1]),
        "object pages are resident"
    );
    assert_eq!(p.read(a + 1), Ok(0x77));
    assert_eq!(p.read(a + P + 1), Ok(0x78));

    p.madvise(a + P, P, MADV_REMOVE).unwrap();
    assert_eq!(p.in_use(), 1, "the punched page is freed");
    assert_eq!(p.mincore(a, 2 * P), Ok(vec![1, 0]));
    assert_eq!(p.read(a + P + 1), Ok(0));
    assert_eq!(p.read(a + 1), Ok(0x77));
    p.munmap(a, 2 * P).unwrap();
    assert_eq!(p.in_use(), 0);
}

#[test]
fn madvise_willneed_populates() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    p.madvise(a, 4 * P, MADV_WILLNEED).unwrap();
    assert_eq!(p.mincore(a, 4 * P), Ok(vec![1; 4]));
}

// ---- mlock, msync, minherit, MAP_POPULATE -----------------------------------

#[test]
fn mlock_and_map_populate_fault_everything_in() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON).unwrap();
    p.read(a).unwrap(); // the zero frame, to be replaced by a frame of its own
    assert_eq!(p.mincore(a, 4 * P), Ok(vec![1, 0, 0, 0]));
    p.mlock(a, 4 * P, true).unwrap();
    assert!(p.space.find(a).unwrap().flags.contains(VmaFlags::LOCKED));
    assert_eq!(p.mincore(a, 4 * P), Ok(vec![1; 4]));
    assert_eq!(p.in_use(), 4);
    for page in page_addrs(a, 4) {
        let m = p.present(page).unwrap();
        assert!(
            m.prot.write && m.pfn != p.mem.zero_frame(),
            "locked writable pages need no later fault: {m:?}"
        );
    }
    p.mlock(a, 4 * P, false).unwrap();
    assert!(!p.space.find(a).unwrap().flags.contains(VmaFlags::LOCKED));
    assert_eq!(p.mlock(a, 8 * P, true), Err(Errno::ENOMEM), "hole");

    // Read-only memory is populated with the zero frame.
    let r = p
        .mmap(0, 3 * P, PROT_READ, ANON | mmap::MAP_POPULATE)
        .unwrap();
    assert_eq!(p.mincore(r, 3 * P), Ok(vec![1; 3]));
    assert_eq!(p.in_use(), 4);
    // MAP_LOCKED and MAP_POPULATE on writable memory allocate.
    let l = p.mmap(0, 3 * P, PROT_RW, ANON | mmap::MAP_LOCKED).unwrap();
    assert!(p.space.find(l).unwrap().flags.contains(VmaFlags::LOCKED));
    let q = p
        .mmap(0, 2 * P, PROT_RW, ANON | mmap::MAP_POPULATE)
        .unwrap();
    assert_eq!(p.mincore(l, 3 * P), Ok(vec![1; 3]));
    assert_eq!(p.mincore(q, 2 * P), Ok(vec![1; 2]));
    assert_eq!(p.in_use(), 9);
    // PROT_NONE memory is not populated.
    let n = p
        .mmap(0, 2 * P, PROT_NONE, ANON | mmap::MAP_POPULATE)
        .unwrap();
    assert_eq!(p.mincore(n, 2 * P), Ok(vec![0; 2]));

    // MAP_LOCKED that cannot be populated fails and leaves nothing behind.
    p.mem.limit = p.in_use() + 2;
    let before = p.snapshot();
    assert_eq!(
        p.mmap(0, 4 * P, PROT_RW, ANON | mmap::MAP_LOCKED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(p.snapshot(), before);
    // MAP_POPULATE is best effort.
    let best = p
        .mmap(0, 4 * P, PROT_RW, ANON | mmap::MAP_POPULATE)
        .unwrap();
    assert_eq!(p.mincore(best, 4 * P), Ok(vec![1, 1, 0, 0]));
}

#[test]

fn mlock_populates_every_page_of_a_small_huge_vma() {
    let mut p = Proc::new();
    // MAP_ALIGNED_SUPER under 2 MiB: page alignment, but the HUGE flag.
    let a = p
        .mmap(
            0,
            16 * P,
            PROT_RW,
            ANON | mmap::MAP_ALIGNED_SUPER | mmap::MAP_LOCKED,
        )
        .unwrap();
    assert!(
        p.space
            .find(a)
            .unwrap()
            .flags
            .contains(VmaFlags::HUGE | VmaFlags::LOCKED)
    );
    assert_eq!(
        p.mincore(a, 16 * P),
        Ok(vec![1; 16]),
        "MAP_LOCKED promises every page resident"
    );
}

#[test]
fn msync_and_minherit_refuse_holes() {
    let mut p = Proc::new();
    let x = 0x3000_0000;
    p.mmap(x, 2 * P, PROT_RW, ANON | mmap::MAP_FIXED).unwrap();
    p.mmap(x + 3 * P, 2 * P, PROT_RW, ANON | mmap::MAP_FIXED)
        .unwrap();
    assert_eq!(p.msync(x, 2 * P, mmap::MS_SYNC), Ok(()));
    assert_eq!(p.msync(x, 5 * P, mmap::MS_SYNC), Err(Errno::ENOMEM));
    assert_eq!(p.msync(x + 5 * P, P, mmap::MS_ASYNC), Err(Errno::ENOMEM));
    assert_eq!(p.msync(x, 0, mmap::MS_SYNC), Ok(()));
    p.mlock(x, P, true).unwrap();
    assert_eq!(p.msync(x, 2 * P, mmap::MS_INVALIDATE), Err(Errno::EBUSY));
    assert_eq!(p.msync(x + 3 * P, 2 * P, mmap::MS_INVALIDATE), Ok(()));

    let before = p.snapshot();
    assert_eq!(p.minherit(x, 5 * P, 2), Err(Errno::EINVAL));
    assert_eq!(p.minherit(x + 2 * P, P, 2), Err(Errno::EINVAL));
    assert_eq!(p.snapshot(), before);
    p.minherit(x + 3 * P, P, 2).unwrap();
    assert_eq!(p.space.find(x + 3 * P).unwrap().inherit, Inherit::None);
    assert_eq!(p.space.find(x + 4 * P).unwrap().inherit, Inherit::Copy);
    assert_eq!(p.space.vma_count(), 4);
    p.minherit(x + 3 * P, P, 1).unwrap();
    assert_eq!(p.space.vma_count(), 3, "merged back");
    assert_eq!(p.mincore(x, 5 * P), Err(Errno::ENOMEM));
}

// ---- brk --------------------------------------------------------------------

#[test]
fn brk_grows_shrinks_and_stops_at_mappings() {
    let mut p = Proc::new();
    let start = 0x40_0800;
    p.space.set_brk_start(start);
    assert_eq!(p.brk(0), start, "brk(0) returns the current break");
    assert_eq!(p.space.vma_count(), 0);

    assert_eq!(p.brk(start + 0x3000), start + 0x3000);
    assert_eq!(p.ranges(), [(0x40_1000, 0x40_4000)]);
    let heap = p.space.find(0x40_1000).unwrap();
    assert!(heap.flags.contains(VmaFlags::HEAP));
    assert_eq!(heap.label(), "[heap]");
    assert_eq!(p.mem.committed, 3);
    p.write(0x40_3fff, 3).unwrap();
    p.write(0x40_1000, 1).unwrap();
    assert_eq!(p.brk(0), start + 0x3000);

    // Growing again extends the one heap VMA.
    assert_eq!(p.brk(start + 0x8000), start + 0x8000);
    assert_eq!(p.ranges(), [(0x40_1000, 0x40_9000)]);
    assert_eq!(p.read(0x40_3fff), Ok(3));
    p.write(0x40_8000, 8).unwrap();
    // A move within the same page changes no mapping.
    assert_eq!(p.brk(start + 0x8100), start + 0x8100);
    assert_eq!(p.ranges(), [(0x40_1000, 0x40_9000)]);

    // Shrinking unmaps and frees.
    assert_eq!(p.brk(start + 0x2000), start + 0x2000);
    assert_eq!(p.ranges(), [(0x40_1000, 0x40_3000)]);
    assert_eq!(p.read(0x40_8000), Err(MAPERR));
    assert_eq!(p.read(0x40_3fff), Err(MAPERR));
    assert_eq!(p.read(0x40_1000), Ok(1));
    assert_eq!(p.in_use(), 1);
    assert_eq!(p.mem.committed, 2);

    // Growing back gives fresh zeros.
    assert_eq!(p.brk(start + 0x8000), start + 0x8000);
    assert_eq!(p.read(0x40_3fff), Ok(0));

    // Refused: below the start, beyond the user half, over a mapping.
    assert_eq!(p.brk(start - 1), start + 0x8000);
    assert_eq!(p.brk(u64::MAX), start + 0x8000);
    p.mmap(0x50_0000, P, PROT_READ, ANON | mmap::MAP_FIXED)
        .unwrap();
    let before = p.snapshot();
    assert_eq!(
        p.brk(0x50_0800),
        start + 0x8000,
        "the break cannot cross a mapping"
    );
    assert_eq!(p.brk(0x60_0000), start + 0x8000);
    assert_eq!(p.snapshot(), before);
    assert_eq!(p.brk(0x50_0000), 0x50_0000, "up to the mapping is fine");
    assert_eq!(p.brk(0), 0x50_0000);
    // Past the commit limit the break stays.
    assert_eq!(p.brk(0x4f_0000), 0x4f_0000);
    p.mem.commit_limit = p.mem.committed;
    let before = p.snapshot();
    assert_eq!(p.brk(0x50_0000), 0x4f_0000, "growing needs a charge");
    assert_eq!(p.snapshot(), before);
    assert_eq!(p.brk(0x4e_0000), 0x4e_0000, "shrinking does not");
    p.mem.commit_limit = u64::MAX;
    // Back to the start: no heap left.
    assert_eq!(p.brk(start), start);
    assert_eq!(p.ranges(), [(0x50_0000, 0x50_1000)]);
    assert_eq!(p.mem.committed, 0);
}

// ---- placement ----------------------------------------------------------------

#[test]
fn placement_is_top_down_and_honours_free_hints_and_alignment() {
    let mut p = Proc::new();
    let a = p.mmap(0, P, PROT_RW, ANON).unwrap();
    assert_eq!(a, TOP - P, "the first mapping goes right below mmap_top");
    let b = p.mmap(0, 2 * P, PROT_READ, ANON).unwrap();
    assert_eq!(b, a - 2 * P, "the second lies right below the first");
    let c = p.mmap(0, P, PROT_RW, ANON).unwrap();
    assert_eq!(c, b - P);

    // A free hint is honoured, even far from the others; a taken one is not.
    let hint = 0x1000_0000;
    assert_eq!(p.mmap(hint, 3 * P, PROT_RW, ANON), Ok(hint));
    let d = p.mmap(hint + P, P, PROT_RW, ANON).unwrap();
    assert_ne!(d, hint + P);
    assert!(
        d + P <= hint || d >= hint + 3 * P,
        "{d:#x} overlaps the hinted mapping"
    );
    assert_eq!(d, c - P, "an unusable hint falls back to top-down");
    // An unaligned hint is rounded down to the page.
    assert_eq!(p.mmap(0x2000_0123, P, PROT_RW, ANON), Ok(0x2000_0000));
    // A hint below USER_START is ignored.
    assert!(p.mmap(0x1000, P, PROT_RW, ANON).unwrap() >= USER_START);
    // TryFixed: the address when free, elsewhere otherwise, never a replacement.
    assert_eq!(
        p.mmap(0x3000_0000, P, PROT_RW, ANON | mmap::MAP_TRYFIXED),
        Ok(0x3000_0000)
    );
    p.write(0x3000_0000, 1).unwrap();
    let t = p
        .mmap(0x3000_0000, P, PROT_RW, ANON | mmap::MAP_TRYFIXED)
        .unwrap();
    assert_ne!(t, 0x3000_0000);
    assert_eq!(p.read(0x3000_0000), Ok(1));

    // MAP_ALIGNED(21).
    let e = p
        .mmap(0, 3 * P, PROT_RW, ANON | mmap::map_aligned(21))
        .unwrap();
    assert!(e.is_multiple_of(2 * MIB), "{e:#x}");
    assert!(e + 3 * P <= t.min(c), "below what is there");
    let f = p
        .mmap(0x4000_1000, P, PROT_RW, ANON | mmap::map_aligned(21))
        .unwrap();
    assert_eq!(f, 0x4000_0000, "a hint is rounded down to the alignment");
    let g = p
        .mmap(0, 5 * MIB, PROT_RW, ANON | mmap::map_aligned(30))
        .unwrap();
    assert!(g.is_multiple_of(GIB), "{g:#x}");
    p.check();
}

#[test]
fn map_32bit_places_within_the_second_gigabyte() {
    let mut p = Proc::new();
    let a = p.mmap(0, 4 * P, PROT_RW, ANON | mmap::MAP_32BIT).unwrap();
    assert!(a >= GIB && a + 4 * P <= 2 * GIB, "{a:#x}");
    assert_eq!(a, 2 * GIB - 4 * P, "top-down in [1 GiB, 2 GiB)");
    let b = p.mmap(0, 4 * P, PROT_RW, ANON | mmap::MAP_32BIT).unwrap();
    assert_eq!(b, a - 4 * P);
    // A free hint in the window is honoured.
    assert_eq!(
        p.mmap(0x5000_0000, P, PROT_RW, ANON | mmap::MAP_32BIT),
        Ok(0x5000_0000)
    );
    // The window holds 1 GiB and no more.
    assert_eq!(
        p.mmap(0, GIB, PROT_RW, ANON | mmap::MAP_32BIT),
        Err(Errno::ENOMEM)
    );
    let big = p
        .mmap(
            0,
            0x2000_0000,
            PROT_RW,
            ANON | mmap::MAP_32BIT | mmap::MAP_NORESERVE,
        )
        .unwrap();
    assert!(big >= GIB && big + 0x2000_0000 <= 2 * GIB);
}

#[test]

fn map_32bit_ignores_hints_above_2g() {
    let mut p = Proc::new();
    let a = p
        .mmap(0x1_0000_0000, P, PROT_RW, ANON | mmap::MAP_32BIT)
        .unwrap();
    assert!(a + P <= 2 * GIB, "MAP_32BIT mapping placed at {a:#x}");
}

#[test]
fn no_room_is_enomem_and_changes_nothing() {
    let mut p = Proc::with_top(USER_START + 8 * P);
    assert_eq!(p.mmap(0, 4 * P, PROT_RW, ANON), Ok(USER_START + 4 * P));
    assert_eq!(p.mmap(0, 2 * P, PROT_RW, ANON), Ok(USER_START + 2 * P));
    let before = p.snapshot();
    assert_eq!(p.mmap(0, 3 * P, PROT_RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(p.snapshot(), before);
    assert_eq!(p.mmap(0, 2 * P, PROT_RW, ANON), Ok(USER_START));
    assert_eq!(p.mmap(0, P, PROT_RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(
        p.mmap(0, P, PROT_RW, ANON | mmap::MAP_STACK),
        Err(Errno::ENOMEM)
    );
    // Fixed mappings above mmap_top still work.
    assert_eq!(
        p.mmap(USER_START + 64 * P, P, PROT_RW, ANON | mmap::MAP_FIXED),
        Ok(USER_START + 64 * P)
    );
    // An alignment nothing below mmap_top satisfies.
    let mut q = Proc::with_top(USER_START + 0x10_0000);
    assert_eq!(
        q.mmap(0, P, PROT_RW, ANON | mmap::map_aligned(21)),
        Err(Errno::ENOMEM)
    );
}

// ---- clear ----------------------------------------------------------------------

#[test]
fn clear_gives_everything_back() {
    let mut p = Proc::new();
    let start_frames = p.in_use();
    let a = p.mmap(0, 8 * P, PROT_RW, ANON).unwrap();
    let s = p.mmap(0, 4 * P, PROT_RW, SHARED_ANON).unwrap();
    let h = huge_mapping(&mut p);
    let st = p.mmap(0, 16 * P, PROT_RW, mmap::MAP_STACK).unwrap();
    let g = p.mmap(0, 4 * P, PROT_NONE, mmap::MAP_GUARD).unwrap();
    let r = p
        .mmap(0, 4 * P, PROT_READ, ANON | mmap::MAP_POPULATE)
        .unwrap();
    p.space.set_brk_start(0x60_0000);
    p.brk(0x61_0000);
    for page in
        page_addrs(a, 8)
            .chain(page_addrs(s, 4))
            .chain([h, h + HUGE_PAGE, st + 8 * P, 0x60_8000])
    {
        p.write(page, 1).unwrap();
    }
    p.mprotect(a, 2 * P, PROT_READ).unwrap();
    assert!(p.in_use() > start_frames);
    assert!(p.mem.committed > 0);
    assert!(g > 0 && r > 0);

    p.space.clear(&mut p.mem);
    p.check();
    assert_eq!(p.in_use(), start_frames);
    assert_eq!(p.mem.committed, 0);
    assert_eq!(p.space.charged_pages(), 0);
    assert_eq!(p.space.vma_count(), 0);
    assert!(p.space.pmap.ptes.is_empty());
    assert_eq!(p.mem.refcount(p.mem.zero_frame()), 1);
    assert_eq!(p.read(a), Err(MAPERR));
}

// ---- the randomized model test -----------------------------------------------

/// Pages of the window the model test works in.
const WINDOW: u64 = 24;
const BASE: u64 = 0x1000_0000;

#[derive(Clone, Debug)]
enum Op {
    /// mmap(MAP_FIXED) of private anonymous memory.
    Map {
        page: u64,
        npages: u64,
        prot: u64,
        noreserve: bool,
        populate: bool,
    },
    Munmap {
        page: u64,
        npages: u64,
    },
    Mprotect {
        page: u64,
        npages: u64,
        prot: u64,
    },
    /// A user access to one byte of a page.
    Touch {
        page: u64,
        access: u8,
        value: u8,
    },
    DontNeed {
        page: u64,
        npages: u64,
    },
}

/// What the model knows of a page: mapped with `prot`, holding `value`
/// at its probe offset (everything else is zero).
#[derive(Clone, Copy, Debug, PartialEq)]
struct PageModel {
    prot: Prot,
    noreserve: bool,
    value: u8,
}

fn span() -> impl Strategy<Value = (u64, u64)> {
    (0..WINDOW, prop_oneof![3 => 1..4u64, 1 => 1..=WINDOW])
        .prop_map(|(page, n)| (page, n.min(WINDOW - page)))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (span(), 0..8u64, any::<bool>(), prop::bool::weighted(0.2)).prop_map(|((page, npages), prot, noreserve, populate)| Op::Map {
            page,
            npages,
            prot,
            noreserve,
            populate
        }),
        1 => span().prop_map(|(page, npages)| Op::Munmap { page, npages }),
        2 => (span(), 0..8u64).prop_map(|((page, npages), prot)| Op::Mprotect { page, npages, prot }),
        5 => (0..WINDOW + 1, 0..3u8, 1..=255u8).prop_map(|(page, access, value)| Op::Touch { page, access, value }),
        1 => span().prop_map(|(page, npages)| Op::DontNeed { page, npages }),
    ]
}

fn probe(page: u64) -> u64 {
    BASE + page * P + (page * 131) % P
}

fn model_check(p: &Proc, model: &[Option<PageModel>]) -> Result<(), TestCaseError> {
    p.check();
    // The VMAs say what the model says, page by page.
    for (i, m) in model.iter().enumerate() {
        let addr = BASE + i as u64 * P;
        let vma = p.space.find(addr);
        prop_assert_eq!(vma.map(|v| v.prot), m.map(|m| m.prot), "prot of page {}", i);
        if let (Some(v), Some(m)) = (vma, m) {
            prop_assert_eq!(
                v.flags.contains(VmaFlags::NORESERVE),
                m.noreserve,
                "NORESERVE of page {}",
                i
            );
        }
    }
    prop_assert!(
        p.space
            .vmas()
            .all(|v| v.start >= BASE && v.end <= BASE + WINDOW * P),
        "a VMA outside the window"
    );
    let charge = model
        .iter()
        .flatten()
        .filter(|m| m.prot.contains(Prot::WRITE) && !m.noreserve)
        .count() as u64;
    prop_assert_eq!(p.space.charged_pages(), charge);
    prop_assert_eq!(p.mem.committed, charge);
    // Every frame in use is mapped by exactly one PTE (private memory only).
    let zero = p.mem.zero_frame();
    let own = p.space.pmap.ptes.values().filter(|m| m.pfn != zero).count();
    prop_assert_eq!(p.mem.in_use(), own);
    for (&va, m) in &p.space.pmap.ptes {
        prop_assert!(!m.huge);
        prop_assert!((BASE..BASE + WINDOW * P).contains(&va));
        prop_assert!(
            model[((va - BASE) / P) as usize].is_some(),
            "PTE at {:#x} on an unmapped page",
            va
        );
    }
    Ok(())
}

fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut p = Proc::new();
    let start_frames = p.in_use();
    let mut model: Vec<Option<PageModel>> = vec![None; WINDOW as usize];
    for op in ops {
        match *op {
            Op::Map {
                page,
                npages,
                prot,
                noreserve,
                populate,
            } => {
                let mut flags = ANON | mmap::MAP_FIXED;
                if noreserve {
                    flags |= mmap::MAP_NORESERVE;
                }
                if populate {
                    flags |= mmap::MAP_POPULATE;
                }
                let addr = BASE + page * P;
                prop_assert_eq!(p.mmap(addr, npages * P, prot, flags), Ok(addr));
                let prot = Prot::from_user(prot).unwrap();
                for m in &mut model[page as usize..(page + npages) as usize] {
                    *m = Some(PageModel {
                        prot,
                        noreserve,
                        value: 0,
                    });
                }
            }
            Op::Munmap { page, npages } => {
                prop_assert_eq!(p.munmap(BASE + page * P, npages * P), Ok(()));
                for m in &mut model[page as usize..(page + npages) as usize] {
                    *m = None;
                }
            }
            Op::Mprotect { page, npages, prot } => {
                let range = page as usize..(page + npages) as usize;
                let before = p.snapshot();
                let r = p.mprotect(BASE + page * P, npages * P, prot);
                if model[range.clone()].iter().all(Option::is_some) {
                    prop_assert_eq!(r, Ok(()));
                    let prot = Prot::from_user(prot).unwrap();
                    for m in model[range].iter_mut().flatten() {
                        m.prot = prot;
                    }
                } else {
                    prop_assert_eq!(r, Err(Errno::ENOMEM));
                    prop_assert_eq!(p.snapshot(), before);
                }
            }
            Op::DontNeed { page, npages } => {
                let range = page as usize..(page + npages) as usize;
                let r = p.madvise(BASE + page * P, npages * P, MADV_DONTNEED);
                if model[range.clone()].iter().all(Option::is_some) {
                    prop_assert_eq!(r, Ok(()));
                    for m in model[range].iter_mut().flatten() {
                        m.value = 0;
                    }
                    for i in page..page + npages {
                        prop_assert!(p.present(BASE + i * P).is_none());
                    }
                } else {
                    prop_assert_eq!(r, Err(Errno::ENOMEM));
                }
            }
            Op::Touch {
                page,
                access,
                value,
            } => {
                let addr = probe(page);
                let access = [Access::Read, Access::Write, Access::Execute][access as usize];
                let slot = model.get(page as usize).copied().flatten();
                let want: Result<(), FaultError> = match slot {
                    None => Err(MAPERR),
                    Some(m) if !vm::vm_fault::allows(m.prot, access) => Err(ACCERR),
                    Some(_) => Ok(()),
                };
                match access {
                    Access::Write => {
                        prop_assert_eq!(p.write(addr, value), want, "write at page {}", page);
                        if want.is_ok() {
                            model[page as usize].as_mut().unwrap().value = value;
                        }
                    }
                    _ => {
                        let got = p.access(addr, access).map(|(pfn, at)| p.mem.bytes(pfn)[at]);
                        prop_assert_eq!(
                            got,
                            want.map(|()| slot.unwrap().value),
                            "{:?} at page {}",
                            access,
                            page
                        );
                    }
                }
            }
        }
        model_check(&p, &model)?;
        // Every readable page reads back as the model says, without changing anything visible.
        for (i, m) in model.iter().enumerate() {
            if let Some(m) = m
                && let Some(pte) = p.present(BASE + i as u64 * P)
                && pte.prot.user
            {
                let at = (probe(i as u64) & (P - 1)) as usize;
                prop_assert_eq!(p.mem.bytes(pte.pfn)[at], m.value, "contents of page {}", i);
            }
        }
    }
    // Everything read through faults at the end, then torn down.
    for (i, m) in model.clone().iter().enumerate() {
        if let Some(m) = m
            && !m.prot.is_empty()
        {
            prop_assert_eq!(
                p.read(probe(i as u64)),
                Ok(m.value),
                "final read of page {}",
                i
            );
        }
    }
    p.space.clear(&mut p.mem);
    p.check();
    prop_assert_eq!(p.mem.in_use(), start_frames);
    prop_assert_eq!(p.mem.committed, 0);
    prop_assert!(p.space.pmap.ptes.is_empty());
    prop_assert_eq!(p.space.vma_count(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_map_munmap_mprotect_touch_sequences(ops in prop::collection::vec(op(), 1..60)) {
        run_ops(&ops)?;
    }
}
