//! vm_fault: the page-fault path. `decide` says what a fault means, from
//! the VMA, the access and the current PTE — pure logic, so every row of
//! the decision table is a host test. `AddressSpace::fault`, below, carries
//! the decision out: the one function of the fault path (lookup, find the
//! page, copy-on-write, enter, retry), written as if another CPU may
//! resolve the same fault at the same time.
//!
//! The decision table (also the book's, docs/src/vm_fault.md: one file,
//! `vm_fault_decisions.md`, included by both):
#![doc = include_str!("vm_fault_decisions.md")]

use crate::frame::Pfn;
use crate::mmap::{Prot, Sharing};
use crate::pmap::{Mapping, PhysMem, Pmap, PteProt};
use crate::space::AddressSpace;
use crate::thp::{self, Mode, Touch};
use crate::vma::{Backing, HUGE_PAGE, PAGE, Vma};

mod find;
mod huge_object;
mod shared;

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
    /// A shared object page where the object's 2 MiB block may be mapped
    /// whole (`thp::object_huge`); else as `ObjectPage`.
    HugeObjectPage,
    CopyOnWrite,
    MakeWritable,
    Spurious,
    /// The PTE holds a swap slot: read the page back.
    SwapIn,
}

/// What was done, for the fault trace and /proc/vmstat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    ZeroPage,
    ZeroFill,
    HugeZeroFill,
    /// A page of the VMA's object mapped; `around` more of its resident
    /// neighbours mapped with it (fault-around); `read` pages came from
    /// the swap disk for it (the page was out, vm_object/swap.rs: a major
    /// fault).
    ObjectPage {
        around: u32,
        read: u32,
    },
    /// An object's 2 MiB block mapped by one entry; `allocated`: the
    /// object got the block for this fault.
    HugeObjectPage {
        allocated: bool,
    },
    /// Copy-on-write that copied the frame.
    CopyOnWrite,
    /// Copy-on-write where this was the last reference: no copy needed.
    Reuse,
    MakeWritable,
    StackGrowth,
    Spurious,
    /// A swapped-out page back in its PTE: `read` pages came from the disk
    /// (0: the swap cache had it, a minor fault), after `cycles` of waiting.
    SwapIn {
        read: u32,
        cycles: u64,
    },
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::ZeroPage => "zero-page",
            Resolution::ZeroFill => "zero-fill",
            Resolution::HugeZeroFill => "huge-zero-fill",
            Resolution::ObjectPage { read: 1.., .. } => "object-swap-in",
            Resolution::ObjectPage { .. } => "object-page",
            Resolution::HugeObjectPage { .. } => "huge-object-page",
            Resolution::CopyOnWrite => "copy-on-write",
            Resolution::Reuse => "cow-reuse",
            Resolution::MakeWritable => "make-writable",
            Resolution::StackGrowth => "stack-growth",
            Resolution::Spurious => "spurious",
            Resolution::SwapIn { read: 0, .. } => "swap-in-cached",
            Resolution::SwapIn { .. } => "swap-in",
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

/// What a fault that `decide` would fill means when the absent PTE holds
/// a swap slot: swap in, whatever the VMA's backing (a private copy of a
/// file page is swapped too); a refusal stays a refusal.
pub fn decide_swapped(decision: Decision) -> Decision {
    match decision {
        Decision::ZeroPage
        | Decision::ZeroFill
        | Decision::HugeZeroFill
        | Decision::ObjectPage
        | Decision::HugeObjectPage => Decision::SwapIn,
        other => other,
    }
}

/// Decide what a fault with `access` on a page of `vma` (None: no VMA
/// there) whose PTE is `pte` means, under the superpage policy `thp`.
pub fn decide(vma: Option<&Vma>, access: Access, pte: Option<Mapping>, thp: Mode) -> Decision {
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
        None => match (&vma.backing, thp::huge_allowed(vma, thp)) {
            (Backing::Object { .. }, _) if thp::object_huge(vma, thp).is_some() => {
                Decision::HugeObjectPage
            }
            (Backing::Object { .. }, _) => Decision::ObjectPage,
            (_, Some(Touch::Any)) => Decision::HugeZeroFill,
            (_, Some(Touch::Write)) if access == Access::Write => Decision::HugeZeroFill,
            _ if access == Access::Write => Decision::ZeroFill,
            _ => Decision::ZeroPage,
        },
    }
}

/// Rounds of lookup → find → enter before a fault stops and lets the
/// access retry: a round that finds the PTE changed under it (another CPU
/// resolved the same fault, or the stack grew, or a 2 MiB page was split)
/// starts over from the lookup.
const MAX_ROUNDS: usize = 4;

/// What finding the page gave a round.
enum Step {
    /// Map `pfn` (the caller's reference) at the faulting page, writable in
    /// place or not, if the PTE is still `expect` (None: absent; Some: the
    /// copy-on-write source, which the new frame replaces).
    Enter {
        pfn: Pfn,
        writable: bool,
        expect: Option<Mapping>,
        done: Resolution,
    },
    /// Resolved without a new frame.
    Done(Resolution),
    /// Start the round again.
    Again,
}

impl<P: Pmap> AddressSpace<P> {
    /// Resolve a fault at `addr` as `decide` says; on success the access
    /// can be retried. The whole fault path, FreeBSD's `vm_fault()` loop:
    ///
    /// 1. **look up** the VMA and the PTE, and `decide`;
    /// 2. **find the page**: the zero page, a zero-filled frame, a 2 MiB
    ///    block, the object's page, or a grown stack;
    /// 3. **copy on write** where the decision or a private write to an
    ///    object page needs it (`cow_copy`, the crate's one copy);
    /// 4. **enter** it, after looking at the PTE again: the frame was
    ///    allocated without holding the page-table lock (DESIGN §6), so
    ///    another CPU may have resolved the same fault meanwhile. Then the
    ///    frame goes back and the next round finds a spurious fault: one
    ///    frame per page, never two;
    /// 5. **retry**: back to 1 when the round found the PTE changed.
    ///
    /// Also how the kernel faults pages in for its own copies into user
    /// memory (`user_frame`).
    pub fn fault(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Resolution, FaultError> {
        let mut split = None;
        let result = self.fault_rounds(phys, addr, access, &mut split);
        // A 2 MiB page split for a copy-on-write that then found no frame
        // for its copy is made whole again: a failed fault changes nothing
        // (the kernel reclaims and the next try splits it again).
        if let (Err(FaultError::OutOfMemory), Some((base, was_whole))) = (result, split) {
            self.undo_split(phys, base, was_whole);
        }
        result
    }

    /// `fault`'s rounds; `split` records a 2 MiB page a copy-on-write
    /// split (its base, and whether its block was whole before).
    fn fault_rounds(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
        split: &mut Option<(u64, bool)>,
    ) -> Result<Resolution, FaultError> {
        let page = addr & !(PAGE - 1);
        let oom = FaultError::OutOfMemory;
        let mut grew = false;
        let mut swapped_in = None;
        for _ in 0..MAX_ROUNDS {
            // 1. Look up.
            let pte = self.pmap.query(addr);
            let mut decision = decide(self.map.find(addr), access, pte, self.thp);
            if pte.is_none() && phys.swap_used() && self.pmap.query_swap(addr).is_some() {
                decision = decide_swapped(decision);
            }
            // 2 and 3. Find the page, copy it if need be.
            let step = match decision {
                Decision::Fail(error) => return Err(error),
                Decision::Spurious => Step::Done(Resolution::Spurious),
                Decision::GrowStack => {
                    self.grow_stack(phys, addr)?;
                    grew = true;
                    Step::Again
                }
                Decision::MakeWritable => {
                    let prot = pte_prot(self.vma(addr), true);
                    // A shared 2 MiB entry changes whole (its key is its base).
                    let (from, len) = match pte {
                        Some(m) if m.huge => (addr & !(HUGE_PAGE - 1), HUGE_PAGE),
                        _ => (page, PAGE),
                    };
                    self.pmap.protect_range(from, from + len, &mut |_, _| prot);
                    Step::Done(Resolution::MakeWritable)
                }
                Decision::ZeroPage => {
                    let zero = phys.zero_frame();
                    phys.get(zero);
                    Step::Enter {
                        pfn: zero,
                        writable: false,
                        expect: None,
                        done: Resolution::ZeroPage,
                    }
                }
                Decision::ZeroFill => Step::Enter {
                    pfn: phys.alloc_zeroed().ok_or(oom)?,
                    writable: true,
                    expect: None,
                    done: Resolution::ZeroFill,
                },
                Decision::HugeZeroFill => self.huge_fill(phys, addr)?,
                Decision::ObjectPage => self.object_page(phys, addr, access)?,
                Decision::HugeObjectPage => self.huge_object_page(phys, addr, access)?,
                Decision::CopyOnWrite => {
                    let old = pte.expect("cow without a PTE");
                    let was_whole = old.huge && phys.is_block(old.pfn);
                    let step = self.copy_on_write(phys, addr, old)?;
                    if old.huge && matches!(step, Step::Again) {
                        *split = Some((addr & !(HUGE_PAGE - 1), was_whole));
                    }
                    step
                }
                Decision::SwapIn => {
                    if let Some(done) = self.swap_in(phys, addr, access)? {
                        swapped_in = Some(done);
                    }
                    Step::Again
                }
            };
            // 4. Enter, unless the PTE changed meanwhile.
            let resolution = match step {
                Step::Again => continue,
                Step::Done(resolution) => resolution,
                Step::Enter {
                    pfn,
                    writable,
                    expect,
                    done,
                } => {
                    if self.pmap.query(addr) != expect {
                        phys.put(pfn);
                        continue; // 5. Retry: most likely a spurious fault now.
                    }
                    let prot = pte_prot(self.vma(addr), writable);
                    let entered = match expect {
                        None => self.pmap.enter(page, pfn, prot).map(|()| None),
                        Some(_) => self.pmap.replace(page, pfn, prot).map(Some),
                    };
                    match entered {
                        Err(_) => {
                            phys.put(pfn);
                            return Err(oom);
                        }
                        Ok(Some(old)) => phys.put(old.pfn),
                        Ok(None) => {}
                    }
                    match done {
                        Resolution::ObjectPage { read, .. } => Resolution::ObjectPage {
                            around: self.fault_around(phys, addr, access),
                            read,
                        },
                        done => done,
                    }
                }
            };
            return Ok(match swapped_in {
                Some(done) => done,
                None if grew => Resolution::StackGrowth,
                None => resolution,
            });
        }
        Ok(swapped_in.unwrap_or(Resolution::Spurious))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm_object::ObjectRef;
    use crate::vma::VmaFlags;

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
            decide(None, Access::Read, None, Mode::Always),
            Decision::Fail(FaultError::Segv(SegvCode::MapErr))
        );
    }

    #[test]
    fn guard_is_maperr_for_any_access() {
        let mut vma = anon(Prot::empty());
        vma.backing = Backing::Guard;
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(
                decide(Some(&vma), access, None, Mode::Always),
                Decision::Fail(FaultError::Segv(SegvCode::MapErr))
            );
        }
    }

    #[test]
    fn stack_gap_grows_for_any_access() {
        let mut gap = anon(Prot::empty());
        gap.backing = Backing::StackGap;
        for access in [Access::Read, Access::Write, Access::Execute] {
            assert_eq!(
                decide(Some(&gap), access, None, Mode::Always),
                Decision::GrowStack
            );
        }
    }

    #[test]
    fn access_beyond_prot_is_accerr() {
        let ro = anon(Prot::READ);
        assert_eq!(
            decide(Some(&ro), Access::Write, None, Mode::Never),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
        assert_eq!(
            decide(Some(&ro), Access::Execute, None, Mode::Never),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
        let none = anon(Prot::empty());
        assert_eq!(
            decide(Some(&none), Access::Read, None, Mode::Never),
            Decision::Fail(FaultError::Segv(SegvCode::AccErr))
        );
    }

    #[test]
    fn write_implies_read_on_x86() {
        let wo = anon(Prot::WRITE);
        assert_eq!(
            decide(Some(&wo), Access::Read, None, Mode::Never),
            Decision::ZeroPage
        );
    }

    #[test]
    fn untouched_anonymous_reads_share_the_zero_page_and_writes_fill() {
        let vma = anon(RW);
        assert_eq!(
            decide(Some(&vma), Access::Read, None, Mode::Never),
            Decision::ZeroPage
        );
        assert_eq!(
            decide(Some(&vma), Access::Write, None, Mode::Never),
            Decision::ZeroFill
        );
    }

    #[test]
    fn by_default_a_write_fills_a_huge_page_and_a_read_maps_the_zero_page() {
        let vma = anon(RW);
        let decide = |access| decide(Some(&vma), access, None, Mode::Always);
        assert_eq!(decide(Access::Read), Decision::ZeroPage);
        assert_eq!(decide(Access::Write), Decision::HugeZeroFill);
        let mut no = anon(RW);
        no.flags |= VmaFlags::NOHUGE;
        assert_eq!(
            super::decide(Some(&no), Access::Write, None, Mode::Always),
            Decision::ZeroFill
        );
    }

    #[test]
    fn huge_vma_fills_a_huge_page() {
        let mut vma = anon(RW);
        vma.flags |= VmaFlags::HUGE;
        assert_eq!(
            decide(Some(&vma), Access::Read, None, Mode::Never),
            Decision::HugeZeroFill
        );
    }

    #[test]
    fn write_to_read_only_pte_is_cow_when_private_and_upgrade_when_shared() {
        let private = anon(RW);
        assert_eq!(
            decide(Some(&private), Access::Write, present(false), Mode::Never),
            Decision::CopyOnWrite
        );
        let mut shared = anon(RW);
        shared.sharing = Sharing::Shared;
        shared.backing = Backing::Object {
            object: ObjectRef::new_anonymous(),
            offset: 0,
        };
        assert_eq!(
            decide(Some(&shared), Access::Write, present(false), Mode::Never),
            Decision::MakeWritable
        );
        // A shared object's block may be mapped whole in any mode.
        assert_eq!(
            decide(Some(&shared), Access::Write, None, Mode::Never),
            Decision::HugeObjectPage
        );
        shared.flags |= VmaFlags::NOHUGE;
        assert_eq!(
            decide(Some(&shared), Access::Write, None, Mode::Always),
            Decision::ObjectPage
        );
    }

    #[test]
    fn allowed_access_to_present_page_is_spurious() {
        let vma = anon(RW);
        assert_eq!(
            decide(Some(&vma), Access::Write, present(true), Mode::Never),
            Decision::Spurious
        );
    }
}
