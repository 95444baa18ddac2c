//! Giving frames back: the last reference to a frame takes it to this
//! CPU's cache (phys/cache.rs) or to the buddy allocator, under the frame
//! table's lock; any other reference goes without the lock (atomic counts,
//! `vm::buddy::Counts`).

use super::{Frame, cache, counts, to_virt, with_table};
use vm::buddy::FrameTable;
use vm::frame::{PAGE_SIZE, Pfn};
use x86_64::PhysAddr;

/// Drop the caller's reference to the block headed by `pfn`: without the
/// table's lock unless it may be the last (`put_frame`).
pub(super) fn put_pfn(pfn: Pfn, zeroed: bool) {
    if !counts().try_put(pfn) {
        with_table(|t| put_frame(t, pfn, zeroed));
    }
}

/// Give back a frame its holder knows to be all zeros (an empty page
/// table): if this is its last reference, this CPU's cache keeps it for
/// the next `alloc_zeroed` (page tables come back empty when a range is
/// unmapped or a space torn down, and the next fault or mmap needs a
/// zeroed table again: the benchmark's mmap + touch + munmap took three
/// zeroed frames for one data page).
pub fn free_zeroed(frame: Frame) {
    let pfn = frame.pfn();
    core::mem::forget(frame);
    put_pfn(pfn, true);
}

/// Drop the caller's reference to the block headed by `pfn`, under the
/// table's lock. The last reference to a single frame leaves it in this
/// CPU's cache (on its zeroed list if `zeroed` says it holds only zeros);
/// a larger block goes back to the buddy allocator. (A count of 1 read
/// here is the caller's alone, so it stays 1; a larger one may fall while
/// it looks, and then `put` frees the block, if it was the last, to the
/// buddy allocator, missing only the cache and the poison.)
pub(super) fn put_frame(t: &mut FrameTable<'static>, pfn: Pfn, zeroed: bool) {
    let last = t.refcount(pfn) == 1;
    if last && !zeroed {
        poison(pfn);
    }
    if last && t.is_block(pfn, 0) {
        cache::put(t, pfn, zeroed);
    } else {
        t.put(pfn);
    }
}

/// `put_frame` for each of `frames`, munmap's small pages whose last
/// references these most likely are: as many as this CPU's cache has
/// room for stay there, and the rest go to the buddy allocator in one
/// call, as runs of neighbours (`FrameTable::put_frames`), not through
/// the cache one at a time, which moved each to the buddy allocator in
/// its next overflow. A 64 MiB munmap's give-back went from 10.6–11.0 M
/// cycles to 7.2 M on one thread, and from 13.5–16.7 M to 8.3–10.3 M on
/// two (docs/src/frames.md).
fn put_last(t: &mut FrameTable<'static>, frames: &mut [Pfn]) {
    let mut single = 0;
    for i in 0..frames.len() {
        let pfn = frames[i];
        // Not the last after all (a split or join moved the count), or
        // not a single frame: as `put_frame` does.
        if t.refcount(pfn) != 1 || !t.is_block(pfn, 0) {
            put_frame(t, pfn, false);
            continue;
        }
        poison(pfn);
        if !cache::keep(pfn) {
            frames[single] = pfn;
            single += 1;
        }
    }
    t.put_frames(&mut frames[..single]);
}

/// Give this CPU's cached frames back to the buddy allocator
/// (`cache::drain_all` runs it on every CPU).
pub(super) fn drain_this_cpu() {
    with_table(cache::drain);
}

/// `PhysMem::put_many`: munmap's small pages.
pub(super) fn put_many(pfns: &[Pfn]) {
    // The shared references go without the lock; the last ones all
    // under one take of it, not one each (a 64 MiB munmap frees
    // 16 384 frames, and another CPU's faults want the lock too).
    let mut last = [Pfn(0); 64];
    for chunk in pfns.chunks(last.len()) {
        let mut n = 0;
        for &pfn in chunk {
            if !counts().try_put(pfn) {
                last[n] = pfn;
                n += 1;
            }
        }
        if n > 0 {
            with_table(|t| put_last(t, &mut last[..n]));
        }
        // Between chunks, with no lock held, the cross-call another CPU
        // may be waiting for is answered (`ipi::poll`): else its
        // shootdown waits for the whole loop (16 384 frames: about
        // 10 M cycles under TCG).
        crate::arch::ipi::poll();
    }
}

/// Debug builds poison a frame whose last reference goes (xv6's kfree), so
/// a use after free reads garbage instead of plausible old data. (For a
/// 2 MiB block, its first 4 KiB.)
pub(super) fn poison(pfn: Pfn) {
    if cfg!(debug_assertions) {
        let ptr = to_virt(PhysAddr::new(pfn.addr())).as_mut_ptr::<u8>();
        // SAFETY: the caller gives back the frame's last reference: no
        // mapping or holder remains.
        unsafe { core::ptr::write_bytes(ptr, 0x5a, PAGE_SIZE as usize) };
    }
}
