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
    /// at level 2), skipping absent tables; free tables that end up empty.
    /// Returns how many leaves were visited.
    fn walk(
        &mut self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, &mut PageTableEntry, bool),
    ) -> usize {
        let mut count = 0;
        walk_table(self.l4, 4, 0, start, end, visit, &mut count);
        count
    }

    /// After changing `count` translations in [start, end): invlpg each
    /// page, or reload CR3 when that is cheaper. Only the active space can
    /// have stale entries.
    fn flush_range(&self, start: u64, end: u64, count: usize) {
        if !self.is_active() || count == 0 {
            return;
        }
        if count > FLUSH_ALL_THRESHOLD {
            x86_64::instructions::tlb::flush_all();
        } else {
            let mut va = start;
            while va < end {
                x86_64::instructions::tlb::flush(VirtAddr::new(va));
                va += 4096;
            }
        }
    }
}

/// Past this many pages, one CR3 reload beats a run of invlpg.
const FLUSH_ALL_THRESHOLD: usize = 32;
const USER_TABLE: Flags = Flags::PRESENT
    .union(Flags::WRITABLE)
    .union(Flags::USER_ACCESSIBLE);

/// Walk `table` (at `level`, covering addresses from `base`) over [start, end).
/// Returns true when the table is left with no entries.
fn walk_table(
    table: PhysFrame,
    level: u8,
    base: u64,
    start: u64,
    end: u64,
    visit: &mut dyn FnMut(u64, &mut PageTableEntry, bool),
    count: &mut usize,
) -> bool {
    let span = 1u64 << (12 + 9 * (u32::from(level) - 1));
    let entries = table_at(table);
    let top = if level == 4 { KERNEL_HALF } else { 512 };
    for (i, entry) in entries.iter_mut().enumerate().take(top) {
        let lo = base + i as u64 * span;
        let hi = lo + span;
        if hi <= start || lo >= end || !entry.flags().contains(Flags::PRESENT) {
            continue;
        }
        let leaf = level == 1 || (level == 2 && entry.flags().contains(Flags::HUGE_PAGE));
        if leaf {
            *count += 1;
            visit(lo, entry, level == 2);
        } else {
            let child = PhysFrame::containing_address(entry.addr());
            if walk_table(child, level - 1, lo, start, end, visit, count) {
                entry.set_unused();
                // SAFETY: the child table is empty and no entry points at it now.
                drop(unsafe { Frame::from_raw(child) });
            }
        }
    }
    entries.iter().take(top).all(|e| e.is_unused())
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
        let count = self.walk(start, end, &mut |va, entry, huge| {
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
        });
        self.flush_range(start, end, count);
    }

    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    ) {
        let count = self.walk(start, end, &mut |va, entry, huge| {
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
            entry.set_flags(flags);
        });
        self.flush_range(start, end, count);
    }

    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Mapping {
        let mut old = None;
        self.walk(va, va + 4096, &mut |_, entry, huge| {
            assert!(!huge, "pmap::replace: a 2 MiB page");
            let head = PhysFrame::containing_address(entry.addr());
            old = Some(Mapping {
                pfn: pfn_of(head),
                prot: prot_of(entry.flags()),
                huge,
            });
            entry.set_addr(frame_of(pfn).start_address(), flags_for(prot));
        });
        self.flush_range(va, va + 4096, 1);
        old.expect("pmap::replace: page not present")
    }
}

/// Switch to the kernel's own L4 (a dying space cannot stay loaded).
pub fn activate_kernel() {
    let l4 = *KERNEL_L4.get().expect("pmap: used before init");
    if Cr3::read().0 != l4 {
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
        // SAFETY: the L4 frame was ours (from `new`) and no CPU uses it now.
        drop(unsafe { Frame::from_raw(self.l4) });
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
    // SAFETY: the table frame was allocated by TableFrames; its entry is
    // being cleared by our caller.
    drop(unsafe { Frame::from_raw(frame) });
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
