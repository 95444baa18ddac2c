//! madvise under memory pressure on the fake machine (docs/src/pressure.md,
//! "madvise under pressure"; the machine is `common/mod.rs`): MADV_FREE'd
//! pages go without a write and read back as zeros, a write after
//! MADV_FREE cancels it, MADV_PAGEOUT writes pages out now and a fault
//! reads them back, MADV_WILLNEED reads them back before the fault, 2 MiB
//! pages are split first, and a huge range is walked a bounded batch at
//! a time. The random sequences are `reclaim_model.rs`'s.

mod common;
use common::*;
use vm::clock::{Clock, Policy};
use vm::errno::Errno;
use vm::fake::{CLOCK_FRAMES, FakeMemory, FakeSwapSpace};
use vm::mmap::{self, Madvice};
use vm::pmap::{PhysMem, Pmap};
use vm::reclaim::Reclaimed;
use vm::space::PAGEOUT_BATCH;
use vm::thp::Mode;
use vm::vm_fault::Access;
use vm::vma::{HUGE_PAGE, PAGE};

const ANON: u64 = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
const BLOCK: u64 = HUGE_PAGE / PAGE;

/// A machine of `frames` frames and `slots` swap slots with one process
/// mapping `len` bytes.
fn machine(frames: usize, slots: u32, len: u64, flags: u64) -> (Machine, FakeMemory, Clock) {
    let mut mem = FakeMemory::new(frames);
    mem.swap = Some(FakeSwapSpace::new(slots));
    let mut machine = Machine { procs: Vec::new() };
    let p = new_proc_with(&mut mem, &machine, len, flags);
    machine.procs.push(Some(p));
    (machine, mem, Clock::new(Policy::Clock, CLOCK_FRAMES))
}

fn base(machine: &Machine) -> u64 {
    machine.procs[0].as_ref().expect("live").base
}

/// Process 0 writes `value + page` as the first word of each of `pages`.
fn write(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    pages: &[u64],
    value: u64,
) {
    for &page in pages {
        let va = base(machine) + page * PAGE;
        assert!(fault_in(machine, mem, clock, 0, va, Access::Write));
        let m = machine.procs[0]
            .as_ref()
            .unwrap()
            .space
            .pmap
            .query(va)
            .unwrap();
        let within = if m.huge { page % BLOCK } else { 0 };
        let pfn = vm::frame::Pfn(m.pfn.0 + within);
        mem.write(pfn, 0, &(value + page).to_le_bytes());
    }
}

/// The first word of each page as process 0 reads it (faulting it in).
fn read(machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock, pages: &[u64]) -> Vec<u64> {
    pages
        .iter()
        .map(|&page| {
            let va = base(machine) + page * PAGE;
            assert!(fault_in(machine, mem, clock, 0, va, Access::Read));
            // The MMU sets the accessed bit of the PTE it reads through.
            machine.procs[0].as_mut().unwrap().space.pmap.touch(va);
            let m = machine.procs[0]
                .as_ref()
                .unwrap()
                .space
                .pmap
                .query(va)
                .unwrap();
            let within = if m.huge { page % BLOCK } else { 0 };
            let mut bytes = [0; 8];
            mem.read(vm::frame::Pfn(m.pfn.0 + within), 0, &mut bytes);
            u64::from_le_bytes(bytes)
        })
        .collect()
}

fn madvise(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    pages: (u64, u64),
    advice: Madvice,
) -> Result<(), Errno> {
    let b = base(machine);
    let space = &mut machine.procs[0].as_mut().unwrap().space;
    space.madvise(mem, b + pages.0 * PAGE, b + pages.1 * PAGE, advice)
}

fn mincore(machine: &Machine, pages: (u64, u64)) -> Vec<u8> {
    let b = base(machine);
    let mut out = vec![0xff; (pages.1 - pages.0) as usize];
    let space = &machine.procs[0].as_ref().unwrap().space;
    space
        .mincore(b + pages.0 * PAGE, b + pages.1 * PAGE, &mut out)
        .expect("mincore");
    out
}

fn writes(mem: &FakeMemory) -> u64 {
    mem.swap.as_ref().unwrap().dev.writes
}

/// Nothing is left once the process is gone.
fn nothing_leaks(mut machine: Machine, mut mem: FakeMemory) {
    machine.procs[0].take().unwrap().space.clear(&mut mem);
    let swap = mem.swap.as_ref().unwrap();
    assert_eq!(
        (swap.dev.map.used(), swap.cache.len(), mem.in_use()),
        (0, 0, 0)
    );
}

fn pages(range: core::ops::Range<u64>) -> Vec<u64> {
    range.collect()
}

#[test]
fn free_then_reclaim_drops_the_pages_without_a_write_and_they_read_zeros() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..8), 100);
    madvise(&mut m, &mut mem, (0, 8), Madvice::Free).unwrap();
    assert_eq!(
        mincore(&m, (0, 8)),
        vec![1; 8],
        "kept until memory runs short"
    );
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &[3]),
        vec![103],
        "the data stays meanwhile"
    );
    // A read does not cancel it: all eight go.
    let done = with_reclaim(&mut m, &mut mem, &mut clock, |r| r.reclaim(8));
    assert_eq!(
        (done.lazy_freed, done.written, writes(&mem)),
        (8, 0, 0),
        "{done:?}"
    );
    assert_eq!(mincore(&m, (0, 8)), vec![0; 8]);
    assert_eq!(mem.in_use(), 0);
    assert_eq!(read(&mut m, &mut mem, &mut clock, &pages(0..8)), vec![0; 8]);
    nothing_leaks(m, mem);
}

#[test]
fn a_write_after_free_cancels_it_and_the_page_goes_to_swap_with_its_data() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..8), 100);
    madvise(&mut m, &mut mem, (0, 8), Madvice::Free).unwrap();
    write(&mut m, &mut mem, &mut clock, &pages(0..4), 200);
    // Twice: the first look finds the written pages accessed.
    let mut done = Reclaimed::default();
    for _ in 0..2 {
        let d = with_reclaim(&mut m, &mut mem, &mut clock, |r| r.reclaim(8));
        done.lazy_freed += d.lazy_freed;
        done.written += d.written;
    }
    assert_eq!((done.lazy_freed, done.written), (4, 4), "{done:?}");
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..8)),
        vec![200, 201, 202, 203, 0, 0, 0, 0]
    );
    nothing_leaks(m, mem);
}

#[test]
fn pageout_writes_the_pages_now_and_a_fault_reads_them_back() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..8), 100);
    let b = base(&m);
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b, b + 8 * PAGE);
    assert_eq!(
        (done.written, done.freed, done.lazy_freed),
        (8, 8, 0),
        "{done:?}"
    );
    assert_eq!(
        mincore(&m, (0, 8)),
        vec![0; 8],
        "swapped pages are not resident"
    );
    assert_eq!(mem.in_use(), 0);
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..8)),
        pages(100..108)
    );
    nothing_leaks(m, mem);
}

#[test]
fn free_then_pageout_drops_the_pages_without_a_write() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..8), 100);
    madvise(&mut m, &mut mem, (0, 8), Madvice::Free).unwrap();
    write(&mut m, &mut mem, &mut clock, &[6], 300);
    let b = base(&m);
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b, b + 8 * PAGE);
    assert_eq!(
        (done.lazy_freed, done.written, done.freed),
        (7, 1, 8),
        "{done:?}"
    );
    assert_eq!(mincore(&m, (0, 8)), vec![0; 8]);
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..8)),
        vec![0, 0, 0, 0, 0, 0, 306, 0]
    );
    nothing_leaks(m, mem);
}

#[test]
fn free_of_swapped_pages_frees_their_slots_and_they_read_zeros() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..4), 100);
    let b = base(&m);
    page_out(&mut m, &mut mem, &mut clock, 0, b, b + 4 * PAGE);
    assert_eq!(mem.swap.as_ref().unwrap().dev.map.used(), 4);
    madvise(&mut m, &mut mem, (0, 4), Madvice::Free).unwrap();
    assert_eq!(mem.swap.as_ref().unwrap().dev.map.used(), 0);
    assert_eq!(read(&mut m, &mut mem, &mut clock, &pages(0..4)), vec![0; 4]);
    nothing_leaks(m, mem);
}

#[test]
fn willneed_reads_swapped_pages_back_before_they_are_touched() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..8), 100);
    let b = base(&m);
    page_out(&mut m, &mut mem, &mut clock, 0, b, b + 8 * PAGE);
    madvise(&mut m, &mut mem, (0, 8), Madvice::WillNeed).unwrap();
    assert_eq!(mincore(&m, (0, 8)), vec![1; 8]);
    let swap = mem.swap.as_ref().unwrap();
    assert_eq!((swap.dev.reads > 0, swap.dev.map.used()), (true, 0));
    let space = &m.procs[0].as_ref().unwrap().space;
    assert!(
        (0..8).all(|i| space.pmap.query(b + i * PAGE).is_some()),
        "mapped, no fault left to take"
    );
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..8)),
        pages(100..108)
    );
    nothing_leaks(m, mem);
}

/// Linux's MADV_PAGEOUT leaves a page other processes map alone, and so
/// does MADV_FREE (its data is theirs too).
#[test]
fn pages_shared_with_a_fork_stay() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..4), 100);
    let parent = m.procs[0].as_mut().unwrap();
    let pmap = vm::fake::FakePmap::on_machine_of(&parent.space.pmap);
    let child = parent.space.fork(&mut mem, pmap).expect("fork");
    madvise(&mut m, &mut mem, (0, 4), Madvice::Free).unwrap();
    let b = base(&m);
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b, b + 4 * PAGE);
    assert_eq!((done.freed, writes(&mem)), (0, 0), "{done:?}");
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..4)),
        pages(100..104)
    );
    let mut child = child;
    child.clear(&mut mem);
    nothing_leaks(m, mem);
}

#[test]
fn locked_pages_refuse_both_and_shared_memory_refuses_free() {
    let (mut m, mut mem, mut clock) = machine(64, 64, PAGES * PAGE, ANON);
    write(&mut m, &mut mem, &mut clock, &pages(0..4), 100);
    let b = base(&m);
    let space = &mut m.procs[0].as_mut().unwrap().space;
    space.mlock(&mut mem, b + PAGE, b + 2 * PAGE, true).unwrap();
    assert_eq!(
        madvise(&mut m, &mut mem, (0, 4), Madvice::Free),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut m, &mut mem, (0, 4), Madvice::PageOut),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut m, &mut mem, (0, PAGES + 1), Madvice::PageOut),
        Err(Errno::ENOMEM)
    );
    assert_eq!(mincore(&m, (0, 4)), vec![1; 4], "nothing done");
    nothing_leaks(m, mem);
    let (mut m, mut mem, _) = machine(64, 64, PAGES * PAGE, mmap::MAP_SHARED | mmap::MAP_ANONYMOUS);
    assert_eq!(
        madvise(&mut m, &mut mem, (0, 4), Madvice::Free),
        Err(Errno::EINVAL)
    );
}

#[test]
fn pageout_splits_a_2mib_page_and_writes_its_512_pages() {
    let (mut m, mut mem, mut clock) = machine(2048, 1024, 2 * HUGE_PAGE, ANON);
    let b = base(&m);
    assert_eq!(b % HUGE_PAGE, 0);
    write(&mut m, &mut mem, &mut clock, &pages(0..BLOCK), 1000);
    assert!(
        m.procs[0]
            .as_ref()
            .unwrap()
            .space
            .pmap
            .query(b)
            .unwrap()
            .huge
    );
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b + PAGE, b + 3 * PAGE);
    assert_eq!(m.procs[0].as_ref().unwrap().space.pmap.splits, 1);
    assert_eq!(done.written, 2, "only the range: {done:?}");
    assert_eq!(mincore(&m, (0, 4)), vec![1, 0, 0, 1]);
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b, b + 2 * HUGE_PAGE);
    assert_eq!(done.written, BLOCK - 2, "{done:?}");
    assert_eq!(mem.in_use(), 0);
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &pages(0..BLOCK)),
        pages(1000..1000 + BLOCK)
    );
    nothing_leaks(m, mem);
}

#[test]
fn free_splits_a_2mib_page_and_reclaim_drops_all_of_it() {
    let (mut m, mut mem, mut clock) = machine(2048, 1024, 2 * HUGE_PAGE, ANON);
    let b = base(&m);
    write(&mut m, &mut mem, &mut clock, &pages(0..BLOCK), 1000);
    madvise(&mut m, &mut mem, (0, BLOCK), Madvice::Free).unwrap();
    assert_eq!(m.procs[0].as_ref().unwrap().space.pmap.splits, 1);
    assert!(
        !m.procs[0]
            .as_ref()
            .unwrap()
            .space
            .pmap
            .query(b)
            .unwrap()
            .huge
    );
    let done = with_reclaim(&mut m, &mut mem, &mut clock, |r| r.reclaim(BLOCK as usize));
    assert_eq!((done.lazy_freed, writes(&mem)), (BLOCK, 0), "{done:?}");
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &[0, 77, BLOCK - 1]),
        vec![0; 3]
    );
    nothing_leaks(m, mem);
}

/// A terabyte with three pages in it: the walk skips the empty space in
/// growing windows, and takes at most `PAGEOUT_BATCH` pages at a time.
#[test]
fn a_huge_sparse_range_is_walked_in_bounded_batches() {
    let len = 1 << 40;
    let (mut m, mut mem, mut clock) = machine(512, 64, len, ANON | mmap::MAP_NORESERVE);
    m.procs[0].as_mut().unwrap().space.thp = Mode::Never;
    let last = len / PAGE - 1;
    let far = [0, last / 2 + 3, last];
    write(&mut m, &mut mem, &mut clock, &far, 500);
    let b = base(&m);
    let done = page_out(&mut m, &mut mem, &mut clock, 0, b, b + len);
    assert_eq!(done.written, 3, "{done:?}");
    assert_eq!(
        read(&mut m, &mut mem, &mut clock, &far),
        far.map(|p| 500 + p).to_vec()
    );
    // 150 pages: three batches, each page once, in order.
    write(&mut m, &mut mem, &mut clock, &pages(1000..1150), 0);
    let space = &mut m.procs[0].as_mut().unwrap().space;
    let (mut at, mut seen, mut batches) = (b + 1000 * PAGE, Vec::new(), 0);
    while at < b + len {
        let mut batch = Vec::new();
        at = space.pageout_batch(&mem, at, b + len, &mut batch);
        assert!(batch.len() <= PAGEOUT_BATCH);
        batches += 1;
        seen.extend(batch);
    }
    let want: Vec<u64> = (1000..1150)
        .chain([last / 2 + 3, last])
        .map(|p| b + p * PAGE)
        .collect();
    assert_eq!(seen, want);
    assert!(batches <= 6, "{batches} batches");
    nothing_leaks(m, mem);
}
