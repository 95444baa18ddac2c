//! The fake machine of the reclaim tests (`reclaim_model.rs`,
//! `madvise_pressure.rs`): processes with one private anonymous mapping
//! each, on `FakePmap`s that share one reverse map, `FakeMemory` with a
//! `FakeSwapSpace`, and reclaim (`vm::reclaim`) over all of them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use vm::clock::Clock;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap;
use vm::pmap::{PhysMem, Pmap};
use vm::reclaim::{Reclaim, Reclaimed, Spaces};
use vm::rmap::{Owner, SpaceId};
use vm::space::AddressSpace;
use vm::thp::Mode;
use vm::vm_fault::{Access, FaultError};
use vm::vma::{PAGE, Vma};

pub type Space = AddressSpace<FakePmap>;

/// Pages of each space's one mapping.
pub const PAGES: u64 = 24;
pub const TOP: u64 = 0x7f00_0000_0000;
/// Frames of the machine: fewer than two spaces' worth.
pub const FRAMES: usize = 20;
pub const SLOTS: u32 = 512;

/// A process of the model: its space, where its mapping is now, and the
/// first word of each page as it should read.
pub struct Proc {
    pub space: Space,
    pub base: u64,
    pub words: BTreeMap<u64, u64>,
    /// Pages given to MADV_FREE and not written since: each reads as its
    /// word or, once reclaim dropped it, zero.
    pub lazy: BTreeSet<u64>,
    pub locked: Vec<u64>,
}

pub struct Machine {
    pub procs: Vec<Option<Proc>>,
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

    /// As the kernel's: space by space, in address order.
    fn mapped_frames(&mut self, f: &mut dyn FnMut(Pfn)) {
        for p in self.procs.iter_mut().flatten() {
            p.space.mapped_frames(f);
        }
    }
}

pub fn reclaim(machine: &mut Machine, mem: &mut FakeMemory, clock: &mut Clock, want: usize) -> u64 {
    with_reclaim(machine, mem, clock, |r| r.reclaim(want)).freed
}

/// MADV_PAGEOUT of [start, end) in process `who`, as the kernel does it:
/// the checks, then reclaim.
pub fn page_out(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    who: usize,
    start: u64,
    end: u64,
) -> Reclaimed {
    let p = machine.procs[who].as_mut().expect("live");
    p.space
        .madvise(mem, start, end, mmap::Madvice::PageOut)
        .expect("madvise");
    let id = p.space.pmap.id();
    with_reclaim(machine, mem, clock, |r| r.page_out(id, start, end))
}

/// Run `f` on the machine's reclaim state.
pub fn with_reclaim(
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

pub fn new_proc(mem: &mut FakeMemory, machine: &Machine) -> Proc {
    new_proc_with(
        mem,
        machine,
        PAGES * PAGE,
        mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS,
    )
}

/// A process whose one anonymous mapping is `len` bytes, mapped with
/// mmap `flags`, under the default superpage policy (`Mode::Always`).
pub fn new_proc_with(mem: &mut FakeMemory, machine: &Machine, len: u64, flags: u64) -> Proc {
    let pmap = match machine.procs.iter().flatten().next() {
        Some(p) => FakePmap::on_machine_of(&p.space.pmap),
        None => FakePmap::default(),
    };
    let mut space = AddressSpace::new(pmap, TOP);
    space.thp = Mode::Always;
    let req = mmap::validate_mmap(0, len, 3, flags, -1, 0).expect("valid");
    let vma = Vma::for_request(&req).expect("anonymous");
    let base = space.mmap(mem, &req, vma).expect("mmap");
    Proc {
        space,
        base,
        words: BTreeMap::new(),
        lazy: BTreeSet::new(),
        locked: Vec::new(),
    }
}

/// Fault `va` in for `access`, reclaiming when memory is short, as the
/// kernel does before it asks the OOM killer. False when nothing helps.
pub fn fault_in(
    machine: &mut Machine,
    mem: &mut FakeMemory,
    clock: &mut Clock,
    who: usize,
    va: u64,
    access: Access,
) -> bool {
    for _ in 0..4 {
        let p = machine.procs[who].as_mut().expect("live");
        match p.space.fault(mem, va, access) {
            Ok(_) => return true,
            Err(FaultError::OutOfMemory) => {
                if reclaim(machine, mem, clock, 4) == 0 {
                    return false;
                }
            }
            Err(e) => panic!("fault at {va:#x}: {e:?}"),
        }
    }
    false
}

pub fn word_at(p: &Proc, mem: &FakeMemory, page: u64) -> u64 {
    let m = p.space.pmap.query(p.base + page * PAGE).expect("present");
    let mut bytes = [0; 8];
    mem.read(m.pfn, 0, &mut bytes);
    u64::from_le_bytes(bytes)
}
