//! Transparent superpages: which faults get a 2 MiB page without being
//! asked (Linux's transparent_hugepage, FreeBSD's superpages).
//!
//! The policy, `sysctl.vm.transparent_hugepage=` on the kernel command
//! line (`Mode`, Linux's three values):
//!
//! | mode | a write fault in private anonymous memory gets a 2 MiB page |
//! | --- | --- |
//! | `always` (the default) | wherever the aligned 2 MiB around it lies in the VMA, unless MADV_NOHUGEPAGE |
//! | `madvise` | only in ranges marked MADV_HUGEPAGE (or mapped MAP_HUGETLB, MAP_ALIGNED_SUPER) |
//! | `never` | only where the program asked explicitly, as under `madvise`: pageos's MAP_HUGETLB and MAP_ALIGNED_SUPER are requests, not transparency (Linux's `never` also ignores MADV_HUGEPAGE) |
//!
//! In every mode the 2 MiB must be empty (no page, no page table) and a
//! free 2 MiB block must be had, else the fault falls back to a 4 KiB page.
//! Stacks never get one (they grow a page at a time; Linux's THP skips
//! them too). Shared mappings of an object (shared anonymous memory, ramfs
//! files, memfds) follow `object_huge`: under the same policy the object
//! gets a 2 MiB block for the run of pages the fault is in, and a block
//! the object already holds is mapped whole in any mode (only
//! MADV_NOHUGEPAGE refuses). Read faults under `always` map the shared 4 KiB zero frame, as
//! before: only a write commits memory (Linux maps a huge zero page
//! there; pageos has none). Why a 2 MiB page on the first write rather
//! than FreeBSD's reservations: docs/src/superpages.md.

use crate::mmap::Sharing;
use crate::vma::{Backing, Vma, VmaFlags};
use core::sync::atomic::{AtomicU8, Ordering};

/// vm.transparent_hugepage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Always,
    Madvise,
    Never,
}

impl Mode {
    /// The mode a command-line or sysfs word names.
    pub fn parse(word: &str) -> Option<Mode> {
        match word {
            "always" => Some(Mode::Always),
            "madvise" => Some(Mode::Madvise),
            "never" => Some(Mode::Never),
            _ => None,
        }
    }

    /// Linux's /sys/kernel/mm/transparent_hugepage/enabled line: the
    /// three words, the one in force in brackets.
    pub fn sysfs_line(self) -> &'static str {
        match self {
            Mode::Always => "[always] madvise never\n",
            Mode::Madvise => "always [madvise] never\n",
            Mode::Never => "always madvise [never]\n",
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Set the policy of every address space created from now on.
pub fn set_mode(mode: Mode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// The policy in force (new address spaces take it).
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        0 => Mode::Always,
        1 => Mode::Madvise,
        _ => Mode::Never,
    }
}

/// Whether a fault in `vma` may fill the aligned 2 MiB around it with one
/// page under `mode`, and whether a read fault does too (`explicit`: the
/// program asked for 2 MiB pages, which it gets on any first touch; a
/// transparent one waits for a write).
pub fn huge_allowed(vma: &Vma, mode: Mode) -> Option<Touch> {
    let anonymous = matches!(vma.backing, Backing::Anonymous) && vma.sharing == Sharing::Private;
    let never = VmaFlags::NOHUGE | VmaFlags::GROWSDOWN | VmaFlags::MAIN_STACK;
    if !anonymous || vma.flags.intersects(never) {
        None
    } else if vma.flags.contains(VmaFlags::HUGE) {
        Some(Touch::Any)
    } else if mode == Mode::Always {
        Some(Touch::Write)
    } else {
        None
    }
}

/// What a fault in a shared object mapping may do with 2 MiB blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectHuge {
    /// Map a block the object already holds with one 2 MiB entry.
    MapExisting,
    /// That, or give the object a new block for a run with no page yet.
    Allocate,
}

/// Whether a fault in `vma`, a shared mapping of an object, may map the
/// object's 2 MiB blocks whole under `mode` (None: 4 KiB entries only:
/// private mappings, whose writes copy 4 KiB, and MADV_NOHUGEPAGE). Any
/// first touch allocates: a read of shared memory takes a frame anyway.
pub fn object_huge(vma: &Vma, mode: Mode) -> Option<ObjectHuge> {
    let shared = matches!(vma.backing, Backing::Object { .. }) && vma.sharing == Sharing::Shared;
    if !shared || vma.flags.contains(VmaFlags::NOHUGE) {
        None
    } else if vma.flags.contains(VmaFlags::HUGE) || mode == Mode::Always {
        Some(ObjectHuge::Allocate)
    } else {
        Some(ObjectHuge::MapExisting)
    }
}

/// Which first touch of an eligible 2 MiB fills it with a 2 MiB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Any access (the range was asked for with MADV_HUGEPAGE & co).
    Any,
    /// A write; a read maps the zero frame (transparent superpages).
    Write,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Prot;

    fn anon() -> Vma {
        Vma::anonymous(0, 4 << 20, Prot::READ | Prot::WRITE)
    }

    #[test]
    fn always_fills_on_write_madvised_on_any_touch() {
        let mut vma = anon();
        assert_eq!(huge_allowed(&vma, Mode::Always), Some(Touch::Write));
        assert_eq!(huge_allowed(&vma, Mode::Madvise), None);
        assert_eq!(huge_allowed(&vma, Mode::Never), None);
        vma.flags |= VmaFlags::HUGE;
        for mode in [Mode::Always, Mode::Madvise, Mode::Never] {
            assert_eq!(huge_allowed(&vma, mode), Some(Touch::Any));
        }
    }

    #[test]
    fn nohugepage_stacks_and_shared_memory_never() {
        for flag in [VmaFlags::NOHUGE, VmaFlags::GROWSDOWN, VmaFlags::MAIN_STACK] {
            let mut vma = anon();
            vma.flags |= flag;
            assert_eq!(huge_allowed(&vma, Mode::Always), None, "{flag:?}");
        }
        let mut shared = anon();
        shared.sharing = Sharing::Shared;
        assert_eq!(huge_allowed(&shared, Mode::Always), None);
    }

    #[test]
    fn shared_objects_allocate_by_policy_and_map_existing_blocks_in_any_mode() {
        let mut vma = anon();
        vma.backing = Backing::Object {
            object: crate::vm_object::ObjectRef::new_anonymous(),
            offset: 0,
        };
        assert_eq!(object_huge(&vma, Mode::Always), None, "private");
        vma.sharing = Sharing::Shared;
        assert_eq!(object_huge(&vma, Mode::Always), Some(ObjectHuge::Allocate));
        for mode in [Mode::Madvise, Mode::Never] {
            assert_eq!(object_huge(&vma, mode), Some(ObjectHuge::MapExisting));
        }
        vma.flags |= VmaFlags::HUGE;
        assert_eq!(object_huge(&vma, Mode::Never), Some(ObjectHuge::Allocate));
        vma.flags = VmaFlags::NOHUGE;
        assert_eq!(object_huge(&vma, Mode::Always), None);
    }

    #[test]
    fn modes_parse_as_linux_spells_them() {
        for (word, mode) in [
            ("always", Mode::Always),
            ("madvise", Mode::Madvise),
            ("never", Mode::Never),
        ] {
            assert_eq!(Mode::parse(word), Some(mode));
            assert!(mode.sysfs_line().contains(&alloc::format!("[{word}]")));
        }
        assert_eq!(Mode::parse("sometimes"), None);
    }
}
