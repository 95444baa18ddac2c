//! The program break: the heap's VMA grows and shrinks with brk(2).

use super::{AddressSpace, USER_END};
use crate::mmap::{OnConflict, Placement, Prot};
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{PAGE, Vma, VmaFlags};

impl<P: Pmap> AddressSpace<P> {
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
                on_conflict: OnConflict::FailEexist,
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
}
