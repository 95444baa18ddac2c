//! The fault under the address-space read lock: DESIGN §6's parallel
//! faults. Two threads of one process touching new pages of their heaps
//! at once each need only their own page's PTE: nothing in the VMA tree
//! changes, so both may look it up under the read lock, allocate their
//! frames at the same time and then enter them one after the other under
//! the page-table lock.
//!
//! Only the faults that change one entry of anonymous private memory and
//! nothing else are resolved here: the first touch (the zero page, a
//! zeroed 4 KiB frame, a zeroed 2 MiB block), the copy-on-write of a
//! 4 KiB page (after fork, or a write to the zero page) and the spurious
//! fault. Everything else (a 2 MiB copy-on-write, an object's page, a
//! swap-in, stack growth, a fault that fails or finds no frame) returns
//! None and is taken again by `fault` under the write lock. Linux started
//! its per-VMA lock the same way (6.4: anonymous VMAs only,
//! `VM_FAULT_RETRY` under mmap_lock for the rest).
//!
//! The decision is `decide`'s, as for every fault; what differs is only
//! the way in: a lookup under the page-table lock (`SharedPmap::look`),
//! then the allocation (and copy) with no lock held, then `enter_*` or
//! `*_if`, which look again under the lock. A CPU that lost the race to
//! another gives its frame back and looks again, finding a spurious
//! fault: one frame per page, never two (the race `fault` already handles
//! in its step 4). A copy-on-write takes a right away (the old frame's
//! read access), so `replace_if` returns only after the other CPUs'
//! TLBs let go of the old entry, and only then does its frame's
//! reference go back.

use super::find::cow_copy;
use super::{Decision, MAX_ROUNDS, Resolution, decide, pte_prot};
use crate::frame::Pfn;
use crate::pmap::{PhysMem, Pmap, Pte, SharedPmap};
use crate::space::AddressSpace;
use crate::vm_fault::Access;
use crate::vma::{Backing, HUGE_PAGE, PAGE, Vma};

/// What entering a page under the read lock came to.
enum Entered {
    Done(Resolution),
    /// Another CPU mapped the page first: look again.
    Lost,
}

impl<P: Pmap + SharedPmap> AddressSpace<P> {
    /// Resolve the fault at `addr` as `fault` would, if it is one that
    /// only adds an entry (see the module); callable by several CPUs at
    /// once on one space (`&self`: under the read lock). None: nothing
    /// was changed, and the fault needs `fault` under the write lock.
    pub fn fault_shared(
        &self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Option<Resolution> {
        let page = addr & !(PAGE - 1);
        for _ in 0..MAX_ROUNDS {
            let pte = match self.pmap.look(addr) {
                Pte::Absent => None,
                Pte::Present(m) => Some(m),
                Pte::Swapped => return None,
            };
            let vma = self.map.find(addr);
            let entered = match decide(vma, access, pte, self.thp) {
                Decision::Spurious => return Some(Resolution::Spurious),
                Decision::ZeroPage => {
                    let zero = phys.zero_frame();
                    phys.get(zero);
                    self.enter_page(phys, page, zero, vma?, false, Resolution::ZeroPage)?
                }
                Decision::ZeroFill => {
                    let pfn = phys.alloc_zeroed()?;
                    self.enter_page(phys, page, pfn, vma?, true, Resolution::ZeroFill)?
                }
                Decision::HugeZeroFill => self.huge_fill_shared(phys, addr, vma?)?,
                Decision::CopyOnWrite => self.copy_on_write_shared(phys, addr, pte?, vma?)?,
                _ => return None,
            };
            if let Entered::Done(done) = entered {
                return Some(done);
            }
        }
        Some(Resolution::Spurious)
    }

    /// Enter `pfn` (the caller's reference) at `page` if the PTE is still
    /// absent; the reference goes back when another CPU won, or when no
    /// table could be had (None: `fault` then meets the shortage itself).
    fn enter_page(
        &self,
        phys: &mut dyn PhysMem,
        page: u64,
        pfn: Pfn,
        vma: &Vma,
        writable: bool,
        done: Resolution,
    ) -> Option<Entered> {
        match self
            .pmap
            .enter_if_absent(page, pfn, pte_prot(vma, writable))
        {
            Ok(true) => Some(Entered::Done(done)),
            Ok(false) => {
                phys.put(pfn);
                Some(Entered::Lost)
            }
            Err(_) => {
                phys.put(pfn);
                None
            }
        }
    }

    /// `copy_on_write` under the read lock, for a 4 KiB page of anonymous
    /// memory: the copy (or a zeroed frame for the zero page), or the
    /// frame made writable when this PTE holds its last reference. None
    /// for the rest, which is the write lock's: a 2 MiB page (split
    /// first), an object's page (the page cache's), and a frame with one
    /// other reference while swap is in use (perhaps the swap cache's,
    /// whose slot goes first: `copy_on_write`).
    ///
    /// The counts it reads cannot rise meanwhile: a new reference to a
    /// frame this space maps comes from fork or reclaim, which hold (or
    /// try for) the write lock. They may fall (another process lets go of
    /// its share), and then the copy was one too many, as on Linux.
    fn copy_on_write_shared(
        &self,
        phys: &mut dyn PhysMem,
        addr: u64,
        old: crate::pmap::Mapping,
        vma: &Vma,
    ) -> Option<Entered> {
        if old.huge || !matches!(vma.backing, Backing::Anonymous) {
            return None;
        }
        let page = addr & !(PAGE - 1);
        let prot = pte_prot(vma, true);
        let refs = phys.refcount(old.pfn);
        if old.pfn != phys.zero_frame() && refs == 1 {
            return Some(match self.pmap.protect_if(page, old, prot) {
                true => Entered::Done(Resolution::Reuse),
                false => Entered::Lost,
            });
        }
        if refs == 2 && phys.swap_used() {
            return None;
        }
        let copy = cow_copy(phys, old.pfn)?;
        match self.pmap.replace_if(page, old, copy, prot) {
            Ok(true) => {
                phys.put(old.pfn);
                Some(Entered::Done(Resolution::CopyOnWrite))
            }
            Ok(false) => {
                phys.put(copy);
                Some(Entered::Lost)
            }
            Err(_) => {
                phys.put(copy);
                None
            }
        }
    }

    /// `huge_fill` under the read lock: a zeroed 2 MiB block where it fits
    /// and the slot is free, else a 4 KiB page, as the table says.
    fn huge_fill_shared(&self, phys: &mut dyn PhysMem, addr: u64, vma: &Vma) -> Option<Entered> {
        let base = addr & !(HUGE_PAGE - 1);
        let fits = vma.start <= base && base + HUGE_PAGE <= vma.end;
        if fits
            && self.pmap.huge_slot_is_free(base)
            && let Some(block) = phys.alloc_huge_zeroed()
        {
            match self
                .pmap
                .enter_huge_if_free(base, block, pte_prot(vma, true))
            {
                Ok(true) => return Some(Entered::Done(Resolution::HugeZeroFill)),
                Ok(false) => {
                    phys.put_block(block);
                    return Some(Entered::Lost);
                }
                // No table above it: a small page needs one too, but
                // perhaps fewer levels of it.
                Err(_) => phys.put_block(block),
            }
        }
        let pfn = phys.alloc_zeroed()?;
        let page = addr & !(PAGE - 1);
        self.enter_page(phys, page, pfn, vma, true, Resolution::ZeroFill)
    }
}
