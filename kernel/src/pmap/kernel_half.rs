//! The kernel half (L4 entries 256..512) that every address space shares:
//! the bootloader's L4 is its master copy, copied into each new space, and
//! only the heap's slot grows below it after boot (the heap, and the
//! device-memory window that shares the slot, see mmio.rs).

use super::KERNEL_HALF;
use super::walk;
use crate::phys::Frame;
use crate::vmstat::Event;
use spin::{Mutex, Once};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{Page, PageTableFlags as Flags, PhysFrame};

/// The bootloader's L4, which we keep as the kernel's master copy.
static KERNEL_L4: Once<PhysFrame> = Once::new();
/// Serialises the walks of the kernel's tables (the heap and the mmio
/// window grow them under their own, different locks; a new space reads them).
static KERNEL_TABLES: Mutex<()> = Mutex::new(());

/// The kernel heap's L4 slot (see heap.rs): created at boot, shared by all.
const HEAP_SLOT: usize = 384;
/// The flags of the tables above a kernel leaf.
const KERNEL_TABLE: Flags = Flags::PRESENT.union(Flags::WRITABLE);

pub fn init() {
    let (l4, _) = Cr3::read();
    KERNEL_L4.call_once(|| l4);
}

fn kernel_l4() -> PhysFrame {
    *KERNEL_L4.get().expect("pmap: used before init")
}

/// Copy the kernel half into the fresh (zeroed) L4 `l4` of a new space:
/// 256 entries copied in one loop. (It was a walk of the kernel's L4 with
/// a walk of the new one for each entry, 72 000 of the 102 000
/// instructions of a fork of 16 MiB on 2 MiB pages.)
pub(super) fn share(l4: PhysFrame) {
    let _tables = KERNEL_TABLES.lock();
    // SAFETY: the kernel's L4, under KERNEL_TABLES; inside, `l4` is a new
    // space's L4 that nothing else knows yet. The two are different
    // tables, so the two references do not alias.
    unsafe {
        walk::with_table(kernel_l4(), |kernel| {
            assert!(
                !kernel[HEAP_SLOT].is_unused(),
                "pmap::new: heap slot not yet created"
            );
            walk::with_table(l4, |new| {
                for i in KERNEL_HALF..512 {
                    new[i] = kernel[i].clone();
                }
            });
        });
    }
}

/// Clear the kernel half of a dying space's L4 (so it is all zeros again).
pub(super) fn unshare(l4: PhysFrame) {
    // SAFETY: the L4 of a space being dropped: ours alone.
    unsafe {
        walk::with_table(l4, |table| {
            for entry in table.iter_mut().skip(KERNEL_HALF) {
                entry.set_unused();
            }
        });
    }
}

/// Point the absent kernel PTE of `page` at `frame` with `flags`, making
/// tables where missing. None when the page is mapped already or no frame
/// is left for a table; either way, also the number of tables it made.
fn map_kernel_page(page: Page, frame: PhysFrame, flags: Flags) -> (Option<()>, usize) {
    assert!(
        usize::from(page.p4_index()) == HEAP_SLOT,
        "pmap: only the heap's slot grows after boot, {page:?} is outside it"
    );
    let _tables = KERNEL_TABLES.lock();
    // Under KERNEL_TABLES no other walk makes a kernel table.
    let made_before = walk::kernel_tables_made();
    // SAFETY: the kernel's L4, under KERNEL_TABLES. A fresh kernel entry
    // was not present, so no TLB entry can be stale.
    let mapped = unsafe {
        walk::with_entry(
            kernel_l4(),
            page.start_address().as_u64(),
            1,
            KERNEL_TABLE,
            |entry| {
                let entry = entry.filter(|e| e.is_unused())?;
                entry.set_addr(frame.start_address(), flags | Flags::PRESENT);
                Some(())
            },
        )
    };
    let made = (walk::kernel_tables_made() - made_before) as usize;
    (mapped.ok().flatten(), made)
}

/// Map a kernel-half page in the master L4 (the heap grows this way).
/// Returns, mapped or not, how many page-table frames it made: the heap
/// counts them with its own, since nothing gives them back.
pub fn map_kernel(page: Page, frame: Frame, flags: Flags) -> (Option<()>, usize) {
    let (mapped, tables) = map_kernel_page(page, frame.phys(), flags);
    if mapped.is_some() {
        // The PTE holds the reference now (the heap never gives it back).
        frame.into_raw();
    }
    (mapped, tables)
}

/// Map a page of device memory (a PCI BAR) in the kernel half, uncached
/// and write-through, so that every load and store reaches the device in
/// program order (see mmio.rs, whose window shares the heap's slot).
pub fn map_kernel_mmio(page: Page, frame: PhysFrame) -> Option<()> {
    let flags = Flags::PRESENT
        | Flags::WRITABLE
        | Flags::NO_CACHE
        | Flags::WRITE_THROUGH
        | Flags::NO_EXECUTE;
    map_kernel_page(page, frame, flags).0
}

/// Switch to the kernel's own L4 (a dying space cannot stay loaded, and
/// an idle CPU runs on it, so that no shootdown waits for it).
pub fn activate_kernel() {
    if Cr3::read().0 != kernel_l4() {
        // No user space's shootdown needs this CPU any more.
        crate::arch::percpu::this().set_user_tables(0);
        crate::vmstat::count(Event::Cr3Load, 1);
        load_kernel_l4();
    }
}

/// Load the kernel's L4, recording nothing: a starting CPU does this
/// before it has its `PerCpu` (which says "the kernel's tables" already,
/// and holds the counts: this load is not counted).
pub fn load_kernel_l4() {
    let l4 = kernel_l4();
    if Cr3::read().0 != l4 {
        // SAFETY: the kernel's L4 maps the kernel half that is running.
        unsafe { Cr3::write(l4, Cr3Flags::empty()) };
    }
}
