//! The kernel's access to user memory.

use super::AddressSpace;
use crate::errno::Errno;
use crate::frame::Pfn;
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::vm_fault::Access;
use crate::vma::{HUGE_PAGE, PAGE};

impl<P: Pmap> AddressSpace<P> {
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
}
