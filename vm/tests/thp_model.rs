//! Model test: a program's heap under the default superpage policy, as a
//! static binary's is (busybox's sh, glibc's malloc): the break starts
//! just past the data, not 2 MiB-aligned, and moves up and down across
//! 2 MiB boundaries, so its aligned 2 MiB ranges come and go; the process
//! forks children that write, exit or fork again, and parts of the heap
//! are made read-only, dropped (MADV_DONTNEED) or unmapped. Every word a
//! process wrote reads back in that process only, an access outside the
//! heap or a write to a read-only page is the SIGSEGV Linux gives, the
//! reference counts and the reverse map agree with the page tables, and
//! once every process is gone no frame is left.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{Madvice, Prot};
use vm::pmap::Pmap;
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, FaultError, SegvCode};
use vm::vma::{HUGE_PAGE, PAGE};

type Space = AddressSpace<FakePmap>;

/// Where the heap starts: busybox-static's end of data, 20 pages below a
/// 2 MiB boundary.
const HEAP: u64 = 0x5ec000;
/// The break goes up to three 2 MiB ranges past the first boundary.
const MAX_PAGES: u64 = 20 + 3 * 512 + 40;
const MAX_PROCS: usize = 4;

struct Proc {
    space: Space,
    /// The break, in pages from HEAP.
    brk: u64,
    /// The word at the start of each page written (absent: zero).
    words: BTreeMap<u64, u64>,
    read_only: BTreeSet<u64>,
    /// Pages below the break that munmap took out.
    holes: BTreeSet<u64>,
}

impl Proc {
    fn mapped(&self, page: u64) -> bool {
        page < self.brk && !self.holes.contains(&page)
    }

    /// Forget what lay at or above page `from` (the break went below it).
    fn drop_from(&mut self, from: u64) {
        self.words.retain(|&p, _| p < from);
        self.read_only.retain(|&p| p < from);
        self.holes.retain(|&p| p < from);
    }

    fn forget(&mut self, pages: std::ops::Range<u64>) {
        for p in pages {
            self.words.remove(&p);
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u64, u64),
    Read(usize, u64),
    Brk(usize, u64),
    Fork(usize),
    Exit(usize),
    DontNeed(usize, u64, u64),
    Protect(usize, u64, u64, bool),
    Munmap(usize, u64, u64),
}

/// A page of the heap: anywhere, or near one of the 2 MiB boundaries
/// (20, 532, 1044, 1556), where splits and partial ranges happen.
fn page() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0..MAX_PAGES,
        1 => 0..40u64,
        1 => 500..560u64,
        1 => 1020..1070u64,
        1 => 1540..MAX_PAGES,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..MAX_PROCS;
    prop_oneof![
        10 => (who.clone(), page(), 1..u64::MAX).prop_map(|(s, p, v)| Op::Write(s, p, v)),
        8 => (who.clone(), page()).prop_map(|(s, p)| Op::Read(s, p)),
        4 => (who.clone(), page()).prop_map(|(s, p)| Op::Brk(s, p)),
        2 => who.clone().prop_map(Op::Fork),
        1 => who.clone().prop_map(Op::Exit),
        1 => (who.clone(), page(), 1..600u64).prop_map(|(s, p, n)| Op::DontNeed(s, p, n)),
        2 => (who.clone(), page(), 1..600u64, any::<bool>())
            .prop_map(|(s, p, n, ro)| Op::Protect(s, p, n, ro)),
        1 => (who, page(), 1..40u64).prop_map(|(s, p, n)| Op::Munmap(s, p, n)),
    ]
}

fn va(page: u64) -> u64 {
    HEAP + page * PAGE
}

/// The frame that holds `page` in `p`'s page tables, if it is present.
fn frame(p: &Proc, page: u64) -> Option<(Pfn, bool)> {
    let addr = va(page);
    let m = p.space.pmap.query(addr)?;
    let pfn = if m.huge {
        Pfn(m.pfn.0 + (addr & (HUGE_PAGE - 1)) / PAGE)
    } else {
        m.pfn
    };
    Some((pfn, m.prot.write))
}

/// Fault until `access` to `page` may go ahead, as the CPU would retry it.
fn touch(p: &mut Proc, mem: &mut FakeMemory, page: u64, access: Access) -> Result<Pfn, FaultError> {
    for _ in 0..4 {
        match frame(p, page) {
            Some((pfn, writable)) if access == Access::Read || writable => return Ok(pfn),
            _ => {}
        }
        p.space.fault(mem, va(page), access)?;
    }
    panic!("page {page} still faults for {access:?}");
}

fn word(mem: &FakeMemory, pfn: Pfn) -> u64 {
    u64::from_le_bytes(mem.bytes(pfn)[..8].try_into().unwrap())
}

fn audit(p: &mut Proc, mem: &FakeMemory) -> Result<(), TestCaseError> {
    p.space.verify();
    prop_assert!(
        p.space.audit_frames(mem).is_ok(),
        "{:?}",
        p.space.audit_frames(mem)
    );
    prop_assert!(p.space.audit_rmap().is_ok(), "{:?}", p.space.audit_rmap());
    Ok(())
}

fn new_proc() -> Proc {
    let mut space = AddressSpace::new(FakePmap::default(), 0x7f00_0000_0000);
    space.thp = Mode::Always;
    space.set_brk_start(HEAP);
    Proc {
        space,
        brk: 0,
        words: BTreeMap::new(),
        read_only: BTreeSet::new(),
        holes: BTreeSet::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_forking_heap_keeps_every_word_and_every_frame(ops in prop::collection::vec(op(), 1..300)) {
        let mut mem = FakeMemory::new(1 << 16);
        let mut procs: Vec<Option<Proc>> = vec![Some(new_proc())];
        for op in ops {
            let who = match op {
                Op::Write(s, ..) | Op::Read(s, _) | Op::Brk(s, _) | Op::Fork(s) | Op::Exit(s)
                | Op::DontNeed(s, ..) | Op::Protect(s, ..) | Op::Munmap(s, ..) => s,
            };
            // The who-th live process (there is always one: the last stays).
            let live: Vec<usize> = (0..procs.len()).filter(|&i| procs[i].is_some()).collect();
            let who = live[who % live.len()];
            if matches!(op, Op::Exit(_)) && live.len() == 1 {
                continue;
            }
            let Some(Some(p)) = procs.get_mut(who) else { continue };
            match op {
                Op::Write(_, page, value) => {
                    let got = touch(p, &mut mem, page, Access::Write);
                    if !p.mapped(page) {
                        prop_assert_eq!(got, Err(FaultError::Segv(SegvCode::MapErr)), "page {}", page);
                    } else if p.read_only.contains(&page) {
                        prop_assert_eq!(got, Err(FaultError::Segv(SegvCode::AccErr)), "page {}", page);
                    } else {
                        let pfn = got.map_err(|e| TestCaseError::fail(format!("write {page}: {e:?}")))?;
                        mem.bytes_mut(pfn)[..8].copy_from_slice(&value.to_le_bytes());
                        p.words.insert(page, value);
                    }
                }
                Op::Read(_, page) => {
                    let got = touch(p, &mut mem, page, Access::Read);
                    if !p.mapped(page) {
                        prop_assert_eq!(got, Err(FaultError::Segv(SegvCode::MapErr)), "page {}", page);
                    } else {
                        let pfn = got.map_err(|e| TestCaseError::fail(format!("read {page}: {e:?}")))?;
                        let want = p.words.get(&page).copied().unwrap_or(0);
                        prop_assert_eq!(word(&mem, pfn), want, "space {} page {}", who, page);
                    }
                }
                Op::Brk(_, pages) => {
                    let got = p.space.brk(&mut mem, va(pages));
                    prop_assert_eq!(got, va(pages), "brk to page {}", pages);
                    if pages < p.brk {
                        p.drop_from(pages);
                    }
                    p.brk = pages;
                }
                Op::Fork(_) => {
                    let Some(slot) = procs.iter().position(Option::is_none).or(
                        (procs.len() < MAX_PROCS).then_some(procs.len())
                    ) else { continue };
                    let p = procs[who].as_mut().unwrap();
                    let pmap = FakePmap::on_machine_of(&p.space.pmap);
                    let space = p.space.fork(&mut mem, pmap).expect("fork");
                    let child = Proc {
                        space,
                        brk: p.brk,
                        words: p.words.clone(),
                        read_only: p.read_only.clone(),
                        holes: p.holes.clone(),
                    };
                    if slot == procs.len() {
                        procs.push(Some(child));
                    } else {
                        procs[slot] = Some(child);
                    }
                }
                Op::Exit(_) => {
                    audit(p, &mem)?;
                    p.space.clear(&mut mem);
                    procs[who] = None;
                }
                Op::DontNeed(_, page, n) => {
                    let end = (page + n).min(p.brk);
                    if page >= end || (page..end).any(|q| !p.mapped(q)) {
                        continue;
                    }
                    p.space.madvise(&mut mem, va(page), va(end), Madvice::DontNeed).expect("DONTNEED");
                    p.forget(page..end);
                }
                Op::Protect(_, page, n, ro) => {
                    let end = (page + n).min(p.brk);
                    if page >= end || (page..end).any(|q| !p.mapped(q)) {
                        continue;
                    }
                    let prot = if ro { Prot::READ } else { Prot::READ | Prot::WRITE };
                    p.space.mprotect(&mut mem, va(page), va(end), prot).expect("mprotect");
                    for q in page..end {
                        if ro {
                            p.read_only.insert(q);
                        } else {
                            p.read_only.remove(&q);
                        }
                    }
                }
                Op::Munmap(_, page, n) => {
                    let end = page + n;
                    p.space.munmap(&mut mem, va(page), va(end)).expect("munmap");
                    for q in page..end.min(p.brk) {
                        p.holes.insert(q);
                        p.words.remove(&q);
                        p.read_only.remove(&q);
                    }
                }
            }
        }
        // Every word still reads back, in every process left.
        for (who, p) in procs.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            audit(p, &mem)?;
            let words: Vec<(u64, u64)> = p.words.iter().map(|(&k, &v)| (k, v)).collect();
            for (page, want) in words {
                let pfn = touch(p, &mut mem, page, Access::Read)
                    .map_err(|e| TestCaseError::fail(format!("read {page}: {e:?}")))?;
                prop_assert_eq!(word(&mem, pfn), want, "at the end: space {} page {}", who, page);
            }
        }
        for p in procs.iter_mut().flatten() {
            p.space.clear(&mut mem);
        }
        prop_assert_eq!(mem.in_use(), 0, "frames left once every process is gone");
    }
}
