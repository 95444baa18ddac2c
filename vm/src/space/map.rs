//! Placing and making mappings: mmap, and faulting a range in (MAP_POPULATE).

use super::stack::stack_vmas;
use super::{AddressSpace, USER_END, USER_START};
use crate::errno::Errno;
use crate::mmap::{MmapRequest, OnConflict, Placement, Prot};
use crate::pmap::{PhysMem, Pmap};
use crate::vm_fault::{Access, FaultError};
use crate::vma::{Backing, PAGE, STACK_GUARD_PAGES, Vma, VmaFlags};

/// MAP_32BIT places mappings in the first 2 GiB, above 1 GiB as Linux does.
const LOW_2G: (u64, u64) = (0x4000_0000, 0x8000_0000);

impl<P: Pmap> AddressSpace<P> {
    /// Where a new mapping of `len` bytes goes, as `placement` asks, with
    /// `guard` free bytes below it unless the placement is fixed (a growing
    /// stack's guard: the kernel puts nothing else there, MAP_FIXED may).
    pub(super) fn place(
        &self,
        placement: &Placement,
        len: u64,
        align: u64,
        below_2g: bool,
        guard: u64,
    ) -> Result<u64, Errno> {
        self.place_phased(placement, len, align, 0, below_2g, guard)
    }

    /// `place`, the start `phase` bytes past an `align` boundary (a file
    /// placed so that its object's 2 MiB runs fall on aligned 2 MiB).
    fn place_phased(
        &self,
        placement: &Placement,
        len: u64,
        align: u64,
        phase: u64,
        below_2g: bool,
        guard: u64,
    ) -> Result<u64, Errno> {
        let (lo, hi) = if below_2g {
            LOW_2G
        } else {
            (USER_START, self.mmap_top)
        };
        let free = |addr: u64| {
            addr % align == phase
                && addr.checked_sub(guard).is_some_and(|low| low >= lo)
                && addr
                    .checked_add(len)
                    .is_some_and(|end| end <= hi || !below_2g)
                && addr.checked_add(len).is_some_and(|end| {
                    end <= USER_END && self.map.range(addr - guard, end).next().is_none()
                })
        };
        match *placement {
            Placement::Fixed { addr, .. } => Ok(addr),
            Placement::TryFixed { addr } | Placement::Anywhere { hint: addr }
                if addr != 0 && free(addr) =>
            {
                Ok(addr)
            }
            // Room for an aligned start above the guard: the guard itself
            // when the alignment is a page's, one alignment's worth otherwise.
            _ => {
                let room = if align > PAGE { align } else { guard };
                let low = self
                    .map
                    .find_free_top_down(lo, hi, len.checked_add(room).ok_or(Errno::ENOMEM)?, align)
                    .ok_or(Errno::ENOMEM)?;
                // `low` is aligned, so with a phase (under one alignment,
                // never with a guard) the start still lies in the room.
                Ok((low + guard).next_multiple_of(align) + phase)
            }
        }
    }

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
        let stack = template.flags.contains(VmaFlags::GROWSDOWN);
        let guard = if stack { STACK_GUARD_PAGES * PAGE } else { 0 };
        let start = self.place(placement, len, align, below_2g, guard)?;
        let end = start + len;
        if let Placement::Fixed { on_conflict, .. } = placement
            && self.map.range(start, end).next().is_some()
            && let Some(errno) = on_conflict.refusal()
        {
            return Err(errno);
        }
        let vmas = if stack {
            // A fixed stack gets its guard only where nothing else is.
            let guard_start = start
                .checked_sub(guard)
                .filter(|&g| g >= USER_START && self.map.range(g, start).next().is_none())
                .unwrap_or(start);
            stack_vmas(guard_start, start, end, template)
        } else {
            alloc::vec![Vma {
                start,
                end,
                ..template
            }]
        };
        self.map_count_room(start, end, vmas.len(), true)?;
        let start_of_all = vmas[0].start;
        // A 2 MiB page straddling an edge becomes small pages first (the
        // contents stay the same, so doing it before a failure is harmless).
        self.split_huge_edges(phys, start, end)?;
        let charge: u64 = vmas.iter().map(Vma::charge).sum();
        let released: u64 = self
            .map
            .range(start, end)
            .map(|v| overlap_charge(v, start, end))
            .sum();
        for vma in &vmas {
            if let Backing::Object { object, .. } = &vma.backing {
                object.note_mapper(self.pmap.id())?; // a later failure leaves it stale: harmless
            }
        }
        if charge > released && !phys.charge(charge - released) {
            return Err(Errno::ENOMEM);
        }
        // From here nothing can fail: the old range goes, the new one comes.
        self.unmap_range(phys, start, end, false);
        if charge < released {
            phys.uncharge(released - charge);
        }
        debug_assert!(
            self.map.range(start_of_all, start).next().is_none(),
            "space::map: a stack guard over a mapping"
        );
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
        req: &MmapRequest,
        template: Vma,
    ) -> Result<u64, Errno> {
        // A phased start is found first and then mapped there.
        let placement = match req.placement {
            Placement::Fixed { .. } => req.placement,
            _ if req.phase != 0 => Placement::Fixed {
                addr: self.place_phased(
                    &req.placement,
                    req.len,
                    req.align,
                    req.phase,
                    req.below_2g,
                    0,
                )?,
                on_conflict: OnConflict::FailEexist,
            },
            _ => req.placement,
        };
        let start = self.map(phys, &placement, req.len, req.align, req.below_2g, template)?;
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
        self.populate_pages(phys, start, end, true)
    }

    /// `populate` for the absent pages only: a present page (copy-on-write
    /// shared, say) is left as it is.
    pub(super) fn populate_absent(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<(), FaultError> {
        self.populate_pages(phys, start, end, false)
    }

    fn populate_pages(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        break_cow: bool,
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
                    || (break_cow
                        && access == Access::Write
                        && !present.is_some_and(|m| m.prot.write))
                {
                    self.fault(phys, addr, access)?;
                }
            }
            // Page by page: a present 2 MiB page answers the queries inside it.
            addr = (addr & !(PAGE - 1)) + PAGE;
        }
        Ok(())
    }
}

/// The charge of the part of `vma` inside [start, end).
pub(super) fn overlap_charge(vma: &Vma, start: u64, end: u64) -> u64 {
    let (s, e) = (vma.start.max(start), vma.end.min(end));
    if vma.is_charged() && s < e {
        (e - s) / PAGE
    } else {
        0
    }
}
