//! An address space: the VMA tree (what should be mapped) over a `Pmap`
//! (what is mapped now). Every memory syscall and the fault handler are
//! operations on it, written once here and run both in the kernel and in
//! host tests against `fake::FakePmap`.
//!
//! Invariants kept by every operation:
//! - every present PTE lies inside a VMA and grants no more than the VMA's
//!   protection (copy-on-write pages are mapped read-only);
//! - the commit charge is the sum of `Vma::charge` over the tree;
//! - an operation that fails leaves the space as it was.

//!
//! One file per operation (Asterinas splits its VMAR the same way):
//!
//! | file | operations |
//! |------|------------|
//! | `map.rs` | placement, `map`, `mmap`, `populate` |
//! | `unmap.rs` | `munmap`, `clear` (exit, execve) |
//! | `protect.rs` | `mprotect`, `minherit` |
//! | `advise.rs` | `madvise`, `msync`, `mincore` |
//! | `lock.rs` | `mlock`, `munlock` |
//! | `remap.rs` | `mremap`: resizing in place, moving page-table entries |
//! | `brk.rs` | the program break |
//! | `stack.rs` | growing stacks (MAP_STACK, MAP_GROWSDOWN) |
//! | `huge.rs` | 2 MiB pages: split in place (at an edge, for copy-on-write) |
//! | `user.rs` | the kernel's access to user memory |
//!
//! The fault path is not here but in `vm_fault.rs`, next to the decision
//! table it carries out.
//!
//! This file holds the space itself and the checks every operation shares:
//! `covered` (no holes) and `map_count_room` (vm.max_map_count).

mod advise;
mod brk;
mod huge;
mod lock;
mod map;
mod pressure;
mod protect;
mod remap;
mod stack;
mod unmap;
mod user;

pub use pressure::PAGEOUT_BATCH;

use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{Mapping, PhysMem, Pmap, SharedPmap};
use crate::swap_map::Slot;
use crate::thp;
use crate::vm_map::VmaTree;
use crate::vma::Vma;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

/// mmap_min_addr: nothing is ever mapped below 64 KiB, so NULL-pointer
/// dereferences (even with an offset) always fault.
pub const USER_START: u64 = 0x1_0000;
/// The end of the user half, Linux's TASK_SIZE.
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// Linux's default vm.max_map_count.
pub const MAX_MAP_COUNT: usize = 65_530;
/// The limit in force: `sysctl.vm.max_map_count=N` on the kernel command
/// line changes it, as on Linux (the benchmark needs 100 000 VMAs).
static MAP_COUNT_LIMIT: AtomicUsize = AtomicUsize::new(MAX_MAP_COUNT);

/// Set vm.max_map_count for every address space.
pub fn set_max_map_count(limit: usize) {
    MAP_COUNT_LIMIT.store(limit, Ordering::Relaxed);
}

/// vm.max_map_count in force (/proc/sys/vm/max_map_count).
pub fn max_map_count() -> usize {
    MAP_COUNT_LIMIT.load(Ordering::Relaxed)
}

pub struct AddressSpace<P: Pmap> {
    pub pmap: P,
    // pub(crate): fork.rs copies the tree and the layout into a child;
    // pager.rs reads the tree.
    pub(crate) map: VmaTree<Vma>,
    /// Top-down placement starts below this (below the stack, randomised by ASLR).
    pub(crate) mmap_top: u64,
    pub(crate) brk_start: u64,
    pub(crate) brk: u64,
    /// The superpage policy of this space's faults (`thp`): the kernel's
    /// when the space was made, inherited by fork; tests set their own.
    pub thp: thp::Mode,
}

impl<P: Pmap> AddressSpace<P> {
    /// An empty space whose mmap placement starts below `mmap_top`.
    pub fn new(pmap: P, mmap_top: u64) -> Self {
        AddressSpace {
            pmap,
            map: VmaTree::new(),
            mmap_top,
            brk_start: 0,
            brk: 0,
            thp: thp::mode(),
        }
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.map.iter()
    }

    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map.find(addr)
    }

    pub fn vma_count(&self) -> usize {
        self.map.len()
    }

    /// Pages this space charges to the commit limit.
    pub fn charged_pages(&self) -> u64 {
        self.map.iter().map(Vma::charge).sum()
    }

    /// Check the VMA tree's invariants (debug builds call it after changes).
    pub fn verify(&self) {
        self.map.verify();
    }

    /// ENOMEM unless the tree has room for what an operation on [start, end)
    /// may make of it, never more than vm.max_map_count VMAs afterwards:
    /// one more for each edge that falls inside a VMA (Linux's split_vma),
    /// `added` new ones, less the ones in the range when the operation
    /// `removes` them. The one place the limit is checked.
    pub(super) fn map_count_room(
        &self,
        start: u64,
        end: u64,
        added: usize,
        removes: bool,
    ) -> Result<(), Errno> {
        let limit = max_map_count();
        if self.map.len() + 2 + added <= limit {
            return Ok(()); // room for the worst case: no need to look
        }
        let straddles = |at: u64| self.map.find(at).is_some_and(|v| v.start < at);
        let split = usize::from(straddles(start)) + usize::from(straddles(end));
        let gone = if removes {
            self.map.range(start, end).count()
        } else {
            0
        };
        if (self.map.len() + split + added).saturating_sub(gone) > limit {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Unmap every page of [start, end) from the page tables and give each
    /// frame's reference back, and each swapped-out page's slot; the VMAs
    /// stay (an object's 2 MiB entry across an edge is split, or taken
    /// whole: `object_huge_edges`).
    pub(crate) fn drop_pages(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) {
        let (start, end) = self.object_huge_edges(phys, start, end);
        let AddressSpace { pmap, map, .. } = self;
        drop_pages_of(
            phys,
            &mut Exclusive(pmap),
            &|va| map.find(va),
            start,
            end,
            None,
        );
    }

    /// Every frame the page tables map, in address order (a 2 MiB page
    /// once, its head frame): the clock's refill (`reclaim.rs`), so that
    /// the pages it lists, and then its victims and their swap slots, come
    /// in the order a program laid them out.
    pub fn mapped_frames(&mut self, f: &mut dyn FnMut(Pfn)) {
        self.pmap.visit(0, USER_END, &mut |_, m| f(m.pfn));
    }

    /// Pages of this space that are out in swap (the OOM killer's badness
    /// counts them with the resident ones; VmSwap).
    pub fn swapped_pages(&mut self) -> u64 {
        let mut pages = 0;
        self.pmap.visit_swap(0, USER_END, &mut |_, _| pages += 1);
        pages
    }

    /// ENOMEM unless every page of [start, end) lies in some VMA (mprotect,
    /// madvise, mincore, msync and mlock refuse holes, as Linux does).
    pub fn covered(&self, start: u64, end: u64) -> Result<(), Errno> {
        let mut at = start;
        for vma in self.map.range(start, end) {
            if vma.start > at {
                return Err(Errno::ENOMEM);
            }
            at = vma.end;
        }
        if at < end { Err(Errno::ENOMEM) } else { Ok(()) }
    }
}

/// How `drop_pages_of` changes the page tables: through `&mut Pmap`
/// under the write lock (`Exclusive`), or through `SharedPmap` under the
/// read lock (`Shared`: munmap's second half, unmap.rs).
pub(crate) trait PageTables {
    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping));
    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot));
}

pub(crate) struct Exclusive<'a, P>(pub(crate) &'a mut P);

impl<P: Pmap> PageTables for Exclusive<'_, P> {
    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        self.0.unmap_range(start, end, release)
    }
    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        self.0.clear_swap(start, end, release)
    }
}

pub(crate) struct Shared<'a, P>(pub(crate) &'a P);

impl<P: SharedPmap> PageTables for Shared<'_, P> {
    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        self.0.unmap_range_shared(start, end, release)
    }
    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        self.0.clear_swap_shared(start, end, release)
    }
}

/// Small pages an unmap gives back at once.
const PUT_BATCH: usize = 64;

/// At most this many frames wait in `kept` (a 256 KiB list, 128 MiB of
/// pages): a larger unmap gives the rest back at once, under the lock.
const KEPT_MAX: usize = 1 << 15;

/// `drop_pages`' work on [start, end), already widened to whole 2 MiB
/// object entries; `vma_of` names the VMA a 2 MiB entry belonged to (the
/// tree's, or those munmap took out of it). With `kept`, the small pages
/// whose last mapping went are pushed there instead of given back, for the
/// caller to give back once it let the address-space lock go
/// (`unmap::Unmapped`); as many as the heap makes room for, the rest at
/// once as without it.
pub(crate) fn drop_pages_of<'v>(
    phys: &mut dyn PhysMem,
    tables: &mut dyn PageTables,
    vma_of: &dyn Fn(u64) -> Option<&'v Vma>,
    start: u64,
    end: u64,
    mut kept: Option<&mut Vec<Pfn>>,
) {
    // Frames left with one reference may be the swap cache's alone,
    // kept for a slot no one holds now: those go (Linux's
    // free_swap_cache). Every cache entry holds a slot, so without
    // taken slots there is nothing to look for.
    let cached = phys.swap_used();
    let mut last_refs = Vec::new();
    // Small pages go back in batches (`PhysMem::put_many`), unless the
    // swap cache may hold them: its check needs each put done first.
    let mut batch = [Pfn(0); PUT_BATCH];
    let mut batched = 0;
    tables.unmap_range(start, end, &mut |va, m| {
        if m.huge {
            huge::note_pmd(vma_of(va), va, false);
        }
        if !cached && !m.huge {
            if let Some(kept) = kept.as_deref_mut()
                && kept.len() < KEPT_MAX
                && kept.try_reserve(1).is_ok()
            {
                kept.push(m.pfn);
                return;
            }
            batch[batched] = m.pfn;
            batched += 1;
            if batched == PUT_BATCH {
                phys.put_many(&batch);
                batched = 0;
            }
            return;
        }
        phys.put_mapping(&m);
        if cached && !m.huge && phys.refcount(m.pfn) == 1 {
            last_refs.push(m.pfn);
        }
    });
    phys.put_many(&batch[..batched]);
    for pfn in last_refs {
        phys.free_swap(pfn);
    }
    if phys.swap_used() {
        tables.clear_swap(start, end, &mut |_, slot| phys.swap_release(slot));
    }
}
