//! Keeping pages resident: mlock and munlock.

use super::AddressSpace;
use crate::errno::Errno;
use crate::mmap::{Prot, Sharing};
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::vm_fault::Access;
use crate::vma::{HUGE_PAGE, PAGE, Vma, VmaFlags};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// mlock (lock = true): mark [start, end) locked and fault it all in,
    /// writable private pages with their copy-on-write broken so that they
    /// need no later fault; munlock clears the mark. ENOMEM, and nothing
    /// changed, when a page cannot be had.
    pub fn mlock(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
        lock: bool,
    ) -> Result<(), Errno> {
        self.covered(start, end)?;
        self.map_count_room(start, end, 0, false)?;
        if lock {
            self.lock_range(phys, start, end)
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
        self.map_count_room(start, end, 0, false)?;
        self.map
            .update_range(start, end, |v| v.flags |= VmaFlags::LOCKED);
        Ok(())
    }

    /// mlock's work, all or nothing. Two passes: the absent pages are
    /// faulted in (undone by dropping them again: nothing was there; a
    /// swapped-out page swapped in stays), then
    /// the present read-only pages of writable private VMAs get their
    /// copy-on-write broken (undone by mapping the old frame back, which
    /// someone else still holds). A read-only 2 MiB page is left shared:
    /// breaking it would split it, which cannot be undone cheaply.
    fn lock_range(&mut self, phys: &mut dyn PhysMem, start: u64, end: u64) -> Result<(), Errno> {
        let before: Vec<Vma> = self.map.range(start, end).cloned().collect();
        let (lo, hi) = match (before.first(), before.last()) {
            (Some(first), Some(last)) => (first.start, last.end),
            _ => return Ok(()),
        };
        // Fault-around may map past [start, end): look at the whole VMAs.
        // A swapped-out page counts as there: the undo keeps it (back in
        // RAM, its slot let go), as dropping it would lose its data.
        let mut present = Vec::new();
        self.pmap.visit(lo, hi, &mut |va, _| present.push(va));
        self.pmap.visit_swap(lo, hi, &mut |va, _| present.push(va));
        present.sort_unstable();
        self.map
            .update_range(start, end, |v| v.flags |= VmaFlags::LOCKED);
        let mut broken: Vec<(u64, Mapping)> = Vec::new();
        let mut result = self.populate_absent(phys, start, end);
        if result.is_ok() {
            let mut shared = Vec::new();
            self.pmap.visit(start, end, &mut |va, m| {
                if !m.huge && !m.prot.write {
                    shared.push((va, m));
                }
            });
            for (va, m) in shared {
                let writable_private = self
                    .map
                    .find(va)
                    .is_some_and(|v| v.prot.contains(Prot::WRITE) && v.sharing == Sharing::Private);
                if !writable_private {
                    continue;
                }
                result = self.fault(phys, va, Access::Write).map(|_| ());
                if result.is_err() {
                    break;
                }
                broken.push((va, m));
            }
        }
        if result.is_ok() {
            return Ok(());
        }
        for (va, old) in broken {
            match self.pmap.query(va) {
                Some(now) if now.pfn != old.pfn => {
                    if let Ok(copy) = self.pmap.replace(va, old.pfn, old.prot) {
                        phys.get(old.pfn);
                        phys.put(copy.pfn);
                    }
                }
                _ => self.pmap.protect_range(va, va + PAGE, &mut |_, _| old.prot),
            }
        }
        let mut new = Vec::new();
        self.pmap.visit(lo, hi, &mut |va, m| {
            if present.binary_search(&va).is_err() {
                new.push((va, if m.huge { HUGE_PAGE } else { PAGE }));
            }
        });
        for (va, len) in new {
            self.drop_pages(phys, va, va + len);
        }
        for v in &before {
            let locked = v.flags.contains(VmaFlags::LOCKED);
            let (a, b) = (v.start.max(start), v.end.min(end));
            self.map
                .update_range(a, b, |x| x.flags.set(VmaFlags::LOCKED, locked));
        }
        Err(Errno::ENOMEM)
    }
}
