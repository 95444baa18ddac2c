//! mremap's move of page-table entries (`vm::pmap::Pmap::move_range`):
//! the entries themselves go from one range to another, frames untouched
//! (swap PTEs with them, slots untouched).
//!
//! A 2 MiB region of the source that the move takes whole to a 2 MiB
//! boundary, where the target has no level-1 table yet, moves as one
//! level-2 entry: a 2 MiB page, or the pointer to its level-1 table with
//! all 512 PTEs in it (Linux's move_normal_pmd). The reverse map still
//! names each page by its address, so the table's present pages are
//! renamed in one pass over it under one lock, but no PTE is copied and no
//! table made or freed. Any other region (the range's ragged ends, a
//! target that is not 2 MiB-aligned) moves PTE by PTE: one walk copies
//! out and clears the source's entries, a second writes them at the target.
//!
//! In two passes, so that running out of memory changes nothing: first
//! every table the target needs is made (a failure frees those again and
//! stops), then the entries move, which needs no memory.

use super::entry::swap_slot;
use super::walk::{self, FLUSH_ALL_THRESHOLD, Visited, Walk};
use super::{Pmap, USER_TABLE, rmap};
use alloc::vec::Vec;
use vm::frame::Pfn;
use vm::pmap::NoMemory;
use vm::rmap::{Owner, Rmap, SpaceId};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};

const HUGE: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// A present leaf of the source: its address, whether it is a 2 MiB one,
/// and the entry as it was.
type Leaf = (u64, bool, PageTableEntry);

/// The level-2 table last found for some 1 GiB (its base), if it had one:
/// consecutive regions mostly share it, and a move makes or frees none of
/// the source's until its end.
type Level2 = Option<(u64, Option<PhysFrame>)>;

impl Pmap {
    /// See `vm::pmap::Pmap::move_range`.
    pub(super) fn move_entries(&mut self, from: u64, to: u64, len: u64) -> Result<(), NoMemory> {
        let end = from
            .checked_add(len)
            .expect("pmap::move_range: range wraps");
        let target = |va: u64| to + (va - from);
        // At most one 2 MiB region's leaves at a time.
        let mut leaves: Vec<Leaf> = Vec::new();
        leaves.try_reserve_exact(512).map_err(|_| NoMemory)?;
        let (mut src, mut dst): (Level2, Level2) = (None, None);
        // Pass 1: the tables.
        for (lo, hi) in regions(from, end) {
            let made = match self.whole_slots(&mut src, &mut dst, lo, hi, target(lo), true) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => self.make_for_entries(lo, hi, target, &mut leaves),
                Err(e) => Err(e),
            };
            if made.is_err() {
                // Whatever pass 1 made is empty: a clearing walk frees it.
                let emptied = self.walk(&Walk::clearing(to, to + len), &mut |_, _, _| false);
                self.flush(&emptied);
                return Err(NoMemory);
            }
        }
        // Pass 2: the entries. Nothing can fail from here.
        let id = self.id();
        let mut flushed = Visited::default();
        for (lo, hi) in regions(from, end) {
            let whole = self.whole_slots(&mut src, &mut dst, lo, hi, target(lo), false);
            match whole.expect("pmap::move_range: pass 2 made a table") {
                Some((from_table, to_table)) => {
                    move_whole(id, from_table, lo, to_table, target(lo), &mut flushed);
                }
                None => self.move_each(id, lo, hi, target, &mut leaves, &mut flushed),
            }
        }
        // The source's tables left empty go back, once the flush of the
        // moved entries has emptied the paging-structure caches too.
        let emptied = self.walk(&Walk::clearing(from, end), &mut |_, _, _| false);
        self.flush(&flushed);
        drop(emptied);
        Ok(())
    }

    /// Whether the region [lo, hi) of the source moves as one level-2
    /// entry to `to`: it is a whole 2 MiB region with something in it,
    /// `to` is 2 MiB-aligned and the target has no entry there. Then the
    /// level-2 tables of both (the target's made in pass 1, `make`).
    fn whole_slots(
        &mut self,
        src: &mut Level2,
        dst: &mut Level2,
        lo: u64,
        hi: u64,
        to: u64,
        make: bool,
    ) -> Result<Option<(PhysFrame, PhysFrame)>, NoMemory> {
        if !lo.is_multiple_of(HUGE) || hi - lo != HUGE || !to.is_multiple_of(HUGE) {
            return Ok(None);
        }
        let Some(from_table) = self.level2(src, lo, false)? else {
            return Ok(None);
        };
        if !slot(from_table, lo, |e| e.flags().contains(Flags::PRESENT)) {
            return Ok(None); // nothing there, or a swap PTE at level 2 (never made)
        }
        let Some(to_table) = self.level2(dst, to, make)? else {
            return Ok(None);
        };
        Ok(slot(to_table, to, |e| e.is_unused()).then_some((from_table, to_table)))
    }

    /// The level-2 table covering `va`, through `cache`; `make`: made
    /// where missing.
    fn level2(
        &mut self,
        cache: &mut Level2,
        va: u64,
        make: bool,
    ) -> Result<Option<PhysFrame>, NoMemory> {
        let base = va & !(GIB - 1);
        if let Some((at, table)) = *cache
            && at == base
            && (table.is_some() || !make)
        {
            return Ok(table);
        }
        let flags = make.then_some(USER_TABLE);
        // SAFETY: `self.l4` is this space's L4 and `&mut self` the only way
        // to its tables while the walk runs.
        let table = unsafe { walk::level2_table(self.l4, va, flags) }?;
        *cache = Some((base, table));
        Ok(table)
    }

    /// Pass 1 for a region that moves PTE by PTE: the target's tables for
    /// the span its leaves will occupy.
    fn make_for_entries(
        &mut self,
        lo: u64,
        hi: u64,
        target: impl Fn(u64) -> u64,
        leaves: &mut Vec<Leaf>,
    ) -> Result<(), NoMemory> {
        self.read_leaves(lo, hi, leaves);
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return Ok(());
        };
        let (level, span) = if first.1 { (2, HUGE) } else { (1, 4096) };
        let spec = Walk::at(target(first.0), target(last.0) + span, level).making(USER_TABLE);
        if self.walk(&spec, &mut |_, _, _| false).no_memory {
            return Err(NoMemory);
        }
        Ok(())
    }

    /// Pass 2 for a region that moves PTE by PTE: one walk copies out and
    /// clears the source's entries (renaming their pages in the reverse
    /// map under one lock), a second writes them at the target. Walks
    /// never nest (each holds the tables it visits), which is why the
    /// leaves are copied out in between.
    fn move_each(
        &mut self,
        id: SpaceId,
        lo: u64,
        hi: u64,
        target: impl Fn(u64) -> u64,
        leaves: &mut Vec<Leaf>,
        flushed: &mut Visited,
    ) {
        leaves.clear();
        let visited = rmap::with(|r| {
            self.walk(&Walk::at(lo, hi, 1), &mut |va, level, entry| {
                let present = entry.flags().contains(Flags::PRESENT);
                if !present && swap_slot(entry).is_none() {
                    return false;
                }
                let huge = level == 2;
                assert!(
                    !huge || (va == lo && va + HUGE == hi),
                    "pmap::move_range: a 2 MiB page across the range's edge"
                );
                if present {
                    rename(r, entry_pfn(entry), id, va, target(va));
                }
                leaves.push((va, huge, entry.clone()));
                entry.set_unused();
                present
            })
        });
        note_all(flushed, &visited);
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return;
        };
        let (level, span) = if first.1 { (2, HUGE) } else { (1, 4096) };
        let mut next = leaves.iter().peekable();
        let mut written = 0;
        let spec = Walk::at(target(first.0), target(last.0) + span, level);
        self.walk(&spec, &mut |va, at, entry| {
            if next.peek().is_some_and(|leaf| target(leaf.0) == va) {
                let (_, huge, old) = next.next().expect("peeked");
                assert!(
                    at == level && *huge == (level == 2) && entry.is_unused(),
                    "pmap::move_range: target {va:#x} not empty"
                );
                *entry = old.clone();
                written += 1;
            }
            false // an absent entry had no translation
        });
        assert_eq!(
            written,
            leaves.len(),
            "pmap::move_range: a target table went missing"
        );
    }

    /// Copy the present leaves and the swap PTEs of [lo, hi) (inside one
    /// 2 MiB region) into `leaves`, which has room for them all.
    fn read_leaves(&mut self, lo: u64, hi: u64, leaves: &mut Vec<Leaf>) {
        leaves.clear();
        self.walk(&Walk::at(lo, hi, 1), &mut |va, level, entry| {
            if !entry.flags().contains(Flags::PRESENT) && swap_slot(entry).is_none() {
                return false;
            }
            let huge = level == 2;
            assert!(
                !huge || (va == lo && va + HUGE == hi),
                "pmap::move_range: a 2 MiB page across the range's edge"
            );
            leaves.push((va, huge, entry.clone()));
            false
        });
    }
}

/// Move the level-2 entry for `from` (in the table `from_table`) to the
/// empty one for `to` (in `to_table`, maybe the same table): a 2 MiB page,
/// or a level-1 table and every PTE in it. The reverse map follows, under
/// one lock; the old translations are noted in `flushed`.
fn move_whole(
    id: SpaceId,
    from_table: PhysFrame,
    from: u64,
    to_table: PhysFrame,
    to: u64,
    flushed: &mut Visited,
) {
    let entry = slot(from_table, from, |e| {
        let old = e.clone();
        e.set_unused();
        old
    });
    slot(to_table, to, |e| *e = entry.clone());
    rmap::with(|r| {
        if entry.flags().contains(Flags::HUGE_PAGE) {
            rename(r, entry_pfn(&entry), id, from, to);
            note(flushed, from);
            return;
        }
        let ptes = PhysFrame::containing_address(entry.addr());
        // SAFETY: the level-1 table the moved entry points at, of this
        // space (whose tables the caller has to itself); no other reference
        // to it lives during the call.
        unsafe {
            walk::with_table(ptes, |table| {
                for (i, pte) in table.iter().enumerate() {
                    if pte.flags().contains(Flags::PRESENT) {
                        let at = i as u64 * 4096;
                        rename(r, entry_pfn(pte), id, from + at, to + at);
                        note(flushed, from + at);
                    }
                }
            });
        }
    });
}

/// Run `f` on the level-2 entry for `va` in the level-2 table `table`.
fn slot<R>(table: PhysFrame, va: u64, f: impl FnOnce(&mut PageTableEntry) -> R) -> R {
    let i = ((va >> 21) & 511) as usize;
    // SAFETY: `table` is a level-2 table of the space being moved (found by
    // `Pmap::level2` under `&mut Pmap`), and the reference lives only for
    // this call.
    unsafe { walk::with_table(table, |t| f(&mut t[i])) }
}

fn entry_pfn(entry: &PageTableEntry) -> Pfn {
    Pfn(entry.addr().as_u64() / 4096)
}

/// The page of `pfn` mapped at `from` is now mapped at `to`.
fn rename(r: &mut Rmap, pfn: Pfn, id: SpaceId, from: u64, to: u64) {
    r.moved(pfn, Owner::new(id, from), Owner::new(id, to));
}

/// One more old translation of `va` for the TLB to forget.
fn note(flushed: &mut Visited, va: u64) {
    if let Some(slot) = flushed.leaves.get_mut(flushed.count) {
        *slot = va;
    }
    flushed.count += 1;
}

/// All of a walk's old translations, for the TLB to forget.
fn note_all(flushed: &mut Visited, visited: &Visited) {
    for &va in &visited.leaves[..visited.count.min(FLUSH_ALL_THRESHOLD)] {
        note(flushed, va);
    }
    flushed.count += visited.count.saturating_sub(FLUSH_ALL_THRESHOLD);
}

/// [from, end) cut at every 2 MiB boundary.
fn regions(from: u64, end: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut at = from;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let hi = ((at & !(HUGE - 1)) + HUGE).min(end);
        let region = (at, hi);
        at = hi;
        Some(region)
    })
}
