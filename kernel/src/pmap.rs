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
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame,
    Size4KiB, Translate,
};

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

    /// Map `page` to `frame` with `flags` (PRESENT and USER_ACCESSIBLE are
    /// added). The page must not be mapped. On failure (no frame for a page
    /// table) the frame is handed back.
    pub fn enter(&mut self, page: Page, frame: Frame, flags: Flags) -> Result<(), Frame> {
        let flags = flags | Flags::PRESENT | Flags::USER_ACCESSIBLE;
        let parents = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
        let phys = frame.into_raw();
        // SAFETY: a user page: no kernel data is reached through it.
        let result = unsafe {
            mapper(self.l4).map_to_with_table_flags(page, phys, flags, parents, &mut TableFrames)
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

    /// Unmap `page` and return the reference its PTE held, flushing the TLB.
    pub fn remove(&mut self, page: Page) -> Option<Frame> {
        let (frame, flush) = mapper(self.l4).unmap(page).ok()?;
        self.flush(page, flush);
        // SAFETY: the PTE held this reference and is gone now.
        Some(unsafe { Frame::from_raw(frame) })
    }

    /// Change a present page's flags; false when it is not mapped.
    pub fn protect(&mut self, page: Page, flags: Flags) -> bool {
        let flags = flags | Flags::PRESENT | Flags::USER_ACCESSIBLE;
        // SAFETY: a user page; flags never include kernel-only bits.
        match unsafe { mapper(self.l4).update_flags(page, flags) } {
            Ok(flush) => {
                self.flush(page, flush);
                true
            }
            Err(_) => false,
        }
    }

    /// The frame and flags of a mapped page.
    pub fn query(&self, page: Page) -> Option<(PhysFrame, Flags)> {
        match mapper(self.l4).translate(page.start_address()) {
            TranslateResult::Mapped { frame, flags, .. } => {
                Some((PhysFrame::containing_address(frame.start_address()), flags))
            }
            _ => None,
        }
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

    /// Flush a stale translation: only the active space can have one cached
    /// (switching CR3 drops every non-global entry of the old space).
    fn flush(&self, page: Page, flush: x86_64::structures::paging::mapper::MapperFlush<Size4KiB>) {
        if self.is_active() {
            flush.flush();
        } else {
            flush.ignore();
        }
        let _ = page;
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
