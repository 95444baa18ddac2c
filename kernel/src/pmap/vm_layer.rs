//! The machine-independent layer's view of these page tables (the
//! `vm::pmap::Pmap` trait, which `vm/src/fake.rs` also implements for the
//! host tests): each operation is one walk of `walk.rs` with a visitor.

use super::entry::{
    LAZY_FREE_MARK, MMU_BITS, clear_flags, exchange, flags_for, frame_of, mapping_of, set_swap,
    swap_slot, take, takes_rights, update_flags,
};
use super::walk::{self, Visited, Walk};
use super::{Pmap, USER_TABLE, rmap};
use vm::frame::Pfn;
use vm::pmap::{BLOCK_FRAMES, Mapping, NoMemory, PteProt, SharedPmap};
use vm::rmap::{Owner, Rmap, SpaceId};
use vm::swap_map::Slot;
use x86_64::VirtAddr;
use x86_64::structures::paging::PageTableFlags as Flags;
use x86_64::structures::paging::page_table::PageTableEntry;

const HUGE: u64 = 2 << 20;

impl Pmap {
    /// Take the present 4 KiB PTE of `va` if it maps `pfn` and `may` says
    /// so of its flags: `then` rewrites it (not present), the reverse map
    /// forgets it, its TLB entry is flushed. The mapping it was (its frame
    /// reference is the caller's), or None with nothing changed. `clears`:
    /// `then` empties the PTE, and the tables it leaves empty go (counted
    /// as reclaim's: its two callers are reclaim's unmaps).
    fn take_small_leaf(
        &mut self,
        va: u64,
        pfn: Pfn,
        may: impl Fn(Flags) -> bool,
        then: impl Fn(&mut PageTableEntry),
        clears: bool,
    ) -> Option<Mapping> {
        let owner = self.owner(va);
        let mut out = None;
        let spec = if clears {
            Walk::clearing(va, va + 4096)
        } else {
            Walk::leaves(va, va + 4096)
        };
        let visited = self.walk(&spec, &mut |_, level, entry| {
            let m = mapping_of(entry, level == 2);
            if m.huge || m.pfn != pfn || !may(entry.flags()) {
                return false;
            }
            then(entry);
            rmap::remove(pfn, owner);
            out = Some(m);
            true
        });
        self.flush(&visited);
        crate::vmstat::count(
            crate::vmstat::Event::PgtableReclaimed,
            visited.emptied.len() as u64,
        );
        if out.is_some() {
            self.count_unmapped(1);
        }
        out
    }

    /// Map the empty 2 MiB slot at `va` to the block headed by `pfn`.
    pub(super) fn enter_huge_entry(
        &self,
        va: u64,
        pfn: Pfn,
        prot: PteProt,
    ) -> Result<(), NoMemory> {
        let frame = frame_of(pfn);
        let owner = self.owner(va);
        // SAFETY: our L4, with `&mut self` at the caller or the page-table
        // lock held (`shared.rs`).
        unsafe {
            walk::with_entry(self.l4, va, 2, USER_TABLE, |entry| {
                let entry = entry.filter(|e| e.is_unused());
                let entry =
                    entry.unwrap_or_else(|| panic!("pmap::enter_huge: 2 MiB at {va:#x} not empty"));
                // Recorded once, at the head frame.
                rmap::add(pfn, owner)?;
                // The block is 2 MiB-aligned (buddy order 9).
                entry.set_addr(frame.start_address(), flags_for(prot) | Flags::HUGE_PAGE);
                Ok(())
            })??
        };
        self.count_mapped(512);
        Ok(())
    }
}

impl vm::pmap::Pmap for Pmap {
    fn id(&self) -> SpaceId {
        Pmap::id(self)
    }

    fn with_rmap(&self, f: &mut dyn FnMut(&Rmap)) {
        rmap::with(|r| f(r));
    }

    fn enter(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        // The PTE takes the reference the VM layer hands over with the
        // call; on failure the caller keeps it.
        if self.enter_leaf(va, frame_of(pfn), flags_for(prot)) {
            Ok(())
        } else {
            Err(NoMemory)
        }
    }

    fn enter_huge(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        self.enter_huge_entry(va, pfn, prot)
    }

    fn split_huge(&mut self, va: u64) -> Result<(), NoMemory> {
        let head = self
            .query(va)
            .filter(|m| m.huge)
            .expect("pmap::split_huge: no 2 MiB page there")
            .pfn;
        let table = walk::alloc_table().ok_or(NoMemory)?;
        // The reverse map's record of the 2 MiB page (head frame, first
        // page) is the first small page's: the other 511 are added first,
        // so that running out of room changes nothing.
        let small = |i: u64| (Pfn(head.0 + i), self.owner(va + i * 4096));
        for i in 1..BLOCK_FRAMES {
            let (pfn, owner) = small(i);
            if rmap::add(pfn, owner).is_err() {
                (1..i).for_each(|j| {
                    let (pfn, owner) = small(j);
                    rmap::remove(pfn, owner);
                });
                walk::free_table(table.into_raw());
                return Err(NoMemory);
            }
        }
        // SAFETY: our L4, under `&mut self`; the table frame is ours.
        unsafe { super::split::split_leaf(self.l4, va, table.into_raw(), USER_TABLE) };
        // One invlpg drops the 2 MiB translation (whatever the page size
        // of the entries for that address, Intel SDM 4.10.4.1).
        let mut visited = Visited::default();
        visited.leaves[0] = va;
        visited.count = 1;
        self.flush(&visited);
        crate::vmstat::count(crate::vmstat::Event::ThpSplitPmd, 1);
        Ok(())
    }

    fn join_huge(&mut self, va: u64) {
        // SAFETY: our L4, under `&mut self`.
        let table = unsafe { super::split::join_leaf(self.l4, va, USER_TABLE) };
        let head = self.query(va).expect("pmap::join_huge: joined").pfn;
        for i in 1..BLOCK_FRAMES {
            rmap::remove(Pfn(head.0 + i), self.owner(va + i * 4096));
        }
        // The 512 small translations go: a reload of CR3 drops them all,
        // and the paging-structure caches' pointer to the table with them.
        let visited = Visited {
            count: BLOCK_FRAMES as usize,
            ..Visited::default()
        };
        self.flush(&visited);
        // The table is all zeros and no entry points at it any more; its
        // reference was the level-2 entry's.
        walk::free_table(table);
    }

    fn huge_slot_free(&self, va: u64) -> bool {
        // The read lock's look (shared.rs) serves the write lock too.
        vm::pmap::SharedPmap::huge_slot_is_free(self, va)
    }

    fn query(&self, va: u64) -> Option<Mapping> {
        VirtAddr::try_new(va).ok()?;
        let (entry, huge) = self.leaf(va)?;
        Some(mapping_of(&entry, huge))
    }

    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping)) {
        // The read lock's way (shared.rs), with the lock no one else wants.
        self.unmap_range_shared(start, end, release);
    }

    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    ) {
        let visited = self.walk(&Walk::leaves(start, end), &mut |va, level, entry| {
            let huge = level == 2;
            let mut flags = flags_for(rights(va, mapping_of(entry, huge)));
            if huge {
                flags |= Flags::HUGE_PAGE;
            }
            // What the MMU set stays (Linux's pte_modify keeps it too).
            let old = update_flags(entry, |old| flags | (old & MMU_BITS));
            takes_rights(old, flags)
        });
        self.flush(&visited);
    }

    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<Mapping, NoMemory> {
        let mut old = None;
        let owner = self.owner(va & !0xfff);
        let visited = self.walk(&Walk::leaves(va, va + 4096), &mut |_, level, entry| {
            assert!(level == 1, "pmap::replace: a 2 MiB page");
            let was = mapping_of(entry, false);
            // The new frame first: if it cannot be recorded nothing changes.
            if rmap::add(pfn, owner).is_err() {
                old = Some(Err(NoMemory));
                return false;
            }
            rmap::remove(was.pfn, owner);
            old = Some(Ok(was));
            let mut new = PageTableEntry::new();
            new.set_addr(frame_of(pfn).start_address(), flags_for(prot));
            exchange(entry, &new);
            true
        });
        self.flush(&visited);
        old.expect("pmap::replace: page not present")
    }

    fn visit(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Mapping)) {
        self.walk(&Walk::leaves(start, end), &mut |va, level, entry| {
            visit(va, mapping_of(entry, level == 2));
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
        // One walk over the PTEs from the first frame to the last.
        let Some(first) = frames.iter().position(Option::is_some) else {
            return 0;
        };
        let last = frames.iter().rposition(Option::is_some).unwrap_or(first);
        let (start, end) = (va + first as u64 * 4096, va + (last as u64 + 1) * 4096);
        let mut entered = 0;
        let mut seen = first;
        let id = self.id();
        let walk_spec = Walk::at(start, end, 1).making(USER_TABLE);
        self.walk(&walk_spec, &mut |at, level, entry| {
            // A 2 MiB page covering part of the run: its frames are refused.
            let from = at.max(start);
            let to = if level == 1 { from + 4096 } else { at + HUGE };
            let i = ((from - va) / 4096) as usize;
            let hi = (((to - va) / 4096) as usize).min(last + 1);
            for pfn in frames[i..hi].iter().flatten() {
                if level == 1 && entry.is_unused() && rmap::add(*pfn, Owner::new(id, from)).is_ok()
                {
                    // An absent page has no TLB entry: nothing to flush.
                    entry.set_addr(frame_of(*pfn).start_address(), flags);
                    entered += 1;
                } else {
                    refuse(*pfn);
                }
            }
            seen = hi;
            false
        });
        // Those the walk did not reach (no frame for a table) go back too.
        for pfn in frames[seen..=last].iter().flatten() {
            refuse(*pfn);
        }
        self.count_mapped(u64::from(entered));
        entered
    }

    fn move_range(&mut self, from: u64, to: u64, len: u64) -> Result<(), NoMemory> {
        self.move_entries(from, to, len)
    }

    fn copy_to(
        &mut self,
        child: &mut Self,
        start: u64,
        end: u64,
        share: &mut dyn FnMut(u64, Mapping),
    ) -> Result<(), NoMemory> {
        assert!(
            start <= end && end <= super::USER_END,
            "pmap::copy_to: a range past the user half"
        );
        let child_id = child.id();
        let mut copied = 0;
        let mut copy = |va, level, entry: &mut PageTableEntry, target: &mut PageTableEntry| {
            let huge = level == 2;
            let pfn = mapping_of(entry, huge).pfn;
            assert!(target.is_unused(), "pmap::copy_to: child page present");
            rmap::add(pfn, Owner::new(child_id, va)).map_err(|_| ())?;
            // One atomic clear of the write bit (entry.rs).
            let old = clear_flags(entry, Flags::WRITABLE);
            let new = old - Flags::WRITABLE;
            target.set_addr(entry.addr(), new);
            copied += if huge { 512 } else { 1 };
            share(va, mapping_of(entry, huge));
            Ok(old.contains(Flags::WRITABLE))
        };
        // SAFETY: our L4 and the child's, each ours under its `&mut`: two
        // different spaces; the range is in the user half (checked above).
        let visited =
            unsafe { walk::copy_leaves(self.l4, child.l4, start, end, USER_TABLE, &mut copy) };
        self.flush(&visited);
        child.count_mapped(copied);
        if visited.no_memory {
            Err(NoMemory)
        } else {
            Ok(())
        }
    }

    fn query_swap(&self, va: u64) -> Option<Slot> {
        VirtAddr::try_new(va).ok()?;
        let mut slot = None;
        self.walk_shared(&Walk::at(va, va + 1, 1), &mut |_, level, entry| {
            if level == 1 {
                slot = swap_slot(entry);
            }
            false
        });
        slot
    }

    fn swap_out(&mut self, va: u64, pfn: Pfn, slot: Slot) -> Option<Mapping> {
        // The swap PTE keeps its table: nothing to free.
        self.take_small_leaf(
            va,
            pfn,
            |_| true,
            |entry| {
                set_swap(entry, slot);
            },
            false,
        )
    }

    fn swap_in(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory> {
        let owner = self.owner(va);
        // SAFETY: our L4, under `&mut self`.
        unsafe {
            walk::with_entry(self.l4, va, 1, USER_TABLE, |entry| {
                let entry = entry.filter(|e| swap_slot(e).is_some());
                let entry = entry.unwrap_or_else(|| panic!("pmap::swap_in: {va:#x} holds no slot"));
                rmap::add(pfn, owner)?;
                // Not present before: nothing to flush.
                entry.set_addr(frame_of(pfn).start_address(), flags_for(prot));
                Ok(())
            })??
        };
        self.count_mapped(1);
        Ok(())
    }

    fn set_swap(&mut self, va: u64, slot: Slot) -> Result<(), NoMemory> {
        // SAFETY: our L4, under `&mut self`.
        unsafe {
            walk::with_entry(self.l4, va, 1, USER_TABLE, |entry| {
                let entry = entry.filter(|e| e.is_unused());
                let entry = entry.unwrap_or_else(|| panic!("pmap::set_swap: {va:#x} not empty"));
                set_swap(entry, slot);
            })
        }
    }

    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot)) {
        self.clear_swap_shared(start, end, release);
    }

    fn visit_swap(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Slot)) {
        self.walk(&Walk::at(start, end, 1), &mut |va, level, entry| {
            if level == 1
                && let Some(slot) = swap_slot(entry)
            {
                visit(va, slot);
            }
            false
        });
    }

    fn take_accessed(&mut self, va: u64) -> bool {
        let mut accessed = false;
        self.walk(&Walk::leaves(va, va + 4096), &mut |_, level, entry| {
            // Looked at first so that an old entry is not written; then
            // one atomic clear (entry.rs), so a dirty bit set meanwhile stays.
            if level == 1 && entry.flags().contains(Flags::ACCESSED) {
                accessed |= clear_flags(entry, Flags::ACCESSED).contains(Flags::ACCESSED);
            }
            false
        });
        accessed
    }

    fn mark_lazy_free(
        &mut self,
        start: u64,
        end: u64,
        pick: &mut dyn FnMut(u64, Mapping) -> bool,
    ) -> u64 {
        let mut marked = 0;
        let visited = self.walk(&Walk::leaves(start, end), &mut |va, level, entry| {
            if level != 1 || !pick(va, mapping_of(entry, false)) {
                return false;
            }
            update_flags(entry, |old| {
                (old - Flags::WRITABLE - Flags::ACCESSED) | LAZY_FREE_MARK
            });
            marked += 1;
            // Write access goes: a TLB entry still granting it must go too.
            true
        });
        self.flush(&visited);
        marked
    }

    fn discard_lazy_free(&mut self, va: u64, pfn: Pfn) -> Option<Mapping> {
        // Read-only since the mark: no CPU can have written it since.
        let marked =
            |flags: Flags| flags.contains(LAZY_FREE_MARK) && !flags.contains(Flags::WRITABLE);
        // The PTE goes empty: a table left with nothing in it goes too, so
        // that a sparse range whose pages were dropped keeps no tables
        // (docs/src/pressure.md, "Page tables of empty ranges").
        self.take_small_leaf(
            va,
            pfn,
            marked,
            |entry| {
                take(entry);
            },
            true,
        )
    }
}
