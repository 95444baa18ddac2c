//! The reverse map (`vm/src/rmap.rs`) against the page tables: random
//! sequences of mmap, faults, fork, munmap, mprotect, madvise, truncate
//! and exit over several spaces of one fake machine leave the reverse map
//! recording exactly the present PTEs of the live spaces, and answering
//! "who maps this frame?" with exactly the spaces whose PTEs point at it.

use proptest::prelude::*;
use std::collections::BTreeSet;
use vm::fake::{FakeMemory, FakePmap};
use vm::mmap::{self, Prot};
use vm::pmap::Pmap;
use vm::rmap::Owner;
use vm::space::AddressSpace;
use vm::vm_fault::Access;
use vm::vm_object::ObjectRef;
use vm::vma::{HUGE_PAGE, PAGE, Vma};

type Space = AddressSpace<FakePmap>;
const TOP: u64 = 0x7f00_0000_0000;

#[derive(Clone, Debug)]
enum Op {
    /// Map `pages` pages of kind `kind` (0 private anon, 1 shared anon,
    /// 2 private file, 3 shared file, 4 private anon 4 MiB, 2 MiB pages).
    Map {
        space: usize,
        kind: u8,
        pages: u64,
    },
    /// Touch page `page` of region `region`.
    Touch {
        space: usize,
        region: usize,
        page: u64,
        write: bool,
    },
    Fork {
        space: usize,
    },
    Munmap {
        space: usize,
        region: usize,
        page: u64,
        pages: u64,
    },
    Mprotect {
        space: usize,
        region: usize,
        prot: u64,
    },
    DontNeed {
        space: usize,
        region: usize,
        page: u64,
        pages: u64,
    },
    Truncate {
        pages: u64,
    },
    Exit {
        space: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..4usize, 0..5u8, 1..8u64).prop_map(|(space, kind, pages)| Op::Map {
            space,
            kind,
            pages
        }),
        // Twice as likely as each other call.
        2 => (0..4usize, 0..8usize, 0..1024u64, any::<bool>()).prop_map(
            |(space, region, page, write)| Op::Touch {
                space,
                region,
                page,
                write
            }
        ),
        1 => (0..4usize).prop_map(|space| Op::Fork { space }),
        1 => (0..4usize, 0..8usize, 0..1024u64, 1..600u64).prop_map(|(space, region, page, pages)| {
            Op::Munmap {
                space,
                region,
                page,
                pages,
            }
        }),
        1 => (0..4usize, 0..8usize, 0..4u64).prop_map(|(space, region, prot)| Op::Mprotect {
            space,
            region,
            prot
        }),
        1 => (0..4usize, 0..8usize, 0..1024u64, 1..8u64).prop_map(|(space, region, page, pages)| {
            Op::DontNeed {
                space,
                region,
                page,
                pages,
            }
        }),
        1 => (0..8u64).prop_map(|pages| Op::Truncate { pages }),
        1 => (0..4usize).prop_map(|space| Op::Exit { space }),
    ]
}

struct Proc {
    space: Space,
    /// What it mapped: (start, pages).
    regions: Vec<(u64, u64)>,
}

struct Machine {
    mem: FakeMemory,
    file: ObjectRef,
    procs: Vec<Proc>,
}

impl Machine {
    fn region(&self, space: usize, region: usize) -> Option<(usize, u64, u64)> {
        let p = space % self.procs.len().max(1);
        let proc = self.procs.get(p)?;
        let &(start, pages) = proc.regions.get(region % proc.regions.len().max(1))?;
        Some((p, start, pages))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Map { space, kind, pages } => {
                if self.procs.is_empty() {
                    self.procs.push(Proc {
                        space: AddressSpace::new(FakePmap::default(), TOP),
                        regions: Vec::new(),
                    });
                }
                let p = space % self.procs.len();
                let (len, flags, file) = match kind {
                    0 => (pages * PAGE, mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS, false),
                    1 => (pages * PAGE, mmap::MAP_SHARED | mmap::MAP_ANONYMOUS, false),
                    2 => (pages * PAGE, mmap::MAP_PRIVATE, true),
                    3 => (pages * PAGE, mmap::MAP_SHARED, true),
                    _ => (
                        2 * HUGE_PAGE,
                        mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_ALIGNED_SUPER,
                        false,
                    ),
                };
                let fd = if file { 3 } else { -1 };
                let req = mmap::validate_mmap(0, len, 3, flags, fd, 0).expect("valid mmap");
                let vma = if file {
                    Vma::for_file(&req, self.file.clone(), Prot::all())
                } else {
                    Vma::for_request(&req).expect("anonymous")
                };
                let proc = &mut self.procs[p];
                if let Ok(start) = proc.space.mmap(&mut self.mem, &req, vma) {
                    proc.regions.push((start, len / PAGE));
                }
            }
            Op::Touch {
                space,
                region,
                page,
                write,
            } => {
                let Some((p, start, pages)) = self.region(space, region) else {
                    return;
                };
                let addr = start + (page % pages) * PAGE;
                let access = if write { Access::Write } else { Access::Read };
                let _ = self.procs[p].space.fault(&mut self.mem, addr, access);
            }
            Op::Fork { space } => {
                if self.procs.is_empty() || self.procs.len() >= 6 {
                    return;
                }
                let p = space % self.procs.len();
                let parent = &mut self.procs[p];
                let child_pmap = FakePmap::on_machine_of(&parent.space.pmap);
                if let Ok(child) = parent.space.fork(&mut self.mem, child_pmap) {
                    let regions = parent.regions.clone();
                    self.procs.push(Proc {
                        space: child,
                        regions,
                    });
                }
            }
            Op::Munmap {
                space,
                region,
                page,
                pages: n,
            } => {
                let Some((p, start, pages)) = self.region(space, region) else {
                    return;
                };
                let from = start + (page % pages) * PAGE;
                let _ = self.procs[p]
                    .space
                    .munmap(&mut self.mem, from, from + n * PAGE);
            }
            Op::Mprotect {
                space,
                region,
                prot,
            } => {
                let Some((p, start, pages)) = self.region(space, region) else {
                    return;
                };
                let (span, prot) =
                    mmap::validate_mprotect(start, pages * PAGE, prot).expect("valid");
                let _ = self.procs[p]
                    .space
                    .mprotect(&mut self.mem, span.start, span.end, prot);
            }
            Op::DontNeed {
                space,
                region,
                page,
                pages: n,
            } => {
                let Some((p, start, pages)) = self.region(space, region) else {
                    return;
                };
                let from = start + (page % pages) * PAGE;
                let (span, advice) = mmap::validate_madvise(from, n * PAGE, 4).expect("valid");
                let _ = self.procs[p]
                    .space
                    .madvise(&mut self.mem, span.start, span.end, advice);
            }
            Op::Truncate { pages } => {
                let size = pages * PAGE;
                self.file.set_size(size, &mut self.mem).expect("set_size");
                for id in self.file.mappers() {
                    let proc = self.procs.iter_mut().find(|p| p.space.pmap.id() == id);
                    let maps =
                        proc.map(|p| p.space.truncate_object(&mut self.mem, &self.file, size));
                    if maps != Some(true) {
                        self.file.forget_mapper(id);
                    }
                }
            }
            Op::Exit { space } => {
                if self.procs.is_empty() {
                    return;
                }
                let mut proc = self.procs.remove(space % self.procs.len());
                proc.space.clear(&mut self.mem);
            }
        }
    }

    /// The reverse map records exactly the present PTEs of the live spaces.
    fn check(&mut self) {
        let mut ptes = BTreeSet::new();
        for proc in &mut self.procs {
            proc.space
                .audit_rmap()
                .expect("rmap matches the page tables");
            let id = proc.space.pmap.id();
            for (&va, m) in &proc.space.pmap.ptes {
                if m.pfn.0 != 0 {
                    ptes.insert((m.pfn, Owner::new(id, va)));
                }
            }
        }
        let Some(first) = self.procs.first() else {
            return;
        };
        let mut recorded = BTreeSet::new();
        first
            .space
            .pmap
            .with_rmap(&mut |r| recorded = r.iter().collect());
        assert_eq!(
            recorded, ptes,
            "rmap == the present PTEs of every live space"
        );
        // "Who maps this frame?" answered from the map, for every frame.
        first.space.pmap.with_rmap(&mut |r| {
            for &(pfn, owner) in &ptes {
                assert!(r.owners(pfn).contains(&owner));
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn rmap_is_the_set_of_present_ptes(ops in proptest::collection::vec(op(), 1..40)) {
        let mut mem = FakeMemory::new(16 * 1024);
        let file = ObjectRef::new_file();
        file.write_at(0, &[7; 8 * PAGE as usize], &mut mem).unwrap();
        let mut m = Machine { mem, file, procs: Vec::new() };
        // Every space of the test lives on the first one's machine.
        let first = AddressSpace::new(FakePmap::default(), TOP);
        m.procs.push(Proc { space: first, regions: Vec::new() });
        for op in &ops {
            m.apply(op);
            // Spaces made by Map after every process exited join a new
            // machine: the checks below hold per machine just the same.
            m.check();
        }
        for mut proc in m.procs.drain(..) {
            proc.space.clear(&mut m.mem);
            proc.space.pmap.with_rmap(&mut |r| assert!(
                r.iter().all(|(_, o)| o.space() != proc.space.pmap.id())
            ));
        }
        m.file.release(&mut m.mem);
        prop_assert_eq!(m.mem.in_use(), 0);
    }
}
