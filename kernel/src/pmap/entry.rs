//! One page-table entry in the machine-independent layer's terms: the
//! rights (`PteProt`) as x86 flag bits and back, and the one conversion of
//! a leaf entry to a `Mapping`, and the swap PTE (not present, holding a
//! swap slot).

use vm::frame::Pfn;
use vm::pmap::{Mapping, PteProt};
use vm::swap_map::Slot;
use x86_64::PhysAddr;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags as Flags, PhysFrame};

/// The flags of a leaf with these rights (PRESENT; NX unless executable).
pub(super) fn flags_for(prot: PteProt) -> Flags {
    let mut flags = Flags::PRESENT;
    if prot.user {
        flags |= Flags::USER_ACCESSIBLE;
    }
    if prot.write {
        flags |= Flags::WRITABLE;
    }
    if !prot.exec {
        flags |= Flags::NO_EXECUTE;
    }
    flags
}

/// What a present leaf `entry` maps: its (head) frame, rights and size.
pub(super) fn mapping_of(entry: &PageTableEntry, huge: bool) -> Mapping {
    let flags = entry.flags();
    Mapping {
        pfn: Pfn(entry.addr().as_u64() / 4096),
        prot: PteProt {
            user: flags.contains(Flags::USER_ACCESSIBLE),
            write: flags.contains(Flags::WRITABLE),
            exec: !flags.contains(Flags::NO_EXECUTE),
        },
        huge,
    }
}

/// The frame at `pfn` (for a 2 MiB page, its first 4 KiB).
pub(super) fn frame_of(pfn: Pfn) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(pfn.addr()))
}

/// Whether going from `old` to `new` takes a right away (or moves the
/// page). A TLB entry that grants less than the PTE needs no flush: the
/// access it refuses faults, the fault handler finds the PTE already
/// allows it (a spurious fault), and a page fault makes the CPU drop the
/// stale entry (Intel SDM 4.10.4.3). Linux skips these flushes too
/// (`pte_needs_flush`). mprotect adding write access so costs no invlpg.
pub(super) fn takes_rights(old: Flags, new: Flags) -> bool {
    let rights = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
    !new.contains(old & rights)
        || (new.contains(Flags::NO_EXECUTE) && !old.contains(Flags::NO_EXECUTE))
}

/// The mark of a lazily freeable PTE (MADV_FREE): present, read-only, an
/// available bit set. Every path that changes a PTE's rights or frame
/// writes its flags afresh (`flags_for`), so a write fault (copy-on-write
/// reuse) or an mprotect drops it: a PTE still marked was not written
/// since.
pub(super) const LAZY_FREE_MARK: Flags = Flags::BIT_10;

/// The mark of a swap PTE: not present, an available bit set (the MMU
/// ignores both), the slot where a frame address would be. An absent PTE
/// is all zeros, so the two never meet.
const SWAP_MARK: Flags = Flags::BIT_9;

/// Point `entry` at swap slot `slot` (not present); what it held before.
pub(super) fn set_swap(entry: &mut PageTableEntry, slot: Slot) -> PageTableEntry {
    let mut swap = PageTableEntry::new();
    swap.set_addr(PhysAddr::new(u64::from(slot.0) << 12), SWAP_MARK);
    exchange(entry, &swap)
}

/// The slot a swap PTE holds; None for a present or absent one.
pub(super) fn swap_slot(entry: &PageTableEntry) -> Option<Slot> {
    let flags = entry.flags();
    (!flags.contains(Flags::PRESENT) && flags.contains(SWAP_MARK))
        .then(|| Slot((entry.addr().as_u64() >> 12) as u32))
}

// Changing a live entry. The MMU of any CPU running this space sets the
// Accessed bit of every entry it walks through, and the Dirty bit of a
// leaf it writes through, by itself and with a locked operation on the
// entry, holding none of our locks (Intel SDM 4.8). A change that reads an
// entry and writes it back (`e.set_flags(f(e.flags()))`) loses whatever
// the MMU set in between: an access the clock then never sees, or a write
// that a dirty-bit check would miss (the data lost on page-out). So every
// change of an entry that may be present goes through one of these, each
// one locked instruction on the entry as an AtomicU64, as Linux's
// ptep_get_and_clear, ptep_set_wrprotect and ptep_test_and_clear_young.
// The page-table lock (or `&mut Pmap`) still serialises the kernel's own
// changes; these only make them atomic with respect to the MMU.

use core::sync::atomic::{AtomicU64, Ordering};

/// The bits the MMU sets in an entry by itself.
pub(super) const MMU_BITS: Flags = Flags::ACCESSED.union(Flags::DIRTY);

/// `entry` as the 64-bit word the MMU sees.
fn word(entry: &mut PageTableEntry) -> &AtomicU64 {
    let raw = core::ptr::from_mut(entry).cast::<u64>();
    // SAFETY: PageTableEntry is a repr(transparent) u64, 8-aligned as an
    // AtomicU64 is; the MMU's own accesses to it are atomic too.
    unsafe { AtomicU64::from_ptr(raw) }
}

/// The entry a word holds.
pub(super) fn entry_of(raw: u64) -> PageTableEntry {
    let mut entry = PageTableEntry::new();
    word(&mut entry).store(raw, Ordering::Relaxed);
    entry
}

/// Put `new` in `entry` and return what it held at that instant (with
/// every bit the MMU had set): one exchange.
pub(super) fn exchange(entry: &mut PageTableEntry, new: &PageTableEntry) -> PageTableEntry {
    entry_of(word(entry).swap(word_of(new), Ordering::AcqRel))
}

/// Empty `entry`, returning what it held (`exchange` with zero).
pub(super) fn take(entry: &mut PageTableEntry) -> PageTableEntry {
    entry_of(word(entry).swap(0, Ordering::AcqRel))
}

/// Clear `bits` in `entry` (frame and other flags kept); its flags before.
pub(super) fn clear_flags(entry: &mut PageTableEntry, bits: Flags) -> Flags {
    Flags::from_bits_truncate(word(entry).fetch_and(!bits.bits(), Ordering::AcqRel))
}

/// Set `bits` in `entry`; its flags before.
pub(super) fn add_flags(entry: &mut PageTableEntry, bits: Flags) -> Flags {
    Flags::from_bits_truncate(word(entry).fetch_or(bits.bits(), Ordering::AcqRel))
}

/// Give `entry` the flags `new(old flags)`, its frame kept, retrying if
/// the MMU changed it between the read and the write; its flags before.
pub(super) fn update_flags(entry: &mut PageTableEntry, new: impl Fn(Flags) -> Flags) -> Flags {
    let word = word(entry);
    let mut raw = word.load(Ordering::Acquire);
    loop {
        let old = entry_of(raw);
        let mut next = PageTableEntry::new();
        next.set_addr(old.addr(), new(old.flags()));
        let next = word_of(&next);
        match word.compare_exchange_weak(raw, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return old.flags(),
            Err(now) => raw = now,
        }
    }
}

/// The word of an entry.
fn word_of(entry: &PageTableEntry) -> u64 {
    let mut entry = entry.clone();
    word(&mut entry).load(Ordering::Relaxed)
}
