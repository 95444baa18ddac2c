//! Reclaim: taking frames back from the processes that map them when
//! memory runs short (docs/src/pressure.md, "Reclaim").
//!
//! `reclaim` frees up to `want` frames:
//!
//! 1. the swap cache's idle entries go first (pages read ahead and never
//!    used, pages whose mappers all left): they are on the disk already;
//! 2. the clock (`clock.rs`) picks victims among the frames user PTEs map,
//!    reading each one's accessed bits through the reverse map (every PTE
//!    that maps it, in every space);
//! 3. each victim is unmapped from every owner at once: each PTE becomes
//!    a swap PTE holding the victim's slot (`Pmap::swap_out`, which
//!    flushes the TLB entry), one slot count per PTE;
//! 4. the victims are written, runs of consecutive slots in one go, and
//!    their frames freed. A frame the swap cache holds is clean (it is
//!    mapped read-only while cached): its slot already has its contents,
//!    and it goes without a write. A page marked lazily freeable by
//!    MADV_FREE and not written since is dropped: no slot, no write.
//!
//! `page_out` (MADV_PAGEOUT) takes steps 3 and 4 for the pages it is
//! given, without the clock.
//!
//! 5. If that was not enough, the pages of shared objects (shared
//!    anonymous memory, ramfs files) go the same way from their objects,
//!    each object going round its pages (`objects.rs`).
//!
//! The clock's frame may go only when every reference to it is a PTE of a
//! private mapping (anonymous memory, or a private copy of a file page)
//! that is not locked, plus the swap cache's: a page of a shared object
//! has its object's reference too and is step 5's. A
//! transparent 2 MiB page (one owner) is split in place first and goes 4 KiB
//! at a time; a MAP_HUGETLB one stays. mlock, MAP_LOCKED and MAP_WIRED mark the VMA
//! `LOCKED`: such a page never goes.
//!
//! Reclaim starts from a frame, so it meets address spaces in the order
//! opposite to the lock order (DESIGN §6). It never waits for a space:
//! `Spaces::with_space` only try-locks, and a page of a busy space stays
//! where it is this time.

use crate::clock::{Clock, Verdict};
use crate::frame::Pfn;
use crate::mmap::Sharing;
use crate::pmap::{BLOCK_FRAMES, Mapping, PhysMem, Pmap};
use crate::rmap::{Owner, SpaceId};
use crate::space::{AddressSpace, PAGEOUT_BATCH};
use crate::swap_cache::{Cached, SwapCache, SwapDevice, Writeback, Written};
use crate::vm_object::ObjectRef;
use crate::vma::{HUGE_PAGE, VmaFlags};
use alloc::vec::Vec;
use core::cell::RefCell;

mod objects;

/// The address spaces of the machine, as reclaim reaches them.
pub trait Spaces<P: Pmap> {
    /// Run `f` on the live space named `id`; false, without running it,
    /// when the space is gone or busy (held by someone else: reclaim only
    /// try-locks).
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut AddressSpace<P>)) -> bool;
    /// Every PTE that maps `pfn` (the reverse map).
    fn owners(&mut self, pfn: Pfn) -> Vec<Owner>;
    /// Tell `f` every frame user PTEs map, space by space in address
    /// order (the clock's refill: its victims, and their swap slots, then
    /// follow the order pages are laid out in, which read-ahead needs).
    fn mapped_frames(&mut self, f: &mut dyn FnMut(Pfn));
    /// Tell `f` every object whose pages may go to swap (step 5): those
    /// the spaces' VMAs map and the files of the file systems; one may
    /// come more than once. None by default (a machine without objects).
    fn objects(&mut self, _f: &mut dyn FnMut(&ObjectRef)) {}
}

/// What one call of `reclaim` did (/proc/vmstat's pgscan, pgsteal, pswpout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Pages the clock looked at.
    pub scanned: u64,
    /// Frames freed.
    pub freed: u64,
    /// Pages written to swap.
    pub written: u64,
    /// Lazily freeable pages (MADV_FREE) dropped without a write
    /// (/proc/vmstat's pglazyfreed); counted in `freed` too.
    pub lazy_freed: u64,
    /// Cycles waited for the disk.
    pub cycles: u64,
    /// Reclaim stopped because no slot was free.
    pub swap_full: bool,
}

/// The state reclaim works on: the machine's clock, swap cache and device,
/// frames and spaces.
pub struct Reclaim<'a, P: Pmap> {
    pub clock: &'a mut Clock,
    pub cache: &'a mut SwapCache,
    pub dev: &'a mut dyn SwapDevice,
    pub phys: &'a mut dyn PhysMem,
    pub spaces: &'a mut dyn Spaces<P>,
}

/// Whether a page of `vma`-like attributes may be paged out.
fn pageable(space: &AddressSpace<impl Pmap>, va: u64, pfn: Pfn) -> bool {
    let Some(vma) = space.find(va) else {
        return false;
    };
    vma.sharing == Sharing::Private
        && !vma.flags.intersects(VmaFlags::LOCKED | VmaFlags::HUGE)
        && space
            .pmap
            .query(va)
            .is_some_and(|m| m.pfn == pfn && !m.huge)
}

impl<P: Pmap> Reclaim<'_, P> {
    /// Free up to `want` frames (see the module comment).
    pub fn reclaim(&mut self, want: usize) -> Reclaimed {
        let (mut done, wb) = self.unmap_victims(want);
        self.write(wb, &mut done);
        done
    }

    /// `reclaim` up to its writes: the victims unmapped, each going to
    /// the disk in the swap cache under writeback (`Writeback`), where a
    /// fault finds it meanwhile. The caller writes them, and hands the
    /// results to `SwapCache::written`, which frees the frames: the
    /// kernel's page-out daemon does that holding no lock
    /// (kernel/src/reclaim.rs). `freed` counts only the frames freed
    /// already (clean and lazily freeable pages, idle cache entries).
    pub fn unmap_victims(&mut self, want: usize) -> (Reclaimed, Writeback) {
        let mut done = Reclaimed::default();
        let mut wb = Writeback::default();
        if want == 0 {
            return (done, wb);
        }
        // Keep the newest read-ahead: it is about to be used.
        let keep = 2 * self.cache.window() as usize;
        done.freed += self.cache.shrink(self.dev, self.phys, keep) as u64;
        // Pages on their way out count as freed: they will be.
        let short =
            |done: &Reclaimed, wb: &Writeback| want.saturating_sub(done.freed as usize + wb.len());
        if short(&done, &wb) == 0 {
            return (done, wb);
        }
        if self.clock.lengths().1 < 2 * short(&done, &wb) {
            let clock = &mut *self.clock;
            self.spaces.mapped_frames(&mut |pfn| clock.insert(pfn));
        }
        let victims = self.choose(short(&done, &wb), &mut done);
        for pfn in victims {
            self.evict(pfn, &mut wb, &mut done);
        }
        if short(&done, &wb) > 0 && !done.swap_full {
            self.reclaim_objects(short(&done, &wb), &mut wb, &mut done);
        }
        (done, wb)
    }

    /// MADV_PAGEOUT: push the pages of [start, end) in space `space` out
    /// now, whatever the clock says, a batch of `PAGEOUT_BATCH` at a time
    /// (`AddressSpace::pageout_batch`; the caller checked the range). A
    /// page goes if it may (the module comment's rule) and this PTE is its
    /// only user, as Linux leaves a page other processes map alone; a
    /// lazily freeable one is dropped. Without swap only those go. A
    /// transparent 2 MiB page is split first, as reclaim splits one.
    pub fn page_out(&mut self, space: SpaceId, start: u64, end: u64) -> Reclaimed {
        let mut done = Reclaimed::default();
        let mut batch = Vec::with_capacity(PAGEOUT_BATCH);
        let mut at = start;
        while at < end {
            batch.clear();
            let mut next = end;
            let phys = &*self.phys;
            let reached = self.spaces.with_space(space, &mut |s| {
                next = s.pageout_batch(phys, at, end, &mut batch);
            });
            if !reached {
                break;
            }
            if let [base] = batch[..]
                && self.split_for_page_out(space, base)
            {
                // Its 4 KiB pages are the next batch (those below `at`, if it
                // began there, were seen already).
                at = at.max(base);
                continue;
            }
            let mut wb = Writeback::default();
            for &va in &batch {
                let mut pfn = None;
                self.spaces.with_space(space, &mut |s| {
                    pfn = s.pmap.query(va).filter(|m| !m.huge).map(|m| m.pfn);
                });
                let Some(pfn) = pfn else { continue };
                if self.spaces.owners(pfn) != [Owner::new(space, va)] {
                    continue;
                }
                done.scanned += 1;
                // Its 2 MiB pages were split above: no budget to keep.
                let mut may_split = usize::MAX;
                if verdict(self.spaces, self.phys, self.cache, pfn, &mut may_split)
                    == Verdict::Evict
                {
                    self.evict(pfn, &mut wb, &mut done);
                }
            }
            self.write(wb, &mut done);
            at = next;
        }
        done
    }

    /// Split the 2 MiB page of `space` at `base` for page-out; whether it was.
    fn split_for_page_out(&mut self, space: SpaceId, base: u64) -> bool {
        let phys = &mut *self.phys;
        let mut split = false;
        self.spaces.with_space(space, &mut |s| {
            split = s
                .pmap
                .query(base)
                .filter(|m| m.huge)
                .is_some_and(|m| split_huge_page(s, phys, base, m.pfn));
        });
        split
    }

    /// Unmap the victim `pfn`: counted in `done` when its frame is free
    /// already, queued in `wb` when it waits for its write, back on the
    /// clock when it stays.
    fn evict(&mut self, pfn: Pfn, wb: &mut Writeback, done: &mut Reclaimed) {
        match self.unmap(pfn, wb) {
            Unmapped::Clean => done.freed += 1,
            Unmapped::Dropped => {
                done.freed += 1;
                done.lazy_freed += 1;
            }
            Unmapped::Queued => {}
            Unmapped::Kept => self.clock.insert(pfn),
            Unmapped::SwapFull => {
                done.swap_full = true;
                self.clock.insert(pfn);
            }
        }
    }

    /// The clock's victims: unaccessed pages that may go.
    fn choose(&mut self, want: usize, done: &mut Reclaimed) -> Vec<Pfn> {
        let scanned_before = self.clock.scanned;
        // Both of the clock's questions need the spaces.
        let state = RefCell::new((&mut *self.spaces, &mut *self.phys, &*self.cache));
        // Every page once at most: a page accessed since it was last looked
        // at goes round (to the active list) with its bit cleared, so the
        // second look at it finds it unused if it is.
        let budget = self.clock.len() + want;
        // 2 MiB pages are split only until their frames cover what is
        // wanted: each split costs a page table and 511 reverse-map
        // entries, taken from the few frames left, and its 512 pages join
        // the clock only at its next refill.
        let mut may_split = want;
        let victims = self.clock.choose(
            want,
            budget,
            &mut |pfn| {
                let (spaces, phys, cache) = &mut *state.borrow_mut();
                accessed(*spaces, *phys, cache, pfn)
            },
            &mut |pfn| {
                let (spaces, phys, cache) = &mut *state.borrow_mut();
                verdict(*spaces, *phys, cache, pfn, &mut may_split)
            },
        );
        done.scanned += self.clock.scanned - scanned_before;
        victims
    }

    /// Turn every PTE of `pfn` into a swap PTE holding its slot; a page
    /// to be written goes into `wb`.
    fn unmap(&mut self, pfn: Pfn, wb: &mut Writeback) -> Unmapped {
        let owners = self.spaces.owners(pfn);
        let state = self.cache.state(pfn);
        let cached = match state {
            // The disk reads it now (mapped again meanwhile): not this time.
            Some(Cached::Writeback) => return Unmapped::Kept,
            Some(Cached::Clean(slot) | Cached::Dirty(slot)) => Some(slot),
            None => None,
        };
        // MADV_FREE'd and not written since: its data need not be kept.
        if cached.is_none()
            && let [owner] = owners[..]
        {
            let mut dropped = false;
            self.spaces.with_space(owner.space(), &mut |space| {
                dropped = space.pmap.discard_lazy_free(owner.va(), pfn).is_some();
            });
            if dropped {
                self.phys.put(pfn);
                return Unmapped::Dropped;
            }
        }
        let slot = match cached {
            Some(slot) => slot,
            None => match self.dev.alloc() {
                Some(slot) => slot,
                // Slots kept for clean pages in RAM are given up for a
                // page that has none (Linux frees swap cache slots when
                // swap runs short, vm_swap_full).
                None if self.cache.give_up_slots(self.dev, self.phys) > 0 => {
                    match self.dev.alloc() {
                        Some(slot) => slot,
                        None => return Unmapped::SwapFull,
                    }
                }
                None => return Unmapped::SwapFull,
            },
        };
        let mut ptes = Vec::with_capacity(owners.len());
        for &owner in &owners {
            let mut out = None;
            self.spaces.with_space(owner.space(), &mut |space| {
                out = space.pmap.swap_out(owner.va(), pfn, slot);
            });
            match out {
                Some(m) => ptes.push((owner, m)),
                None => {
                    // Changed since the clock's verdict: put back what went.
                    self.map_back(pfn, &ptes);
                    if cached.is_none() {
                        self.dev.free(slot);
                    }
                    return Unmapped::Kept;
                }
            }
        }
        // One count per PTE: a fresh slot came with one.
        let fresh = usize::from(cached.is_none());
        for _ in fresh..ptes.len() {
            assert!(self.dev.dup(slot), "reclaim: a slot's count overflowed");
        }
        // A fresh victim's last reference (ours) goes to the swap cache.
        for _ in fresh..ptes.len() {
            self.phys.put(pfn);
        }
        match state {
            Some(Cached::Clean(_)) => {
                self.cache.evicted(self.dev, self.phys, pfn);
                Unmapped::Clean
            }
            Some(Cached::Dirty(_)) => {
                self.cache.restart_writeback(pfn, wb);
                Unmapped::Queued
            }
            _ => {
                assert!(
                    self.cache.start_writeback(self.dev, slot, pfn, wb),
                    "reclaim: a slot's count overflowed"
                );
                Unmapped::Queued
            }
        }
    }

    /// Make `ptes` (swap PTEs) map `pfn` again, each taking back the frame
    /// reference `swap_out` gave us. Slot counts are the caller's business.
    fn map_back(&mut self, pfn: Pfn, ptes: &[(Owner, Mapping)]) {
        for &(owner, m) in ptes {
            let mut back = false;
            self.spaces.with_space(owner.space(), &mut |space| {
                back = space.pmap.swap_in(owner.va(), pfn, m.prot).is_ok();
            });
            // No reverse-map room: the PTE keeps the slot, and its page
            // reads back as last written there.
            if !back {
                self.phys.put(pfn);
            }
        }
    }

    /// Write the victims, a run of consecutive slots at a time, and free
    /// their frames (`SwapCache::written`); a page whose write fails stays
    /// in the swap cache, where its PTEs find it, to be written again.
    fn write(&mut self, wb: Writeback, done: &mut Reclaimed) {
        if wb.is_empty() {
            return;
        }
        let results = wb.write(self.dev, self.phys);
        let w = self.cache.written(self.dev, self.phys, results);
        done.add_written(w);
    }
}

impl Reclaimed {
    /// Count what the writes of an `unmap_victims` came to.
    pub fn add_written(&mut self, w: Written) {
        self.written += w.written;
        self.freed += w.freed;
        self.cycles += w.cycles;
    }
}

enum Unmapped {
    /// Its slot had its contents (a swap-cache frame): freed.
    Clean,
    /// Lazily freeable (MADV_FREE) and not written since: dropped, freed.
    Dropped,
    /// Unmapped, in the swap cache on its way to the disk.
    Queued,
    /// Left mapped.
    Kept,
    /// No free slot.
    SwapFull,
}

/// The OR of the accessed bits of every PTE of `pfn`, cleared. A busy
/// space counts as a use (its pages stay). A frame that is not the
/// clock's (an object's page: its count is more than its PTEs' and the
/// swap cache's) reads as unused with its bits left alone, so that the
/// verdict forgets it and the object's own hand (`objects.rs`) still
/// finds them.
fn accessed<P: Pmap>(
    spaces: &mut dyn Spaces<P>,
    phys: &dyn PhysMem,
    cache: &SwapCache,
    pfn: Pfn,
) -> bool {
    let owners = spaces.owners(pfn);
    let held = owners.len() as u32 + u32::from(cache.slot_of(pfn).is_some());
    if phys.refcount(pfn) > held {
        return false;
    }
    let mut used = false;
    for owner in owners {
        let reached = spaces.with_space(owner.space(), &mut |space| {
            used |= space.pmap.take_accessed(owner.va());
        });
        used |= !reached;
    }
    used
}

/// Split the 2 MiB page `pfn` heads at `va` if it is one that may be paged
/// out (private, not locked, not MAP_HUGETLB); whether it was split.
fn split_huge_page<P: Pmap>(
    space: &mut AddressSpace<P>,
    phys: &mut dyn PhysMem,
    va: u64,
    pfn: Pfn,
) -> bool {
    let Some(vma) = space.find(va) else {
        return false;
    };
    if vma.sharing != Sharing::Private || vma.flags.intersects(VmaFlags::LOCKED | VmaFlags::HUGE) {
        return false;
    }
    let base = va & !(HUGE_PAGE - 1);
    space
        .pmap
        .query(base)
        .is_some_and(|m| m.huge && m.pfn == pfn)
        && space.split_huge(phys, base).is_ok()
}

/// Whether `pfn` may go now (the module comment's rule). `may_split`:
/// the frames 2 MiB pages may still be split for (each split takes 512).
fn verdict<P: Pmap>(
    spaces: &mut dyn Spaces<P>,
    phys: &mut dyn PhysMem,
    cache: &SwapCache,
    pfn: Pfn,
    may_split: &mut usize,
) -> Verdict {
    let owners = spaces.owners(pfn);
    if owners.is_empty() {
        return Verdict::Forget;
    }
    // A transparent 2 MiB page goes 4 KiB at a time, as Linux splits a THP
    // before swapping it: split it in place (nothing is copied, the
    // reverse map gets its 512 entries) and keep it listed; its frames
    // join the clock at its next refill. Past the split budget it is
    // kept whole this time.
    if let [owner] = owners[..] {
        let mut split = false;
        let mut whole = false;
        spaces.with_space(owner.space(), &mut |space| {
            if *may_split > 0 {
                split = split_huge_page(space, phys, owner.va(), pfn);
            } else {
                whole = space.pmap.query(owner.va()).is_some_and(|m| m.huge);
            }
        });
        if split {
            *may_split = may_split.saturating_sub(BLOCK_FRAMES as usize);
        }
        if split || whole {
            return Verdict::Keep;
        }
    }
    let held = owners.len() as u32 + u32::from(cache.slot_of(pfn).is_some());
    if phys.refcount(pfn) != held {
        // An object's page, or one a kernel path holds: not ours to take.
        return Verdict::Forget;
    }
    for owner in owners {
        let mut ok = false;
        let reached = spaces.with_space(owner.space(), &mut |space| {
            ok = pageable(space, owner.va(), pfn);
        });
        if !reached {
            return Verdict::Keep;
        }
        if !ok {
            return Verdict::Forget;
        }
    }
    Verdict::Evict
}
