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

/// Point `entry` at swap slot `slot` (not present).
pub(super) fn set_swap(entry: &mut PageTableEntry, slot: Slot) {
    entry.set_addr(PhysAddr::new(u64::from(slot.0) << 12), SWAP_MARK);
}

/// The slot a swap PTE holds; None for a present or absent one.
pub(super) fn swap_slot(entry: &PageTableEntry) -> Option<Slot> {
    let flags = entry.flags();
    (!flags.contains(Flags::PRESENT) && flags.contains(SWAP_MARK))
        .then(|| Slot((entry.addr().as_u64() >> 12) as u32))
}
