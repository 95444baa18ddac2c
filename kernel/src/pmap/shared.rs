//! The entries a fault makes under the address-space read lock
//! (`vm::pmap::SharedPmap`, DESIGN §6), and munmap's second half there.
//!
//! Faults of one process on different CPUs hold the read lock together
//! (kernel/src/mm.rs), so they walk the same tables at once. They meet as
//! little as the tables let them (pmap/ptlock.rs):
//! - **a look takes no lock**: `look` reads the entries down to the PTE
//!   with atomic loads. A table it passes through cannot be freed under
//!   it: tables go only after a shootdown (`Emptied`, walk.rs), which this
//!   CPU answers only once its fault is over, interrupts being masked in
//!   the fault and a look never spinning.
//! - **an entry is made under its slot's lock**, and only if the slot is
//!   still empty there (another CPU may have resolved the same fault since
//!   this one looked): one lock per 2 MiB slot, hashed, so two threads
//!   faulting 4 KiB pages in their own regions take different locks. A
//!   missing table above the slot is made with one compare-and-exchange.
//! - Only a copy-on-write takes a right away (`replace_if`: the old
//!   frame's read access), so only it needs a TLB shootdown, which it
//!   sends once the slot's lock is let go, before the old frame's
//!   reference goes back; an absent entry is in no TLB, and a right added
//!   (`protect_if`) costs a CPU with the stricter entry cached one
//!   spurious fault.
//!
//! munmap's second half runs here too, under the read lock
//! (vm/src/space/unmap.rs): its range is in no VMA any more, so no fault
//! adds to it, but faults beside it share its tables. It clears one slot
//! at a time under that slot's lock, so faults elsewhere go on; an emptied
//! level-1 table goes with its slot's lock held, so a fault either made
//! its entry first (the table is not empty) or finds it gone and makes a
//! new one. The emptied tables above go at the end, under every slot lock.
//!
//! The locks are spin locks: a holder only walks tables, allocates a frame
//! for a missing table, and adds to or takes from the reverse map; it
//! never waits for another CPU (the unmap's shootdown comes after it let
//! the lock go), so a CPU spinning for one (with interrupts masked) waits
//! a few microseconds at most.

use super::entry::{MMU_BITS, entry_of, flags_for, frame_of, mapping_of, swap_slot, take};
use super::walk::{self, Visited, Walk};
use super::{Pmap, PtHeld, rmap};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use vm::frame::Pfn;
use vm::pmap::{Mapping, NoMemory, Pte, PteProt, SharedPmap};
use vm::rmap::Owner;
use vm::swap_map::Slot;
use x86_64::VirtAddr;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};

const HUGE: u64 = 2 << 20;

/// A shared unmap's gather: this many 2 MiB slots (up to 4096 frames, a
/// 96 KiB list) are cleared before one shootdown, then their frames go
/// back. Each shootdown is a round trip to every other CPU running the
/// space, and a CPU that does not answer at once (busy with interrupts
/// masked, or its vCPU waiting for a host CPU) makes it cost far more
/// than the clearing: a 64 MiB munmap on two threads spent most of its
/// time in 32 of them. Linux's mmu_gather frees its pages in batches of
/// thousands for the same reason.
const GATHER_SLOTS: usize = 8;

/// A slot's entries, read and changed without `&mut` (the module comment).
impl Pmap {
    /// The level-2 entry of `va`'s slot, reached from the L4 with atomic
    /// loads: None when a table on the way is missing, unless `make`, which
    /// makes them (Err: no frame for one). The word stays a level-2 entry
    /// of this space while the caller holds the slot's lock, or, for a
    /// look, until this CPU next answers a shootdown.
    fn slot_word(&self, va: u64, make: bool) -> Result<Option<&'static AtomicU64>, NoMemory> {
        let mut table = self.l4;
        for shift in [39, 30] {
            let word = table_word(table, va, shift);
            let mut raw = word.load(Ordering::Acquire);
            if raw & Flags::PRESENT.bits() == 0 {
                if !make {
                    return Ok(None);
                }
                raw = install_table(word)?;
            }
            table = entry_of(raw).frame().map_err(|_| NoMemory)?;
        }
        Ok(Some(table_word(table, va, 21)))
    }

    /// The level-2 entry of `va`'s slot and what it holds, if it is
    /// present (a 2 MiB page or a level-1 table).
    fn present_slot(&self, va: u64) -> Option<(&'static AtomicU64, PageTableEntry)> {
        let slot = self.slot_word(va, false).ok()??;
        let entry = entry_of(slot.load(Ordering::Acquire));
        entry
            .flags()
            .contains(Flags::PRESENT)
            .then_some((slot, entry))
    }

    /// The PTE of `va` as it is now, with no lock taken.
    fn pte(&self, va: u64) -> Pte {
        if VirtAddr::try_new(va).is_err() {
            return Pte::Absent;
        }
        let Some((_, entry)) = self.present_slot(va) else {
            return Pte::Absent;
        };
        if entry.flags().contains(Flags::HUGE_PAGE) {
            return Pte::Present(mapping_of(&entry, true));
        }
        let pte = entry_of(table_word(frame_of_entry(&entry), va, 12).load(Ordering::Acquire));
        if pte.flags().contains(Flags::PRESENT) {
            Pte::Present(mapping_of(&pte, false))
        } else if swap_slot(&pte).is_some() {
            Pte::Swapped
        } else {
            Pte::Absent
        }
    }

    /// Clear the present leaves of [from, to), inside one slot, under the
    /// slot's lock, handing each one's mapping to `cleared`; its table goes
    /// too if that left it empty. The leaves it changed, unflushed, and
    /// whether the slot's level-2 entry is clear now (a 2 MiB page gone, or
    /// its table), which may have left the tables above it empty.
    fn clear_slot(
        &self,
        from: u64,
        to: u64,
        cleared: &mut dyn FnMut(u64, Mapping),
    ) -> (Visited, bool) {
        let mut visited = Visited::default();
        let _slot = self.locks.slot(from);
        let Some((slot, entry)) = self.present_slot(from) else {
            return (visited, false);
        };
        let base = from & !(HUGE - 1);
        let id = self.id();
        if entry.flags().contains(Flags::HUGE_PAGE) {
            assert!(
                from == base && to == base + HUGE,
                "pmap::unmap_range: splits a 2 MiB page"
            );
            let mapping = mapping_of(&entry_of(slot.swap(0, Ordering::AcqRel)), true);
            rmap::remove(mapping.pfn, Owner::new(id, base));
            self.count_unmapped(512);
            cleared(base, mapping);
            visited.record(base);
            return (visited, true);
        }
        let table = frame_of_entry(&entry);
        // SAFETY: the slot's table, which stays while its lock is held.
        let words = unsafe { walk::words_at(table) };
        let mut unmapped = 0;
        for va in (from..to).step_by(4096) {
            let word = &words[(va >> 12) as usize & 511];
            if word.load(Ordering::Relaxed) & Flags::PRESENT.bits() == 0 {
                continue; // absent, or a swap PTE (`clear_swap_shared`'s)
            }
            // Taken in one exchange: the bits the MMU set are in it.
            let mapping = mapping_of(&entry_of(word.swap(0, Ordering::AcqRel)), false);
            rmap::remove(mapping.pfn, Owner::new(id, va));
            unmapped += 1;
            cleared(va, mapping);
            visited.record(va);
        }
        self.count_unmapped(unmapped);
        let empty = words.iter().all(|w| w.load(Ordering::Relaxed) == 0);
        if empty {
            slot.store(0, Ordering::Release);
            visited.emptied.push(table);
            visited.record(base);
        }
        (visited, empty)
    }
}

impl Pmap {
    /// Copy `bytes` to user address `va` through the physical map if the
    /// page is mapped present, user-accessible and writable now, under the
    /// address-space read lock; false, with nothing written, otherwise
    /// (not mapped, read-only for copy-on-write, crossing a page): the
    /// caller then takes the usual way, which faults the page in or gives
    /// the error. The slot's lock is held across the copy, so munmap's
    /// second half cannot take the frame meanwhile; the entry gets the
    /// Accessed and Dirty bits the MMU would have set for the store, so
    /// reclaim knows the page changed.
    pub fn write_user(&self, va: u64, bytes: &[u8]) -> bool {
        let len = bytes.len() as u64;
        let Some(last) = va.checked_add(len).and_then(|end| end.checked_sub(1)) else {
            return false;
        };
        if len == 0 || va >> 12 != last >> 12 || last >= super::USER_END {
            return false;
        }
        let _slot = self.locks.slot(va);
        let Some((slot, entry)) = self.present_slot(va) else {
            return false;
        };
        let (word, offset) = if entry.flags().contains(Flags::HUGE_PAGE) {
            (slot, va & (HUGE - 1))
        } else {
            (table_word(frame_of_entry(&entry), va, 12), va & 0xfff)
        };
        let leaf = entry_of(word.load(Ordering::Acquire));
        let needed = Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE;
        if !leaf.flags().contains(needed) {
            return false;
        }
        word.fetch_or((Flags::ACCESSED | Flags::DIRTY).bits(), Ordering::AcqRel);
        let dst = crate::phys::to_virt(leaf.addr() + offset).as_mut_ptr::<u8>();
        // SAFETY: the bytes lie in one page of a frame this space maps
        // writable for its user, which stays mapped (and so allocated)
        // while the slot's lock is held; the physical map covers all RAM.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        true
    }
}

impl Pmap {
    /// The 4 KiB PTE of `va`, if it still maps `old`; the caller holds
    /// the slot's lock, so the word stays this PTE.
    fn leaf_if(&self, va: u64, old: Mapping) -> Option<&'static AtomicU64> {
        let (_, entry) = self.present_slot(va)?;
        if entry.flags().contains(Flags::HUGE_PAGE) {
            return None;
        }
        let word = table_word(frame_of_entry(&entry), va, 12);
        let pte = entry_of(word.load(Ordering::Acquire));
        let same = pte.flags().contains(Flags::PRESENT) && mapping_of(&pte, false) == old;
        same.then_some(word)
    }
}

/// The entry of the table in `table` for `va`, at the level whose entries
/// cover 2^`shift` bytes.
fn table_word(table: PhysFrame, va: u64, shift: u32) -> &'static AtomicU64 {
    // SAFETY: `table` is a table of this space reached through present
    // entries, which stays one as `slot_word` says.
    let words = unsafe { walk::words_at(table) };
    &words[(va >> shift) as usize & 511]
}

/// The table a present non-leaf entry points at.
fn frame_of_entry(entry: &PageTableEntry) -> PhysFrame {
    PhysFrame::containing_address(entry.addr())
}

/// Point the empty `word` at a new zeroed table, unless another CPU did
/// first (then that one's table is used, and this one goes back); the
/// entry as it is now. The table is zeroed before the exchange publishes
/// it, so a CPU that finds the entry finds an empty table under it.
fn install_table(word: &AtomicU64) -> Result<u64, NoMemory> {
    let table = walk::alloc_table().ok_or(NoMemory)?.into_raw();
    let mut entry = PageTableEntry::new();
    entry.set_frame(table, super::USER_TABLE);
    let raw = entry.addr().as_u64() | entry.flags().bits();
    match word.compare_exchange(0, raw, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(raw),
        Err(now) => {
            walk::free_table(table);
            Ok(now)
        }
    }
}

impl Pmap {
    /// The 2 MiB slots meeting [start, end) that map anything (a 2 MiB
    /// page, or a leaf table), in address order: the shared unmap's
    /// batches, so that the untouched part of a range costs one walk of
    /// the tables above it rather than one walk per 2 MiB (mmap1 of
    /// 128 MiB on two CPUs went 28 times slower). As many as the range
    /// has tables or huge pages: memory the process uses, never the
    /// length it passed.
    fn populated_slots(&self, held: &PtHeld<'_>, start: u64, end: u64) -> Vec<u64> {
        let mut slots = Vec::new();
        self.walk_locked(held, &Walk::at(start, end, 2), &mut |va, _, entry| {
            if !entry.is_unused() {
                slots.push(va);
            }
            false
        });
        slots
    }

    /// Free the tables above the slots of [start, end) that the shared
    /// unmap left empty (levels 2 and 3; `clear_slot` took the level-1
    /// ones), under every slot lock: no fault is then making an entry in
    /// them (ptlock.rs).
    fn free_upper_tables(&self, start: u64, end: u64) {
        let held = self.lock_tables();
        let visited =
            self.walk_locked(&held, &Walk::at(start, end, 2).freeing(), &mut |_, _, _| {
                false
            });
        drop(held);
        self.flush(&visited);
    }

    /// Clear the PTEs of [start, end), handing each one's mapping to
    /// `cleared`; the leaves it changed, which nothing has flushed yet.
    pub(super) fn clear_range(
        &self,
        held: &PtHeld<'_>,
        start: u64,
        end: u64,
        cleared: &mut dyn FnMut(u64, Mapping),
    ) -> Visited {
        let mut unmapped = 0;
        let id = self.id();
        let visited = self.walk_locked(
            held,
            &Walk::clearing(start, end),
            &mut |va, level, entry| {
                let huge = level == 2;
                assert!(
                    !huge || (va >= start && va + HUGE <= end),
                    "pmap::unmap_range: splits a 2 MiB page"
                );
                // Taken in one exchange: the bits the MMU set are in it.
                let mapping = mapping_of(&take(entry), huge);
                rmap::remove(mapping.pfn, Owner::new(id, va));
                unmapped += if huge { 512 } else { 1 };
                cleared(va, mapping);
                true
            },
        );
        self.count_unmapped(unmapped);
        visited
    }
}

impl SharedPmap for Pmap {
    fn look(&self, va: u64) -> Pte {
        self.pte(va)
    }

    fn huge_slot_is_free(&self, va: u64) -> bool {
        match self.slot_word(va, false) {
            Ok(Some(slot)) => slot.load(Ordering::Acquire) == 0,
            _ => true,
        }
    }

    fn enter_if_absent(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        let _slot = self.locks.slot(va);
        let slot = self.slot_word(va, true)?.ok_or(NoMemory)?;
        let mut raw = slot.load(Ordering::Acquire);
        if raw & Flags::PRESENT.bits() == 0 {
            raw = install_table(slot)?;
        }
        let entry = entry_of(raw);
        if entry.flags().contains(Flags::HUGE_PAGE) {
            return Ok(false);
        }
        let word = table_word(frame_of_entry(&entry), va, 12);
        // Present, or a swap PTE: not this path's fault any more.
        if word.load(Ordering::Acquire) != 0 {
            return Ok(false);
        }
        rmap::add(pfn, self.owner(va))?;
        let mut pte = PageTableEntry::new();
        pte.set_addr(frame_of(pfn).start_address(), flags_for(prot));
        // An absent page has no TLB entry: nothing to flush.
        word.store(pte.addr().as_u64() | pte.flags().bits(), Ordering::Release);
        self.count_mapped(1);
        Ok(true)
    }

    fn enter_huge_if_free(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        let _slot = self.locks.slot(va);
        let slot = self.slot_word(va, true)?.ok_or(NoMemory)?;
        if slot.load(Ordering::Acquire) != 0 {
            return Ok(false);
        }
        // Recorded once, at the head frame.
        rmap::add(pfn, self.owner(va))?;
        let mut entry = PageTableEntry::new();
        entry.set_addr(
            frame_of(pfn).start_address(),
            flags_for(prot) | Flags::HUGE_PAGE,
        );
        slot.store(
            entry.addr().as_u64() | entry.flags().bits(),
            Ordering::Release,
        );
        self.count_mapped(512);
        Ok(true)
    }

    fn replace_if(&self, va: u64, old: Mapping, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory> {
        let mut visited = Visited::default();
        {
            let _slot = self.locks.slot(va);
            let Some(word) = self.leaf_if(va, old) else {
                return Ok(false);
            };
            let owner = self.owner(va);
            rmap::add(pfn, owner)?;
            rmap::remove(old.pfn, owner);
            let mut pte = PageTableEntry::new();
            pte.set_addr(frame_of(pfn).start_address(), flags_for(prot));
            // Only the MMU writes the word meanwhile (Accessed), and a
            // read-only page is never Dirty: nothing of the old is kept.
            word.swap(pte.addr().as_u64() | pte.flags().bits(), Ordering::AcqRel);
            visited.record(va);
        }
        // After the slot's lock: the shootdown waits for the other CPUs,
        // which may be spinning for that lock (and answer cross-calls
        // while they spin).
        self.flush(&visited);
        Ok(true)
    }

    fn protect_if(&self, va: u64, old: Mapping, prot: PteProt) -> bool {
        let _slot = self.locks.slot(va);
        let Some(word) = self.leaf_if(va, old) else {
            return false;
        };
        // A right added: a CPU with the old entry cached faults once more
        // and finds this one (a spurious fault), so no shootdown. What
        // the MMU set stays, as in `protect_range`.
        word.update(Ordering::AcqRel, Ordering::Acquire, |raw| {
            let mut pte = entry_of(raw);
            pte.set_flags(flags_for(prot) | (pte.flags() & MMU_BITS));
            pte.addr().as_u64() | pte.flags().bits()
        });
        true
    }

    fn unmap_range_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        if crate::kernel_lock::held() && self.active_elsewhere().is_empty() {
            // No other CPU runs this space (none can start to: switching
            // to it takes the kernel lock, which the unmapping system call
            // holds), so no fault competes and nothing else can reach
            // these pages: one walk, each frame back as soon as its PTE is
            // clear, one flush here at the end. A munmap without the
            // kernel lock (syscall/memory.rs) cannot know that no CPU
            // starts to run the space meanwhile, so it gathers below.
            let held = self.lock_tables();
            let visited = self.clear_range(&held, start, end, release);
            drop(held);
            self.flush(&visited);
            return;
        }
        // Other CPUs run this space, or may start to: a frame goes back
        // only after the shootdown, a gather of up to GATHER_SLOTS 2 MiB
        // slots at a time.
        if super::lab7::on() {
            return self.lab7_unmap_shared(start, end, release);
        }
        let slots = self.populated_slots(&self.lock_tables(), start, end);
        // Whether a slot's entry went: then the tables above may be empty
        // (a 2 MiB page's going empties no table of its own, and leaving
        // its level-2 table behind, empty, was a frame lost until exit).
        let mut emptied_any = false;
        // One list for every batch: a new one grown to 4 096 entries for
        // each batch took ten reallocations (and copies) a batch.
        let mut gathered = Vec::new();
        for batch in slots.chunks(GATHER_SLOTS) {
            let mut visited = Visited::default();
            for &slot in batch {
                let (from, to) = (slot.max(start), (slot + HUGE).min(end));
                // One slot's lock at a time: the faults of the space's
                // other threads go on elsewhere, and get in between here.
                let (cleared, slot_clear) = self.clear_slot(from, to, &mut |va, m| {
                    gathered.push((va, m));
                });
                emptied_any |= slot_clear;
                visited.absorb(cleared);
                // With no slot's lock held: another CPU's cross-call
                // (a copy-on-write's shootdown, a drain of the frame
                // caches) waits no longer than one slot's clearing.
                crate::arch::ipi::poll();
            }
            self.flush(&visited);
            // The emptied tables go with `visited`, after the flush.
            drop(visited);
            for (va, m) in gathered.drain(..) {
                release(va, m);
            }
        }
        if emptied_any {
            self.free_upper_tables(start, end);
        }
    }

    fn clear_swap_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        let held = self.lock_tables();
        let visited = self.walk_locked(
            &held,
            &Walk::at(start, end, 1).freeing(),
            &mut |va, level, entry| {
                if level == 1
                    && let Some(slot) = swap_slot(entry)
                {
                    entry.set_unused();
                    release(va, slot);
                }
                false // not present: no translation to flush
            },
        );
        drop(held);
        // The tables it emptied, though, may be in paging-structure caches.
        self.flush(&visited);
    }
}
