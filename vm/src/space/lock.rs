//! Keeping pages resident: mlock and munlock.

use super::AddressSpace;
use crate::errno::Errno;
use crate::pmap::{PhysMem, Pmap};
use crate::vma::VmaFlags;

impl<P: Pmap> AddressSpace<P> {
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
        self.map_count_room(start, end, 0, false)?;
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
        self.map_count_room(start, end, 0, false)?;
        self.map
            .update_range(start, end, |v| v.flags |= VmaFlags::LOCKED);
        Ok(())
    }
}
