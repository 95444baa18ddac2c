//! fork on the fake page tables: two (or more) address spaces over one
//! fake memory, accessed the way the CPU and the fault handler do. Every
//! test checks what the processes would see (bytes, faults), the frames'
//! reference counts, and that every frame and every page of commit charge
//! comes back once the spaces are torn down.

use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap;
use vm::pmap::{PhysMem, Pmap};
use vm::space::AddressSpace;
use vm::vm_fault::{Access, FaultError, Resolution, SegvCode};
use vm::vma::{Backing, HUGE_PAGE, Inherit, PAGE, Vma};

type Space = AddressSpace<FakePmap>;

const P: u64 = PAGE;
const TOP: u64 = 0x7f00_0000_0000;
const RW: u64 = 3;
const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const SHARED_ANON: u64 = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
const INHERIT_SHARE: u64 = 0;
const INHERIT_COPY: u64 = 1;
const INHERIT_NONE: u64 = 2;
const INHERIT_ZERO: u64 = 3;
const MADV_DONTFORK: u64 = 10;
const MADV_DOFORK: u64 = 11;
const MADV_WIPEONFORK: u64 = 18;
const MADV_KEEPONFORK: u64 = 19;

fn new_space() -> Space {
    AddressSpace::new(FakePmap::default(), TOP)
}

fn mmap(space: &mut Space, mem: &mut FakeMemory, len: u64, prot: u64, flags: u64) -> u64 {
    let req = mmap::validate_mmap(0, len, prot, flags, -1, 0).expect("valid mmap");
    let vma = Vma::for_request(&req).expect("anonymous");
    space.mmap(mem, &req, vma).expect("mmap")
}

fn minherit(space: &mut Space, addr: u64, len: u64, inherit: u64) {
    let (span, inherit) = mmap::validate_minherit(addr, len, inherit).expect("valid");
    space
        .minherit(span.start, span.end, inherit)
        .expect("minherit");
}

fn madvise(space: &mut Space, mem: &mut FakeMemory, addr: u64, len: u64, advice: u64) {
    let (span, advice) = mmap::validate_madvise(addr, len, advice).expect("valid");
    space
        .madvise(mem, span.start, span.end, advice)
        .expect("madvise");
}

/// The frame and offset `addr` reaches with `access`, faulting as the CPU would.
fn access(
    space: &mut Space,
    mem: &mut FakeMemory,
    addr: u64,
    access: Access,
) -> Result<(Pfn, usize), FaultError> {
    for _ in 0..4 {
        if let Some(m) = space.pmap.query(addr) {
            let allowed = m.prot.user && (access != Access::Write || m.prot.write);
            if allowed {
                let size = if m.huge { HUGE_PAGE } else { P };
                return Ok((m.pfn, (addr & (size - 1)) as usize));
            }
        }
        space.fault(mem, addr, access)?;
        space.verify();
    }
    panic!("access to {addr:#x} still faults after four faults");
}

fn read(space: &mut Space, mem: &mut FakeMemory, addr: u64) -> Result<u8, FaultError> {
    let (pfn, at) = access(space, mem, addr, Access::Read)?;
    Ok(mem.bytes(pfn)[at])
}

fn write(space: &mut Space, mem: &mut FakeMemory, addr: u64, value: u8) {
    let (pfn, at) = access(space, mem, addr, Access::Write).expect("write faults");
    mem.bytes_mut(pfn)[at] = value;
}

fn fork(parent: &mut Space, mem: &mut FakeMemory) -> Space {
    let child = parent.fork(mem, FakePmap::default()).expect("fork");
    child.verify();
    parent.verify();
    child
}

/// Tear down every space and check that nothing is left: no frame in use
/// but the zero frame, no commit charge.
fn teardown(mem: &mut FakeMemory, spaces: &mut [&mut Space]) {
    for space in spaces.iter_mut() {
        space.clear(mem);
    }
    assert_eq!(
        mem.in_use(),
        0,
        "frames still in use after every space is gone"
    );
    assert_eq!(
        mem.committed, 0,
        "commit charge left after every space is gone"
    );
    assert_eq!(
        mem.refcount(mem.zero_frame()),
        1,
        "zero frame references leaked"
    );
}

#[test]
fn private_memory_is_copied_on_write_both_ways() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, 4 * P, RW, ANON);
    for i in 0..4 {
        write(&mut parent, &mut mem, a + i * P, 10 + i as u8);
    }
    let frames = mem.in_use();
    let mut child = fork(&mut parent, &mut mem);
    // Nothing copied yet: both map the same frames, read-only, counted twice.
    assert_eq!(mem.in_use(), frames);
    for i in 0..4 {
        let (p, c) = (
            parent.pmap.query(a + i * P).unwrap(),
            child.pmap.query(a + i * P).unwrap(),
        );
        assert_eq!(p.pfn, c.pfn);
        assert!(!p.prot.write && !c.prot.write);
        assert_eq!(mem.refcount(p.pfn), 2);
        assert_eq!(read(&mut child, &mut mem, a + i * P), Ok(10 + i as u8));
    }
    // The child's store stays in the child...
    write(&mut child, &mut mem, a, 99);
    assert_eq!(read(&mut parent, &mut mem, a), Ok(10));
    assert_eq!(read(&mut child, &mut mem, a), Ok(99));
    // ...and the parent's in the parent.
    write(&mut parent, &mut mem, a + P, 77);
    assert_eq!(read(&mut child, &mut mem, a + P), Ok(11));
    assert_eq!(read(&mut parent, &mut mem, a + P), Ok(77));
    assert_eq!(mem.in_use(), frames + 2);
    // Pages the parent never touched are still zeros on both sides.
    let b = mmap(&mut parent, &mut mem, P, RW, ANON);
    assert_eq!(read(&mut parent, &mut mem, b), Ok(0));
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn the_last_owner_writes_in_place() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, 2 * P, RW, ANON);
    write(&mut parent, &mut mem, a, 1);
    write(&mut parent, &mut mem, a + P, 2);
    let mut child = fork(&mut parent, &mut mem);
    // The child copies page 0; the parent is then its frame's only owner.
    assert_eq!(
        child.fault(&mut mem, a, Access::Write),
        Ok(Resolution::CopyOnWrite)
    );
    assert_eq!(
        parent.fault(&mut mem, a, Access::Write),
        Ok(Resolution::Reuse)
    );
    // The child goes away: the parent owns page 1 alone and reuses it too.
    let frames = mem.in_use();
    child.clear(&mut mem);
    assert_eq!(mem.in_use(), frames - 1, "the child's copy is freed");
    assert_eq!(
        parent.fault(&mut mem, a + P, Access::Write),
        Ok(Resolution::Reuse)
    );
    assert_eq!(read(&mut parent, &mut mem, a + P), Ok(2));
    teardown(&mut mem, &mut [&mut parent]);
}

#[test]
fn a_page_shared_by_300_children_counts_them_all() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, P, RW, ANON);
    write(&mut parent, &mut mem, a, 42);
    let pfn = parent.pmap.query(a).unwrap().pfn;
    let mut children: Vec<Space> = (0..300).map(|_| fork(&mut parent, &mut mem)).collect();
    assert_eq!(mem.refcount(pfn), 301);
    for child in children.iter_mut().step_by(7) {
        assert_eq!(read(child, &mut mem, a), Ok(42));
        write(child, &mut mem, a, 1);
    }
    assert_eq!(read(&mut parent, &mut mem, a), Ok(42));
    let mut all: Vec<&mut Space> = children.iter_mut().collect();
    all.push(&mut parent);
    teardown(&mut mem, &mut all);
}

#[test]
fn shared_anonymous_memory_stays_shared() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, 2 * P, RW, SHARED_ANON);
    write(&mut parent, &mut mem, a, 5);
    let mut child = fork(&mut parent, &mut mem);
    assert_eq!(read(&mut child, &mut mem, a), Ok(5));
    write(&mut child, &mut mem, a, 6);
    assert_eq!(read(&mut parent, &mut mem, a), Ok(6));
    // A page neither had touched before the fork is shared as well.
    write(&mut parent, &mut mem, a + P, 7);
    assert_eq!(read(&mut child, &mut mem, a + P), Ok(7));
    assert_eq!(mem.committed, 0, "shared memory is not charged");
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

/// Four private mappings, one per inherit mode, each written before the fork.
fn four_modes(mem: &mut FakeMemory, parent: &mut Space) -> [u64; 4] {
    let mut addrs = [0; 4];
    for (i, mode) in [INHERIT_SHARE, INHERIT_COPY, INHERIT_NONE, INHERIT_ZERO]
        .into_iter()
        .enumerate()
    {
        // A guard page between them, so that they never merge.
        let a = mmap(parent, mem, 3 * P, RW, ANON);
        parent.munmap(mem, a + 2 * P, a + 3 * P).unwrap();
        write(parent, mem, a, 50 + i as u8);
        minherit(parent, a, 2 * P, mode);
        addrs[i] = a;
    }
    addrs
}

#[test]
fn the_four_inherit_modes() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let [share, copy, none, zero] = four_modes(&mut mem, &mut parent);
    let mut child = fork(&mut parent, &mut mem);

    // INHERIT_SHARE: stores cross in both directions, on pages touched
    // before the fork and on pages touched only after it.
    assert_eq!(read(&mut child, &mut mem, share), Ok(50));
    write(&mut child, &mut mem, share, 60);
    assert_eq!(read(&mut parent, &mut mem, share), Ok(60));
    write(&mut parent, &mut mem, share + P, 61);
    assert_eq!(read(&mut child, &mut mem, share + P), Ok(61));

    // INHERIT_COPY: a copy-on-write copy.
    assert_eq!(read(&mut child, &mut mem, copy), Ok(51));
    write(&mut child, &mut mem, copy, 70);
    assert_eq!(read(&mut parent, &mut mem, copy), Ok(51));

    // INHERIT_NONE: a hole in the child.
    assert!(child.find(none).is_none());
    assert_eq!(
        child.fault(&mut mem, none, Access::Read),
        Err(FaultError::Segv(SegvCode::MapErr))
    );
    assert_eq!(read(&mut parent, &mut mem, none), Ok(52));

    // INHERIT_ZERO: fresh zeros in the child, the data stays in the parent.
    assert_eq!(read(&mut child, &mut mem, zero), Ok(0));
    assert_eq!(read(&mut parent, &mut mem, zero), Ok(53));
    write(&mut child, &mut mem, zero, 80);
    assert_eq!(read(&mut parent, &mut mem, zero), Ok(53));

    // The marks are inherited with the mappings.
    assert_eq!(child.find(zero).unwrap().inherit, Inherit::Zero);
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn madvise_fork_advice_sets_the_same_modes() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let dontfork = mmap(&mut parent, &mut mem, P, RW, ANON);
    let wipe = mmap(&mut parent, &mut mem, P, RW, SHARED_ANON);
    let wipe_private = mmap(&mut parent, &mut mem, P, RW, ANON);
    let undone = mmap(&mut parent, &mut mem, P, RW, ANON);
    for &a in &[dontfork, wipe, wipe_private, undone] {
        write(&mut parent, &mut mem, a, 9);
    }
    madvise(&mut parent, &mut mem, dontfork, P, MADV_DONTFORK);
    // WIPEONFORK is for private anonymous memory only (Linux: EINVAL).
    let (span, advice) = mmap::validate_madvise(wipe, P, MADV_WIPEONFORK).unwrap();
    assert_eq!(
        parent.madvise(&mut mem, span.start, span.end, advice),
        Err(Errno::EINVAL)
    );
    madvise(&mut parent, &mut mem, wipe_private, P, MADV_WIPEONFORK);
    madvise(&mut parent, &mut mem, undone, P, MADV_DONTFORK);
    madvise(&mut parent, &mut mem, undone, P, MADV_DOFORK);
    assert_eq!(parent.find(dontfork).unwrap().inherit, Inherit::None);
    assert_eq!(parent.find(wipe_private).unwrap().inherit, Inherit::Zero);
    assert_eq!(parent.find(undone).unwrap().inherit, Inherit::Copy);

    let mut child = fork(&mut parent, &mut mem);
    assert!(child.find(dontfork).is_none());
    assert_eq!(read(&mut child, &mut mem, wipe_private), Ok(0));
    assert_eq!(read(&mut child, &mut mem, undone), Ok(9));
    assert_eq!(read(&mut child, &mut mem, wipe), Ok(9));

    // KEEPONFORK undoes WIPEONFORK.
    madvise(&mut parent, &mut mem, wipe_private, P, MADV_KEEPONFORK);
    let mut second = fork(&mut parent, &mut mem);
    assert_eq!(read(&mut second, &mut mem, wipe_private), Ok(9));
    teardown(&mut mem, &mut [&mut parent, &mut child, &mut second]);
}

#[test]
fn copy_inheritance_of_shared_memory_gives_the_child_a_private_view() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, P, RW, SHARED_ANON);
    write(&mut parent, &mut mem, a, 3);
    minherit(&mut parent, a, P, INHERIT_COPY);
    let mut child = fork(&mut parent, &mut mem);
    assert_eq!(read(&mut child, &mut mem, a), Ok(3));
    write(&mut child, &mut mem, a, 4);
    assert_eq!(read(&mut parent, &mut mem, a), Ok(3));
    assert_eq!(
        child.charged_pages(),
        1,
        "the child's private copy is charged"
    );
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn guard_and_stack_gap_vmas_are_inherited() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let req = mmap::validate_mmap(0, 16 * P, RW, mmap::MAP_STACK, -1, 0).unwrap();
    let stack = parent
        .mmap(&mut mem, &req, Vma::for_request(&req).unwrap())
        .unwrap();
    write(&mut parent, &mut mem, stack + 15 * P, 1);
    let mut child = fork(&mut parent, &mut mem);
    // The child's stack grows on its own.
    write(&mut child, &mut mem, stack + 10 * P, 2);
    assert!(parent.pmap.query(stack + 10 * P).is_none());
    assert!(matches!(
        child.find(stack).unwrap().backing,
        Backing::StackGap
    ));
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn huge_pages_are_shared_read_only_and_demoted_on_write() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let flags = ANON | mmap::MAP_HUGETLB;
    let a = mmap(&mut parent, &mut mem, HUGE_PAGE, RW, flags);
    write(&mut parent, &mut mem, a + 5 * P, 8);
    let head = parent.pmap.query(a).unwrap();
    assert!(head.huge);
    let mut child = fork(&mut parent, &mut mem);
    let c = child.pmap.query(a).unwrap();
    assert!(c.huge && !c.prot.write && c.pfn == head.pfn);
    assert_eq!(mem.refcount(head.pfn), 2);
    write(&mut child, &mut mem, a + 5 * P, 9);
    assert!(!child.pmap.query(a).unwrap().huge, "the writer was demoted");
    assert_eq!(read(&mut parent, &mut mem, a + 5 * P), Ok(8));
    assert_eq!(read(&mut child, &mut mem, a + 5 * P + 1), Ok(0));
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn fork_past_the_commit_limit_fails_and_changes_nothing() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let a = mmap(&mut parent, &mut mem, 8 * P, RW, ANON);
    write(&mut parent, &mut mem, a, 1);
    let s = mmap(&mut parent, &mut mem, 2 * P, RW, ANON);
    minherit(&mut parent, s, 2 * P, INHERIT_SHARE);
    write(&mut parent, &mut mem, s, 2);
    mem.commit_limit = mem.committed + 7;
    let (vmas, frames, committed) = (parent.vma_count(), mem.in_use(), mem.committed);
    let ptes = parent.pmap.ptes.clone();
    assert_eq!(
        parent.fork(&mut mem, FakePmap::default()).err(),
        Some(Errno::ENOMEM)
    );
    assert_eq!(
        (parent.vma_count(), mem.in_use(), mem.committed),
        (vmas, frames, committed)
    );
    assert_eq!(parent.pmap.ptes, ptes, "the parent's page tables changed");
    assert!(matches!(
        parent.find(s).unwrap().backing,
        Backing::Anonymous
    ));
    mem.commit_limit = u64::MAX;
    teardown(&mut mem, &mut [&mut parent]);
}

#[test]
fn fork_without_frames_for_shared_pages_fails_and_changes_nothing() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    let s = mmap(&mut parent, &mut mem, 4 * P, RW, ANON);
    for i in 0..4 {
        write(&mut parent, &mut mem, s + i * P, i as u8 + 1);
    }
    minherit(&mut parent, s, 4 * P, INHERIT_SHARE);
    // Room for two of the four pages the shared object needs.
    mem.limit = mem.in_use() + 2;
    let (frames, committed) = (mem.in_use(), mem.committed);
    assert_eq!(
        parent.fork(&mut mem, FakePmap::default()).err(),
        Some(Errno::ENOMEM)
    );
    assert_eq!((mem.in_use(), mem.committed), (frames, committed));
    for i in 0..4 {
        assert_eq!(read(&mut parent, &mut mem, s + i * P), Ok(i as u8 + 1));
    }
    mem.limit = 1 << 16;
    let mut child = fork(&mut parent, &mut mem);
    assert_eq!(read(&mut child, &mut mem, s + 3 * P), Ok(4));
    teardown(&mut mem, &mut [&mut parent, &mut child]);
}

#[test]
fn the_child_is_charged_for_its_private_writable_memory() {
    let mut mem = FakeMemory::new(1 << 16);
    let mut parent = new_space();
    mmap(&mut parent, &mut mem, 8 * P, RW, ANON);
    mmap(&mut parent, &mut mem, 4 * P, RW, SHARED_ANON);
    mmap(&mut parent, &mut mem, 2 * P, 1, ANON);
    let before = mem.committed;
    let mut child = fork(&mut parent, &mut mem);
    assert_eq!(mem.committed, before + 8);
    assert_eq!(child.charged_pages(), 8);
    child.clear(&mut mem);
    assert_eq!(mem.committed, before);
    teardown(&mut mem, &mut [&mut parent]);
}
