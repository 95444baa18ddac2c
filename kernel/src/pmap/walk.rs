//! The page-table walker: the one piece of code that follows entries from
//! an L4 down to the tables and leaves they point at. Every operation of
//! `Pmap` (entering a page, a range's unmap or protect, a lookup, the
//! teardown, `/proc/self/pagewalk`) is one walk with a visitor.

use crate::phys::{self, Frame};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use vm::pmap::NoMemory;
use x86_64::VirtAddr;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};

/// The page table in `frame`, reached through the physical map.
///
/// # Safety
/// `frame` must hold a page table (an L4 of a `Pmap` or the kernel's, or a
/// table reached from one through a present non-leaf entry), and the
/// caller must have exclusive use of that table for as long as the
/// returned reference lives: no other walk of the same tables runs, which
/// the owner of the address space ensures (a walk holds the address-space
/// write lock, or the read lock and the page-table lock; DESIGN §6 and
/// pmap/mod.rs), and the table is not freed while the reference lives.
pub(super) unsafe fn table_at(frame: PhysFrame) -> &'static mut PageTable {
    // SAFETY: the physical map covers all RAM, so the frame's bytes are
    // mapped at `to_virt`; a page table is 4 KiB-aligned and 512 entries,
    // exactly a `PageTable`; exclusivity is the caller's contract.
    unsafe { &mut *phys::to_virt(frame.start_address()).as_mut_ptr::<PageTable>() }
}

/// The entries of the page table in `frame` as the 64-bit words the MMU
/// sees, for the walks that share a space's tables with other CPUs
/// (shared.rs): each access is one atomic operation, so CPUs may read and
/// change different entries of one table at once, and read an entry
/// another CPU is changing (the old value or the new, never half).
///
/// # Safety
/// `frame` must hold a page table (as `table_at`), and stay one while the
/// reference lives: a table reached from a space's L4 is freed only by a
/// holder of every slot lock or of the address-space write lock, and only
/// after a shootdown that every CPU running the space answered
/// (pmap/ptlock.rs).
pub(super) unsafe fn words_at(frame: PhysFrame) -> &'static [AtomicU64; 512] {
    // SAFETY: as `table_at`: the physical map covers the table's 4 KiB,
    // 8-aligned, as 512 u64 entries. AtomicU64 has u64's layout, and every
    // other access to these words while they are shared is atomic too
    // (entry.rs; the MMU's own accesses are locked operations).
    unsafe { &*phys::to_virt(frame.start_address()).as_ptr::<[AtomicU64; 512]>() }
}

/// Past this many leaves, one CR3 reload beats a run of invlpg.
pub(super) const FLUSH_ALL_THRESHOLD: usize = 32;

/// What one walk covers and does on the way.
pub(super) struct Walk {
    start: u64,
    end: u64,
    /// Visit the entries of this level (1: the PTEs, 2: where 2 MiB pages
    /// live) in the range whether present or not, and a leaf above it that
    /// covers part of the range. None: visit the present leaves only.
    at: Option<u8>,
    /// Make the missing tables above `at`, with these flags.
    make: Option<Flags>,
    /// The visitor clears entries: free the tables it leaves empty.
    clears: bool,
}

impl Walk {
    /// Every present leaf (4 KiB, or 2 MiB at level 2) in [start, end).
    pub(super) fn leaves(start: u64, end: u64) -> Walk {
        Walk {
            start,
            end,
            at: None,
            make: None,
            clears: false,
        }
    }

    /// As `leaves`, for a visitor that clears them: tables left empty go.
    pub(super) fn clearing(start: u64, end: u64) -> Walk {
        Walk {
            clears: true,
            ..Walk::leaves(start, end)
        }
    }

    /// Every entry of `level` in [start, end), present or not.
    pub(super) fn at(start: u64, end: u64, level: u8) -> Walk {
        Walk {
            at: Some(level),
            ..Walk::leaves(start, end)
        }
    }

    pub(super) fn start(&self) -> u64 {
        self.start
    }

    pub(super) fn end(&self) -> u64 {
        self.end
    }

    /// ... freeing the tables its visitor leaves empty.
    pub(super) fn freeing(self) -> Walk {
        Walk {
            clears: true,
            ..self
        }
    }

    /// ... making the tables on the way that are missing, with `flags`.
    pub(super) fn making(self, flags: Flags) -> Walk {
        debug_assert!(self.at.is_some(), "pmap: tables made for no level");
        Walk {
            make: Some(flags),
            ..self
        }
    }
}

/// What a walk reports: the leaves whose old translation the TLB must
/// forget (their addresses while few enough to flush one by one, and how
/// many), whether it stopped for want of a frame for a table, and the
/// tables a clearing walk emptied.
#[derive(Default)]
pub(super) struct Visited {
    pub(super) leaves: [u64; FLUSH_ALL_THRESHOLD],
    pub(super) count: usize,
    pub(super) no_memory: bool,
    pub(super) emptied: Emptied,
}

/// The user page tables a clearing walk emptied and unlinked. They go back
/// to the allocator when this is dropped, which its `Visited`'s holder does
/// after `Pmap::flush`: until then a CPU running the space may still hold
/// the entries that pointed at them in its paging-structure caches, which
/// only a TLB flush empties (Intel SDM 4.10.4.1: invlpg drops them all,
/// whatever the address). Linux's `pte_free_tlb` waits for its mmu_gather,
/// FreeBSD's `pmap_remove_all` frees its table pages after
/// `pmap_invalidate_page`, for the same reason.
#[derive(Default)]
pub(super) struct Emptied(Vec<PhysFrame>);

impl Emptied {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// `table`, unlinked by the caller, goes after the flush.
    pub(super) fn push(&mut self, table: PhysFrame) {
        self.0.push(table);
    }
}

impl Drop for Emptied {
    fn drop(&mut self) {
        for table in self.0.drain(..) {
            free_table(table);
        }
    }
}

/// User page tables in use, every level (/proc/meminfo's PageTables).
static TABLES: AtomicU64 = AtomicU64::new(0);

/// Frames that hold user page tables now.
pub fn table_frames() -> u64 {
    TABLES.load(Ordering::Relaxed)
}

/// A zeroed frame for a user page table, counted in `table_frames`.
pub(super) fn alloc_table() -> Option<Frame> {
    let frame = Frame::alloc_zeroed()?;
    TABLES.fetch_add(1, Ordering::Relaxed);
    Some(frame)
}

/// Give back an empty user page table whose one reference the caller held
/// (`alloc_table`'s, then its entry's).
pub(super) fn free_table(table: PhysFrame) {
    TABLES.fetch_sub(1, Ordering::Relaxed);
    // An empty table is all zeros: it can go back as a zeroed frame.
    // SAFETY: the caller's: nothing points at the table any more, and the
    // reference it held is handed over here.
    phys::free_zeroed(unsafe { Frame::from_raw(table) });
}

impl Visited {
    /// Add another walk's report to this one, for one flush of both.
    pub(super) fn absorb(&mut self, other: Visited) {
        let Visited {
            leaves,
            count,
            no_memory,
            mut emptied,
        } = other;
        for &va in &leaves[..count.min(FLUSH_ALL_THRESHOLD)] {
            self.record(va);
        }
        // Past the threshold only the count matters (a whole flush).
        self.count += count.saturating_sub(FLUSH_ALL_THRESHOLD);
        self.no_memory |= no_memory;
        self.emptied.0.append(&mut emptied.0);
    }

    /// The leaf at `va` lost rights the TLB may still hold.
    pub(super) fn record(&mut self, va: u64) {
        if let Some(slot) = self.leaves.get_mut(self.count) {
            *slot = va;
        }
        self.count += 1;
    }
}

/// The visitor: called with an entry's virtual address, its level and the
/// entry; returns whether the TLB may hold a translation it took rights
/// from (the entry is then listed for the flush).
pub(super) type Visitor<'a> = dyn FnMut(u64, u8, &mut PageTableEntry) -> bool + 'a;

/// Walk the tables under `l4` as `walk` says.
///
/// # Safety
/// `l4` is an L4 table that the caller has exclusive use of for the walk
/// (`table_at`'s contract, for every table under it).
pub(super) unsafe fn walk(l4: PhysFrame, walk: &Walk, visit: &mut Visitor) -> Visited {
    let mut visited = Visited::default();
    // Indices come from the low 48 bits: a kernel-half address walks the
    // upper 256 L4 entries.
    // The range's last byte, so that one ending at the top of the address
    // space (`end` wrapped to 0: `va.wrapping_add(1)` for the last byte) is
    // walked too; an empty or backward range walks nothing.
    let len = walk.end.wrapping_sub(walk.start);
    if len != 0 && len <= ADDRESS_BITS + 1 {
        let (start, last) = (
            walk.start & ADDRESS_BITS,
            walk.end.wrapping_sub(1) & ADDRESS_BITS,
        );
        // SAFETY: the caller's contract for `l4` and the tables under it.
        unsafe { walk_table(l4, 4, 0, start, last, walk, visit, &mut visited) };
    }
    visited
}

const ADDRESS_BITS: u64 = (1 << 48) - 1;

/// Walk `table` (at `level`, covering addresses from `base`) over
/// [start, last], looking only at the entries the range touches. Returns
/// whether a clearing walk left the table empty.
///
/// # Safety
/// As `walk`, for `table`.
#[allow(clippy::too_many_arguments)]
unsafe fn walk_table(
    table: PhysFrame,
    level: u8,
    base: u64,
    start: u64,
    last: u64,
    walk: &Walk,
    visit: &mut Visitor,
    visited: &mut Visited,
) -> bool {
    let shift = 12 + 9 * (u32::from(level) - 1);
    let span = 1u64 << shift;
    // SAFETY: the caller's contract: `table` is a page table we have to
    // ourselves; no other reference to it lives during this call.
    let entries = unsafe { table_at(table) };
    let first = (start.max(base) - base) >> shift;
    let last_index = ((last - base) >> shift).min(511);
    for i in first as usize..=last_index as usize {
        if visited.no_memory {
            break;
        }
        let entry = &mut entries[i];
        let lo = base + i as u64 * span;
        let flags = entry.flags();
        let present = flags.contains(Flags::PRESENT);
        let leaf = present && (level == 1 || flags.contains(Flags::HUGE_PAGE));
        if walk.at == Some(level) || leaf || level == 1 {
            if (present || walk.at == Some(level))
                && visit(VirtAddr::new_truncate(lo).as_u64(), level, entry)
            {
                visited.record(VirtAddr::new_truncate(lo).as_u64());
            }
            continue;
        }
        if !present {
            match walk.make {
                Some(flags) if make_table(entry, flags, lo).is_ok() => {}
                Some(_) => visited.no_memory = true,
                None => {}
            }
            if !entry.flags().contains(Flags::PRESENT) {
                continue;
            }
        }
        let child = PhysFrame::containing_address(entry.addr());
        // SAFETY: `child` is the table a present non-leaf entry of ours
        // points at, under the same exclusive use; `entries` is not used
        // while the recursion runs.
        if unsafe { walk_table(child, level - 1, lo, start, last, walk, visit, visited) }
            && walk.clears
        {
            // No entry points at the table now; the reference the entry
            // held goes with it to `emptied`, freed after the flush. The
            // entry is listed so that there is one. (One atomic store: a
            // fault's look may be reading it, pmap/ptlock.rs.)
            super::entry::take(entry);
            visited.emptied.0.push(child);
            visited.record(VirtAddr::new_truncate(lo).as_u64());
        }
    }
    walk.clears && is_empty(entries, first as usize, last_index as usize)
}

/// Whether every entry of `table` is unused, for a walk over its entries
/// [first, last]. A live entry is most often right beside the range a
/// walk cleared (the next mapping up or down, the other end of an
/// mremap), so those two are looked at before the scan from index 0,
/// which otherwise crosses every empty entry below the range (hundreds in
/// the level-3 and level-2 tables of the mmap area, near the top).
fn is_empty(table: &PageTable, first: usize, last: usize) -> bool {
    let beside = [first.checked_sub(1), (last < 511).then_some(last + 1)];
    if beside.into_iter().flatten().any(|i| !table[i].is_unused()) {
        return false;
    }
    // Eight entries or-ed together per test: a scan of a whole table is
    // one `or` per entry, not a compare and a branch. (Flags and address
    // together are all 64 bits of an entry.)
    let raw = |e: &PageTableEntry| e.flags().bits() | e.addr().as_u64();
    (0..512 / 8).all(|c| (0..8).fold(0, |any, k| any | raw(&table[c * 8 + k])) == 0)
}

/// Point the absent `entry`, which covers addresses from `va`, at a fresh
/// zeroed table (its reference is then held by the entry, and given back
/// when a clearing walk empties it). Tables of the user half are counted
/// (`table_frames`); the kernel half's are the kernel's own, as Linux
/// leaves them out of PageTables.
fn make_table(entry: &mut PageTableEntry, flags: Flags, va: u64) -> Result<(), NoMemory> {
    let frame = if va < USER_HALF_END {
        alloc_table()
    } else {
        let frame = Frame::alloc_zeroed();
        KERNEL_TABLES_MADE.fetch_add(u64::from(frame.is_some()), Ordering::Relaxed);
        frame
    };
    entry.set_frame(frame.ok_or(NoMemory)?.into_raw(), flags);
    Ok(())
}

/// Kernel-half tables made since boot (they are never given back).
static KERNEL_TABLES_MADE: AtomicU64 = AtomicU64::new(0);

/// How many kernel-half tables have been made: the heap, which grows the
/// kernel half, counts the ones its growth made as its own frames.
pub(super) fn kernel_tables_made() -> u64 {
    KERNEL_TABLES_MADE.load(Ordering::Relaxed)
}

/// Where the user half ends, in the walk's 48-bit addresses.
const USER_HALF_END: u64 = 1 << 47;

/// The entry at `level` for `va` passed to `f`, with the tables on the way
/// made (with `table_flags`) where missing; `f` gets None when a larger
/// page covers `va`. Err when there was no frame for a table.
///
/// # Safety
/// As `walk`.
pub(super) unsafe fn with_entry<R>(
    l4: PhysFrame,
    va: u64,
    level: u8,
    table_flags: Flags,
    f: impl FnOnce(Option<&mut PageTableEntry>) -> R,
) -> Result<R, NoMemory> {
    let mut f = Some(f);
    let mut result = None;
    let walk_spec = Walk::at(va, va.wrapping_add(1), level).making(table_flags);
    // SAFETY: the caller's contract.
    let visited = unsafe {
        walk(l4, &walk_spec, &mut |_, at, entry| {
            if let Some(f) = f.take() {
                result = Some(f((at == level).then_some(entry)));
            }
            false
        })
    };
    if visited.no_memory {
        return Err(NoMemory);
    }
    Ok(result.expect("pmap: a walk to one entry visited none"))
}

/// Walk the present leaves of [start, end) under `from` and the same
/// places under `to`, side by side, making `to`'s missing tables with
/// `table_flags`, and call `copy(va, level, from_entry, to_entry)` for
/// each leaf (fork's copy, as Linux's `copy_page_range` walks both spaces'
/// tables at once): each of the child's tables is found or made once, and
/// a range with no table in the parent is skipped a whole entry at a time.
/// `copy` returns whether the TLB may hold rights `from_entry` lost (the
/// leaf is then listed for the flush), or Err to stop the walk. The
/// result's `no_memory`: a table could not be made, or `copy` stopped it.
///
/// # Safety
/// As `walk`, for both `from` and `to`, which are two different spaces'
/// L4s; [start, end) is in the user half.
pub(super) unsafe fn copy_leaves<F>(
    from: PhysFrame,
    to: PhysFrame,
    start: u64,
    end: u64,
    table_flags: Flags,
    copy: &mut F,
) -> Visited
where
    F: FnMut(u64, u8, &mut PageTableEntry, &mut PageTableEntry) -> Result<bool, ()>,
{
    let mut visited = Visited::default();
    if start < end {
        let tables = Pair {
            from,
            to,
            table_flags,
        };
        // SAFETY: the caller's contract for both L4s.
        unsafe { copy_table(&tables, 4, 0, start, end - 1, copy, &mut visited) };
    }
    visited
}

/// The two tables `copy_table` works on, and the flags of the tables it makes.
struct Pair {
    from: PhysFrame,
    to: PhysFrame,
    table_flags: Flags,
}

/// `copy_leaves` on the tables `tables` (at `level`, covering addresses
/// from `base`) over [start, last].
///
/// # Safety
/// As `copy_leaves`, for the two tables.
unsafe fn copy_table<F>(
    tables: &Pair,
    level: u8,
    base: u64,
    start: u64,
    last: u64,
    copy: &mut F,
    visited: &mut Visited,
) where
    F: FnMut(u64, u8, &mut PageTableEntry, &mut PageTableEntry) -> Result<bool, ()>,
{
    let shift = 12 + 9 * (u32::from(level) - 1);
    let span = 1u64 << shift;
    // SAFETY: the caller's contract: two tables of two different spaces,
    // each ours alone during this call.
    let (from, to) = unsafe { (table_at(tables.from), table_at(tables.to)) };
    let first = (start.max(base) - base) >> shift;
    let last_index = ((last - base) >> shift).min(511);
    for i in first as usize..=last_index as usize {
        let entry = &mut from[i];
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT) {
            continue;
        }
        let lo = base + i as u64 * span;
        let target = &mut to[i];
        if level == 1 || flags.contains(Flags::HUGE_PAGE) {
            match copy(lo, level, entry, target) {
                Ok(true) => visited.record(lo),
                Ok(false) => {}
                Err(()) => visited.no_memory = true,
            }
        } else {
            if target.is_unused() && make_table(target, tables.table_flags, lo).is_err() {
                visited.no_memory = true;
            } else {
                assert!(
                    !target.flags().contains(Flags::HUGE_PAGE),
                    "pmap::copy_leaves: a leaf where the source has a table"
                );
                let pair = Pair {
                    from: PhysFrame::containing_address(entry.addr()),
                    to: PhysFrame::containing_address(target.addr()),
                    ..*tables
                };
                // SAFETY: the tables two present non-leaf entries of ours
                // point at, under the same exclusive use; `from` and `to`
                // are not used while the recursion runs.
                unsafe { copy_table(&pair, level - 1, lo, start, last, copy, visited) };
            }
        }
        if visited.no_memory {
            return;
        }
    }
}

/// The level-2 table under `l4` that covers `va` (the frame its level-3
/// entry points at), or None when there is none. `make`: the missing
/// tables on the way, and the level-2 table itself, are made with these
/// flags; Err when no frame was left for one (mremap's whole-table move).
///
/// # Safety
/// As `walk`.
pub(super) unsafe fn level2_table(
    l4: PhysFrame,
    va: u64,
    make: Option<Flags>,
) -> Result<Option<PhysFrame>, NoMemory> {
    let mut spec = Walk::at(va, va.wrapping_add(1), 3);
    if let Some(flags) = make {
        spec = spec.making(flags);
    }
    let mut found = None;
    let mut failed = false;
    // SAFETY: the caller's contract.
    let visited = unsafe {
        walk(l4, &spec, &mut |_, _, entry| {
            if let Some(flags) = make
                && entry.is_unused()
            {
                failed = make_table(entry, flags, va).is_err();
            }
            let flags = entry.flags();
            if flags.contains(Flags::PRESENT) && !flags.contains(Flags::HUGE_PAGE) {
                found = Some(PhysFrame::containing_address(entry.addr()));
            }
            false
        })
    };
    if visited.no_memory || failed {
        return Err(NoMemory);
    }
    Ok(found)
}

/// Run `f` on the page table in `table`.
///
/// # Safety
/// As `table_at`: `table` is a page table of a space the caller has
/// exclusive use of, and no other reference to it lives during the call.
pub(super) unsafe fn with_table<R>(table: PhysFrame, f: impl FnOnce(&mut PageTable) -> R) -> R {
    // SAFETY: the caller's contract.
    f(unsafe { table_at(table) })
}
