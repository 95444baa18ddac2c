//! pmap: the machine-dependent page tables (FreeBSD's name).
//!
//! Each address space has its own level-4 table. Entries 0..256 (the lower,
//! user half) are private; entries 256..512 (the kernel half) are copied from
//! the kernel's own L4 when the space is created and never change afterwards,
//! so every process sees the same kernel. pmap only edits entries and
//! flushes the TLB: which frame goes where, and why, is the VM layer's call.
//!
//! A present user PTE owns one reference to its frame (see `phys::Frame`):
//! `enter` takes a `Frame`, `remove` gives it back, and tearing a space down
//! drops every reference its tables still hold.

use crate::phys::{self, Frame};
use crate::vmstat::Event;
use spin::Once;
use vm::frame::Pfn;
use vm::pmap::{Mapping, NoMemory, PteProt};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, MappedFrame, TranslateResult};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame,
    Size2MiB, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

/// The bootloader's L4, which we keep as the kernel's master copy.
static KERNEL_L4: Once<PhysFrame> = Once::new();

/// The first L4 slot of the kernel half.
const KERNEL_HALF: usize = 256;
/// The kernel heap's L4 slot (see heap.rs): created at boot, shared by all.
const HEAP_SLOT: usize = 384;

pub fn init() {
    let (l4, _) = Cr3::read();
    KERNEL_L4.call_once(|| l4);
}

/// Page-table frames come zeroed from the frame allocator; their reference
/// is held by the entry that points to them.
struct TableFrames;

// SAFETY: every frame returned is freshly allocated, zeroed and unused.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        Frame::alloc_zeroed().map(Frame::into_raw)
    }
}

fn table_at(frame: PhysFrame) -> &'static mut PageTable {
    // SAFETY: `frame` is a page-table frame (an L4 we own or one reached
    // through it), mapped by the physical map. Single CPU, interrupts masked
    // in the kernel: no one else edits it while this reference lives.
    unsafe { &mut *phys::to_virt(frame.start_address()).as_mut_ptr::<PageTable>() }
}

fn mapper(l4: PhysFrame) -> OffsetPageTable<'static> {
    // SAFETY: as in `table_at`; the physical map covers all RAM at this offset.
    unsafe { OffsetPageTable::new(table_at(l4), phys::to_virt(x86_64::PhysAddr::new(0))) }
}

/// Map a kernel-half page in the master L4 (the heap grows this way).
pub fn map_kernel(page: Page, frame: Frame, flags: Flags) -> Option<()> {
    let l4 = *KERNEL_L4.get().expect("pmap: used before init");
    let index = usize::from(page.p4_index());
    assert!(
        index == HEAP_SLOT,
        "pmap::map_kernel: only the heap grows after boot"
    );
    // SAFETY: the page is in the kernel heap's slot, unused until now.
    let flush =
        unsafe { mapper(l4).map_to(page, frame.into_raw(), flags, &mut TableFrames) }.ok()?;
    flush.flush();
    Some(())
}

/// Map a page of device memory (a PCI BAR) in the kernel half, uncached
/// and write-through, so that every load and store reaches the device in
/// program order (see mmio.rs, whose window shares the heap's slot).
pub fn map_kernel_mmio(page: Page, frame: PhysFrame) -> Option<()> {
    let l4 = *KERNEL_L4.get().expect("pmap: used before init");
    assert!(
        usize::from(page.p4_index()) == HEAP_SLOT,
        "pmap::map_kernel_mmio: outside the slot every space shares"
    );
    let flags = Flags::PRESENT
        | Flags::WRITABLE
        | Flags::NO_CACHE
        | Flags::WRITE_THROUGH
        | Flags::NO_EXECUTE;
    // SAFETY: the page is unused until now, and `frame` is device memory,
    // not RAM that anything else could own.
    let flush = unsafe { mapper(l4).map_to(page, frame, flags, &mut TableFrames) }.ok()?;
    flush.flush();
    Some(())
}

/// One address space's page tables.
pub struct Pmap {
    l4: PhysFrame,
}

impl Pmap {
    /// A new address space: empty user half, the shared kernel half.
    /// None when there is no frame for the L4.
    pub fn new() -> Option<Pmap> {
        let l4 = Frame::alloc_zeroed()?.into_raw();
        let kernel = table_at(*KERNEL_L4.get().expect("pmap: used before init"));
        assert!(
            !kernel[HEAP_SLOT].is_unused(),
            "pmap::new: heap slot not yet created"
        );
        let table = table_at(l4);
        for i in KERNEL_HALF..512 {
            table[i] = kernel[i].clone();
        }
        Some(Pmap { l4 })
    }

    /// Make this the address space the CPU translates through.
    pub fn activate(&self) {
        if !self.is_active() {
            crate::vmstat::count(Event::Cr3Load, 1);
            // SAFETY: the kernel half is identical in every L4, so the code
            // running now stays mapped across the switch.
            unsafe { Cr3::write(self.l4, Cr3Flags::empty()) };
        }
    }

    fn is_active(&self) -> bool {
        Cr3::read().0 == self.l4
    }

    /// Map one 4 KiB user page with `flags` (PRESENT is added; USER is the
    /// caller's choice: a PROT_NONE page keeps its frame without it, and
    /// adding it here made such pages readable in forked children).
    pub fn enter(&mut self, page: Page, frame: Frame, flags: Flags) -> Result<(), Frame> {
        let flags = flags | Flags::PRESENT;
        let phys = frame.into_raw();
        // SAFETY: a user page: no kernel data is reached through it.
        let result = unsafe {
            mapper(self.l4).map_to_with_table_flags(page, phys, flags, USER_TABLE, &mut TableFrames)
        };
        match result {
            // A fresh entry was not present, so no TLB entry can be stale.
            Ok(flush) => {
                flush.ignore();
                Ok(())
            }
            Err(MapToError::PageAlreadyMapped(_)) => {
                panic!("pmap::enter: remap of a present page {page:?}")
            }
            // SAFETY: map_to failed, so no PTE took the reference.
            Err(_) => Err(unsafe { Frame::from_raw(phys) }),
        }
    }

    /// The frame and flags of a mapped page (4 KiB or inside a 2 MiB page).
    pub fn query_flags(&self, addr: VirtAddr) -> Option<(PhysFrame, Flags)> {
        match mapper(self.l4).translate(addr) {
            TranslateResult::Mapped { frame, flags, .. } => {
                Some((PhysFrame::containing_address(frame.start_address()), flags))
            }
            _ => None,
        }
    }

    /// Visit every present leaf in [start, end) (4 KiB PTEs, and 2 MiB ones
    /// at level 2), skipping absent tables. With `clears` (the visitor
    /// clears entries) free the tables left empty. The visitor says whether
    /// the TLB may hold a translation it took rights from; those leaves are
    /// returned for the flush.
    fn walk(
        &mut self,
        start: u64,
        end: u64,
        clears: bool,
        visit: &mut dyn FnMut(u64, &mut PageTableEntry, bool) -> bool,
    ) -> Visited {
        let mut visited = Visited::default();
        if start < end {
            walk_table(self.l4, 4, 0, start, end, clears, visit, &mut visited);
        }
        visited
    }

    /// After changing the translations `visited` lists: one invlpg per
    /// changed leaf (a 2 MiB leaf is one TLB entry, one invlpg), or one CR3
    /// reload when there are too many. Only the active space can have
    /// stale entries.
    fn flush(&self, visited: &Visited) {
        if !self.is_active() || visited.count == 0 {
            return;
        }
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

/// Past this many pages, one CR3 reload beats a run of invlpg.
const FLUSH_ALL_THRESHOLD: usize = 32;
const USER_TABLE: Flags = Flags::PRESENT
    .union(Flags::WRITABLE)
    .union(Flags::USER_ACCESSIBLE);

/// The leaves a walk changed so that the TLB must forget them: their
/// addresses while there are few enough to flush one by one, and how many.
#[derive(Default)]
struct Visited {
    leaves: [u64; FLUSH_ALL_THRESHOLD],
    count: usize,
}

/// Walk `table` (at `level`, covering addresses from `base`) over [start, end),
/// looking only at the entries the range touches. Returns true when the
/// table is left with no entries (only checked when the visitor `clears`).
#[allow(clippy::too_many_arguments)]
fn walk_table(
    table: PhysFrame,
    level: u8,
    base: u64,
    start: u64,
    end: u64,
    clears: bool,
    visit: &mut dyn FnMut(u64, &mut PageTableEntry, bool) -> bool,
    visited: &mut Visited,
) -> bool {
    let shift = 12 + 9 * (u32::from(level) - 1);
    let span = 1u64 << shift;
    let entries = table_at(table);
    let top = if level == 4 { KERNEL_HALF } else { 512 };
    let first = (start.max(base) - base) >> shift;
    let last = ((end - 1 - base) >> shift).min(top as u64 - 1);
    for i in first as usize..=last as usize {
        let entry = &mut entries[i];
        if !entry.flags().contains(Flags::PRESENT) {
            continue;
        }
        let lo = base + i as u64 * span;
        let leaf = level == 1 || (level == 2 && entry.flags().contains(Flags::HUGE_PAGE));
        if leaf {
            if visit(lo, entry, level == 2) {
                if let Some(slot) = visited.leaves.get_mut(visited.count) {
                    *slot = lo;
                }
                visited.count += 1;
            }
        } else {
            let child = PhysFrame::containing_address(entry.addr());
            if walk_table(child, level - 1, lo, start, end, clears, visit, visited) {
                entry.set_unused();
                // An empty table is all zeros: it can go back as a zeroed frame.
                // SAFETY: the child table is empty and no entry points at it now.
                phys::free_zeroed(unsafe { Frame::from_raw(child) });
            }
        }
    }
    clears && entries.iter().take(top).all(|e| e.is_unused())
}

/// Whether going from `old` to `new` takes a right away (or moves the
/// page). A TLB entry that grants less than the PTE needs no flush: the
/// access it refuses faults, the fault handler finds the PTE already
/// allows it (a spurious fault), and a page fault makes the CPU drop the
/// stale entry (Intel SDM 4.10.4.3). Linux skips these flushes too
/// (`pte_needs_flush`). mprotect adding write access so costs no invlpg.
fn takes_rights(old: Flags, new: Flags) -> bool {
    let rights = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
    !new.contains(old & rights)
        || (new.contains(Flags::NO_EXECUTE) && !old.contains(Flags::NO_EXECUTE))
}

fn flags_for(prot: PteProt) -> Flags {
    let mut flags = Flags::PRESENT;
    if prot.user {
        flags |= Flags::USER_ACCESSIBLE;
    }
    if prot.write {
        flags |= Flags::WRITABLE;
    }
    if !prot.exec {
        flags |= Flags::NO_EXECUTE;
    }
    flags
}

fn prot_of(flags: Flags) -> PteProt {
    PteProt {
        user: flags.contains(Flags::USER_ACCESSIBLE),
        write: flags.contains(Flags::WRITABLE),
        exec: !flags.contains(Flags::NO_EXECUTE),
    }
}

fn pfn_of(frame: PhysFrame) -> Pfn {
    Pfn(frame.start_address().as_u64() / 4096)
}

fn frame_of(pfn: Pfn) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(pfn.addr()))
}

/// The machine-independent layer's view of these page tables (vm::pmap).
impl vm::pmap::Pmap for Pmap {
    fn enter(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        let page = Page::containing_address(VirtAddr::new(va));
        // SAFETY: the VM layer hands over one reference to pfn with the call.
        let frame = unsafe { Frame::from_raw(frame_of(pfn)) };
        Pmap::enter(self, page, frame, flags_for(prot)).map_err(|frame| {
            // The caller keeps its reference on failure.
            frame.into_raw();
            NoMemory
        })
    }

    fn enter_huge(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(va));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(pfn.addr()));
        // SAFETY: a user page; the block is 2 MiB-aligned (buddy order 9).
        let result = unsafe {
            mapper(self.l4).map_to_with_table_flags(
                page,
                frame,
                flags_for(prot),
                USER_TABLE,
                &mut TableFrames,
            )
        };
        match result {
            Ok(flush) => {
                flush.ignore();
                Ok(())
            }
            Err(MapToError::PageAlreadyMapped(_) | MapToError::ParentEntryHugePage) => {
                panic!("pmap::enter_huge: 2 MiB at {va:#x} not empty")
            }
            Err(_) => Err(NoMemory),
        }
    }

    fn query(&self, va: u64) -> Option<Mapping> {
        let addr = VirtAddr::try_new(va).ok()?;
        match mapper(self.l4).translate(addr) {
            TranslateResult::Mapped { frame, flags, .. } => {
                let huge = matches!(frame, MappedFrame::Size2MiB(_));
                let head = PhysFrame::containing_address(frame.start_address());
                Some(Mapping {
                    pfn: pfn_of(head),
                    prot: prot_of(flags),
                    huge,
                })
            }
            _ => None,
        }
    }

    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        let visited = self.walk(start, end, true, &mut |va, entry, huge| {
            assert!(
                !huge || (va >= start && va + (2 << 20) <= end),
                "pmap::unmap_range: splits a 2 MiB page"
            );
            let head = PhysFrame::containing_address(entry.addr());
            let mapping = Mapping {
                pfn: pfn_of(head),
                prot: prot_of(entry.flags()),
                huge,
            };
            entry.set_unused();
            release(va, mapping);
            true
        });
        self.flush(&visited);
    }

    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    ) {
        let visited = self.walk(start, end, false, &mut |va, entry, huge| {
            let head = PhysFrame::containing_address(entry.addr());
            let mapping = Mapping {
                pfn: pfn_of(head),
                prot: prot_of(entry.flags()),
                huge,
            };
            let mut flags = flags_for(rights(va, mapping));
            if huge {
                flags |= Flags::HUGE_PAGE;
            }
            let old = entry.flags();
            entry.set_flags(flags);
            takes_rights(old, flags)
        });
        self.flush(&visited);
    }

    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Mapping {
        let mut old = None;
        let visited = self.walk(va, va + 4096, false, &mut |_, entry, huge| {
            assert!(!huge, "pmap::replace: a 2 MiB page");
            let head = PhysFrame::containing_address(entry.addr());
            old = Some(Mapping {
                pfn: pfn_of(head),
                prot: prot_of(entry.flags()),
                huge,
            });
            entry.set_addr(frame_of(pfn).start_address(), flags_for(prot));
            true
        });
        self.flush(&visited);
        old.expect("pmap::replace: page not present")
    }

    fn visit(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Mapping)) {
        self.walk(start, end, false, &mut |va, entry, huge| {
            let head = PhysFrame::containing_address(entry.addr());
            visit(
                va,
                Mapping {
                    pfn: pfn_of(head),
                    prot: prot_of(entry.flags()),
                    huge,
                },
            );
            false
        });
    }

    fn enter_run(
        &mut self,
        va: u64,
        frames: &[Option<Pfn>],
        prot: PteProt,
        refuse: &mut dyn FnMut(Pfn),
    ) -> u32 {
        let flags = flags_for(prot);
        let mut entered = 0;
        let mut leaf_table: Option<(u64, Option<PhysFrame>)> = None;
        for (i, pfn) in frames.iter().enumerate() {
            let Some(pfn) = *pfn else { continue };
            let at = va + i as u64 * 4096;
            let region = at & !((2 << 20) - 1);
            let table = match leaf_table {
                Some((r, table)) if r == region => table,
                _ => {
                    let table = child_table(self.l4, at, 1);
                    leaf_table = Some((region, table));
                    table
                }
            };
            let entry = table.map(|t| &mut table_at(t)[usize::from(VirtAddr::new(at).p1_index())]);
            match entry {
                Some(entry) if entry.is_unused() => {
                    // An absent page has no TLB entry: nothing to flush.
                    entry.set_addr(frame_of(pfn).start_address(), flags);
                    entered += 1;
                }
                _ => refuse(pfn),
            }
        }
        entered
    }

    fn copy_to(
        &mut self,
        child: &mut Self,
        start: u64,
        end: u64,
        share: &mut dyn FnMut(u64, Mapping),
    ) -> Result<(), NoMemory> {
        // The child's level-1 table for the 2 MiB the walk is in: one walk
        // of the child's tables per table, not per page.
        let mut leaf_table: Option<(u64, PhysFrame)> = None;
        let mut failed = false;
        let visited = self.walk(start, end, false, &mut |va, entry, huge| {
            if failed {
                return false;
            }
            let level = if huge { 2 } else { 1 };
            let region = va & !((2 << 20) - 1);
            let table = match leaf_table {
                Some((at, table)) if at == region && !huge => Some(table),
                _ => child_table(child.l4, va, level),
            };
            let Some(table) = table else {
                failed = true;
                return false;
            };
            if !huge {
                leaf_table = Some((region, table));
            }
            let old = entry.flags();
            let new = old - Flags::WRITABLE;
            entry.set_flags(new);
            let index = if huge {
                usize::from(VirtAddr::new(va).p2_index())
            } else {
                usize::from(VirtAddr::new(va).p1_index())
            };
            let target = &mut table_at(table)[index];
            assert!(target.is_unused(), "pmap::copy_to: child page present");
            target.set_addr(entry.addr(), new);
            let head = PhysFrame::containing_address(entry.addr());
            share(
                va,
                Mapping {
                    pfn: pfn_of(head),
                    prot: prot_of(new),
                    huge,
                },
            );
            old.contains(Flags::WRITABLE)
        });
        self.flush(&visited);
        if failed { Err(NoMemory) } else { Ok(()) }
    }
}

/// The page table at `level` (1 or 2) that covers `va` in the space whose
/// L4 is `l4` (a fork's child, or a space filling a run of pages), made (zeroed, user-accessible and writable: the leaves
/// decide) along the way where missing. None when no frame is left, or
/// when a 2 MiB page covers `va` (there is no level-1 table to give).
fn child_table(l4: PhysFrame, va: u64, level: u8) -> Option<PhysFrame> {
    let va = VirtAddr::new(va);
    let indices = [va.p4_index(), va.p3_index(), va.p2_index()];
    let mut table = l4;
    for (depth, index) in indices.iter().enumerate() {
        if 4 - depth as u8 == level {
            break;
        }
        let entry = &mut table_at(table)[usize::from(*index)];
        if entry.flags().contains(Flags::HUGE_PAGE) {
            return None;
        }
        if entry.is_unused() {
            let frame = Frame::alloc_zeroed()?.into_raw();
            entry.set_frame(frame, USER_TABLE);
        }
        table = PhysFrame::containing_address(entry.addr());
    }
    Some(table)
}

/// Switch to the kernel's own L4 (a dying space cannot stay loaded).
pub fn activate_kernel() {
    let l4 = *KERNEL_L4.get().expect("pmap: used before init");
    if Cr3::read().0 != l4 {
        crate::vmstat::count(Event::Cr3Load, 1);
        // SAFETY: the kernel's L4 maps the kernel half that is running.
        unsafe { Cr3::write(l4, Cr3Flags::empty()) };
    }
}

impl Drop for Pmap {
    /// Give back every leaf frame reference and free every user page table.
    fn drop(&mut self) {
        if self.is_active() {
            activate_kernel();
        }
        let l4 = table_at(self.l4);
        for l4e in l4.iter_mut().take(KERNEL_HALF) {
            if let Ok(l3) = l4e.frame() {
                free_table(l3, 3);
            }
            l4e.set_unused();
        }
        for entry in l4.iter_mut().skip(KERNEL_HALF) {
            entry.set_unused();
        }
        // SAFETY: the L4 frame was ours (from `new`) and no CPU uses it now.
        phys::free_zeroed(unsafe { Frame::from_raw(self.l4) });
    }
}

/// Free a page table of `level` (3, 2, 1), its subtables and leaf references.
fn free_table(frame: PhysFrame, level: u8) {
    for entry in table_at(frame).iter_mut() {
        if entry.flags().contains(Flags::PRESENT) {
            let target = PhysFrame::containing_address(entry.addr());
            let leaf = level == 1 || entry.flags().contains(Flags::HUGE_PAGE);
            if leaf {
                // SAFETY: a present leaf entry owns one frame reference.
                drop(unsafe { Frame::from_raw(target) });
            } else {
                free_table(target, level - 1);
            }
        }
        entry.set_unused();
    }
    // Every entry was just cleared: the table is a zeroed frame again.
    // SAFETY: the table frame was allocated by TableFrames; its entry is
    // being cleared by our caller.
    phys::free_zeroed(unsafe { Frame::from_raw(frame) });
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
    /// first absent entry or at the leaf (what `/proc/self/pagewalk` shows).
    pub fn walk_levels(&self, va: VirtAddr) -> alloc::vec::Vec<WalkStep> {
        let indices = [
            usize::from(va.p4_index()),
            usize::from(va.p3_index()),
            usize::from(va.p2_index()),
            usize::from(va.p1_index()),
        ];
        let mut steps = alloc::vec::Vec::new();
        let mut table = self.l4;
        for (depth, &index) in indices.iter().enumerate() {
            let level = 4 - depth as u8;
            let entry = &table_at(table)[index];
            let flags = entry.flags();
            let present = flags.contains(Flags::PRESENT);
            let leaf = present && (level == 1 || flags.contains(Flags::HUGE_PAGE));
            steps.push(WalkStep {
                level,
                index,
                entry: entry.addr().as_u64() | flags.bits(),
                leaf,
            });
            if !present || leaf {
                break;
            }
            table = PhysFrame::containing_address(entry.addr());
        }
        steps
    }
}
