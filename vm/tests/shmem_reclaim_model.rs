//! Model test: pages of objects go to swap (vm/src/reclaim/objects.rs,
//! vm/src/vm_object/swap.rs) on the fake page tables. One shared anonymous
//! object mapped by a process and the children it forks, and one file
//! (a ramfs page cache) written with write() and mapped shared by them,
//! on a machine with fewer frames than the two hold: random stores,
//! loads, read(), write(), truncate, MADV_REMOVE (punched in every
//! space that maps the object, as the kernel does), mlock, fork, exit and
//! reclaim, checking that every word reads back as last written (zeros
//! where it never was, or was removed), locked pages stay, and once every
//! space and the file are gone no frame, slot or swap cache entry is left.
//! Then the 2 MiB case: a block mapped whole by two spaces is split and
//! goes out 4 KiB at a time.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vm::clock::{Clock, Policy};
use vm::errno::Errno;
use vm::fake::{CLOCK_FRAMES, FakeMemory, FakePmap, FakeSwapSpace};
use vm::frame::Pfn;
use vm::mmap::{self, Prot};
use vm::pmap::{PhysMem, Pmap};
use vm::reclaim::{Reclaim, Reclaimed, Spaces};
use vm::rmap::{Owner, SpaceId};
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, FaultError};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, HUGE_PAGE, PAGE, Vma};

type Space = AddressSpace<FakePmap>;

const TOP: u64 = 0x7f00_0000_0000;
/// Pages of the shared anonymous mapping and of the file (at most).
const PAGES: u64 = 40;
/// Fewer frames than the two objects' pages (the swap cache keeps up to
/// 16 pages read ahead).
const FRAMES: usize = 48;
const SLOTS: u32 = 512;

struct Proc {
    space: Space,
    shm: u64,
    file: u64,
    /// Pages of the shared anonymous mapping this process locked.
    locked: Vec<u64>,
}

struct Machine {
    procs: Vec<Option<Proc>>,
    /// The file's inode reference (None once unlinked).
    file: Option<ObjectRef>,
}

impl Spaces<FakePmap> for Machine {
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut Space)) -> bool {
        for p in self.procs.iter_mut().flatten() {
            if p.space.pmap.id() == id {
                f(&mut p.space);
                return true;
            }
        }
        false
    }

    fn owners(&mut self, pfn: Pfn) -> Vec<Owner> {
        let mut owners = Vec::new();
        if let Some(p) = self.procs.iter().flatten().next() {
            p.space
                .pmap
                .with_rmap(&mut |r| owners = r.owners(pfn).to_vec());
        }
        owners
    }

    fn mapped_frames(&mut self, f: &mut dyn FnMut(Pfn)) {
        for p in self.procs.iter_mut().flatten() {
            p.space.mapped_frames(f);
        }
    }

    fn objects(&mut self, f: &mut dyn FnMut(&ObjectRef)) {
        for p in self.procs.iter().flatten() {
            for vma in p.space.vmas() {
                if let Backing::Object { object, .. } = &vma.backing {
                    f(object);
                }
            }
        }
        if let Some(file) = &self.file {
            f(file);
        }
    }
}

fn with_reclaim(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    f: impl FnOnce(&mut Reclaim<'_, FakePmap>) -> Reclaimed,
) -> Reclaimed {
    assert!(
        mem.frame_numbers() <= clock.frames(),
        "the clock does not cover every frame"
    );
    let mut swap = mem.swap.take().expect("swap");
    let done = f(&mut Reclaim {
        clock,
        cache: &mut swap.cache,
        dev: &mut swap.dev,
        phys: mem,
        spaces: machine,
    });
    mem.swap = Some(swap);
    done
}

fn reclaim(machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock, want: usize) -> u64 {
    with_reclaim(machine, mem, clock, |r| r.reclaim(want)).freed
}

fn space(machine: &Machine, mode: Mode) -> Space {
    let pmap = match machine.procs.iter().flatten().next() {
        Some(p) => FakePmap::on_machine_of(&p.space.pmap),
        None => FakePmap::default(),
    };
    let mut space = AddressSpace::new(pmap, TOP);
    space.thp = mode;
    space
}

fn map_shared_anon(space: &mut Space, mem: &mut FakeMemory, len: u64) -> u64 {
    let flags = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
    let req = mmap::validate_mmap(0, len, 3, flags, -1, 0).expect("valid");
    let vma = Vma::for_request(&req).expect("anonymous");
    space.mmap(mem, &req, vma).expect("mmap")
}

fn map_file(space: &mut Space, mem: &mut FakeMemory, file: &ObjectRef, len: u64) -> u64 {
    let req = mmap::validate_mmap(0, len, 3, mmap::MAP_SHARED, 3, 0).expect("valid");
    let vma = Vma::for_file(&req, file.clone(), Prot::all());
    space.mmap(mem, &req, vma).expect("mmap")
}

/// Make `va` accessible for `access` in process `who`, reclaiming when
/// memory is short as the kernel does. The frame and whether it worked
/// (false: nothing helps, or past the end of the file: SIGBUS).
fn fault_in(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    who: usize,
    va: u64,
    access: Access,
) -> Option<Pfn> {
    for _ in 0..6 {
        let p = machine.procs[who].as_mut().expect("live");
        if let Some(m) = p.space.pmap.query(va)
            && m.prot.user
            && (access != Access::Write || m.prot.write)
        {
            return Some(if m.huge {
                Pfn(m.pfn.0 + (va % HUGE_PAGE) / PAGE)
            } else {
                m.pfn
            });
        }
        match p.space.fault(mem, va, access) {
            Ok(_) => {}
            Err(FaultError::OutOfMemory) => {
                if reclaim(machine, mem, clock, 4) == 0 {
                    return None;
                }
            }
            Err(FaultError::Bus) => return None,
            Err(e) => panic!("fault at {va:#x}: {e:?}"),
        }
    }
    None
}

fn word(mem: &FakeMemory, pfn: Pfn) -> u64 {
    let mut bytes = [0; 8];
    mem.read(pfn, 0, &mut bytes);
    u64::from_le_bytes(bytes)
}

/// write() of one word at the start of file page `page`, reclaiming when
/// memory is short (the kernel's ramfs does).
fn file_write(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    page: u64,
    value: u64,
) -> bool {
    let file = machine.file.clone().expect("file");
    for _ in 0..6 {
        match file.write_at(page * PAGE, &value.to_le_bytes(), mem) {
            Ok(8) => return true,
            Ok(_) | Err(Errno::ENOSPC) | Err(Errno::ENOMEM) => {
                if reclaim(machine, mem, clock, 8) == 0 {
                    return false;
                }
            }
            Err(e) => panic!("write_at: {e:?}"),
        }
    }
    false
}

/// read() of the first word of file page `page`: None past the end.
fn file_read(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    page: u64,
) -> Option<u64> {
    let file = machine.file.clone().expect("file");
    for _ in 0..6 {
        let mut buf = [0u8; 8];
        match file.read_at(page * PAGE, &mut buf, mem) {
            Ok(8) => return Some(u64::from_le_bytes(buf)),
            Ok(_) => return None,
            Err(Errno::ENOMEM) => {
                if reclaim(machine, mem, clock, 4) == 0 {
                    return None;
                }
            }
            Err(e) => panic!("read_at: {e:?}"),
        }
    }
    None
}

#[derive(Clone, Debug)]
enum Op {
    ShmStore(usize, u64, u64),
    ShmLoad(usize, u64),
    FileStore(usize, u64, u64),
    FileLoad(usize, u64),
    Write(u64, u64),
    Read(u64),
    Truncate(u64),
    Remove(usize, u64, u64),
    Lock(usize, u64, u64),
    Touch(usize, u64),
    Reclaim(usize),
    Fork(usize),
    Exit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..4usize;
    prop_oneof![
        6 => (s.clone(), 0..PAGES, 1..u64::MAX).prop_map(|(s, p, v)| Op::ShmStore(s, p, v)),
        5 => (s.clone(), 0..PAGES).prop_map(|(s, p)| Op::ShmLoad(s, p)),
        3 => (s.clone(), 0..PAGES, 1..u64::MAX).prop_map(|(s, p, v)| Op::FileStore(s, p, v)),
        3 => (s.clone(), 0..PAGES).prop_map(|(s, p)| Op::FileLoad(s, p)),
        6 => (0..PAGES, 1..u64::MAX).prop_map(|(p, v)| Op::Write(p, v)),
        4 => (0..PAGES).prop_map(Op::Read),
        1 => (0..PAGES).prop_map(Op::Truncate),
        1 => (s.clone(), 0..PAGES, 1..4u64).prop_map(|(s, p, n)| Op::Remove(s, p, n)),
        1 => (s.clone(), 0..PAGES, 1..3u64).prop_map(|(s, p, n)| Op::Lock(s, p, n)),
        2 => (s.clone(), 0..PAGES).prop_map(|(s, p)| Op::Touch(s, p)),
        5 => (1..12usize).prop_map(Op::Reclaim),
        1 => s.clone().prop_map(Op::Fork),
        1 => s.prop_map(Op::Exit),
    ]
}

/// The model: the first word of each page of the shared anonymous object
/// and of the file, and the file's size in pages.
#[derive(Default)]
struct Model {
    shm: BTreeMap<u64, u64>,
    file: BTreeMap<u64, u64>,
    file_pages: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn shared_pages_read_back_through_swap_and_nothing_leaks(
        ops in prop::collection::vec(op(), 1..150)
    ) {
        let mut mem = FakeMemory::new(FRAMES);
        mem.swap = Some(FakeSwapSpace::new(SLOTS));
        let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
        let file = ObjectRef::new_file();
        let mut machine = Machine { procs: Vec::new(), file: Some(file.clone()) };
        let mut first = space(&machine, Mode::Always);
        let shm = map_shared_anon(&mut first, &mut mem, PAGES * PAGE);
        let fmap = map_file(&mut first, &mut mem, &file, PAGES * PAGE);
        machine.procs.push(Some(Proc { space: first, shm, file: fmap, locked: Vec::new() }));
        let mut model = Model::default();
        let live = |machine: &Machine, s: usize| machine.procs.get(s).is_some_and(Option::is_some);
        for op in ops {
            match op {
                Op::ShmStore(s, page, value) => {
                    if !live(&machine, s) { continue }
                    let va = machine.procs[s].as_ref().expect("live").shm + page * PAGE;
                    let Some(pfn) = fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Write)
                    else { continue };
                    mem.write(pfn, 0, &value.to_le_bytes());
                    model.shm.insert(page, value);
                }
                Op::ShmLoad(s, page) => {
                    if !live(&machine, s) { continue }
                    let va = machine.procs[s].as_ref().expect("live").shm + page * PAGE;
                    let Some(pfn) = fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read)
                    else { continue };
                    let want = model.shm.get(&page).copied().unwrap_or(0);
                    prop_assert_eq!(word(&mem, pfn), want, "shared page {} in {}", page, s);
                }
                Op::FileStore(s, page, value) => {
                    if !live(&machine, s) || page >= model.file_pages { continue }
                    let va = machine.procs[s].as_ref().expect("live").file + page * PAGE;
                    let Some(pfn) = fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Write)
                    else { continue };
                    mem.write(pfn, 0, &value.to_le_bytes());
                    model.file.insert(page, value);
                }
                Op::FileLoad(s, page) => {
                    if !live(&machine, s) { continue }
                    let va = machine.procs[s].as_ref().expect("live").file + page * PAGE;
                    let got = fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read);
                    if page >= model.file_pages {
                        prop_assert!(got.is_none(), "file page {} past the end mapped", page);
                        continue;
                    }
                    let Some(pfn) = got else { continue };
                    let want = model.file.get(&page).copied().unwrap_or(0);
                    prop_assert_eq!(word(&mem, pfn), want, "mapped file page {} in {}", page, s);
                }
                Op::Write(page, value) => {
                    if file_write(&mut machine, &mut mem, &mut clock, page, value) {
                        model.file.insert(page, value);
                        // The rest of a page the file grows into reads as zeros.
                        model.file_pages = model.file_pages.max(page + 1);
                    }
                }
                Op::Read(page) => {
                    let got = file_read(&mut machine, &mut mem, &mut clock, page);
                    if page < model.file_pages && let Some(got) = got {
                        let want = model.file.get(&page).copied().unwrap_or(0);
                        prop_assert_eq!(got, want, "read() of file page {}", page);
                    }
                }
                Op::Truncate(pages) => {
                    file.set_size(pages * PAGE, &mut mem).expect("set_size");
                    for p in machine.procs.iter_mut().flatten() {
                        p.space.truncate_object(&mut mem, &file, pages * PAGE);
                    }
                    model.file.retain(|&page, _| page < pages);
                    model.file_pages = pages;
                }
                Op::Remove(s, page, n) => {
                    // As the kernel's MADV_REMOVE: the caller's checks,
                    // then the hole punched in every space that maps the
                    // object (`proc::punch_object`), then freed.
                    let Some(Some(p)) = machine.procs.get(s) else { continue };
                    let end = (page + n).min(PAGES);
                    let (a, b) = (p.shm + page * PAGE, p.shm + end * PAGE);
                    let Ok(holes) = p.space.holes_to_punch(a, b) else { continue };
                    for (object, first, last) in holes {
                        for q in machine.procs.iter_mut().flatten() {
                            q.space.punch_object(&mut mem, &object, first, last);
                        }
                        object.discard(first, last, &mut mem);
                    }
                    for q in page..end {
                        model.shm.remove(&q);
                    }
                }
                Op::Lock(s, page, n) => {
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let end = (page + n).min(PAGES);
                    let (a, b) = (p.shm + page * PAGE, p.shm + end * PAGE);
                    if p.space.mlock(&mut mem, a, b, true).is_ok() {
                        p.locked.extend(page..end);
                    }
                }
                Op::Touch(s, page) => {
                    if let Some(Some(p)) = machine.procs.get_mut(s) {
                        p.space.pmap.touch(p.shm + page * PAGE);
                    }
                }
                Op::Reclaim(n) => {
                    // A page a locked mapping maps stays mapped.
                    let mapped = |machine: &Machine| -> Vec<(usize, u64)> {
                        let mut out = Vec::new();
                        for (s, p) in machine.procs.iter().enumerate() {
                            let Some(p) = p else { continue };
                            for &page in &p.locked {
                                if p.space.pmap.query(p.shm + page * PAGE).is_some() {
                                    out.push((s, page));
                                }
                            }
                        }
                        out
                    };
                    let before = mapped(&machine);
                    reclaim(&mut machine, &mut mem, &mut clock, n);
                    prop_assert_eq!(mapped(&machine), before, "a locked shared page was taken");
                }
                Op::Fork(s) => {
                    if machine.procs.len() >= 5 { continue }
                    let Some(Some(p)) = machine.procs.get_mut(s) else { continue };
                    let pmap = FakePmap::on_machine_of(&p.space.pmap);
                    let Ok(child) = p.space.fork(&mut mem, pmap) else { continue };
                    // The child maps its shared pages as it faults them,
                    // locked as they come (pageos's fork keeps mlock).
                    let (shm, fmap, locked) = (p.shm, p.file, p.locked.clone());
                    machine.procs.push(Some(Proc { space: child, shm, file: fmap, locked }));
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
        // Everything reads back after one more round of reclaim, through
        // read() for the file and a mapping for shared memory.
        reclaim(&mut machine, &mut mem, &mut clock, FRAMES);
        for page in 0..model.file_pages {
            let Some(got) = file_read(&mut machine, &mut mem, &mut clock, page) else { continue };
            let want = model.file.get(&page).copied().unwrap_or(0);
            prop_assert_eq!(got, want, "at the end: read() of file page {}", page);
        }
        if let Some(s) = (0..machine.procs.len()).find(|&s| live(&machine, s)) {
            for page in 0..PAGES {
                let va = machine.procs[s].as_ref().expect("live").shm + page * PAGE;
                let Some(pfn) = fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read)
                else { continue };
                let want = model.shm.get(&page).copied().unwrap_or(0);
                prop_assert_eq!(word(&mem, pfn), want, "at the end: shared page {}", page);
            }
        }
        for slot in machine.procs.iter_mut() {
            if let Some(mut p) = slot.take() {
                p.space.clear(&mut mem);
            }
        }
        machine.file.take().expect("file").release(&mut mem);
        file.release(&mut mem);
        let swap = mem.swap.as_ref().expect("swap");
        prop_assert_eq!(swap.dev.map.used(), 0, "slots leaked");
        prop_assert!(swap.cache.is_empty(), "swap cache entries left");
        prop_assert_eq!(mem.in_use(), 0, "frames leaked");
    }
}

/// A file larger than memory written with write() and never mapped goes
/// to swap, and reads back whole; truncate frees its slots.
#[test]
fn a_file_written_with_write_larger_than_memory_goes_to_swap() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let file = ObjectRef::new_file();
    let mut machine = Machine {
        procs: Vec::new(),
        file: Some(file.clone()),
    };
    let pages = 3 * FRAMES as u64;
    for page in 0..pages {
        assert!(file_write(
            &mut machine,
            &mut mem,
            &mut clock,
            page,
            page + 1
        ));
    }
    assert!(file.swapped_pages() >= pages - FRAMES as u64);
    for page in 0..pages {
        let got = file_read(&mut machine, &mut mem, &mut clock, page);
        assert_eq!(got, Some(page + 1), "page {page}");
    }
    let swap = mem.swap.as_ref().expect("swap");
    assert!(swap.dev.writes >= pages - FRAMES as u64 && swap.dev.reads > 0);
    file.set_size(0, &mut mem).expect("truncate");
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!((swap.dev.map.used(), swap.cache.len()), (0, 0));
    drop(machine);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

/// A 2 MiB block of shared anonymous memory mapped whole by a parent and
/// its child: reclaim splits both entries, breaks the block, and its pages
/// go out 4 KiB at a time; both sides read every word back, one frame per
/// page for both.
#[test]
fn a_shared_2mib_block_mapped_whole_is_split_before_page_out() {
    let frames = 3 * 512;
    let mut mem = FakeMemory::new(frames);
    mem.swap = Some(FakeSwapSpace::new(4096));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let mut machine = Machine {
        procs: Vec::new(),
        file: None,
    };
    let mut parent = space(&machine, Mode::Always);
    let base = map_shared_anon(&mut parent, &mut mem, HUGE_PAGE);
    machine.procs.push(Some(Proc {
        space: parent,
        shm: base,
        file: 0,
        locked: Vec::new(),
    }));
    for page in 0..512 {
        let pfn = fault_in(
            &mut machine,
            &mut mem,
            &mut clock,
            0,
            base + page * PAGE,
            Access::Write,
        )
        .expect("fault");
        mem.write(pfn, 0, &(page + 100).to_le_bytes());
    }
    let p = machine.procs[0].as_mut().expect("live");
    assert!(
        p.space.pmap.query(base).expect("mapped").huge,
        "one 2 MiB entry"
    );
    let pmap = FakePmap::on_machine_of(&p.space.pmap);
    let child = p.space.fork(&mut mem, pmap).expect("fork");
    let object = match &p.space.find(base).expect("vma").backing {
        Backing::Object { object, .. } => object.clone(),
        _ => unreachable!(),
    };
    machine.procs.push(Some(Proc {
        space: child,
        shm: base,
        file: 0,
        locked: Vec::new(),
    }));
    // The child maps the block whole at its first touch.
    fault_in(&mut machine, &mut mem, &mut clock, 1, base, Access::Read).expect("fault");
    assert_eq!(object.pmd_maps(0), 2);
    // Twice: the first round finds the pages accessed.
    let freed: u64 = (0..3)
        .map(|_| reclaim(&mut machine, &mut mem, &mut clock, 300))
        .sum();
    assert!(freed >= 300, "freed {freed}");
    assert_eq!((object.huge_blocks(), object.pmd_maps(0)), (0, 0));
    assert!(object.swapped_pages() >= 300);
    for s in [1, 0] {
        for page in 0..512 {
            let va = base + page * PAGE;
            let pfn =
                fault_in(&mut machine, &mut mem, &mut clock, s, va, Access::Read).expect("fault");
            assert_eq!(word(&mem, pfn), page + 100, "space {s} page {page}");
        }
    }
    let frame = |machine: &Machine, s: usize, page: u64| {
        let p = machine.procs[s].as_ref().expect("live");
        p.space.pmap.query(base + page * PAGE).expect("mapped").pfn
    };
    assert_eq!(frame(&machine, 0, 7), frame(&machine, 1, 7), "one frame");
    drop(object);
    for slot in machine.procs.iter_mut() {
        slot.take().expect("live").space.clear(&mut mem);
    }
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(
        (swap.dev.map.used(), swap.cache.len(), mem.in_use()),
        (0, 0, 0)
    );
}

/// A shared page out in swap comes back at the first mapper's fault, a
/// major fault (`read`), and the second mapper's fault finds the same
/// frame in the object: one slot, one frame, one read.
#[test]
fn a_swapped_shared_page_is_read_once_for_every_mapper() {
    let mut mem = FakeMemory::new(64);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let mut machine = Machine {
        procs: Vec::new(),
        file: None,
    };
    let mut parent = space(&machine, Mode::Never);
    let base = map_shared_anon(&mut parent, &mut mem, 8 * PAGE);
    machine.procs.push(Some(Proc {
        space: parent,
        shm: base,
        file: 0,
        locked: Vec::new(),
    }));
    let pfn = fault_in(&mut machine, &mut mem, &mut clock, 0, base, Access::Write).expect("fault");
    mem.write(pfn, 0, &42u64.to_le_bytes());
    let p = machine.procs[0].as_mut().expect("live");
    let pmap = FakePmap::on_machine_of(&p.space.pmap);
    let child = p.space.fork(&mut mem, pmap).expect("fork");
    let object = match &p.space.find(base).expect("vma").backing {
        Backing::Object { object, .. } => object.clone(),
        _ => unreachable!(),
    };
    machine.procs.push(Some(Proc {
        space: child,
        shm: base,
        file: 0,
        locked: Vec::new(),
    }));
    // The first round clears the accessed bit, the second takes the page.
    for _ in 0..2 {
        reclaim(&mut machine, &mut mem, &mut clock, 1);
    }
    assert!(object.slot_at(0).is_some(), "out in swap");
    assert!(
        machine.procs[0]
            .as_ref()
            .expect("live")
            .space
            .pmap
            .query(base)
            .is_none()
    );
    let reads = mem.swap.as_ref().expect("swap").dev.reads;
    let first = machine.procs[1]
        .as_mut()
        .expect("live")
        .space
        .fault(&mut mem, base, Access::Read);
    assert!(
        matches!(
            first,
            Ok(vm::vm_fault::Resolution::ObjectPage { read: 1.., .. })
        ),
        "{first:?}"
    );
    let second = machine.procs[0]
        .as_mut()
        .expect("live")
        .space
        .fault(&mut mem, base, Access::Read);
    assert!(
        matches!(
            second,
            Ok(vm::vm_fault::Resolution::ObjectPage { read: 0, .. })
        ),
        "{second:?}"
    );
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(swap.dev.reads, reads + 1, "read once");
    assert_eq!(object.slot_at(0), None, "the slot went with the read");
    let frame = |machine: &Machine, s: usize| {
        machine.procs[s]
            .as_ref()
            .expect("live")
            .space
            .pmap
            .query(base)
            .expect("mapped")
            .pfn
    };
    assert_eq!(frame(&machine, 0), frame(&machine, 1), "one frame");
    assert_eq!(word(&mem, frame(&machine, 0)), 42);
    drop(object);
    for slot in machine.procs.iter_mut() {
        slot.take().expect("live").space.clear(&mut mem);
    }
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!(
        (swap.dev.map.used(), swap.cache.len(), mem.in_use()),
        (0, 0, 0)
    );
}

/// Object pages between their page-out and the end of their write (the
/// kernel's page-out daemon writes with no lock held) are in the swap
/// cache: read() finds the page there without the disk and the object
/// takes a copy (the disk may be reading the cached frame, which goes
/// when its write is done); a write() after that changes the copy alone.
#[test]
fn a_file_page_under_writeback_is_read_from_the_swap_cache() {
    let mut mem = FakeMemory::new(FRAMES);
    mem.swap = Some(FakeSwapSpace::new(SLOTS));
    let mut clock = Clock::new(Policy::Clock, CLOCK_FRAMES);
    let file = ObjectRef::new_file();
    let mut machine = Machine {
        procs: Vec::new(),
        file: Some(file.clone()),
    };
    let pages = FRAMES as u64 / 2;
    for page in 0..pages {
        assert!(file_write(
            &mut machine,
            &mut mem,
            &mut clock,
            page,
            page + 1
        ));
    }
    let mut swap = mem.swap.take().expect("swap");
    let (_, wb) = Reclaim {
        clock: &mut clock,
        cache: &mut swap.cache,
        dev: &mut swap.dev,
        phys: &mut mem,
        spaces: &mut machine,
    }
    .unmap_victims(4);
    mem.swap = Some(swap);
    assert!(!wb.is_empty());
    let queued: Vec<u64> = (0..pages).filter(|&p| file.slot_at(p).is_some()).collect();
    assert_eq!(queued.len(), wb.len());
    let page = queued[0];
    let swap = mem.swap.as_ref().expect("swap");
    let cached = swap
        .cache
        .frame_of(file.slot_at(page).expect("out"))
        .expect("cached");
    assert_eq!((swap.dev.writes, swap.dev.reads), (0, 0));
    assert_eq!(
        file_read(&mut machine, &mut mem, &mut clock, page),
        Some(page + 1)
    );
    assert!(file_write(&mut machine, &mut mem, &mut clock, page, 99));
    assert_eq!(
        mem.swap.as_ref().expect("swap").dev.reads,
        0,
        "found in the cache"
    );
    assert_eq!(
        word(&mem, cached),
        page + 1,
        "the cached frame is left alone"
    );
    let mut swap = mem.swap.take().expect("swap");
    let results = wb.write(&mut swap.dev, &mut mem);
    let done = swap.cache.written(&mut swap.dev, &mut mem, results);
    mem.swap = Some(swap);
    assert_eq!(done.written, queued.len() as u64);
    assert_eq!(
        done.freed,
        queued.len() as u64,
        "the read page's cached frame went too"
    );
    assert_eq!(mem.swap.as_ref().expect("swap").cache.len(), 0);
    for p in 0..pages {
        let want = if p == page { 99 } else { p + 1 };
        assert_eq!(
            file_read(&mut machine, &mut mem, &mut clock, p),
            Some(want),
            "page {p}"
        );
    }
    file.set_size(0, &mut mem).expect("truncate");
    let swap = mem.swap.as_ref().expect("swap");
    assert_eq!((swap.dev.map.used(), swap.cache.len()), (0, 0));
    drop(machine);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}
