//! mremap's move of page-table entries (`vm::pmap::Pmap::move_range`):
//! the entries themselves go from one range to another, frames untouched
//! (swap PTEs with them, slots untouched).
//!
//! A 2 MiB region of the source that the move takes whole to a 2 MiB
//! boundary, where the target has no level-1 table yet, moves as one
//! level-2 entry: a 2 MiB page, or the pointer to its level-1 table with
//! all 512 PTEs in it (Linux's move_normal_pmd). Consecutive such regions
//! inside one level-2 table on either side are one *run*: found with one
//! look at each slot pair, moved in one loop over the slots, their pages
//! renamed under one take of the reverse map's lock per 512 2 MiB pages
//! or per level-1 table (the reverse map still names each page by its
//! address; `move_run`). No PTE is copied and no table made or freed for
//! them, and a move of 2 MiB pages costs a few dozen instructions per
//! entry (docs/src/performance.md, "mremap of 64 MiB"). Any other region (the range's ragged ends, a
//! target that is not 2 MiB-aligned) moves PTE by PTE: one walk copies
//! out and clears the source's entries, a second writes them at the target.
//!
//! In two passes, so that running out of memory changes nothing: first
//! every table the target needs is made (a failure frees those again and
//! stops), then the entries move, which needs no memory.

use super::entry::{self, swap_slot};
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
        // At most one 2 MiB region's leaves at a time, for the regions that
        // move PTE by PTE (room made by the first of them, in pass 1).
        let mut leaves: Vec<Leaf> = Vec::new();
        let (mut src, mut dst): (Level2, Level2) = (None, None);
        // Pass 1: the tables.
        let mut at = from;
        while at < end {
            let made = match self.whole_run(&mut src, &mut dst, at, end, target(at), true) {
                Ok(Some(run)) => {
                    at += run.len();
                    Ok(())
                }
                Ok(None) => {
                    let hi = region_end(at, end);
                    let made = self.make_for_entries(at, hi, target, &mut leaves);
                    at = hi;
                    made
                }
                Err(e) => Err(e),
            };
            if made.is_err() {
                // Whatever pass 1 made is empty: a clearing walk frees it.
                let emptied = self.walk(&Walk::clearing(to, to + len), &mut |_, _, _| false);
                self.flush(&emptied);
                return Err(NoMemory);
            }
        }
        // Pass 2: the entries. Nothing can fail from here: the same runs
        // are found again (pass 1 made tables only where no run goes).
        let id = self.id();
        let mut flushed = Visited::default();
        let mut at = from;
        while at < end {
            let run = self.whole_run(&mut src, &mut dst, at, end, target(at), false);
            match run.expect("pmap::move_range: pass 2 made a table") {
                Some(run) => {
                    move_run(id, &run, at, target(at), &mut flushed);
                    at += run.len();
                }
                None => {
                    let hi = region_end(at, end);
                    self.move_each(id, at, hi, target, &mut leaves, &mut flushed);
                    at = hi;
                }
            }
        }
        // The source's tables left empty go back, once the flush of the
        // moved entries has emptied the paging-structure caches too.
        let emptied = self.walk(&Walk::clearing(from, end), &mut |_, _, _| false);
        self.flush(&flushed);
        drop(emptied);
        Ok(())
    }

    /// The run of whole 2 MiB regions from `at` (below `end`) that move as
    /// level-2 entries to `to` on: `at` and `to` 2 MiB-aligned, each
    /// region's source slot present (a 2 MiB page or a level-1 table) and
    /// its target slot empty, all in one level-2 table on either side (the
    /// target's made in pass 1, `make`). None when not even the first
    /// region moves so.
    fn whole_run(
        &mut self,
        src: &mut Level2,
        dst: &mut Level2,
        at: u64,
        end: u64,
        to: u64,
        make: bool,
    ) -> Result<Option<Run>, NoMemory> {
        if !at.is_multiple_of(HUGE) || end - at < HUGE || !to.is_multiple_of(HUGE) {
            return Ok(None);
        }
        let Some(from_table) = self.level2(src, at, false)? else {
            return Ok(None);
        };
        let (from_slot, to_slot) = (slot_index(at), slot_index(to));
        // Not present: nothing there, or a swap PTE at level 2 (never made).
        if !entry_at(from_table, from_slot)
            .flags()
            .contains(Flags::PRESENT)
        {
            return Ok(None);
        }
        let Some(to_table) = self.level2(dst, to, make)? else {
            return Ok(None);
        };
        let most = (((end - at) / HUGE) as usize)
            .min(512 - from_slot)
            .min(512 - to_slot);
        let count = (0..most)
            .take_while(|&k| {
                entry_at(from_table, from_slot + k)
                    .flags()
                    .contains(Flags::PRESENT)
                    && entry_at(to_table, to_slot + k).is_unused()
            })
            .count();
        Ok((count > 0).then_some(Run {
            from_table,
            from_slot,
            to_table,
            to_slot,
            count,
        }))
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
        leaves.try_reserve_exact(512).map_err(|_| NoMemory)?;
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
                // Taken in one exchange, with what the MMU set (entry.rs).
                leaves.push((va, huge, entry::take(entry)));
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

/// Whole 2 MiB regions that move as level-2 entries (`whole_run`).
struct Run {
    from_table: PhysFrame,
    from_slot: usize,
    to_table: PhysFrame,
    to_slot: usize,
    count: usize,
}

impl Run {
    /// The bytes it covers.
    fn len(&self) -> u64 {
        self.count as u64 * HUGE
    }
}

/// What one take of the reverse map's lock covers while a run moves: at
/// most 512 2 MiB pages or one level-1 table (512 PTEs), so that a fault
/// on another CPU waits no longer than it did when the lock was taken per
/// 2 MiB region, and a run of 2 MiB pages still takes it once.
const RENAMES_PER_LOCK: usize = 512;

/// Move the level-2 entries of `run`, the source's from `from` on, to the
/// target's empty ones from `to` on: 2 MiB pages, or level-1 tables and
/// every PTE in them. The reverse map follows, under one take of its lock
/// per batch (`RENAMES_PER_LOCK`; nothing here allocates or waits); the
/// old translations are noted in `flushed`.
fn move_run(id: SpaceId, run: &Run, from: u64, to: u64, flushed: &mut Visited) {
    let mut k = 0;
    while k < run.count {
        rmap::with(|r| {
            let mut batch = 0;
            while k < run.count && batch < RENAMES_PER_LOCK {
                let offset = k as u64 * HUGE;
                let entry = take_entry(run.from_table, run.from_slot + k);
                set_entry(run.to_table, run.to_slot + k, entry.clone());
                let huge = entry.flags().contains(Flags::HUGE_PAGE);
                rename_entry(r, id, &entry, from + offset, to + offset, flushed);
                batch += if huge { 1 } else { 512 };
                k += 1;
            }
        });
    }
}

/// The reverse map after the level-2 `entry` moved from `from` to `to`:
/// its 2 MiB page, or each present page of its level-1 table, renamed
/// and noted in `flushed`.
fn rename_entry(
    r: &mut Rmap,
    id: SpaceId,
    entry: &PageTableEntry,
    from: u64,
    to: u64,
    flushed: &mut Visited,
) {
    if entry.flags().contains(Flags::HUGE_PAGE) {
        rename(r, entry_pfn(entry), id, from, to);
        note(flushed, from);
        return;
    }
    let ptes = PhysFrame::containing_address(entry.addr());
    // SAFETY: the level-1 table the moved entry points at, of this space
    // (whose tables the caller has to itself); no other reference to it
    // lives during the call.
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
}

/// The index of `va`'s entry in its level-2 table.
fn slot_index(va: u64) -> usize {
    ((va >> 21) & 511) as usize
}

/// Entry `i` of the level-2 table `table`, as it is.
fn entry_at(table: PhysFrame, i: usize) -> PageTableEntry {
    // SAFETY: `table` is a level-2 table of the space being moved (found
    // by `Pmap::level2` under `&mut Pmap`), and the reference lives only
    // for this call.
    unsafe { walk::with_table(table, |t| t[i].clone()) }
}

/// Entry `i` of the level-2 table `table`, left unused.
fn take_entry(table: PhysFrame, i: usize) -> PageTableEntry {
    // SAFETY: as `entry_at`.
    unsafe {
        walk::with_table(table, |t| {
            // One exchange, as `move_each` (entry.rs).
            entry::take(&mut t[i])
        })
    }
}

/// Entry `i` of the level-2 table `table` set to `entry`.
fn set_entry(table: PhysFrame, i: usize, entry: PageTableEntry) {
    // SAFETY: as `entry_at`.
    unsafe { walk::with_table(table, |t| t[i] = entry) }
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

/// Where the 2 MiB region holding `at` ends, or `end` if sooner.
fn region_end(at: u64, end: u64) -> u64 {
    ((at & !(HUGE - 1)) + HUGE).min(end)
}
