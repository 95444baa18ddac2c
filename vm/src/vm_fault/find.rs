//! Steps 2 and 3 of the fault path (`vm_fault.rs`): finding the page a
//! decision needs — a swapped-out page read back, a 2 MiB block, an
//! object's page, a copy on write — and the fault-around that follows an
//! object page. Each returns the `Step` the caller's step 4 enters.

use super::{Access, FaultError, Resolution, Step, pte_prot};
use crate::frame::Pfn;
use crate::mmap::Sharing;
use crate::pager::FAULT_AROUND_PAGES;
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::space::AddressSpace;
use crate::swap_cache::SwapInError;
use crate::swap_map::Slot;
use crate::vm_object::PageError;
use crate::vma::{Advice, HUGE_PAGE, PAGE, Vma, VmaFlags};

impl<P: Pmap> AddressSpace<P> {
    /// The PTE of `addr` holds a swap slot: map the slot's frame (from the
    /// swap cache, or read in) and let go of the slot. None when the PTE
    /// changed meanwhile (the next round looks again).
    ///
    /// As Linux's do_swap_page: a write takes the page for this PTE alone
    /// when no one else holds it (writable, out of the swap cache, its
    /// slot freed); a read maps it read-only and leaves it in the cache
    /// with its slot, so that a page only read goes again without a write.
    /// Slots are not kept for pages that never go (a locked VMA) nor when
    /// swap is more than half full (Linux's should_try_to_free_swap and
    /// vm_swap_full). A write to a page mapped read-only here is the next
    /// round's copy-on-write, which takes the page out of the cache if it
    /// may (`copy_on_write`).
    pub(super) fn swap_in(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Option<Resolution>, FaultError> {
        let page = addr & !(PAGE - 1);
        let Some(slot) = self.pmap.query_swap(addr) else {
            return Ok(None);
        };
        let got = phys.swap_in(slot).map_err(|e| match e {
            SwapInError::NoMemory => FaultError::OutOfMemory,
            SwapInError::Io => FaultError::Bus,
        })?;
        if self.pmap.query_swap(addr) != Some(slot) {
            phys.put(got.pfn);
            return Ok(None);
        }
        let vma = self.vma(addr);
        let take = got.exclusive
            && (access == Access::Write || got.swap_full || vma.flags.contains(VmaFlags::LOCKED));
        let prot = pte_prot(vma, take);
        if self.pmap.swap_in(page, got.pfn, prot).is_err() {
            phys.put(got.pfn);
            return Err(FaultError::OutOfMemory);
        }
        phys.swap_release(slot);
        // A cached frame is never mapped writable (the cache promises its
        // slot holds its contents).
        if take && !phys.free_swap(got.pfn) {
            let prot = pte_prot(self.vma(addr), false);
            self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
        }
        Ok(Some(Resolution::SwapIn {
            read: got.read,
            cycles: got.cycles,
        }))
    }

    /// The slot of the swapped-out page at `addr`, if it is one.
    pub fn swap_slot(&self, addr: u64) -> Option<Slot> {
        self.pmap.query_swap(addr)
    }

    /// The VMA a decision was made for.
    pub(crate) fn vma(&self, addr: u64) -> &Vma {
        self.map
            .find(addr)
            .expect("vm_fault: decision made for a VMA that vanished")
    }

    /// A 2 MiB page for the aligned 2 MiB around `addr` if it lies wholly
    /// in the VMA with nothing mapped in it yet (not even a page table);
    /// otherwise, or when no 2 MiB block is free, a 4 KiB page.
    pub(super) fn huge_fill(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
    ) -> Result<Step, FaultError> {
        let base = addr & !(HUGE_PAGE - 1);
        let vma = self.vma(addr);
        let prot = pte_prot(vma, true);
        let fits = vma.start <= base && base + HUGE_PAGE <= vma.end;
        if fits
            && self.pmap.huge_slot_free(base)
            && let Some(block) = phys.alloc_huge_zeroed()
        {
            // Still empty once the block is ours (step 4 for a 2 MiB page).
            if !self.pmap.huge_slot_free(base) {
                phys.put_block(block);
                return Ok(Step::Again);
            }
            if self.pmap.enter_huge(base, block, prot).is_ok() {
                return Ok(Step::Done(Resolution::HugeZeroFill));
            }
            phys.put_block(block);
        }
        // Fall back to a small page, as the table for anonymous memory says.
        Ok(Step::Enter {
            pfn: phys.alloc_zeroed().ok_or(FaultError::OutOfMemory)?,
            writable: true,
            expect: None,
            done: Resolution::ZeroFill,
        })
    }

    /// An absent page of an object-backed VMA (the pager's table,
    /// `pager.rs`): the object's frame, or for a private write a copy of
    /// it (the file never changes).
    pub(super) fn object_page(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Step, FaultError> {
        let vma = self.vma(addr);
        let (object, offset) = vma
            .object_offset(addr)
            .expect("vm_fault: object page of a VMA without an object");
        let shared = vma.sharing == Sharing::Shared;
        let (pfn, read) = object
            .page_and_reads(offset / PAGE, phys)
            .map_err(|e| match e {
                PageError::PastEof => FaultError::Bus,
                PageError::NoMemory => FaultError::OutOfMemory,
                PageError::Io => FaultError::Bus,
            })?;
        if shared || access != Access::Write {
            // Private pages go in read-only: later stores to the file show through.
            return Ok(Step::Enter {
                pfn,
                writable: shared,
                expect: None,
                done: Resolution::ObjectPage { around: 0, read },
            });
        }
        let copy = cow_copy(phys, pfn);
        phys.put(pfn);
        Ok(Step::Enter {
            pfn: copy.ok_or(FaultError::OutOfMemory)?,
            writable: true,
            expect: None,
            done: Resolution::CopyOnWrite,
        })
    }

    /// A write to the read-only private page `old` maps: copy it, unless
    /// this mapping holds the frame's only reference, in which case it is
    /// just made writable (the zero frame is always copied). A 2 MiB page
    /// that is all this mapping's is made writable whole; one still shared
    /// (after fork) is split in place into 512 small pages, and the next
    /// round copies the one 4 KiB page written (Linux does the same).
    pub(super) fn copy_on_write(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        old: Mapping,
    ) -> Result<Step, FaultError> {
        let page = addr & !(PAGE - 1);
        if old.huge {
            let base = addr & !(HUGE_PAGE - 1);
            if phys.sole_block_owner(old.pfn) {
                let prot = pte_prot(self.vma(addr), true);
                self.pmap
                    .protect_range(base, base + HUGE_PAGE, &mut |_, _| prot);
                return Ok(Step::Done(Resolution::Reuse));
            }
            self.split_huge(phys, base)
                .map_err(|_| FaultError::OutOfMemory)?;
            return Ok(Step::Again);
        }
        // The one PTE of a frame the swap cache keeps clean: out of the
        // cache first (its slot goes), unless a swap PTE still wants the
        // page from there (then it is copied).
        let sole = match phys.refcount(old.pfn) {
            1 => true,
            2 => phys.free_swap(old.pfn) && phys.refcount(old.pfn) == 1,
            _ => false,
        };
        if old.pfn != phys.zero_frame() && sole {
            let prot = pte_prot(self.vma(addr), true);
            self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
            return Ok(Step::Done(Resolution::Reuse));
        }
        Ok(Step::Enter {
            pfn: cow_copy(phys, old.pfn).ok_or(FaultError::OutOfMemory)?,
            writable: true,
            expect: Some(old),
            done: Resolution::CopyOnWrite,
        })
    }

    /// After a read fault on an object page, map its resident neighbours
    /// in an aligned window (Linux's fault-around); none for a write or
    /// under MADV_RANDOM, which says neighbours will not be wanted.
    pub(super) fn fault_around(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> u32 {
        let vma = self.vma(addr);
        if access == Access::Write || vma.advice == Advice::Random {
            return 0;
        }
        let window = FAULT_AROUND_PAGES * PAGE;
        let first = addr & !(window - 1);
        let (from, to) = (first.max(vma.start), (first + window).min(vma.end));
        self.map_resident(phys, from, to)
    }
}

/// The crate's one copy-on-write copy: a new frame with `src`'s contents
/// (a fresh zeroed one for the zero frame).
pub(super) fn cow_copy(phys: &mut dyn PhysMem, src: Pfn) -> Option<Pfn> {
    if src == phys.zero_frame() {
        phys.alloc_zeroed()
    } else {
        phys.copy(src)
    }
}
