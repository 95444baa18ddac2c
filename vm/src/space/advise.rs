//! Hints and questions about a range: madvise, msync, mincore.

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::{Madvice, Sharing};
use crate::pmap::{PhysMem, Pmap};
use crate::vm_object::ObjectRef;
use crate::vma::{Advice, Backing, Inherit, PAGE, Vma, VmaFlags};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// madvise. DONTNEED drops the pages of this mapping: private
    /// anonymous memory reads back as zeros, shared memory keeps its data in
    /// its object. FREE lets reclaim drop private anonymous pages
    /// (`lazy_free`). WILLNEED faults pages in, swapped ones included.
    /// PAGEOUT is only checked here (`Reclaim::page_out` does it). The rest
    /// is recorded.
    pub fn madvise(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        advice: crate::mmap::Madvice,
    ) -> Result<(), Errno> {
        use Madvice as M;
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
            self.map_count_room(start, end, 0, false)?;
        }
        match advice {
            M::Free => {
                self.lazy_free(phys, start, end)?;
            }
            M::DontNeed | M::DontNeedLocked => {
                if advice != M::DontNeedLocked
                    && self
                        .map
                        .range(start, end)
                        .any(|v| v.flags.contains(VmaFlags::LOCKED))
                {
                    return Err(Errno::EINVAL);
                }
                self.split_huge_edges(phys, start, end)?;
                self.drop_pages(phys, start, end);
            }
            M::Remove => {
                // In one space: the kernel punches through every space
                // that maps the object (`holes_to_punch`'s callers).
                for (object, first, last) in self.holes_to_punch(start, end)? {
                    self.punch_object(phys, &object, first, last);
                    object.discard(first, last, phys);
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
            M::HugePage => self.map.update_range(start, end, |v| {
                v.flags = (v.flags | VmaFlags::HUGE) - VmaFlags::NOHUGE;
            }),
            // As on Linux, the 2 MiB pages already there stay: the advice
            // is about faults to come.
            M::NoHugePage => self.map.update_range(start, end, |v| {
                v.flags = (v.flags | VmaFlags::NOHUGE) - VmaFlags::HUGE;
            }),
            M::DontDump => self
                .map
                .update_range(start, end, |v| v.flags |= VmaFlags::NOCORE),
            M::DoDump => self
                .map
                .update_range(start, end, |v| v.flags -= VmaFlags::NOCORE),
            // Only the checks: reclaim does the work (`Reclaim::page_out`,
            // a batch of `pageout_batch` at a time), which the kernel's
            // madvise asks for once this returned and let the space go.
            M::PageOut => self.may_page_out(start, end)?,
            // Lab 3 (docs/src/labs.md).
            M::Cold => {}
        }
        Ok(())
    }

    /// MADV_REMOVE's checks and what it punches: for each VMA of [start,
    /// end), its object and the object's pages [first, last) there. Only
    /// shared memory has an object to punch a hole in, and locked pages
    /// stay (EINVAL for either, as Linux's madvise_remove); ENOMEM where
    /// nothing is mapped.
    pub fn holes_to_punch(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(ObjectRef, u64, u64)>, Errno> {
        self.covered(start, end)?;
        if self
            .map
            .range(start, end)
            .any(|v| v.sharing != Sharing::Shared || v.flags.contains(VmaFlags::LOCKED))
        {
            return Err(Errno::EINVAL);
        }
        let mut holes = Vec::new();
        for vma in self.map.range(start, end) {
            let (s, e) = (vma.start.max(start), vma.end.min(end));
            if let (Some((object, first)), Some((_, last))) =
                (vma.object_offset(s), vma.object_offset(e - 1))
            {
                holes.push((object, first / PAGE, last / PAGE + 1));
            }
        }
        Ok(holes)
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
}

pub(super) fn default_inherit(vma: &Vma) -> Inherit {
    match vma.sharing {
        Sharing::Shared => Inherit::Share,
        Sharing::Private => Inherit::Copy,
    }
}
