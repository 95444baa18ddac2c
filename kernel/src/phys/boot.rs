//! The frame table, set up at boot from the bootloader's memory map: the
//! per-frame metadata, reference counts and first-owner words carved out
//! of the first usable region big enough, then every usable region handed
//! to the buddy allocator.

use super::{
    COUNTS, FIRST_OWNERS, FRAMES, PHYS_OFFSET, RAM_END, TABLE_FREE, TOTAL_FRAMES, to_virt,
};
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use vm::buddy::FrameTable;
use vm::frame::{FrameMeta, PAGE_SIZE, Pfn};
use vm::rmap::FirstOwners;
use x86_64::PhysAddr;

/// Low memory holds firmware tables and the real-mode world: leave it alone.
const FIRST_USABLE: u64 = 0x10_0000;

/// Set up the physical map and the frame table from the bootloader's memory map.
pub fn init(phys_offset: u64, regions: &MemoryRegions) {
    PHYS_OFFSET.store(phys_offset, Ordering::Relaxed);
    let usable = || {
        regions
            .iter()
            .filter(|r| r.kind == MemoryRegionKind::Usable)
    };
    let end = usable()
        .map(|r| r.end)
        .max()
        .expect("phys::init: no usable memory");
    RAM_END.store(end, Ordering::Relaxed);
    let frames = (end / PAGE_SIZE) as usize;
    // The metadata, then the counts, then (8-aligned) the first-owner words.
    let words_at = (frames * (size_of::<FrameMeta>() + size_of::<AtomicU32>())).next_multiple_of(8);
    let meta_bytes = (words_at + frames * size_of::<AtomicU64>()) as u64;

    // The metadata array goes at the start of the first region big enough.
    let meta_start = usable()
        .map(|r| align_up(r.start.max(FIRST_USABLE)))
        .zip(usable().map(|r| r.end))
        .find(|&(start, end)| start + meta_bytes <= end)
        .map(|(start, _)| start)
        .expect("phys::init: no region fits the frame table");
    let meta_end = align_up(meta_start + meta_bytes);

    let meta_ptr = to_virt(PhysAddr::new(meta_start)).as_mut_ptr::<FrameMeta>();
    // SAFETY: [meta_start, meta_end) is usable RAM that nothing else owns
    // (it is withheld from the allocator below), mapped by the physical map;
    // every element is initialised before the slice is formed. The counts
    // follow the metadata, 4-aligned as a FrameMeta is; the words follow
    // at `words_at`, rounded up to their 8-byte alignment (the start is a
    // page boundary).
    let (meta, counts, words) = unsafe {
        let counts_ptr = meta_ptr.add(frames).cast::<AtomicU32>();
        let words_ptr = meta_ptr.cast::<u8>().add(words_at).cast::<AtomicU64>();
        for i in 0..frames {
            meta_ptr.add(i).write(FrameMeta::RESERVED);
            counts_ptr.add(i).write(AtomicU32::new(0));
            words_ptr.add(i).write(AtomicU64::new(0));
        }
        (
            core::slice::from_raw_parts_mut(meta_ptr, frames),
            core::slice::from_raw_parts(counts_ptr, frames),
            core::slice::from_raw_parts(words_ptr, frames),
        )
    };
    FIRST_OWNERS.call_once(|| FirstOwners::new(words, Pfn(0)));
    let mut table = FrameTable::new(meta, counts, Pfn(0));
    for region in usable() {
        let start = align_up(region.start.max(FIRST_USABLE));
        let end = region.end & !(PAGE_SIZE - 1);
        // The region holding the metadata contributes what lies after it.
        let start = if (start..end).contains(&meta_start) {
            meta_end
        } else {
            start
        };
        if start < end {
            table.add_free_range(Pfn(start / PAGE_SIZE), Pfn(end / PAGE_SIZE));
        }
    }
    log::info!(
        "memory: {} MiB usable, frame table {} KiB ({} frames)",
        table.total_frames() * 4 / 1024,
        meta_bytes / 1024,
        frames
    );
    COUNTS.call_once(|| table.counts());
    TOTAL_FRAMES.store(table.total_frames(), Ordering::Relaxed);
    super::cache::set_high(table.total_frames());
    TABLE_FREE.store(table.free_frames(), Ordering::Relaxed);
    *FRAMES.lock() = Some(table);
}

fn align_up(addr: u64) -> u64 {
    (addr + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}
