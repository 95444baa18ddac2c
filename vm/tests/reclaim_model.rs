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
use vm::fake::{CLOCK_FRAMES, FakeMemory, FakePmap, FakeSwapSpace};
use vm::mmap::{self, Madvice};
use vm::pmap::{PhysMem, Pmap};
use vm::reclaim::Reclaim;
use vm::swap_cache::{Writeback, Written};
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
        let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
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

/// What a process may do that writes no page: after every page was
/// written once, nothing of this should make reclaim write again.
#[derive(Clone, Debug)]
enum CleanOp {
    Read(usize, u64),
    Touch(usize, u64),
    Reclaim(usize),
    PageOut(usize, u64, u64),
    Fork(usize),
    DontNeed(usize, u64, u64),
    Exit(usize),
}

fn clean_op() -> impl Strategy<Value = CleanOp> {
    let space = 0..3usize;
    prop_oneof![
        8 => (space.clone(), 0..PAGES).prop_map(|(s, p)| CleanOp::Read(s, p)),
        3 => (space.clone(), 0..PAGES).prop_map(|(s, p)| CleanOp::Touch(s, p)),
        4 => (1..12usize).prop_map(CleanOp::Reclaim),
        3 => (space.clone(), 0..PAGES, 1..8u64).prop_map(|(s, p, n)| CleanOp::PageOut(s, p, n)),
        1 => space.clone().prop_map(CleanOp::Fork),
        1 => (space.clone(), 0..PAGES, 1..4u64).prop_map(|(s, p, n)| CleanOp::DontNeed(s, p, n)),
        1 => space.prop_map(CleanOp::Exit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every page written once and paged out; then only reads, accesses,
    /// reclaim, MADV_PAGEOUT, fork, MADV_DONTNEED and exit, with swap never
    /// more than half full: every page that goes out again is clean and
    /// goes without a write (its slot kept in the swap cache), every word
    /// reads back, and at the end no frame, slot or cache entry is left.
    #[test]
    fn a_clean_page_goes_out_again_without_a_write(ops in prop::collection::vec(clean_op(), 1..120)) {
        let mut mem = FakeMemory::new(FRAMES);
        mem.swap = Some(FakeSwapSpace::new(SLOTS));
        let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
        let mut machine = Machine { procs: Vec::new() };
        for s in 0..2 {
            let p = new_proc(&mut mem, &machine);
            machine.procs.push(Some(p));
            for page in 0..PAGES {
                let va = machine.procs[s].as_ref().expect("live").base + page * PAGE;
                prop_assert!(fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Write));
                let p = machine.procs[s].as_mut().expect("live");
                let m = p.space.pmap.query(va).expect("present");
                let value = (s as u64 + 1) << 32 | page;
                mem.write(m.pfn, 0, &value.to_le_bytes());
                p.words.insert(page, value);
            }
        }
        for s in 0..2 {
            let p = machine.procs[s].as_ref().expect("live");
            let (a, b) = (p.base, p.base + PAGES * PAGE);
            page_out(&mut machine, &mut mem, &mut clock, s, a, b);
        }
        let writes = mem.swap.as_ref().expect("swap").dev.writes;
        for op in ops {
            match op {
                CleanOp::Read(s, page) => {
                    let Some(Some(p)) = machine.procs.get(s) else { continue };
                    let va = p.base + page * PAGE;
                    if !fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read) {
                        continue;
                    }
                    let p = machine.procs[s].as_ref().expect("live");
                    let want = p.words.get(&page).copied().unwrap_or(0);
                    prop_assert_eq!(word_at(p, &mem, page), want, "space {} page {}", s, page);
                }
                CleanOp::Touch(s, page) => {
                    if let Some(Some(p)) = machine.procs.get_mut(s) {
                        p.space.pmap.touch(p.base + page * PAGE);
                    }
                }
                CleanOp::Reclaim(n) => {
                    reclaim(&mut machine, &mut mem, &mut clock, n);
                }
                CleanOp::PageOut(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get(s) else { continue };
                    let end = (page + n).min(PAGES);
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    page_out(&mut machine, &mut mem, &mut clock, s, a, b);
                }
                CleanOp::Fork(s) => {
                    if machine.procs.len() >= 5 {
                        continue;
                    }
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let pmap = FakePmap::on_machine_of(&p.space.pmap);
                    let Ok(child) = p.space.fork(&mut mem, pmap) else { continue };
                    let (words, base) = (p.words.clone(), p.base);
                    let (lazy, locked) = Default::default();
                    machine.procs.push(Some(Proc { space: child, base, words, lazy, locked }));
                }
                CleanOp::DontNeed(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let end = (page + n).min(PAGES);
                    let (a, b) = (p.base + page * PAGE, p.base + end * PAGE);
                    p.space.madvise(&mut mem, a, b, Madvice::DontNeed).expect("madvise");
                    for q in page..end {
                        p.words.remove(&q);
                    }
                }
                CleanOp::Exit(s) => {
                    if let Some(slot) = machine.procs.get_mut(s)
                        && let Some(mut p) = slot.take()
                    {
                        p.space.clear(&mut mem);
                    }
                }
            }
            let swap = mem.swap.as_ref().expect("swap");
            prop_assert!(2 * swap.dev.map.used() <= swap.dev.map.usable());
            // A page DONTNEED dropped reads as zeros: a fresh zero-page
            // mapping, never written either.
            prop_assert_eq!(swap.dev.writes, writes, "a clean page was written");
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
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
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
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
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
    // Read, not written: the cache keeps the frame and its slot, so the
    // next page-out is no write.
    assert_eq!((swap.dev.map.used(), swap.cache.len()), (1, 1));
    let writes = swap.dev.writes;
    reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    assert_eq!(slot(&machine, 0), Some(held), "out again to its slot");
    assert_eq!(slot(&machine, 1), Some(held));
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(swap.dev.writes, writes, "a clean page goes without a write");
    assert_eq!((swap.dev.map.count(held), swap.cache.len()), (2, 0));
    for s in [0, 1] {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            s,
            va,
            Access::Read
        ));
    }
    let a = frame(&machine, 0);
    assert_eq!(a.pfn, frame(&machine, 1).pfn, "one frame for both again");
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
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!((swap.dev.map.used(), swap.cache.len()), (0, 0));
    assert_eq!(mem.in_use(), 0);
}

/// A page read back from swap and not written keeps its slot in the swap
/// cache (mapped read-only), so reclaim drops it again without a write;
/// the first write takes it out of the cache and frees the slot, and the
/// next page-out writes it to a new one (Linux's do_swap_page and
/// do_wp_page; FreeBSD's swap_pager_unswapped on dirtying).
#[test]
fn a_page_read_back_goes_again_without_a_write() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let mut machine = Machine { procs: Vec::new() };
    let p = new_proc(&mut mem, &machine);
    let (base, id) = (p.base, p.space.pmap.id());
    machine.procs.push(Some(p));
    let va = base;
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        va,
        Access::Write
    ));
    let m = machine.procs[0]
        .as_ref()
        .expect("live")
        .space
        .pmap
        .query(va)
        .expect("present");
    mem.write(m.pfn, 0, &5u64.to_le_bytes());
    let out = |machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock| {
        with_reclaim(machine, mem, clock, |r| r.page_out(id, va, va + PAGE))
    };
    let swap = |mem: &FakeMemory| {
        let s = mem.swap.as_ref().expect("swap");
        (s.dev.writes, s.dev.map.used(), s.cache.len())
    };
    assert_eq!(out(&mut machine, &mut mem, &mut clock).written, 1);
    let slot = machine.procs[0]
        .as_ref()
        .expect("live")
        .space
        .swap_slot(va)
        .expect("out");
    assert_eq!(swap(&mem), (1, 1, 0));
    for round in 0..3 {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Read
        ));
        let p = machine.procs[0].as_ref().expect("live");
        assert!(
            !p.space.pmap.query(va).expect("present").prot.write,
            "read-only while cached"
        );
        assert_eq!(word_at(p, &mem, 0), 5);
        assert_eq!(
            swap(&mem),
            (1, 1, 1),
            "round {round}: kept in the cache with its slot"
        );
        let done = out(&mut machine, &mut mem, &mut clock);
        assert_eq!(
            (done.written, done.freed),
            (0, 1),
            "round {round}: dropped, not written"
        );
        let p = machine.procs[0].as_ref().expect("live");
        assert_eq!(
            p.space.swap_slot(va),
            Some(slot),
            "its PTE holds the same slot"
        );
        assert_eq!(swap(&mem), (1, 1, 0));
    }
    // A write: out of the cache, the slot freed, the page writable.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        va,
        Access::Read
    ));
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        va,
        Access::Write
    ));
    let m = machine.procs[0]
        .as_ref()
        .expect("live")
        .space
        .pmap
        .query(va)
        .expect("present");
    assert!(m.prot.write);
    assert_eq!(swap(&mem), (1, 0, 0), "the slot went with the first write");
    mem.write(m.pfn, 0, &6u64.to_le_bytes());
    assert_eq!(
        out(&mut machine, &mut mem, &mut clock).written,
        1,
        "dirty: written"
    );
    // A write fault straight on the swap PTE takes the page at once.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        va,
        Access::Write
    ));
    assert_eq!(
        word_at(machine.procs[0].as_ref().expect("live"), &mem, 0),
        6
    );
    assert_eq!(swap(&mem), (2, 0, 0));
    // Unmapping a cached page frees its slot and its entry.
    out(&mut machine, &mut mem, &mut clock);
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        va,
        Access::Read
    ));
    assert_eq!(swap(&mem), (3, 1, 1), "read back: cached with its slot");
    machine.procs[0].take().expect("live").space.clear(&mut mem);
    assert_eq!(swap(&mem), (3, 0, 0), "unmapped: entry and slot gone");
    assert_eq!(mem.in_use(), 0);
}

/// More than half of swap taken: a page read back gives its slot up at
/// once (Linux's vm_swap_full), and with no slot free, reclaim takes the
/// slots the cache keeps for pages in RAM before it gives up.
#[test]
fn slots_are_not_kept_when_swap_runs_short() {
    let mut mem = FakeMemory::new(FRAMES);
    // 40 pages on 20 frames and 30 slots: the sweep fills more than half.
    mem.swap = Some(FakeSwapSpace::new(30));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let mut machine = Machine { procs: Vec::new() };
    let pages = 40;
    let p = new_proc_with(
        &mut mem,
        &machine,
        pages * PAGE,
        mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS,
    );
    let base = p.base;
    machine.procs.push(Some(p));
    for page in 0..pages {
        let va = base + page * PAGE;
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Write
        ));
        let m = machine.procs[0]
            .as_ref()
            .expect("live")
            .space
            .pmap
            .query(va)
            .expect("present");
        mem.write(m.pfn, 0, &(page + 1).to_le_bytes());
    }
    let half_full = |mem: &FakeMemory| {
        let s = mem.swap.as_ref().expect("swap");
        2 * s.dev.map.used() > s.dev.map.usable()
    };
    assert!(half_full(&mem), "the sweep filled more than half of swap");
    let mut taken = 0;
    for page in 0..pages {
        let va = base + page * PAGE;
        let out = machine.procs[0]
            .as_ref()
            .expect("live")
            .space
            .swap_slot(va)
            .is_some();
        let full = half_full(&mem);
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Read
        ));
        let p = machine.procs[0].as_ref().expect("live");
        assert_eq!(word_at(p, &mem, page), page + 1);
        if out {
            let m = p.space.pmap.query(va).expect("present");
            assert_eq!(
                m.prot.write, full,
                "page {page}: slot given up iff over half full"
            );
            taken += u32::from(full);
        }
    }
    assert!(taken > 0, "some read while over half full");
    machine.procs[0].take().expect("live").space.clear(&mut mem);
    let s = mem.swap.as_ref().expect("swap");
    assert_eq!((s.dev.map.used(), s.cache.len(), mem.in_use()), (0, 0, 0));

    // Slots kept for pages in RAM are given up when none is free.
    let mut mem = FakeMemory::new(FRAMES);
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    mem.swap = Some(FakeSwapSpace::new(8));
    let mut machine = Machine { procs: Vec::new() };
    let p = new_proc(&mut mem, &machine);
    let (base, id) = (p.base, p.space.pmap.id());
    machine.procs.push(Some(p));
    for page in 0..10 {
        let va = base + page * PAGE;
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Write
        ));
    }
    let out =
        |machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock, from: u64, n: u64| {
            let range = (base + from * PAGE, base + (from + n) * PAGE);
            with_reclaim(machine, mem, clock, |r| r.page_out(id, range.0, range.1))
        };
    // Half of the 8 slots, read back: kept (not more than half full).
    assert_eq!(out(&mut machine, &mut mem, &mut clock, 0, 4).written, 4);
    for page in 0..4 {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            base + page * PAGE,
            Access::Read
        ));
    }
    assert_eq!(
        mem.swap.as_ref().expect("swap").cache.len(),
        4,
        "half full: kept"
    );
    // Six dirty pages and four free slots: the cached pages in RAM give
    // theirs up for the last two.
    let done = out(&mut machine, &mut mem, &mut clock, 4, 6);
    assert_eq!((done.written, done.swap_full), (6, false));
    assert_eq!(mem.swap.as_ref().expect("swap").cache.len(), 0);
    for page in 0..10 {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            base + page * PAGE,
            Access::Read
        ));
    }
    machine.procs[0].take().expect("live").space.clear(&mut mem);
    let s = mem.swap.as_ref().expect("swap");
    assert_eq!((s.dev.map.used(), s.cache.len(), mem.in_use()), (0, 0, 0));
}

/// The clock's refill lists pages in address order, so a sequential write
/// of more pages than there are frames sends them out to consecutive
/// slots: the neighbours swap-in reads ahead on disk are the pages the
/// program touches next (with the reverse map's hash order they were any).
#[test]
fn a_sequential_sweep_goes_out_to_consecutive_slots() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
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
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
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

/// Reclaim up to its writes (`Reclaim::unmap_victims`), as the kernel's
/// page-out daemon runs it before it lets go of its locks.
fn unmap_victims(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    want: usize,
) -> Writeback {
    let mut swap = mem.swap.take().expect("swap");
    let (_, wb) = Reclaim {
        clock,
        cache: &mut swap.cache,
        dev: &mut swap.dev,
        phys: mem,
        spaces: machine,
    }
    .unmap_victims(want);
    mem.swap = Some(swap);
    wb
}

/// The writes of `wb`, done, and their results handed to the swap cache.
fn write_back(mem: &mut FakeMemory, wb: Writeback) -> Written {
    let mut swap = mem.swap.take().expect("swap");
    let results = wb.write(&mut swap.dev, mem);
    let done = swap.cache.written(&mut swap.dev, mem, results);
    mem.swap = Some(swap);
    done
}

/// Pages between their unmapping and the end of their write (the daemon
/// writes with no lock held) are in the swap cache: a read finds the
/// frame there without the disk, a write copies it (the disk may be
/// reading it), an unmap leaves it to the write's end, which frees what no
/// one maps. A write that fails leaves the pages in the cache, dirty,
/// found by their faults and written again when they next go.
#[test]
fn pages_under_writeback_are_found_in_the_swap_cache() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let mut machine = Machine { procs: Vec::new() };
    let p = new_proc(&mut mem, &machine);
    let base = p.base;
    machine.procs.push(Some(p));
    let value = |page: u64| 0x100 + page;
    for page in 0..8 {
        let va = base + page * PAGE;
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Write
        ));
        let m = machine.procs[0]
            .as_ref()
            .expect("live")
            .space
            .pmap
            .query(va)
            .expect("present");
        mem.write(m.pfn, 0, &value(page).to_le_bytes());
    }
    let queue = |machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock| {
        // The first look finds the pages accessed.
        (0..3)
            .map(|_| unmap_victims(machine, mem, clock, 8))
            .find(|wb| !wb.is_empty())
            .expect("victims")
    };
    let wb = queue(&mut machine, &mut mem, &mut clock);
    let out: Vec<u64> = (0..8)
        .filter(|&page| {
            let p = machine.procs[0].as_ref().expect("live");
            p.space.swap_slot(base + page * PAGE).is_some()
        })
        .collect();
    assert!(out.len() >= 3, "{out:?}");
    let swap = |mem: &FakeMemory| {
        let s = mem.swap.as_ref().expect("swap");
        (s.dev.writes, s.dev.reads, s.cache.len())
    };
    assert_eq!(
        swap(&mem),
        (0, 0, out.len()),
        "all cached, none written yet"
    );
    let (a, b, c) = (base + out[0] * PAGE, base + out[1] * PAGE, out[2]);
    // A read finds the frame in the cache: no disk read.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        a,
        Access::Read
    ));
    let p = machine.procs[0].as_ref().expect("live");
    let cached = p.space.pmap.query(a).expect("present");
    assert!(!cached.prot.write);
    assert_eq!(word_at(p, &mem, out[0]), value(out[0]));
    // A write copies it.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        a,
        Access::Write
    ));
    let m = machine.procs[0]
        .as_ref()
        .expect("live")
        .space
        .pmap
        .query(a)
        .expect("present");
    assert!(m.prot.write);
    assert_ne!(
        m.pfn, cached.pfn,
        "the disk may be reading the cached frame: copied"
    );
    mem.write(m.pfn, 0, &7u64.to_le_bytes());
    // An unmap lets go of the slot; the entry waits for the write.
    let p = machine.procs[0].as_mut().expect("live");
    p.space
        .madvise(&mut mem, b, b + PAGE, Madvice::DontNeed)
        .expect("madvise");
    assert_eq!(swap(&mem).1, 0, "no disk read");
    assert_eq!(mem.refcount(cached.pfn), 1, "the cache's reference alone");
    let done = write_back(&mut mem, wb);
    assert_eq!(done.written, out.len() as u64);
    assert_eq!(done.freed, out.len() as u64, "no one maps them now");
    assert_eq!(swap(&mem).2, 0);
    // The rest read back from the disk.
    assert!(fault_in(
        &mut machine,
        &mut mem,
        &mut clock,
        0,
        base + c * PAGE,
        Access::Read
    ));
    let p = machine.procs[0].as_ref().expect("live");
    assert_eq!(word_at(p, &mem, c), value(c));
    assert!(swap(&mem).1 > 0);

    // A failed write: the pages stay in the cache, dirty.
    for page in 0..8 {
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            base + page * PAGE,
            Access::Write
        ));
        let m = machine.procs[0]
            .as_ref()
            .expect("live")
            .space
            .pmap
            .query(base + page * PAGE);
        mem.write(m.expect("present").pfn, 0, &value(page + 8).to_le_bytes());
    }
    let wb = queue(&mut machine, &mut mem, &mut clock);
    let failed = wb.len();
    mem.swap.as_mut().expect("swap").dev.fail_writes = u32::MAX;
    let done = write_back(&mut mem, wb);
    assert_eq!((done.written, done.freed), (0, 0));
    assert_eq!(swap(&mem).2, failed, "kept, dirty");
    // Idle dirty entries are not dropped: their slots do not hold them.
    reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    mem.swap.as_mut().expect("swap").dev.fail_writes = 0;
    let reads = swap(&mem).1;
    for page in 0..8 {
        let va = base + page * PAGE;
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Read
        ));
        let p = machine.procs[0].as_ref().expect("live");
        assert_eq!(word_at(p, &mem, page), value(page + 8), "page {page}");
    }
    // Every page was in RAM: the cache, or resident.
    assert_eq!(swap(&mem).1, reads, "no disk read for a dirty page");
    // Out again: now written, and read back from the disk.
    for _ in 0..3 {
        reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
    }
    for page in 0..8 {
        let va = base + page * PAGE;
        assert!(fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            va,
            Access::Read
        ));
        let p = machine.procs[0].as_ref().expect("live");
        assert_eq!(word_at(p, &mem, page), value(page + 8), "page {page}");
    }
    machine.procs[0].take().expect("live").space.clear(&mut mem);
    let s = mem.swap.as_ref().expect("swap");
    assert_eq!((s.dev.map.used(), s.cache.len(), mem.in_use()), (0, 0, 0));
}
