//! mremap's move of page-table entries (`vm::pmap::Pmap::move_range`):
//! the entries themselves go from one range to another, frames untouched
//! (swap PTEs with them, slots untouched),
//! 2 MiB entries as one (Linux's move_page_tables moves PMDs the same way).
//!
//! In two passes, so that running out of memory changes nothing: first
//! every table the target needs is made (a failure frees those again and
//! stops), then the entries move, which needs no memory. Both passes go a
//! 2 MiB region of the source at a time: its present leaves are read by one
//! walk, written at the target by a second and cleared by a third. Walks
//! never nest (each holds the tables it visits), which is why the leaves
//! of a region are copied out first.

use super::entry::swap_slot;
use super::walk::{FLUSH_ALL_THRESHOLD, Visited, Walk};
use super::{Pmap, USER_TABLE, rmap};
use alloc::vec::Vec;
use vm::frame::Pfn;
use vm::pmap::NoMemory;
use vm::rmap::Owner;
use x86_64::structures::paging::PageTableFlags as Flags;
use x86_64::structures::paging::page_table::PageTableEntry;

const HUGE: u64 = 2 << 20;

/// A present leaf of the source: its address, whether it is a 2 MiB one,
/// and the entry as it was.
type Leaf = (u64, bool, PageTableEntry);

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
        // Pass 1: the tables.
        for (lo, hi) in regions(from, end) {
            self.read_leaves(lo, hi, &mut leaves);
            let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
                continue;
            };
            let (level, span) = if first.1 { (2, HUGE) } else { (1, 4096) };
            let spec = Walk::at(target(first.0), target(last.0) + span, level).making(USER_TABLE);
            if self.walk(&spec, &mut |_, _, _| false).no_memory {
                // Whatever pass 1 made is empty: a clearing walk frees it.
                self.walk(&Walk::clearing(to, to + len), &mut |_, _, _| false);
                return Err(NoMemory);
            }
        }
        // Pass 2: the entries. Nothing can fail from here.
        let id = self.id();
        let mut flushed = Visited::default();
        for (lo, hi) in regions(from, end) {
            self.read_leaves(lo, hi, &mut leaves);
            let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
                continue;
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
            let visited = self.walk(&Walk::at(lo, hi, 1), &mut |va, _, entry| {
                if swap_slot(entry).is_some() {
                    entry.set_unused();
                    return false; // not present: nothing to flush
                }
                if !entry.flags().contains(Flags::PRESENT) {
                    return false;
                }
                let pfn = Pfn(entry.addr().as_u64() / 4096);
                entry.set_unused();
                rmap::moved(pfn, Owner::new(id, va), Owner::new(id, target(va)));
                true
            });
            for &va in &visited.leaves[..visited.count.min(FLUSH_ALL_THRESHOLD)] {
                if let Some(slot) = flushed.leaves.get_mut(flushed.count) {
                    *slot = va;
                }
                flushed.count += 1;
            }
            flushed.count += visited.count.saturating_sub(FLUSH_ALL_THRESHOLD);
        }
        // The source's tables left empty go back.
        self.walk(&Walk::clearing(from, end), &mut |_, _, _| false);
        self.flush(&flushed);
        Ok(())
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
