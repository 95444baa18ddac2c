//! The swap cache: one frame per slot for every PTE that holds the slot
//! (docs/src/pressure.md, "The swap cache").
//!
//! A page shared copy-on-write by a parent and its child that went to swap
//! is one slot held by two PTEs (count 2). When the child faults it back,
//! the parent's PTE still holds the slot; the frame the child read must be
//! the one the parent gets when it faults too, or the two would see two
//! copies of one page and memory would double. The cache keeps that frame
//! under its slot, as Linux's swap cache does:
//!
//! - an entry holds one reference to its frame and one count of its slot;
//! - a swap-in finds the slot's frame here, or reads it (with the
//!   neighbours of its read-ahead window, which land here too) and
//!   enters it; the faulting PTE gets a frame reference of its own;
//! - a read fault maps the frame read-only and the entry stays, with its
//!   slot, even when no PTE holds the slot any more: the frame is clean
//!   (every PTE of a cached frame is read-only, so its contents are the
//!   slot's), and if it is still clean when reclaim meets it again it goes
//!   without a write (Linux's do_swap_page keeps it so too);
//! - the entry goes, and with it the slot if no PTE holds that, when the
//!   page is about to be written (`free_swap`: a write fault, or a swap-in
//!   that takes the page for itself), when no one maps its frame and no
//!   PTE holds its slot (`release`, `free_swap` after an unmap), or when
//!   swap runs short of slots (`give_up_slots`);
//! - reclaim turns the PTEs of a cached frame back into the slot without
//!   writing it, and entries nobody maps (read ahead and never used) are
//!   dropped first (`shrink`).
//!
//! The swap device itself (slots, the disk) is behind `SwapDevice`: the
//! kernel's swap.rs, or the host tests' `fake::FakeSwap`.

use crate::frame::Pfn;
use crate::pmap::PhysMem;
use crate::swap_map::Slot;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

mod writeback;
pub use writeback::{WriteResults, Writeback, Written};

/// The disk failed a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoFailed;

/// The swap device as reclaim and the swap cache use it.
pub trait SwapDevice {
    /// A free slot (count 1), None when the device is full.
    fn alloc(&mut self) -> Option<Slot>;
    /// One more holder of a taken slot; false at the maximum count.
    fn dup(&mut self, slot: Slot) -> bool;
    /// One holder fewer; the count left (0: free again).
    fn free(&mut self, slot: Slot) -> u16;
    fn count(&self, slot: Slot) -> u16;
    /// More than half the slots are taken (Linux's vm_swap_full): slots
    /// are then not kept for clean pages in RAM.
    fn half_full(&self) -> bool;
    /// The taken slots of the aligned `window` around `slot`.
    fn readahead(&self, slot: Slot, window: u32) -> Vec<Slot>;
    /// Write `frames` to the consecutive slots from `first`; the cycles waited.
    fn write(
        &mut self,
        first: Slot,
        frames: &[Pfn],
        phys: &mut dyn PhysMem,
    ) -> Result<u64, IoFailed>;
    /// Read the consecutive slots from `first` into `frames`.
    fn read(
        &mut self,
        first: Slot,
        frames: &[Pfn],
        phys: &mut dyn PhysMem,
    ) -> Result<u64, IoFailed>;
}

/// Why a swap-in gave no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapInError {
    NoMemory,
    Io,
}

/// A frame with a slot's page, for the PTE that holds the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwappedIn {
    /// One reference for the caller (the PTE to be).
    pub pfn: Pfn,
    /// No other PTE holds the slot or maps the frame: the page may be
    /// taken for this PTE alone, mapped writable, its slot and cache entry
    /// gone (`SwapCache::free_swap`).
    pub exclusive: bool,
    /// More than half the swap slots are taken: take the page if it may
    /// be, rather than keep its slot (`SwapDevice::half_full`).
    pub swap_full: bool,
    /// The frame is on its way to the disk (`SwapCache::start_writeback`):
    /// it stays cached until the write is done, read-only.
    pub writeback: bool,
    /// Pages read from the disk (0: found in the cache, a minor fault).
    pub read: u32,
    /// TSC cycles waited for the disk.
    pub cycles: u64,
}

/// Swap-in reads the slot and the taken slots around it in an aligned
/// window of slots: this many at first (Linux's page_cluster 3: 8
/// pages), then as many as the program turns out to use (`ReadAhead`).
pub const READAHEAD_WINDOW: u32 = 8;
/// The largest window (128 KiB): a sweep through swapped memory then
/// waits for the disk once per 32 pages.
pub const READAHEAD_MAX: u32 = 32;

/// The read-ahead window, sized by what the last reads' neighbours were
/// good for (Linux sizes its swap read-ahead by the same evidence, its
/// read-ahead hits): a window whose pages were mostly faulted in before
/// the next read doubles, one whose pages mostly were not halves, down to
/// the slot alone; from there a read of the slot next to the last one
/// (the program walks its memory in order again) starts it growing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAhead {
    window: u32,
    /// Pages read ahead since the last read, and how many of them a
    /// fault asked for since.
    ahead: u32,
    used: u32,
    /// The slot the last read was for.
    last: Option<Slot>,
}

impl ReadAhead {
    pub const fn new() -> ReadAhead {
        ReadAhead {
            window: READAHEAD_WINDOW,
            ahead: 0,
            used: 0,
            last: None,
        }
    }

    /// The window for a read of `slot` now; the evidence starts again.
    fn next(&mut self, slot: Slot) -> u32 {
        let after_last = self.last.is_some_and(|l| l.0.abs_diff(slot.0) == 1);
        self.window = if self.ahead > 0 && 2 * self.used >= self.ahead {
            self.window * 2
        } else if self.ahead > 0 && 4 * self.used < self.ahead {
            self.window / 2
        } else if self.ahead == 0 && after_last {
            self.window * 2
        } else {
            self.window
        }
        .clamp(1, READAHEAD_MAX);
        self.last = Some(slot);
        self.ahead = 0;
        self.used = 0;
        self.window
    }
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead::new()
    }
}

/// A cached slot's page.
#[derive(Clone, Copy, Debug)]
struct Entry {
    pfn: Pfn,
    /// When it was cached (oldest go first in `shrink`).
    stamp: u64,
    /// Read ahead, and no fault has asked for it yet.
    ahead: bool,
    /// On its way to the disk (`start_writeback`): the device may be
    /// reading the frame, so nothing drops the entry or frees the frame
    /// until `written`, and no PTE maps it writable.
    writeback: bool,
    /// Its write failed: the slot does not hold the page, the frame is its
    /// only copy. Written again when reclaim takes it, never dropped
    /// while a swap PTE wants it.
    dirty: bool,
}

/// What a cached frame is to reclaim (`SwapCache::state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    /// Its slot holds its contents: it may go without a write.
    Clean(Slot),
    /// Its write failed: it must be written again before it goes.
    Dirty(Slot),
    /// Being written now: it stays where it is.
    Writeback,
}

#[derive(Debug, Default)]
pub struct SwapCache {
    frames: BTreeMap<Slot, Entry>,
    slots: BTreeMap<Pfn, Slot>,
    stamp: u64,
    readahead: ReadAhead,
}

impl SwapCache {
    pub const fn new() -> SwapCache {
        SwapCache {
            frames: BTreeMap::new(),
            slots: BTreeMap::new(),
            stamp: 0,
            readahead: ReadAhead::new(),
        }
    }

    /// The read-ahead window now (reclaim keeps twice as many of the
    /// newest unused entries: they are about to be used).
    pub fn window(&self) -> u32 {
        self.readahead.window
    }

    /// Entries (/proc/meminfo's SwapCached, in pages).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The slot whose page `pfn` caches.
    pub fn slot_of(&self, pfn: Pfn) -> Option<Slot> {
        self.slots.get(&pfn).copied()
    }

    pub fn frame_of(&self, slot: Slot) -> Option<Pfn> {
        self.frames.get(&slot).map(|e| e.pfn)
    }

    /// Cache `pfn` (the caller's reference goes to the entry) as `slot`'s
    /// page, taking a count of the slot; false (nothing kept) when the
    /// slot's count is at its maximum.
    fn insert(&mut self, dev: &mut dyn SwapDevice, slot: Slot, pfn: Pfn, ahead: bool) -> bool {
        if !dev.dup(slot) {
            return false;
        }
        self.stamp += 1;
        let stamp = self.stamp;
        let entry = Entry {
            pfn,
            stamp,
            ahead,
            writeback: false,
            dirty: false,
        };
        self.frames.insert(slot, entry);
        self.slots.insert(pfn, slot);
        true
    }

    /// Drop `slot`'s entry: its frame reference and its count. Never one
    /// under writeback (the device may be reading its frame).
    fn remove(&mut self, dev: &mut dyn SwapDevice, phys: &mut dyn PhysMem, slot: Slot) {
        if self.frames.get(&slot).is_some_and(|e| e.writeback) {
            return;
        }
        if let Some(Entry { pfn, .. }) = self.frames.remove(&slot) {
            self.slots.remove(&pfn);
            dev.free(slot);
            phys.put(pfn);
        }
    }

    /// What the cached frame `pfn` is to reclaim; None when not cached.
    pub fn state(&self, pfn: Pfn) -> Option<Cached> {
        let slot = self.slot_of(pfn)?;
        let entry = &self.frames[&slot];
        Some(if entry.writeback {
            Cached::Writeback
        } else if entry.dirty {
            Cached::Dirty(slot)
        } else {
            Cached::Clean(slot)
        })
    }

    /// Reclaim unmapped `pfn` from every PTE (each holds `slot` now) or
    /// took it from its object: cache it as `slot`'s page on its way to
    /// the disk, in `wb`. The caller's frame reference goes to the entry,
    /// which takes a count of the slot. False, nothing kept, when the
    /// slot's count is at its maximum.
    pub fn start_writeback(
        &mut self,
        dev: &mut dyn SwapDevice,
        slot: Slot,
        pfn: Pfn,
        wb: &mut Writeback,
    ) -> bool {
        if !self.insert(dev, slot, pfn, false) {
            return false;
        }
        self.frames.get_mut(&slot).expect("just cached").writeback = true;
        wb.pages.push((slot, pfn));
        true
    }

    /// The dirty cached frame `pfn` (its last write failed), unmapped
    /// again, goes to the disk again in `wb`.
    pub fn restart_writeback(&mut self, pfn: Pfn, wb: &mut Writeback) {
        let slot = self
            .slot_of(pfn)
            .expect("swap_cache: restart of an uncached frame");
        let entry = self.frames.get_mut(&slot).expect("cached");
        entry.dirty = false;
        entry.writeback = true;
        wb.pages.push((slot, pfn));
    }

    /// The writes of a `Writeback` are done. A page written goes (its
    /// frame freed) unless a PTE mapped it meanwhile (read-only), when it
    /// stays a clean cached page with its slot. A page whose write failed
    /// stays, dirty: its PTEs still hold its slot and find the frame here.
    pub fn written(
        &mut self,
        dev: &mut dyn SwapDevice,
        phys: &mut dyn PhysMem,
        results: WriteResults,
    ) -> Written {
        let mut done = Written::default();
        for (first, pfns, result) in results.runs {
            if let Ok(cycles) = result {
                done.cycles += cycles;
            }
            for (i, &pfn) in pfns.iter().enumerate() {
                let slot = Slot(first.0 + i as u32);
                let entry = self
                    .frames
                    .get_mut(&slot)
                    .filter(|e| e.pfn == pfn && e.writeback)
                    .expect("swap_cache: a page under writeback left the cache");
                entry.writeback = false;
                if result.is_err() {
                    entry.dirty = true;
                    continue;
                }
                done.written += 1;
                if phys.refcount(pfn) == 1 {
                    self.remove(dev, phys, slot);
                    done.freed += 1;
                }
            }
        }
        done
    }

    /// A frame holding `slot`'s page for a PTE that holds `slot`: the
    /// cached one, or one read from the disk with the taken, uncached
    /// slots next to it in its read-ahead window (one run of consecutive
    /// slots, read in one go; neighbours that find no frame are left out).
    pub fn swap_in(
        &mut self,
        dev: &mut dyn SwapDevice,
        phys: &mut dyn PhysMem,
        slot: Slot,
    ) -> Result<SwappedIn, SwapInError> {
        let (mut read, mut cycles) = (0, 0);
        if let Some(entry) = self.frames.get_mut(&slot)
            && entry.ahead
        {
            entry.ahead = false;
            self.readahead.used += 1;
        }
        if !self.frames.contains_key(&slot) {
            let window = self.readahead.next(slot);
            let near = dev.readahead(slot, window);
            let run = consecutive_run(&near, slot, |s| !self.frames.contains_key(&s));
            let mut frames = Vec::with_capacity(run.len());
            let mut first = slot;
            for &s in &run {
                match phys.alloc_zeroed() {
                    Some(pfn) => {
                        if frames.is_empty() {
                            first = s;
                        }
                        frames.push((s, pfn));
                    }
                    // A neighbour before `slot` breaks the run: start after it.
                    None if s < slot => {
                        frames.drain(..).for_each(|(_, pfn)| phys.put(pfn));
                    }
                    None => break,
                }
            }
            if !frames.iter().any(|&(s, _)| s == slot) {
                frames.into_iter().for_each(|(_, pfn)| phys.put(pfn));
                return Err(SwapInError::NoMemory);
            }
            let pfns: Vec<Pfn> = frames.iter().map(|&(_, pfn)| pfn).collect();
            match dev.read(first, &pfns, phys) {
                Ok(waited) => cycles = waited,
                Err(IoFailed) => {
                    pfns.into_iter().for_each(|pfn| phys.put(pfn));
                    return Err(SwapInError::Io);
                }
            }
            read = pfns.len() as u32;
            self.readahead.ahead = read - 1;
            for (s, pfn) in frames {
                if !self.insert(dev, s, pfn, s != slot) {
                    phys.put(pfn);
                    if s == slot {
                        return Err(SwapInError::NoMemory);
                    }
                }
            }
        }
        let pfn = self
            .frame_of(slot)
            .expect("swap_cache: the slot was just cached");
        phys.get(pfn);
        // The PTE's count and the cache's, and the cache's reference and ours.
        // Never while the disk reads the frame: a write must copy it.
        let busy = self.frames.get(&slot).is_some_and(|e| e.writeback);
        let exclusive = !busy && dev.count(slot) == 2 && phys.refcount(pfn) == 2;
        Ok(SwappedIn {
            pfn,
            exclusive,
            swap_full: dev.half_full(),
            writeback: busy,
            read,
            cycles,
        })
    }

    /// A PTE holding `slot` let go of it (its page was swapped in, or
    /// unmapped). When only the cache's count is left and no one maps the
    /// frame either, no one will look for the slot or the frame again:
    /// the entry and the slot go. A frame still mapped keeps its entry
    /// (it is clean: its slot lets reclaim drop it without a write).
    pub fn release(&mut self, dev: &mut dyn SwapDevice, phys: &mut dyn PhysMem, slot: Slot) {
        if dev.free(slot) == 1
            && let Some(entry) = self.frames.get(&slot)
            && phys.refcount(entry.pfn) == 1
        {
            self.remove(dev, phys, slot);
        }
    }

    /// `pfn` is about to be written, or unmapped (Linux's folio_free_swap):
    /// if the cache holds it and no PTE holds its slot any more, the entry
    /// goes, and the slot with it. Whether `pfn` is out of the cache now
    /// (false: some swap PTE still wants the page from here, the frame
    /// stays cached and must not be written).
    pub fn free_swap(
        &mut self,
        dev: &mut dyn SwapDevice,
        phys: &mut dyn PhysMem,
        pfn: Pfn,
    ) -> bool {
        let Some(slot) = self.slot_of(pfn) else {
            return true;
        };
        if dev.count(slot) != 1 || self.frames[&slot].writeback {
            return false;
        }
        self.remove(dev, phys, slot);
        true
    }

    /// No slot is free: give up the slots of the cached frames that PTEs
    /// map and no swap PTE needs (they become plain pages, written to a
    /// new slot if they go). Returns how many slots came free.
    pub fn give_up_slots(&mut self, dev: &mut dyn SwapDevice, phys: &mut dyn PhysMem) -> usize {
        let mapped: Vec<Slot> = self
            .frames
            .iter()
            .filter(|&(&slot, e)| phys.refcount(e.pfn) > 1 && dev.count(slot) == 1 && !e.writeback)
            .map(|(&slot, _)| slot)
            .collect();
        for &slot in &mapped {
            self.remove(dev, phys, slot);
        }
        mapped.len()
    }

    /// Reclaim took every PTE of the clean cached frame `pfn` back to its
    /// slot: the entry goes (the slot stays, held by those PTEs).
    pub fn evicted(&mut self, dev: &mut dyn SwapDevice, phys: &mut dyn PhysMem, pfn: Pfn) {
        if let Some(slot) = self.slot_of(pfn) {
            self.remove(dev, phys, slot);
        }
    }

    /// Drop entries no PTE maps (read ahead and not used yet, or left by
    /// processes that exited), oldest first, keeping the newest `keep`.
    /// Returns the frames freed. Their pages are on the disk: nothing is
    /// written (pages under writeback, or whose write failed, stay).
    pub fn shrink(
        &mut self,
        dev: &mut dyn SwapDevice,
        phys: &mut dyn PhysMem,
        keep: usize,
    ) -> usize {
        let mut idle: Vec<(u64, Slot)> = self
            .frames
            .iter()
            .filter(|&(_, e)| phys.refcount(e.pfn) == 1 && !e.writeback && !e.dirty)
            .map(|(&slot, e)| (e.stamp, slot))
            .collect();
        idle.sort_unstable();
        let drop = idle.len().saturating_sub(keep);
        for &(_, slot) in &idle[..drop] {
            self.remove(dev, phys, slot);
        }
        drop
    }
}

/// The run of consecutive slots of `near` (sorted) around `slot` that
/// `wanted` accepts; `slot` itself is always in it.
fn consecutive_run(near: &[Slot], slot: Slot, wanted: impl Fn(Slot) -> bool) -> Vec<Slot> {
    let ok = |s: Slot| s == slot || (near.binary_search(&s).is_ok() && wanted(s));
    let mut lo = slot.0;
    while lo > 0 && ok(Slot(lo - 1)) {
        lo -= 1;
    }
    let mut hi = slot.0;
    while let Some(next) = hi.checked_add(1)
        && ok(Slot(next))
    {
        hi = next;
    }
    (lo..=hi).map(Slot).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_is_the_consecutive_taken_slots_around_the_slot() {
        let near: Vec<Slot> = [8, 9, 11, 12, 13, 15].into_iter().map(Slot).collect();
        let run = consecutive_run(&near, Slot(12), |_| true);
        assert_eq!(run, [Slot(11), Slot(12), Slot(13)]);
        let run = consecutive_run(&near, Slot(12), |s| s != Slot(11));
        assert_eq!(run, [Slot(12), Slot(13)]);
        assert_eq!(consecutive_run(&[], Slot(3), |_| true), [Slot(3)]);
    }

    /// `next` after a read whose `ahead` pages were `used`.
    fn after(ra: &mut ReadAhead, ahead: u32, used: u32, slot: u32) -> u32 {
        ra.ahead = ahead;
        ra.used = used;
        ra.next(Slot(slot))
    }

    #[test]
    fn the_window_grows_while_its_pages_are_used_and_shrinks_when_not() {
        let mut ra = ReadAhead::new();
        assert_eq!(ra.next(Slot(100)), READAHEAD_WINDOW, "the first read");
        assert_eq!(after(&mut ra, 7, 7, 108), 16, "a sweep: all used");
        assert_eq!(after(&mut ra, 15, 8, 124), 32);
        assert_eq!(
            after(&mut ra, 31, 31, 156),
            READAHEAD_MAX,
            "at most the maximum"
        );
        assert_eq!(after(&mut ra, 31, 10, 188), 32, "a third used: as it was");
        assert_eq!(after(&mut ra, 31, 2, 5000), 16, "random: few used");
        assert_eq!(after(&mut ra, 15, 0, 9000), 8);
        for at in [20_000, 30_000, 40_000, 50_000] {
            after(&mut ra, 7, 0, at);
        }
        assert_eq!(ra.window, 1, "down to the slot alone");
        assert_eq!(
            after(&mut ra, 0, 0, 60_000),
            1,
            "nothing read ahead, not in order"
        );
        assert_eq!(
            after(&mut ra, 0, 0, 60_001),
            2,
            "the next slot: in order again"
        );
        assert_eq!(after(&mut ra, 1, 1, 60_003), 4);
    }
}
