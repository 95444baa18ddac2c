//! An address space: the VMA tree (what should be mapped) over a `Pmap`
//! (what is mapped now). Every memory syscall and the fault handler are
//! operations on it, written once here and run both in the kernel and in
//! host tests against `fake::FakePmap`.
//!
//! Invariants kept by every operation:
//! - every present PTE lies inside a VMA and grants no more than the VMA's
//!   protection (copy-on-write pages are mapped read-only);
//! - the commit charge is the sum of `Vma::charge` over the tree;
//! - an operation that fails leaves the space as it was.

use crate::errno::Errno;
use crate::frame::Pfn;
use crate::mmap::{Placement, Prot, Sharing};
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::vm_fault::{self, Access, Decision, FaultError, Resolution, SegvCode, pte_prot};
use crate::vm_map::VmaTree;
use crate::vma::{Advice, Backing, HUGE_PAGE, Inherit, PAGE, Vma, VmaFlags};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

/// mmap_min_addr: nothing is ever mapped below 64 KiB, so NULL-pointer
/// dereferences (even with an offset) always fault.
pub const USER_START: u64 = 0x1_0000;
/// The end of the user half, Linux's TASK_SIZE.
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// MAP_32BIT places mappings in the first 2 GiB, above 1 GiB as Linux does.
const LOW_2G: (u64, u64) = (0x4000_0000, 0x8000_0000);
/// Linux's default vm.max_map_count.
pub const MAX_MAP_COUNT: usize = 65_530;
/// The limit in force: `sysctl.vm.max_map_count=N` on the kernel command
/// line changes it, as on Linux (the benchmark needs 100 000 VMAs).
static MAP_COUNT_LIMIT: AtomicUsize = AtomicUsize::new(MAX_MAP_COUNT);

/// Set vm.max_map_count for every address space.
pub fn set_max_map_count(limit: usize) {
    MAP_COUNT_LIMIT.store(limit, Ordering::Relaxed);
}

/// vm.max_map_count in force (/proc/sys/vm/max_map_count).
pub fn max_map_count() -> usize {
    MAP_COUNT_LIMIT.load(Ordering::Relaxed)
}

pub struct AddressSpace<P: Pmap> {
    pub pmap: P,
    // pub(crate): fork.rs copies the tree and the layout into a child;
    // pager.rs reads the tree.
    pub(crate) map: VmaTree<Vma>,
    /// Top-down placement starts below this (below the stack, randomised by ASLR).
    pub(crate) mmap_top: u64,
    pub(crate) brk_start: u64,
    pub(crate) brk: u64,
}

impl<P: Pmap> AddressSpace<P> {
    /// An empty space whose mmap placement starts below `mmap_top`.
    pub fn new(pmap: P, mmap_top: u64) -> Self {
        AddressSpace {
            pmap,
            map: VmaTree::new(),
            mmap_top,
            brk_start: 0,
            brk: 0,
        }
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.map.iter()
    }

    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map.find(addr)
    }

    pub fn vma_count(&self) -> usize {
        self.map.len()
    }

    /// Pages this space charges to the commit limit.
    pub fn charged_pages(&self) -> u64 {
        self.map.iter().map(Vma::charge).sum()
    }

    /// Check the VMA tree's invariants (debug builds call it after changes).
    pub fn verify(&self) {
        self.map.verify();
    }

    // ---- placement ----------------------------------------------------

    /// Where a new mapping of `len` bytes goes, as `placement` asks.
    fn place(
        &self,
        placement: &Placement,
        len: u64,
        align: u64,
        below_2g: bool,
    ) -> Result<u64, Errno> {
        let (lo, hi) = if below_2g {
            LOW_2G
        } else {
            (USER_START, self.mmap_top)
        };
        let free = |addr: u64| {
            addr.is_multiple_of(align)
                && addr >= lo
                && addr
                    .checked_add(len)
                    .is_some_and(|end| end <= hi || !below_2g)
                && addr >= USER_START
                && addr.checked_add(len).is_some_and(|end| {
                    end <= USER_END && self.map.range(addr, end).next().is_none()
                })
        };
        match *placement {
            Placement::Fixed { addr, .. } => Ok(addr),
            Placement::TryFixed { addr } | Placement::Anywhere { hint: addr }
                if addr != 0 && free(addr) =>
            {
                Ok(addr)
            }
            _ => self
                .map
                .find_free_top_down(lo, hi, len, align)
                .ok_or(Errno::ENOMEM),
        }
    }

    // ---- mapping --------------------------------------------------------

    /// Map `template` (its range is ignored) as `placement` says, `len`
    /// bytes aligned to `align`; returns the address. A fixed mapping
    /// replaces what it overlaps (unless the placement forbids it), and
    /// nothing changes if the mapping fails.
    pub fn map(
        &mut self,
        phys: &mut dyn PhysMem,
        placement: &Placement,
        len: u64,
        align: u64,
        below_2g: bool,
        template: Vma,
    ) -> Result<u64, Errno> {
        let start = self.place(placement, len, align, below_2g)?;
        let end = start + len;
        if let Placement::Fixed { on_conflict, .. } = placement
            && self.map.range(start, end).next().is_some()
            && let Some(errno) = on_conflict.refusal()
        {
            return Err(errno);
        }
        if self.map.len() + 2 >= max_map_count() {
            return Err(Errno::ENOMEM);
        }
        // A 2 MiB page straddling an edge becomes small pages first (the
        // contents stay the same, so doing it before a failure is harmless).
        self.split_huge_at(phys, start)?;
        self.split_huge_at(phys, end)?;
        let vmas = if template.flags.contains(VmaFlags::GROWSDOWN) {
            stack_vmas(start, end, template)
        } else {
            alloc::vec![Vma {
                start,
                end,
                ..template
            }]
        };
        let charge: u64 = vmas.iter().map(Vma::charge).sum();
        let released: u64 = self
            .map
            .range(start, end)
            .map(|v| overlap_charge(v, start, end))
            .sum();
        if charge > released && !phys.charge(charge - released) {
            return Err(Errno::ENOMEM);
        }
        // From here nothing can fail: the old range goes, the new one comes.
        self.unmap_range(phys, start, end, false);
        if charge < released {
            phys.uncharge(released - charge);
        }
        for vma in vmas {
            let inserted = self.map.insert(vma);
            debug_assert!(inserted.is_ok(), "space::map: range not free after unmap");
        }
        Ok(start)
    }

    /// mmap: map `template` as the checked request says, then make it
    /// resident if asked (MAP_PREFAULT_READ maps the object's resident pages). MAP_LOCKED promises residency (ENOMEM, nothing
    /// left mapped, if it cannot be kept); MAP_POPULATE is best effort (Linux).
    pub fn mmap(
        &mut self,
        phys: &mut dyn PhysMem,
        req: &crate::mmap::MmapRequest,
        template: Vma,
    ) -> Result<u64, Errno> {
        let start = self.map(
            phys,
            &req.placement,
            req.len,
            req.align,
            req.below_2g,
            template,
        )?;
        if req.prefault_read {
            self.prefault(phys, start, start + req.len);
        }
        if req.populate {
            let populated = self.populate(phys, start, start + req.len);
            if populated.is_err() && req.vma_flags.contains(VmaFlags::LOCKED) {
                self.munmap(phys, start, start + req.len)?;
                return Err(Errno::ENOMEM);
            }
        }
        Ok(start)
    }

    /// Fault in every page of [start, end) now (MAP_POPULATE, MAP_LOCKED,
    /// mlock, MADV_WILLNEED): writable private pages with write faults, so
    /// they need no copy-on-write later. Stops at the first failure.
    pub fn populate(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<(), FaultError> {
        let mut addr = start;
        while addr < end {
            let Some(vma) = self.map.find(addr) else {
                break;
            };
            let access = if vma.prot.contains(Prot::WRITE) {
                Access::Write
            } else {
                Access::Read
            };
            // A file page wholly past the end has nothing to fault in.
            let past_eof = vma
                .object_offset(addr)
                .is_some_and(|(object, offset)| offset >= object.size());
            let fillable = matches!(vma.backing, Backing::Anonymous | Backing::Object { .. })
                && !vma.prot.is_empty()
                && !past_eof;
            if fillable {
                let present = self.pmap.query(addr);
                if present.is_none()
                    || (access == Access::Write && !present.is_some_and(|m| m.prot.write))
                {
                    self.fault(phys, addr, access)?;
                }
            }
            // Page by page: a present 2 MiB page answers the queries inside it.
            addr = (addr & !(PAGE - 1)) + PAGE;
        }
        Ok(())
    }

    /// munmap: remove [start, end) from the tree and the page tables.
    /// Unmapping a range with nothing in it succeeds (Linux).
    pub fn munmap(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> Result<(), Errno> {
        if self.map.range(start, end).next().is_none() {
            return Ok(());
        }
        // Splitting a VMA in two needs one more slot in the map.
        if self.map.len() + 1 >= max_map_count()
            && self
                .map
                .range(start, end)
                .all(|v| v.start < start && v.end > end)
        {
            return Err(Errno::ENOMEM);
        }
        self.split_huge_at(phys, start)?;
        self.split_huge_at(phys, end)?;
        self.unmap_range(phys, start, end, true);
        Ok(())
    }

    /// Remove [start, end) from tree and page tables, giving back frames,
    /// objects and (if `uncharge`) the commit charge.
    fn unmap_range(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64, uncharge: bool) {
        let removed = self.map.remove_range(start, end);
        if removed.is_empty() {
            return;
        }
        self.pmap
            .unmap_range(start, end, &mut |_, m| phys.put(m.pfn));
        for vma in removed {
            if uncharge {
                phys.uncharge(vma.charge());
            }
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
        }
    }

    /// mprotect: every page of [start, end) must be mapped (ENOMEM), and
    /// the new protection within each VMA's max_prot (EACCES).
    pub fn mprotect(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        // One pass: holes (ENOMEM), rights beyond max_prot (EACCES), and
        // the commit charge before and after.
        let (mut at, mut old, mut new) = (start, 0, 0);
        for v in self.map.range(start, end) {
            if v.start > at {
                return Err(Errno::ENOMEM);
            }
            if !v.max_prot.contains(prot) || matches!(v.backing, Backing::Guard) {
                return Err(Errno::EACCES);
            }
            at = v.end;
            let pages = (v.end.min(end) - v.start.max(start)) / PAGE;
            old += if v.is_charged() { pages } else { 0 };
            new += if v.is_charged_with(prot) { pages } else { 0 };
        }
        if at < end {
            return Err(Errno::ENOMEM);
        }
        self.split_room(start, end)?;
        self.split_huge_at(phys, start)?;
        self.split_huge_at(phys, end)?;
        if new > old && !phys.charge(new - old) {
            return Err(Errno::ENOMEM);
        }
        if new < old {
            phys.uncharge(old - new);
        }
        self.map.update_range(start, end, |v| v.prot = prot);
        let map = &self.map;
        // Private pages stay read-only when their frame may be shared
        // (zero frame, copy-on-write): the next write fault sorts them out.
        self.pmap.protect_range(start, end, &mut |va, m| {
            let vma = map.find(va).expect("space::mprotect: PTE outside any VMA");
            let exclusive =
                vma.sharing == Sharing::Shared || (m.prot.write && m.pfn != phys.zero_frame());
            pte_prot(vma, exclusive)
        });
        Ok(())
    }

    /// ENOMEM when changing [start, end) would split VMAs past
    /// vm.max_map_count: one more VMA for each edge that falls inside one
    /// (Linux's split_vma refuses the same way).
    fn split_room(&self, start: u64, end: u64) -> Result<(), Errno> {
        if self.map.len() + 2 <= max_map_count() {
            return Ok(()); // room for both splits: no need to look
        }
        let straddles = |at: u64| self.map.find(at).is_some_and(|v| v.start < at);
        let extra = usize::from(straddles(start)) + usize::from(straddles(end));
        if self.map.len() + extra > max_map_count() {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// ENOMEM unless every page of [start, end) lies in some VMA (mprotect,
    /// madvise, mincore, msync and mlock refuse holes, as Linux does).
    pub fn covered(&self, start: u64, end: u64) -> Result<(), Errno> {
        let mut at = start;
        for vma in self.map.range(start, end) {
            if vma.start > at {
                return Err(Errno::ENOMEM);
            }
            at = vma.end;
        }
        if at < end { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// madvise. DONTNEED and FREE drop the pages of this mapping: private
    /// anonymous memory reads back as zeros, shared memory keeps its data in
    /// its object. WILLNEED faults pages in. The rest is recorded.
    pub fn madvise(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        advice: crate::mmap::Madvice,
    ) -> Result<(), Errno> {
        use crate::mmap::Madvice as M;
        self.covered(start, end)?;
        let records = !matches!(
            advice,
            M::DontNeed
                | M::Free
                | M::DontNeedLocked
                | M::Remove
                | M::WillNeed
                | M::PopulateRead
                | M::PopulateWrite
                | M::Cold
                | M::PageOut
        );
        if records {
            self.split_room(start, end)?;
        }
        match advice {
            M::DontNeed | M::Free | M::DontNeedLocked => {
                if advice != M::DontNeedLocked
                    && self
                        .map
                        .range(start, end)
                        .any(|v| v.flags.contains(VmaFlags::LOCKED))
                {
                    return Err(Errno::EINVAL);
                }
                self.split_huge_at(phys, start)?;
                self.split_huge_at(phys, end)?;
                self.pmap
                    .unmap_range(start, end, &mut |_, m| phys.put(m.pfn));
            }
            M::Remove => {
                // Punch a hole in shared memory: only objects have one to punch.
                if self
                    .map
                    .range(start, end)
                    .any(|v| v.sharing != Sharing::Shared)
                {
                    return Err(Errno::EINVAL);
                }
                self.pmap
                    .unmap_range(start, end, &mut |_, m| phys.put(m.pfn));
                for vma in self.map.range(start, end) {
                    let (s, e) = (vma.start.max(start), vma.end.min(end));
                    if let (Some((object, first)), Some((_, last))) =
                        (vma.object_offset(s), vma.object_offset(e - 1))
                    {
                        object.discard(first / PAGE, last / PAGE + 1, phys);
                    }
                }
            }
            M::WillNeed | M::PopulateRead | M::PopulateWrite => {
                // A hint: running out of memory here is not an error.
                let _ = self.populate(phys, start, end);
            }
            M::Normal => self
                .map
                .update_range(start, end, |v| v.advice = Advice::Normal),
            M::Random => self
                .map
                .update_range(start, end, |v| v.advice = Advice::Random),
            M::Sequential => self
                .map
                .update_range(start, end, |v| v.advice = Advice::Sequential),
            M::DontFork => self
                .map
                .update_range(start, end, |v| v.inherit = Inherit::None),
            M::DoFork | M::KeepOnFork => self
                .map
                .update_range(start, end, |v| v.inherit = default_inherit(v)),
            M::WipeOnFork => {
                if self
                    .map
                    .range(start, end)
                    .any(|v| !matches!(v.backing, Backing::Anonymous))
                {
                    return Err(Errno::EINVAL);
                }
                self.map
                    .update_range(start, end, |v| v.inherit = Inherit::Zero);
            }
            M::HugePage => self
                .map
                .update_range(start, end, |v| v.flags |= VmaFlags::HUGE),
            M::NoHugePage => self
                .map
                .update_range(start, end, |v| v.flags -= VmaFlags::HUGE),
            M::DontDump => self
                .map
                .update_range(start, end, |v| v.flags |= VmaFlags::NOCORE),
            M::DoDump => self
                .map
                .update_range(start, end, |v| v.flags -= VmaFlags::NOCORE),
            // Nothing is ever paged out here: these hints have nothing to act on.
            M::Cold | M::PageOut => {}
        }
        Ok(())
    }

    /// msync: the range must be mapped (ENOMEM); MS_INVALIDATE of locked
    /// pages is EBUSY (Linux). Anonymous memory has nothing to write back;
    /// the ramfs keeps file pages coherent with mappings at all times.
    pub fn msync(&self, start: u64, end: u64, invalidate: bool) -> Result<(), Errno> {
        self.covered(start, end)?;
        if invalidate
            && self
                .map
                .range(start, end)
                .any(|v| v.flags.contains(VmaFlags::LOCKED))
        {
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// minherit (FreeBSD): what fork does with [start, end).
    pub fn minherit(&mut self, start: u64, end: u64, inherit: Inherit) -> Result<(), Errno> {
        self.covered(start, end).map_err(|_| Errno::EINVAL)?;
        self.split_room(start, end)?;
        self.map.update_range(start, end, |v| v.inherit = inherit);
        Ok(())
    }

    /// mincore: one byte per page, bit 0 set when the page is resident.
    pub fn mincore(&self, start: u64, end: u64, out: &mut [u8]) -> Result<(), Errno> {
        self.covered(start, end)?;
        for (i, byte) in out.iter_mut().enumerate() {
            let addr = start + i as u64 * PAGE;
            if addr >= end {
                break;
            }
            let in_object = self
                .map
                .find(addr)
                .and_then(|v| v.object_offset(addr))
                .is_some_and(|(object, offset)| object.is_resident(offset / PAGE));
            *byte = u8::from(self.pmap.query(addr).is_some() || in_object);
        }
        Ok(())
    }

    /// mlock (lock = true): mark [start, end) locked and fault it all in;
    /// munlock clears the mark.
    pub fn mlock(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        lock: bool,
    ) -> Result<(), Errno> {
        self.covered(start, end)?;
        self.split_room(start, end)?;
        if lock {
            self.map
                .update_range(start, end, |v| v.flags |= VmaFlags::LOCKED);
            self.populate(phys, start, end).map_err(|_| Errno::ENOMEM)
        } else {
            self.map
                .update_range(start, end, |v| v.flags -= VmaFlags::LOCKED);
            Ok(())
        }
    }

    /// mlock2(MLOCK_ONFAULT), mlockall(MCL_ONFAULT): mark [start, end)
    /// locked without faulting it in (its pages are kept as they fault).
    pub fn mlock_on_fault(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.covered(start, end)?;
        self.split_room(start, end)?;
        self.map
            .update_range(start, end, |v| v.flags |= VmaFlags::LOCKED);
        Ok(())
    }

    // ---- brk ------------------------------------------------------------

    /// Where the heap starts and where the break is now (RLIMIT_DATA, /proc).
    pub fn brk_range(&self) -> (u64, u64) {
        (self.brk_start, self.brk)
    }

    /// Set where the heap starts (exec: just past the program's data).
    pub fn set_brk_start(&mut self, addr: u64) {
        self.brk_start = addr;
        self.brk = addr;
    }

    /// brk(2) as Linux: move the program break to `new` if possible and
    /// return the break in force afterwards (the old one on failure).
    pub fn brk(&mut self, phys: &mut dyn PhysMem, new: u64) -> u64 {
        if new < self.brk_start || new > USER_END {
            return self.brk;
        }
        let old_top = self.brk.next_multiple_of(PAGE);
        let new_top = new.next_multiple_of(PAGE);
        if new_top > old_top {
            if self.map.range(old_top, new_top).next().is_some() {
                return self.brk;
            }
            let mut heap = Vma::anonymous(old_top, new_top, Prot::READ | Prot::WRITE);
            heap.flags |= VmaFlags::HEAP;
            let placement = Placement::Fixed {
                addr: old_top,
                on_conflict: crate::mmap::OnConflict::FailEexist,
            };
            if self
                .map(phys, &placement, new_top - old_top, PAGE, false, heap)
                .is_err()
            {
                return self.brk;
            }
        } else if new_top < old_top {
            if self.split_huge_at(phys, new_top).is_err() {
                return self.brk;
            }
            self.unmap_range(phys, new_top, old_top, true);
        }
        self.brk = new;
        new
    }

    // ---- faults -----------------------------------------------------------

    /// Resolve a fault at `addr` as `vm_fault::decide` says; on success the
    /// access can be retried. Also how the kernel faults pages in for its
    /// own copies into user memory.
    pub fn fault(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Resolution, FaultError> {
        let page = addr & !(PAGE - 1);
        let pte = self.pmap.query(addr);
        let decision = vm_fault::decide(self.map.find(addr), addr, access, pte);
        let oom = FaultError::OutOfMemory;
        match decision {
            Decision::Fail(error) => Err(error),
            Decision::GrowStack => {
                self.grow_stack(phys, addr)?;
                self.fault(phys, addr, access)
                    .map(|_| Resolution::StackGrowth)
            }
            Decision::ZeroPage => {
                let vma = self.vma(addr);
                let zero = phys.zero_frame();
                phys.get(zero);
                let prot = pte_prot(vma, false);
                self.enter(phys, page, zero, prot)?;
                Ok(Resolution::ZeroPage)
            }
            Decision::ZeroFill => {
                let prot = pte_prot(self.vma(addr), true);
                let pfn = phys.alloc_zeroed().ok_or(oom)?;
                self.enter(phys, page, pfn, prot)?;
                Ok(Resolution::ZeroFill)
            }
            Decision::HugeZeroFill => self.huge_zero_fill(phys, addr, access),
            Decision::ObjectPage => self.object_fault(phys, addr, access),
            Decision::CopyOnWrite => {
                self.copy_on_write(phys, addr, pte.expect("cow without a PTE"))
            }
            Decision::MakeWritable => {
                let prot = pte_prot(self.vma(addr), true);
                self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
                Ok(Resolution::MakeWritable)
            }
            Decision::Spurious => Ok(Resolution::Spurious),
        }
    }

    pub(crate) fn vma(&self, addr: u64) -> &Vma {
        self.map
            .find(addr)
            .expect("space: decision made for a VMA that vanished")
    }

    /// Enter a page, giving the frame back if there is no memory for a page table.
    pub(crate) fn enter(
        &mut self,
        phys: &mut dyn PhysMem,
        page: u64,
        pfn: Pfn,
        prot: crate::pmap::PteProt,
    ) -> Result<(), FaultError> {
        self.pmap.enter(page, pfn, prot).map_err(|_| {
            phys.put(pfn);
            FaultError::OutOfMemory
        })
    }

    /// A write to a read-only private page: copy it, unless this mapping
    /// holds the frame's only reference, in which case it is just made
    /// writable (the zero frame is always copied).
    fn copy_on_write(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        old: Mapping,
    ) -> Result<Resolution, FaultError> {
        let page = addr & !(PAGE - 1);
        if old.huge {
            self.split_huge_at(phys, addr & !(HUGE_PAGE - 1))
                .map_err(|_| FaultError::OutOfMemory)?;
            self.demote(phys, addr & !(HUGE_PAGE - 1))
                .map_err(|_| FaultError::OutOfMemory)?;
            return self.fault(phys, addr, Access::Write);
        }
        let prot = pte_prot(self.vma(addr), true);
        if old.pfn != phys.zero_frame() && phys.refcount(old.pfn) == 1 {
            self.pmap.protect_range(page, page + PAGE, &mut |_, _| prot);
            return Ok(Resolution::Reuse);
        }
        let new = if old.pfn == phys.zero_frame() {
            phys.alloc_zeroed()
        } else {
            phys.copy(old.pfn)
        };
        let new = new.ok_or(FaultError::OutOfMemory)?;
        let replaced = self.pmap.replace(page, new, prot);
        phys.put(replaced.pfn);
        Ok(Resolution::CopyOnWrite)
    }

    /// A fault in a stack gap: move the stack VMA's bottom down to the
    /// faulting page, charging the new pages.
    fn grow_stack(&mut self, phys: &mut dyn PhysMem, addr: u64) -> Result<(), FaultError> {
        let segv = FaultError::Segv(SegvCode::MapErr);
        let gap = self.vma(addr).clone();
        let stack = self
            .map
            .find(gap.end)
            .filter(|s| s.flags.contains(VmaFlags::GROWSDOWN))
            .ok_or(segv)?
            .clone();
        let new_start = addr & !(PAGE - 1);
        let grown = Vma {
            start: new_start,
            end: gap.end,
            ..stack
        };
        if !phys.charge(grown.charge()) {
            return Err(segv);
        }
        self.map.remove_range(new_start, gap.end);
        let inserted = self.map.insert(grown);
        debug_assert!(inserted.is_ok(), "space::grow_stack: gap not free");
        Ok(())
    }

    /// A 2 MiB page for the aligned 2 MiB around `addr` if it lies wholly in
    /// the VMA with nothing mapped in it yet; otherwise a 4 KiB page.
    fn huge_zero_fill(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        access: Access,
    ) -> Result<Resolution, FaultError> {
        let base = addr & !(HUGE_PAGE - 1);
        let vma = self.vma(addr);
        let prot = pte_prot(vma, true);
        let fits = vma.start <= base && base + HUGE_PAGE <= vma.end;
        let empty =
            fits && (0..HUGE_PAGE / PAGE).all(|i| self.pmap.query(base + i * PAGE).is_none());
        if empty && let Some(block) = phys.alloc_huge_zeroed() {
            if self.pmap.enter_huge(base, block, prot).is_ok() {
                return Ok(Resolution::HugeZeroFill);
            }
            phys.put(block);
        }
        // Fall back to a small page, as the table for anonymous memory says.
        let pfn = phys.alloc_zeroed().ok_or(FaultError::OutOfMemory)?;
        let _ = access;
        self.enter(phys, addr & !(PAGE - 1), pfn, prot)?;
        Ok(Resolution::ZeroFill)
    }

    /// If a 2 MiB page straddles `addr`, replace it by 512 small pages
    /// holding the same data, so a range operation can stop at `addr`.
    fn split_huge_at(&mut self, phys: &mut dyn PhysMem, addr: u64) -> Result<(), Errno> {
        let base = addr & !(HUGE_PAGE - 1);
        if base == addr && self.pmap.query(addr).is_none_or(|m| !m.huge) {
            return Ok(());
        }
        match self.pmap.query(addr) {
            Some(m) if m.huge && base != addr => self.demote(phys, base),
            _ => Ok(()),
        }
    }

    /// Copy the huge page at `base` into 512 small frames (demotion by copy:
    /// the buddy block's head alone carries the reference count).
    fn demote(&mut self, phys: &mut dyn PhysMem, base: u64) -> Result<(), Errno> {
        let Some(huge) = self.pmap.query(base).filter(|m| m.huge) else {
            return Ok(());
        };
        let mut frames = Vec::with_capacity((HUGE_PAGE / PAGE) as usize);
        for i in 0..HUGE_PAGE / PAGE {
            let Some(frame) = phys.alloc_zeroed() else {
                frames.into_iter().for_each(|f| phys.put(f));
                return Err(Errno::ENOMEM);
            };
            phys.copy_into(Pfn(huge.pfn.0 + i), frame);
            frames.push(frame);
        }
        self.pmap
            .unmap_range(base, base + HUGE_PAGE, &mut |_, m| phys.put(m.pfn));
        for (i, frame) in frames.into_iter().enumerate() {
            let entered = self.pmap.enter(base + i as u64 * PAGE, frame, huge.prot);
            if entered.is_err() {
                phys.put(frame);
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    // ---- user memory ------------------------------------------------------

    /// The frame behind the 4 KiB user page at `addr`, faulting it in as a
    /// user access would: how the kernel reads and writes user memory.
    pub fn user_frame(
        &mut self,
        phys: &mut dyn PhysMem,
        addr: u64,
        write: bool,
    ) -> Result<Pfn, Errno> {
        let access = if write { Access::Write } else { Access::Read };
        let usable = |m: &Mapping| m.prot.user && (!write || m.prot.write);
        let mapping = match self.pmap.query(addr).filter(usable) {
            Some(m) => m,
            None => {
                self.fault(phys, addr, access).map_err(|_| Errno::EFAULT)?;
                self.pmap.query(addr).filter(usable).ok_or(Errno::EFAULT)?
            }
        };
        let within = if mapping.huge {
            (addr & (HUGE_PAGE - 1)) / PAGE
        } else {
            0
        };
        Ok(Pfn(mapping.pfn.0 + within))
    }

    /// Tear everything down (exit, execve): every frame, object and charge.
    /// Allocates nothing: exit may come right after memory ran out.
    pub fn clear(&mut self, phys: &mut dyn PhysMem) {
        self.pmap
            .unmap_range(0, USER_END, &mut |_, m| phys.put(m.pfn));
        while let Some(vma) = self.map.pop_first() {
            phys.uncharge(vma.charge());
            if let Backing::Object { object, .. } = vma.backing {
                object.release(phys);
            }
        }
        self.brk_start = 0;
        self.brk = 0;
    }
}

/// The charge of the part of `vma` inside [start, end).
fn overlap_charge(vma: &Vma, start: u64, end: u64) -> u64 {
    let (s, e) = (vma.start.max(start), vma.end.min(end));
    if vma.is_charged() && s < e {
        (e - s) / PAGE
    } else {
        0
    }
}

fn default_inherit(vma: &Vma) -> Inherit {
    match vma.sharing {
        Sharing::Shared => Inherit::Share,
        Sharing::Private => Inherit::Copy,
    }
}

/// A growing stack over [start, end): the top page mapped as the stack
/// itself, the rest a gap it grows into (FreeBSD's MAP_STACK layout).
fn stack_vmas(start: u64, end: u64, template: Vma) -> Vec<Vma> {
    let top = Vma {
        start: end - PAGE,
        end,
        ..template.clone()
    };
    if end - start == PAGE {
        return alloc::vec![top];
    }
    let gap = Vma {
        start,
        end: end - PAGE,
        prot: Prot::empty(),
        backing: Backing::StackGap,
        flags: template.flags - VmaFlags::GROWSDOWN,
        ..template
    };
    alloc::vec![gap, top]
}
