//! Model test: reclaim against the fake page tables (vm::reclaim over
//! `FakePmap`, `FakeMemory` with a `FakeSwap`; the machine is
//! `common/mod.rs`). Random sequences of writes, reads, accesses, reclaim,
//! fork, MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT, mremap, mlock and exit,
//! on a machine with fewer frames than the spaces touch: every word a
//! process wrote reads back (zeros where it never wrote or dropped its
//! pages; its word or zeros where it gave the page to MADV_FREE and did
//! not write it since), a locked page is never taken, each side of a fork
//! sees only its own writes, and once every space is gone no frame, slot
//! or swap cache entry is left.

mod common;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use vm::clock::{Clock, Policy};
use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap, FakeSwapSpace};
use vm::mmap::{self, Madvice};
use vm::pmap::{PhysMem, Pmap};
use vm::vm_fault::Access;
use vm::vma::PAGE;

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u64, u64),
    Read(usize, u64),
    Touch(usize, u64),
    Reclaim(usize),
    Fork(usize),
    DontNeed(usize, u64, u64),
    Free(usize, u64, u64),
    PageOut(usize, u64, u64),
    /// Move the whole mapping down by this many pages (MREMAP_FIXED).
    Move(usize, u64),
    Lock(usize, u64, u64),
    Exit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let space = 0..4usize;
    prop_oneof![
        8 => (space.clone(), 0..PAGES, 1..u64::MAX).prop_map(|(s, p, v)| Op::Write(s, p, v)),
        6 => (space.clone(), 0..PAGES).prop_map(|(s, p)| Op::Read(s, p)),
        3 => (space.clone(), 0..PAGES).prop_map(|(s, p)| Op::Touch(s, p)),
        4 => (1..12usize).prop_map(Op::Reclaim),
        1 => space.clone().prop_map(Op::Fork),
        1 => (space.clone(), 0..PAGES, 1..4u64).prop_map(|(s, p, n)| Op::DontNeed(s, p, n)),
        2 => (space.clone(), 0..PAGES, 1..8u64).prop_map(|(s, p, n)| Op::Free(s, p, n)),
        2 => (space.clone(), 0..PAGES, 1..8u64).prop_map(|(s, p, n)| Op::PageOut(s, p, n)),
        1 => (space.clone(), 1..40u64).prop_map(|(s, n)| Op::Move(s, n)),
        1 => (space.clone(), 0..PAGES, 1..3u64).prop_map(|(s, p, n)| Op::Lock(s, p, n)),
        1 => space.prop_map(Op::Exit),
    ]
}

/// The first word of `page` (present) and what the model says it may be:
/// its word, or for a page given to MADV_FREE and not written since also
/// zero, which it then stays.
fn read_back(p: &mut Proc, mem: &FakeMemory, page: u64) -> (u64, u64) {
    let got = word_at(p, mem, page);
    let want = p.words.get(&page).copied().unwrap_or(0);
    if got == 0 && p.lazy.remove(&page) {
        p.words.remove(&page);
        return (0, 0);
    }
    (got, want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_word_reads_back_and_nothing_leaks(ops in prop::collection::vec(op(), 1..120)) {
        let mut mem = FakeMemory::new(FRAMES);
        mem.swap = Some(FakeSwapSpace::new(SLOTS));
        let mut clock = Clock::new(Policy::Clock);
        let mut machine = Machine { procs: Vec::new() };
        for _ in 0..2 {
            let p = new_proc(&mut mem, &machine);
            machine.procs.push(Some(p));
        }
        for op in ops {
            match op {
                Op::Write(s, page, value) => {
                    let Some(p) = machine.procs.get(s).and_then(|p| p.as_ref()) else { continue };
                    let va = p.base + page * PAGE;
                    if !fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Write) {
                        continue;
                    }
                    let p = machine.procs[s].as_mut().expect("live");
                    let m = p.space.pmap.query(va).expect("present");
                    prop_assert!(m.prot.write, "written page mapped read-only");
                    mem.write(m.pfn, 0, &value.to_le_bytes());
                    p.words.insert(page, value);
                    p.lazy.remove(&page);
                }
                Op::Read(s, page) => {
                    let Some(p) = machine.procs.get(s).and_then(|p| p.as_ref()) else { continue };
                    let va = p.base + page * PAGE;
                    if !fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read) {
                        continue;
                    }
                    let p = machine.procs[s].as_mut().expect("live");
                    let (got, want) = read_back(p, &mem, page);
                    prop_assert_eq!(got, want, "space {} page {}", s, page);
                }
                Op::Touch(s, page) => {
                    if let Some(Some(p)) = machine.procs.get_mut(s) {
                        p.space.pmap.touch(p.base + page * PAGE);
                    }
                }
                Op::Reclaim(n) => {
                    reclaim(&mut machine, &mut mem, &mut clock, n);
                    for p in machine.procs.iter().flatten() {
                        for &page in &p.locked {
                            prop_assert!(
                                p.space.pmap.query(p.base + page * PAGE).is_some(),
                                "a locked page was taken"
                            );
                        }
                    }
                }
                Op::Fork(s) => {
                    if machine.procs.len() >= 6 {
                        continue;
                    }
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let pmap = FakePmap::on_machine_of(&p.space.pmap);
                    let Ok(child) = p.space.fork(&mut mem, pmap) else { continue };
                    // pageos's fork keeps the VMAs' locks (Linux drops them).
                    let (words, lazy) = (p.words.clone(), p.lazy.clone());
                    let (locked, base) = (p.locked.clone(), p.base);
                    machine.procs.push(Some(Proc { space: child, base, words, lazy, locked }));
                }
                Op::DontNeed(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let end = (page + n).min(PAGES);
                    if p.locked.iter().any(|&l| (page..end).contains(&l)) {
                        continue; // EINVAL on locked pages
                    }
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    p.space.madvise(&mut mem, a, b, Madvice::DontNeed).expect("madvise");
                    for q in page..end {
                        p.words.remove(&q);
                        p.lazy.remove(&q);
                    }
                }
                Op::Free(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let end = (page + n).min(PAGES);
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    let done = p.space.madvise(&mut mem, a, b, Madvice::Free);
                    if p.locked.iter().any(|&l| (page..end).contains(&l)) {
                        prop_assert_eq!(done, Err(Errno::EINVAL), "MADV_FREE of locked pages");
                        continue;
                    }
                    prop_assert_eq!(done, Ok(()));
                    p.lazy.extend(page..end);
                }
                Op::PageOut(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get(s) else { continue };
                    let end = (page + n).min(PAGES);
                    if p.locked.iter().any(|&l| (page..end).contains(&l)) {
                        continue; // EINVAL on locked pages
                    }
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    page_out(&mut machine, &mut mem, &mut clock, s, a, b);
                }
                Op::Move(s, n) => {
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let to = p.base - (PAGES + n) * PAGE;
                    let flags = mmap::MREMAP_MAYMOVE | mmap::MREMAP_FIXED;
                    let req = mmap::validate_mremap(p.base, PAGES * PAGE, PAGES * PAGE, flags, to)
                        .expect("valid");
                    if let Ok(at) = p.space.mremap(&mut mem, &req) {
                        p.base = at;
                    }
                }
                Op::Lock(s, page, n) => {
                    let end = (page + n).min(PAGES);
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    if p.space.mlock(&mut mem, a, b, true).is_ok() {
                        p.locked.extend(page..end);
                    }
                }
                Op::Exit(s) => {
                    if let Some(slot) = machine.procs.get_mut(s)
                        && let Some(mut p) = slot.take()
                    {
                        p.space.clear(&mut mem);
                    }
                }
            }
        }
        // Everything still reads back, after one more round of reclaim.
        reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
        for s in 0..machine.procs.len() {
            for page in 0..PAGES {
                let Some(p) = machine.procs[s].as_ref() else { break };
                let va = p.base + page * PAGE;
                if !fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read) {
                    continue;
                }
                let p = machine.procs[s].as_mut().expect("live");
                let (got, want) = read_back(p, &mem, page);
                prop_assert_eq!(got, want, "at the end: space {} page {}", s, page);
            }
        }
        for slot in machine.procs.iter_mut() {
            if let Some(mut p) = slot.take() {
                p.space.clear(&mut mem);
            }
        }
        let swap = mem.swap.as_ref().expect("swap");
        prop_assert_eq!(swap.dev.map.used(), 0, "slots leaked");
        prop_assert!(swap.cache.is_empty(), "swap cache entries left");
        prop_assert_eq!(mem.in_use(), 0, "frames leaked");
    }
}

#[test]
fn a_working_set_three_times_memory_goes_to_swap_and_comes_back() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock);
    let mut machine = Machine { procs: Vec::new() };
    for _ in 0..3 {
        let p = new_proc(&mut mem, &machine);
        machine.procs.push(Some(p));
    }
    for round in 0..2u64 {
        for s in 0..3 {
            for page in 0..PAGES {
                let va = machine.procs[s].as_ref().expect("live").base + page * PAGE;
                assert!(fault_in(
                    &mut machine,
                    &mut mem,
                    &mut clock,
                    s,
                    va,
                    Access::Write
                ));
                let p = machine.procs[s].as_mut().expect("live");
                let m = p.space.pmap.query(va).expect("present");
                let value = round << 32 | (s as u64) << 16 | page;
                mem.write(m.pfn, 0, &value.to_le_bytes());
                p.words.insert(page, value);
            }
        }
        for s in 0..3 {
            for page in 0..PAGES {
                let va = machine.procs[s].as_ref().expect("live").base + page * PAGE;
                assert!(fault_in(
                    &mut machine,
                    &mut mem,
                    &mut clock,
                    s,
                    va,
                    Access::Read
                ));
                let p = machine.procs[s].as_ref().expect("live");
                assert_eq!(word_at(p, &mem, page), p.words[&page]);
            }
        }
    }
    let swap = mem.swap.as_ref().expect("swap");
    assert!(
        swap.dev.writes >= 3 * PAGES - FRAMES as u64,
        "{}",
        swap.dev.writes
    );
    assert!(swap.dev.reads > 0);
    for slot in machine.procs.iter_mut() {
        slot.take().expect("live").space.clear(&mut mem);
    }
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(
        (swap.dev.map.used(), swap.cache.len(), mem.in_use()),
        (0, 0, 0)
    );
}

/// A page shared copy-on-write by a parent and its child goes out once,
/// one slot held by both PTEs, and comes back as one frame for both: the
/// swap cache's. The first side's write then copies it.
#[test]
fn a_cow_shared_page_is_one_slot_out_and_one_frame_back() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock);
    let mut machine = Machine { procs: Vec::new() };
    let mut parent = new_proc(&mut mem, &machine);
    let va = parent.base;
    parent
        .space
        .fault(&mut mem, va, Access::Write)
        .expect("fault");
    let m = parent.space.pmap.query(va).expect("present");
    mem.write(m.pfn, 0, &7u64.to_le_bytes());
    let pmap = FakePmap::on_machine_of(&parent.space.pmap);
    let child = parent.space.fork(&mut mem, pmap).expect("fork");
    let base = parent.base;
    machine.procs.push(Some(parent));
    let words = BTreeMap::from([(0, 7)]);
    let (lazy, locked) = Default::default();
    machine.procs.push(Some(Proc {
        space: child,
        base,
        words,
        lazy,
        locked,
    }));
    // Twice: the first look finds the pages accessed (fork's PTEs are).
    reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    let slot =
        |machine: &Machine, s: usize| machine.procs[s].as_ref().expect("live").space.swap_slot(va);
    let held = slot(&machine, 0).expect("swapped out");
    assert_eq!(slot(&machine, 1), Some(held), "one slot for both");
    assert_eq!(mem.swap.as_ref().expect("swap").dev.map.count(held), 2);
    for s in [1, 0] {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            s,
            va,
            Access::Read
        ));
    }
    let frame = |machine: &Machine, s: usize| {
        let p = machine.procs[s].as_ref().expect("live");
        p.space.pmap.query(va).expect("present")
    };
    let (a, b) = (frame(&machine, 0), frame(&machine, 1));
    assert_eq!(a.pfn, b.pfn, "one frame for both");
    assert!(!a.prot.write && !b.prot.write, "still copy-on-write");
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(swap.dev.reads, 1, "read once");
    assert_eq!((swap.dev.map.used(), swap.cache.len()), (0, 0));
    // The child writes: its own copy; the parent keeps 7.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        1,
        va,
        Access::Write
    ));
    let c = frame(&machine, 1);
    mem.write(c.pfn, 0, &9u64.to_le_bytes());
    assert_ne!(c.pfn, a.pfn);
    assert_eq!(
        word_at(machine.procs[0].as_ref().expect("live"), &mem, 0),
        7
    );
    for slot in machine.procs.iter_mut() {
        slot.take().expect("live").space.clear(&mut mem);
    }
    assert_eq!(mem.in_use(), 0);
}

/// The clock's refill lists pages in address order, so a sequential write
/// of more pages than there are frames sends them out to consecutive
/// slots: the neighbours swap-in reads ahead on disk are the pages the
/// program touches next (with the reverse map's hash order they were any).
#[test]
fn a_sequential_sweep_goes_out_to_consecutive_slots() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock);
    let mut machine = Machine { procs: Vec::new() };
    let p = new_proc(&mut mem, &machine);
    let base = p.base;
    machine.procs.push(Some(p));
    for page in 0..PAGES {
        let written = fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            base + page * PAGE,
            Access::Write,
        );
        assert!(written, "page {page}");
    }
    let p = machine.procs[0].as_mut().expect("live");
    let slots: Vec<u32> = (0..PAGES)
        .filter_map(|page| p.space.pmap.query_swap(base + page * PAGE))
        .map(|slot| slot.0)
        .collect();
    assert!(slots.len() >= 4, "only {} pages went out", slots.len());
    assert!(
        slots.windows(2).all(|w| w[1] == w[0] + 1),
        "slots in address order: {slots:?}"
    );
}

/// A round splits 2 MiB pages only until their 4 KiB pages cover what it
/// wants: each split costs a page table and 511 reverse-map entries from
/// the few frames left, and the split pages join the clock only at its
/// next refill. Reclaiming 32 frames from four unaccessed 2 MiB pages
/// splits one of them, not all four.
#[test]
fn a_round_splits_no_more_2mib_pages_than_it_wants() {
    const HUGE: u64 = 512;
    let mut mem = FakeMemory::new(5 * HUGE as usize);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock);
    let mut machine = Machine { procs: Vec::new() };
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
    let p = new_proc_with(&mut mem, &machine, 5 * HUGE * PAGE, flags);
    machine.procs.push(Some(p));
    let p = machine.procs[0].as_mut().expect("live");
    let first = p.base.next_multiple_of(HUGE * PAGE);
    for block in 0..4 {
        let va = first + block * HUGE * PAGE;
        p.space.fault(&mut mem, va, Access::Write).expect("fault");
        assert!(
            p.space.pmap.query(va).expect("present").huge,
            "a 2 MiB page"
        );
    }
    p.space.pmap.accessed.clear();
    reclaim(&mut machine, &mut mem, &mut clock, 32);
    let p = machine.procs[0].as_mut().expect("live");
    assert_eq!(p.space.pmap.splits, 1);
    p.space.clear(&mut mem);
}
