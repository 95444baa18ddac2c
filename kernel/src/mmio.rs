//! Device memory: the kernel's window onto PCI BARs.
//!
//! The physical map covers RAM with ordinary (write-back, cached) pages. A
//! device's registers need a mapping of their own: uncached, so that each
//! load reads the device and each store reaches it, in program order. The
//! window lives in the upper half of the heap's L4 slot, which every
//! address space already shares (pmap/kernel_half.rs copies the kernel half when a
//! space is made), so a BAR mapped after processes exist is seen by all of
//! them. The window only grows: BARs are mapped once, at boot, and each
//! physical page is mapped at most once.

use crate::pmap;
use alloc::vec::Vec;
use spin::Mutex;
use x86_64::structures::paging::{Page, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

/// 256 GiB into the heap's slot (0xffff_c000_0000_0000): the heap, which
/// grows up from the slot's start, would need that much RAM to get there.
const WINDOW_START: u64 = 0xffff_c040_0000_0000;
const WINDOW_END: u64 = WINDOW_START + (1 << 30);
const PAGE: u64 = 4096;

struct Window {
    next: u64,
    /// (first physical page, pages, virtual address of the first).
    mapped: Vec<(u64, u64, u64)>,
}

static WINDOW: Mutex<Window> = Mutex::new(Window {
    next: WINDOW_START,
    mapped: Vec::new(),
});

/// The kernel-virtual address of device memory [paddr, paddr + size),
/// mapped uncached on first use. None when the window is full or a page
/// table cannot be had.
pub fn map(paddr: PhysAddr, size: usize) -> Option<VirtAddr> {
    let first = paddr.as_u64() / PAGE;
    let last = paddr.as_u64().checked_add(size.max(1) as u64 - 1)? / PAGE;
    let offset = paddr.as_u64() % PAGE;
    let mut window = WINDOW.lock();
    if let Some(&(start, _, virt)) = window
        .mapped
        .iter()
        .find(|&&(start, pages, _)| first >= start && last < start + pages)
    {
        return Some(VirtAddr::new(virt + (first - start) * PAGE + offset));
    }
    let pages = last - first + 1;
    let virt = window.next;
    if virt + pages * PAGE > WINDOW_END {
        return None;
    }
    for i in 0..pages {
        let page = Page::containing_address(VirtAddr::new(virt + i * PAGE));
        let frame = PhysFrame::containing_address(PhysAddr::new((first + i) * PAGE));
        pmap::map_kernel_mmio(page, frame)?;
    }
    window.next += pages * PAGE;
    window.mapped.push((first, pages, virt));
    Some(VirtAddr::new(virt + offset))
}
