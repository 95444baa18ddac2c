//! pmap: the machine-dependent page tables (FreeBSD's name).
//!
//! Each address space has its own level-4 table. Entries 0..256 (the lower,
//! user half) are private; entries 256..512 (the kernel half) are copied from
//! the kernel's own L4 when the space is created and never change afterwards,
//! so every process sees the same kernel. pmap only edits entries and
//! flushes the TLB: which frame goes where, and why, is the VM layer's call.
//!
//! A present user PTE owns one reference to its frame (see `phys::Frame`):
//! `enter` takes a `Frame`, `unmap_range` gives it back, and tearing a space
//! down drops every reference its tables still hold.
//!
//! The pieces: `walk` (the one table walker, and the only `unsafe` that
//! touches tables), `entry` (PTE bits ↔ the VM layer's `Mapping`),
//! `vm_layer` (the `vm::pmap::Pmap` operations), `kernel_half` (the
//! mappings every space shares), `relocate` (mremap's move of entries),
//! `rmap` (the machine's reverse map, kept
//! by every operation here that makes a user PTE present or clears one),
//! `shared` (the entries a fault makes under the address-space read lock)
//! and `ptlock` (the split page-table lock they take).
//!
//! Who may walk a space's tables (DESIGN §6): an operation through
//! `&mut Pmap` has them to itself (the address-space write lock, or a
//! space no one else can reach yet); one through `&Pmap` shares them with
//! the other holders of the read lock, and so changes them only under the
//! page-table locks (`ptlock.rs`) and reads them with atomic loads
//! (`shared.rs`), or only reads them with no read-lock holder about (the
//! `&self` queries of the write-lock holder).

mod entry;
mod kernel_half;
pub mod lab7;
mod ptlock;
mod relocate;
pub mod rmap;
mod shared;
mod split;
mod vm_layer;
mod walk;

pub use kernel_half::{activate_kernel, init, load_kernel_l4, map_kernel, map_kernel_mmio};
pub use walk::table_frames;

use crate::arch::ipi::{self, CpuSet, Request};
use crate::arch::percpu::{self, MAX_CPUS};
use crate::phys::{self, Frame};
use crate::vmstat::Event;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use vm::frame::Pfn;
use vm::rmap::{Owner, SpaceId};
use walk::{FLUSH_ALL_THRESHOLD, Visited, Visitor, Walk};
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{Page, PageTableFlags as Flags, PhysFrame};

/// The first L4 slot of the kernel half.
const KERNEL_HALF: usize = 256;
/// The end of the user half: the walks of a whole space stop here.
const USER_END: u64 = 1 << 47;
/// The flags of the tables above a user leaf: the leaf decides the rights.
const USER_TABLE: Flags = Flags::PRESENT
    .union(Flags::WRITABLE)
    .union(Flags::USER_ACCESSIBLE);

/// Every page-table lock of a space, held (`Pmap::lock_tables`).
struct PtHeld<'a> {
    _guard: ptlock::AllHeld<'a>,
    of: &'a Pmap,
}

#[repr(align(64))]
struct PerCpuPages(AtomicI64);

/// One address space's page tables.
pub struct Pmap {
    l4: PhysFrame,
    /// 4 KiB pages mapped now (VmRSS), counted on the CPU that mapped or
    /// unmapped them: faults under the read lock add to their own CPU's
    /// line, not to one that every CPU of the space writes. One CPU's
    /// count may go below zero (pages mapped on one CPU, unmapped on
    /// another); the sum is the resident set. Linux splits its RSS
    /// counters per thread for the same reason.
    resident: [PerCpuPages; MAX_CPUS],
    /// The most ever mapped at once (VmHWM, ru_maxrss).
    peak: AtomicU64,
    /// The split page-table lock: the faults that share the tables under
    /// the address-space read lock take a slot's (`ptlock.rs`, `shared.rs`).
    locks: ptlock::PtLocks,
}

impl Pmap {
    /// A new address space: empty user half, the shared kernel half.
    /// None when there is no frame for the L4.
    pub fn new() -> Option<Pmap> {
        let l4 = walk::alloc_table()?.into_raw();
        kernel_half::share(l4);
        Some(Pmap {
            l4,
            resident: [const { PerCpuPages(AtomicI64::new(0)) }; MAX_CPUS],
            peak: AtomicU64::new(0),
            locks: ptlock::PtLocks::new(),
        })
    }

    /// Pages mapped now (the resident set) and the most ever mapped at once.
    pub fn resident_pages(&self) -> u64 {
        let sum: i64 = self
            .resident
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum();
        // Never below zero (a count that went wrong must not wrap).
        sum.max(0) as u64
    }

    pub fn peak_pages(&self) -> u64 {
        self.peak.load(Ordering::Relaxed).max(self.resident_pages())
    }

    /// This space's name in the reverse map: its L4's frame number.
    pub fn id(&self) -> SpaceId {
        let pfn = self.l4.start_address().as_u64() / 4096;
        assert!(pfn < 1 << SpaceId::BITS, "pmap: an L4 above 1 TiB");
        SpaceId(pfn as u32)
    }

    fn owner(&self, va: u64) -> Owner {
        Owner::new(self.id(), va)
    }

    /// This CPU's count of the resident set.
    fn my_count(&self) -> &AtomicI64 {
        &self.resident[percpu::this().index()].0
    }

    fn count_mapped(&self, pages: u64) {
        // The peak follows at the next unmap (and `peak_pages` looks at
        // the count now): no shared line written per fault.
        self.my_count().fetch_add(pages as i64, Ordering::Relaxed);
    }

    fn count_unmapped(&self, pages: u64) {
        // The count only falls here, so its highest value so far is the
        // one just before some fall, or the one now (Linux's hiwater_rss,
        // updated before each unmap the same way).
        let before = self.resident_pages();
        self.my_count().fetch_sub(pages as i64, Ordering::Relaxed);
        self.peak.fetch_max(before, Ordering::Relaxed);
    }

    /// Make this the address space the CPU translates through. The CPU
    /// records it (`PerCpu::user_tables`): from now on this space's
    /// shootdowns reach it, until it loads other tables.
    pub fn activate(&self) {
        if !self.is_active() {
            crate::vmstat::count(Event::Cr3Load, 1);
            percpu::this().set_user_tables(self.l4.start_address().as_u64());
            // SAFETY: the kernel half is identical in every L4, so the code
            // running now stays mapped across the switch.
            unsafe { Cr3::write(self.l4, Cr3Flags::empty()) };
        }
    }

    /// The CPUs other than this one that have this space loaded: those
    /// whose TLBs may hold its translations (a CPU that loaded other
    /// tables since holds none: no PCIDs, no global user pages).
    fn active_elsewhere(&self) -> CpuSet {
        let l4 = self.l4.start_address().as_u64();
        let me = percpu::this().index();
        let mut set = CpuSet::default();
        for cpu in percpu::online().filter(|c| c.index() != me) {
            if cpu.user_tables() == l4 {
                set.insert(cpu.index());
            }
        }
        set
    }

    /// Whether another CPU has this space loaded now.
    pub fn runs_elsewhere(&self) -> bool {
        !self.active_elsewhere().is_empty()
    }

    fn is_active(&self) -> bool {
        Cr3::read().0 == self.l4
    }

    /// Walk this space's user tables (see `walk::Walk`).
    fn walk(&mut self, walk: &Walk, visit: &mut Visitor) -> Visited {
        assert!(walk_is_user(walk), "pmap: a user walk past the user half");
        // SAFETY: `self.l4` is this space's L4 (from `new`), and `&mut self`
        // is the only way to these tables while the walk runs.
        unsafe { walk::walk(self.l4, walk, visit) }
    }

    /// Every page-table lock, for a walk that changes the tables through
    /// `&self` (`walk_locked`; shared.rs): the rare walks of a range
    /// (munmap's, under the read lock) that may free tables above a slot.
    fn lock_tables(&self) -> PtHeld<'_> {
        PtHeld {
            _guard: self.locks.all(),
            of: self,
        }
    }

    /// A walk that may change entries, for `&self`: the caller holds this
    /// space's page-table lock (`held`, from `lock_tables`).
    fn walk_locked(&self, held: &PtHeld<'_>, walk: &Walk, visit: &mut Visitor) -> Visited {
        assert!(walk_is_user(walk), "pmap: a user walk past the user half");
        assert!(core::ptr::eq(held.of, self), "pmap: another space's lock");
        // SAFETY: `self.l4` is this space's L4. No `&mut Pmap` exists while
        // `&self` does, and every other holder of `&self` changes the
        // tables only under a page-table lock, all of which `held` is; a
        // fault's look may read them meanwhile, entry by entry with atomic
        // loads, and the walk's changes are atomic stores (entry.rs).
        unsafe { walk::walk(self.l4, walk, visit) }
    }

    /// A walk that only reads (its visitor changes no entry), for `&self`.
    fn walk_shared(&self, walk: &Walk, visit: &mut Visitor) -> Visited {
        // SAFETY: `self.l4` is this space's L4. No `&mut Pmap` exists while
        // `&self` does, and the callers are the write-lock holder's
        // queries, when no fault under the read lock can change a table
        // (module comment).
        unsafe { walk::walk(self.l4, walk, visit) }
    }

    /// The present leaf entry covering `va` and whether it is a 2 MiB one.
    fn leaf(&self, va: u64) -> Option<(PageTableEntry, bool)> {
        let mut found = None;
        self.walk_shared(
            &Walk::leaves(va, va.wrapping_add(1)),
            &mut |_, level, entry| {
                found = Some((entry.clone(), level == 2));
                false
            },
        );
        found
    }

    /// Map one 4 KiB user page with `flags` (PRESENT is added; USER is the
    /// caller's choice: a PROT_NONE page keeps its frame without it, and
    /// adding it here made such pages readable in forked children).
    /// Gives the frame back when a table could not be made or a 2 MiB page
    /// covers `page`.
    pub fn enter(&mut self, page: Page, frame: Frame, flags: Flags) -> Result<(), Frame> {
        if !self.enter_leaf(page.start_address().as_u64(), frame.phys(), flags) {
            return Err(frame);
        }
        // The PTE holds the reference now.
        frame.into_raw();
        Ok(())
    }

    /// Point the absent PTE of `va` at `frame` with `flags` (PRESENT
    /// added); false when a table could not be made or a 2 MiB page
    /// covers `va`, or the reverse map has no room. The PTE takes a frame
    /// reference from the caller.
    fn enter_leaf(&self, va: u64, frame: PhysFrame, flags: Flags) -> bool {
        let owner = self.owner(va);
        // SAFETY: our L4, with `&mut self` at the caller or the page-table
        // lock held (`shared.rs`): no other walk of these tables runs.
        let entered = unsafe {
            walk::with_entry(self.l4, va, 1, USER_TABLE, |entry| {
                let Some(entry) = entry else { return false };
                assert!(
                    entry.is_unused(),
                    "pmap::enter: remap of a present page at {va:#x}"
                );
                let pfn = Pfn(frame.start_address().as_u64() / 4096);
                if rmap::add(pfn, owner).is_err() {
                    return false;
                }
                // An absent page has no TLB entry: nothing to flush.
                entry.set_addr(frame.start_address(), flags | Flags::PRESENT);
                true
            })
        } == Ok(true);
        if entered {
            self.count_mapped(1);
        }
        entered
    }

    /// The frame and flags of a mapped page (for a page inside a 2 MiB
    /// one, the 2 MiB page's first frame).
    pub fn query_flags(&self, addr: VirtAddr) -> Option<(PhysFrame, Flags)> {
        let (entry, _) = self.leaf(addr.as_u64())?;
        Some((PhysFrame::containing_address(entry.addr()), entry.flags()))
    }

    /// After changing the translations `visited` lists: one invlpg per
    /// changed leaf (a 2 MiB leaf is one TLB entry, one invlpg), or one CR3
    /// reload when there are too many, on this CPU if the space is loaded
    /// here; then the same on every other CPU that has it loaded (the TLB
    /// shootdown, DESIGN §6), one cross-call for the whole batch: a range
    /// from the first leaf to the last, or everything past the threshold.
    /// It returns once every such CPU acknowledged: what the old
    /// translations reached may be reused from then on.
    fn flush(&self, visited: &Visited) {
        if visited.count == 0 {
            return;
        }
        self.flush_here(visited);
        // The cleared entries before the look at who runs the space: a
        // CPU that starts to (`activate`) either is seen here, or loads
        // CR3 after the entries were clear and finds them so (its store
        // and this load are ordered against each other by this fence and
        // by its SeqCst store).
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        let others = self.active_elsewhere();
        if others.is_empty() {
            return;
        }
        let request = if visited.count > FLUSH_ALL_THRESHOLD {
            Request::FlushAll
        } else {
            let leaves = &visited.leaves[..visited.count];
            let first = leaves.iter().copied().min().unwrap_or(0);
            let last = leaves.iter().copied().max().unwrap_or(0);
            // A 2 MiB leaf is flushed by the invlpg of its first page.
            Request::FlushRange {
                start: first,
                end: last + 4096,
            }
        };
        crate::vmstat::count(Event::TlbShootdown, 1);
        ipi::call(others, request);
    }

    /// `flush`'s half on this CPU: drop its TLB entries of `visited`, if
    /// this space is loaded here.
    fn flush_here(&self, visited: &Visited) {
        if self.is_active() {
            if visited.count > FLUSH_ALL_THRESHOLD {
                crate::vmstat::count(Event::TlbFlushAll, 1);
                x86_64::instructions::tlb::flush_all();
            } else {
                crate::vmstat::count(Event::TlbFlushPage, visited.count as u64);
                for &va in &visited.leaves[..visited.count] {
                    x86_64::instructions::tlb::flush(VirtAddr::new(va));
                }
            }
        }
    }
}

fn walk_is_user(walk: &Walk) -> bool {
    walk.start() <= USER_END && walk.end() <= USER_END
}

impl Drop for Pmap {
    /// Give back every leaf frame reference and free every user page table.
    fn drop(&mut self) {
        if self.is_active() {
            activate_kernel();
        }
        // Its last thread is gone, so no other CPU runs it (an idle CPU
        // runs on the kernel's tables): no TLB holds its entries.
        debug_assert!(
            self.active_elsewhere().is_empty(),
            "pmap: a dropped space is loaded on another CPU"
        );
        let id = self.id();
        // Swap PTEs left (a space torn down without `clear`) give their
        // slots back.
        if crate::swap::in_use() {
            self.walk(&Walk::at(0, USER_END, 1), &mut |_, level, entry| {
                if level == 1
                    && let Some(slot) = entry::swap_slot(entry)
                {
                    entry.set_unused();
                    crate::swap::release(slot);
                }
                false
            });
        }
        self.walk(&Walk::clearing(0, USER_END), &mut |va, level, entry| {
            let pfn = Pfn(entry.addr().as_u64() / 4096);
            rmap::remove(pfn, Owner::new(id, va));
            if level == 2 {
                // A 2 MiB entry holds its block's reference (or, once the
                // block is split, one on each of its frames).
                vm::pmap::PhysMem::put_block(&mut phys::KernelPhys, pfn);
            } else {
                // SAFETY: a present leaf entry owns one frame reference, and
                // clearing it here means no one else gives it back.
                drop(unsafe { Frame::from_raw(PhysFrame::containing_address(entry.addr())) });
            }
            entry.set_unused();
            false
        });
        kernel_half::unshare(self.l4);
        // The L4 frame was ours (from `new`), it is all zeros now and no
        // CPU uses it.
        walk::free_table(self.l4);
    }
}

/// One step of a translation, as `Pmap::walk_levels` reports it.
pub struct WalkStep {
    /// 4 = the L4 (PML4), down to 1 = the page table.
    pub level: u8,
    /// The entry's index in its table: 9 bits of the address.
    pub index: usize,
    /// The raw entry (frame address and flag bits).
    pub entry: u64,
    /// Whether the entry maps memory (a 4 KiB or 2 MiB page) rather than
    /// pointing at the next table.
    pub leaf: bool,
}

impl Pmap {
    /// The hardware's walk for `va`, one step per level, stopping at the
    /// first absent entry or at the leaf (what `/proc/self/pagewalk` shows):
    /// the entry each level's walk stops at.
    pub fn walk_levels(&self, va: VirtAddr) -> alloc::vec::Vec<WalkStep> {
        let va = va.as_u64();
        let mut steps = alloc::vec::Vec::new();
        for level in (1..=4u8).rev() {
            let mut step = None;
            self.walk_shared(
                &Walk::at(va, va.wrapping_add(1), level),
                &mut |_, at, entry| {
                    let flags = entry.flags();
                    let present = flags.contains(Flags::PRESENT);
                    step = (at == level).then(|| WalkStep {
                        level,
                        index: ((va >> (12 + 9 * (u32::from(level) - 1))) & 511) as usize,
                        entry: entry.addr().as_u64() | flags.bits(),
                        leaf: present && (level == 1 || flags.contains(Flags::HUGE_PAGE)),
                    });
                    false
                },
            );
            let Some(step) = step else { break };
            let last = step.leaf || step.entry & Flags::PRESENT.bits() == 0;
            steps.push(step);
            if last {
                break;
            }
        }
        steps
    }
}
