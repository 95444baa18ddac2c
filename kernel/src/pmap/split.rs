//! A 2 MiB leaf made 512 small ones in a level-1 table, and back
//! (`Pmap::split_huge`, `Pmap::join_huge`): the entries change under the
//! MMU of the CPUs running the space, so its accessed and dirty bits are
//! carried across with the atomics of `entry.rs`.

use super::entry;
use super::walk::{table_at, with_entry};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};

/// Replace the 2 MiB leaf at `va` by the level-1 table in `table` (a
/// zeroed frame whose reference the caller hands over), mapping the same
/// 512 frames with the leaf's flags: the same translations, in 4 KiB
/// pieces. Returns the old leaf entry. The caller flushes the TLB.
///
/// # Safety
/// As `walk`; `table` is a frame nothing else uses.
pub(super) unsafe fn split_leaf(
    l4: PhysFrame,
    va: u64,
    table: PhysFrame,
    table_flags: Flags,
) -> PageTableEntry {
    // SAFETY: the caller's: `table` is ours alone, not reachable from any
    // table yet, so this is its only reference.
    let ptes = unsafe { table_at(table) };
    // SAFETY: the caller's contract for `l4`.
    let old = unsafe {
        with_entry(l4, va, 2, table_flags, |entry| {
            let entry = entry
                .filter(|e| e.flags().contains(Flags::HUGE_PAGE | Flags::PRESENT))
                .expect("pmap::split_huge: no 2 MiB page there");
            let first = entry.clone();
            // Bit 7 is PS in a level-2 entry but PAT in a PTE: cleared.
            let flags = first.flags() - Flags::HUGE_PAGE;
            for (i, pte) in ptes.iter_mut().enumerate() {
                pte.set_addr(first.addr() + i as u64 * 4096, flags);
            }
            let mut pointer = PageTableEntry::new();
            pointer.set_frame(table, table_flags);
            // In one exchange (entry.rs): an accessed or dirty bit the MMU
            // set on the 2 MiB entry since `first` goes to every small one
            // (the table is live now, so atomically too).
            let old = entry::exchange(entry, &pointer);
            let late = (old.flags() - first.flags()) & entry::MMU_BITS;
            if !late.is_empty() {
                for pte in ptes.iter_mut() {
                    entry::add_flags(pte, late);
                }
            }
            old
        })
    };
    old.expect("pmap::split_huge: the tables above a 2 MiB page are there")
}

/// Undo `split_leaf`: the level-1 table under the level-2 entry of `va`,
/// whose 512 entries map one 2 MiB-aligned run of frames with the same
/// flags, becomes one 2 MiB leaf again. Returns the table's frame, now all
/// zeros, whose reference the caller takes back. The caller flushes the TLB.
///
/// # Safety
/// As `walk`.
pub(super) unsafe fn join_leaf(l4: PhysFrame, va: u64, table_flags: Flags) -> PhysFrame {
    // SAFETY: the caller's contract for `l4`; `table_at` below gets the
    // table a present non-leaf entry of ours points at, under the same
    // exclusive use, and its reference is the only one while it lives.
    let table = unsafe {
        with_entry(l4, va, 2, table_flags, |entry| {
            let entry = entry
                .filter(|e| {
                    e.flags().contains(Flags::PRESENT) && !e.flags().contains(Flags::HUGE_PAGE)
                })
                .expect("pmap::join_huge: no level-1 table there");
            let table = PhysFrame::containing_address(entry.addr());
            let ptes = table_at(table);
            let first = ptes[0].clone();
            // The MMU may have set accessed or dirty bits on some of them
            // since the split: those are not the rights.
            let rights = first.flags() - entry::MMU_BITS;
            for (i, pte) in ptes.iter().enumerate() {
                assert!(
                    pte.addr() == first.addr() + i as u64 * 4096
                        && pte.flags() - entry::MMU_BITS == rights,
                    "pmap::join_huge: not a split 2 MiB page"
                );
            }
            let mut huge = PageTableEntry::new();
            huge.set_addr(first.addr(), rights | Flags::HUGE_PAGE);
            entry::exchange(entry, &huge);
            // Then each small entry is taken whole (entry.rs), and the bits
            // the MMU set on any of them go to the 2 MiB one.
            let mut set = Flags::empty();
            for pte in ptes.iter_mut() {
                set |= entry::take(pte).flags() & entry::MMU_BITS;
            }
            entry::add_flags(entry, set);
            table
        })
    };
    table.expect("pmap::join_huge: the tables above are there")
}
