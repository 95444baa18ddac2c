//! vm_fault: what a page fault means, decided from the VMA, the access and
//! the current PTE — pure logic, so every row of the decision table is a
//! host test. `AddressSpace::fault` carries the decision out.
//!
//! The decision table (also the book's, docs/src/vm_fault.md: one file,
//! `vm_fault_decisions.md`, included by both):
#![doc = include_str!("vm_fault_decisions.md")]

use crate::mmap::{Prot, Sharing};
use crate::pmap::{Mapping, PteProt};
use crate::vma::{Backing, Vma, VmaFlags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Execute,
}

/// Linux's si_code values for SIGSEGV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegvCode {
    /// SEGV_MAPERR: nothing is mapped there.
    MapErr = 1,
    /// SEGV_ACCERR: mapped, but the access is not allowed.
    AccErr = 2,
}

/// Why a fault could not be resolved: what the process receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    Segv(SegvCode),
    /// SIGBUS: a file page wholly past end of file.
    Bus,
    /// No memory for the page: the process is killed (SIGKILL).
    OutOfMemory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Fail(FaultError),
    GrowStack,
    ZeroPage,
    ZeroFill,
    HugeZeroFill,
    ObjectPage,
    CopyOnWrite,
    MakeWritable,
    Spurious,
}

/// What was done, for the fault trace and /proc/vmstat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    ZeroPage,
    ZeroFill,
    HugeZeroFill,
    /// A page of the VMA's object mapped; `around` more of its resident
    /// neighbours mapped with it (fault-around).
    ObjectPage {
        around: u32,
    },
    /// Copy-on-write that copied the frame.
    CopyOnWrite,
    /// Copy-on-write where this was the last reference: no copy needed.
    Reuse,
    MakeWritable,
    StackGrowth,
    Spurious,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::ZeroPage => "zero-page",
            Resolution::ZeroFill => "zero-fill",
            Resolution::HugeZeroFill => "huge-zero-fill",
            Resolution::ObjectPage { .. } => "object-page",
            Resolution::CopyOnWrite => "copy-on-write",
            Resolution::Reuse => "cow-reuse",
            Resolution::MakeWritable => "make-writable",
            Resolution::StackGrowth => "stack-growth",
            Resolution::Spurious => "spurious",
        }
    }
}

/// Whether `prot` allows `access`. On x86 every present page is readable,
/// so PROT_WRITE and PROT_EXEC imply read, as on Linux.
pub fn allows(prot: Prot, access: Access) -> bool {
    match access {
        Access::Read => !prot.is_empty(),
        Access::Write => prot.contains(Prot::WRITE),
        Access::Execute => prot.contains(Prot::EXEC),
    }
}

/// The PTE rights for a page of `vma`; `writable` says whether this page
/// may be written in place (false for pages shared copy-on-write).
pub fn pte_prot(vma: &Vma, writable: bool) -> PteProt {
    PteProt {
        user: !vma.prot.is_empty(),
        write: writable && vma.prot.contains(Prot::WRITE),
        exec: vma.prot.contains(Prot::EXEC),
    }
}

/// Decide what a fault with `access` on a page of `vma` (None: no VMA
/// there) whose PTE is `pte` means.
pub fn decide(vma: Option<&Vma>, access: Access, pte: Option<Mapping>) -> Decision {
    let Some(vma) = vma else {
        return Decision::Fail(FaultError::Segv(SegvCode::MapErr));
    };
    match vma.backing {
        Backing::Guard => return Decision::Fail(FaultError::Segv(SegvCode::MapErr)),
        // The whole reservation is the stack's: its guard is the VMA below.
        Backing::StackGap => return Decision::GrowStack,
        Backing::Anonymous | Backing::Object { .. } => {}
    }
    if !allows(vma.prot, access) {
        return Decision::Fail(FaultError::Segv(SegvCode::AccErr));
    }
    match pte {
        Some(m) if access == Access::Write && !m.prot.write => match vma.sharing {
            Sharing::Private => Decision::CopyOnWrite,
            Sharing::Shared => Decision::MakeWritable,
        },
        Some(m) if !m.prot.user || (access == Access::Execute && !m.prot.exec) => {
            Decision::MakeWritable
        }
        Some(_) => Decision::Spurious,
        None => match vma.backing {
            Backing::Object { .. } => Decision::ObjectPage,
            _ if vma.flags.contains(VmaFlags::HUGE) => Decision::HugeZeroFill,
            _ if access == Access::Write => Decision::ZeroFill,
            _ => Decision::ZeroPage,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Pfn;
    use crate::vm_object::ObjectRef;

    const RW: Prot = Prot::READ.union(Prot::WRITE);

    fn anon(prot: Prot) -> Vma {
        Vma::anonymous(0x1000, 0x9000, prot)
    }

    fn present(write: bool) -> Option<Mapping> {
        Some(Mapping {
            pfn: Pfn(7),
            prot: PteProt {
                user: true,
                write,
                exec: false,
            },
            huge: false,
        })
    }

    #[test]
    fn no_vma_is_maperr() {
        assert_eq!(
            decide(None, Access::Read, None),
            Decision::Fail(FaultError::Segv(SegvCode::MapErr))
        );
    }

    #[test]
    fn guard_is_maperr_for_any_access() {
        let mut vma = anon(Prot::empty());
        vma.backing = Backing::Guard;
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(
                decide(Some(&vma), access, None),
                Decision::Fail(FaultError::Segv(SegvCode::MapErr))
            );
        }
    }

    #[test]
    fn stack_gap_grows_for_any_access() {
        let mut gap = anon(Prot::empty());
        gap.backing = Backing::StackGap;
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(decide(Some(&gap), access, None), Decision::GrowStack);
        }
    }

    #[test]
    fn access_beyond_prot_is_accerr() {
        let ro = anon(Prot::READ);
        assert_eq!(
            decide(Some(&ro), Access::Write, None),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
        assert_eq!(
            decide(Some(&ro), Access::Execute, None),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
        let none = anon(Prot::empty());
        assert_eq!(
            decide(Some(&none), Access::Read, None),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
    }

    #[test]
    fn write_implies_read_on_x86() {
        let wo = anon(Prot::WRITE);
        assert_eq!(decide(Some(&wo), Access::Read, None), Decision::ZeroPage);
    }

    #[test]
    fn untouched_anonymous_reads_share_the_zero_page_and_writes_fill() {
        let vma = anon(RW);
        assert_eq!(decide(Some(&vma), Access::Read, None), Decision::ZeroPage);
        assert_eq!(decide(Some(&vma), Access::Write, None), Decision::ZeroFill);
    }

    #[test]
    fn huge_vma_fills_a_huge_page() {
        let mut vma = anon(RW);
        vma.flags |= VmaFlags::HUGE;
        assert_eq!(
            decide(Some(&vma), Access::Read, None),
            Decision::HugeZeroFill
        );
    }

    #[test]
    fn write_to_read_only_pte_is_cow_when_private_and_upgrade_when_shared() {
        let private = anon(RW);
        assert_eq!(
            decide(Some(&private), Access::Write, present(false)),
            Decision::CopyOnWrite
        );
        let mut shared = anon(RW);
        shared.sharing = Sharing::Shared;
        shared.backing = Backing::Object {
            object: ObjectRef::new_anonymous(),
            offset: 0,
        };
        assert_eq!(
            decide(Some(&shared), Access::Write, present(false)),
            Decision::MakeWritable
        );
        assert_eq!(
            decide(Some(&shared), Access::Write, None),
            Decision::ObjectPage
        );
    }

    #[test]
    fn allowed_access_to_present_page_is_spurious() {
        let vma = anon(RW);
        assert_eq!(
            decide(Some(&vma), Access::Write, present(true)),
            Decision::Spurious
        );
    }
}
