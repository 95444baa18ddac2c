//! mremap: a mapping resized in place, or its pages moved elsewhere by
//! moving their page-table entries (Linux's mm/mremap.c: `vma_to_resize`,
//! `vma_expandable`, `move_vma`, `mremap_to`).
//!
//! Moving never copies a frame: `Pmap::move_range` carries the entries
//! (2 MiB ones as they are when the new place keeps their alignment: a
//! MREMAP_FIXED target that does; placing a moved range so is lab 5), so a realloc of 100 MiB costs a few walks of the
//! page tables. Only growth is a new commit charge (and, for
//! MREMAP_DONTUNMAP, the new mapping beside the old); everything that can
//! fail is checked or charged before anything changes, so a failure leaves
//! the space as it was, with one exception Linux shares: MREMAP_FIXED
//! unmaps the target first, and a page table that cannot then be had for
//! the move leaves it unmapped (ENOMEM).

use super::map::overlap_charge;
use super::{AddressSpace, USER_END, max_map_count};
use crate::errno::Errno;
use crate::mmap::{Placement, RemapRequest};
use crate::pmap::{PhysMem, Pmap};
use crate::vma::{Backing, HUGE_PAGE, PAGE, Vma, VmaFlags};
use alloc::vec::Vec;

/// A move, checked: `moved` bytes at `old` go to `new`, whose mapping is
/// `new_len` long (the rest of it is new, zero-filled or the object's);
/// [old + moved, old + old_len) is unmapped afterwards.
struct Move {
    old: u64,
    old_len: u64,
    moved: u64,
    new: u64,
    new_len: u64,
    /// MREMAP_FIXED: whatever is at the target is replaced.
    fixed: bool,
    dont_unmap: bool,
}

impl<P: Pmap> AddressSpace<P> {
    /// mremap as Linux's SYSCALL_DEFINE5(mremap): returns the mapping's
    /// address afterwards. EFAULT when nothing is mapped at `old` or the
    /// old range runs past its mapping; EINVAL for a private mapping with
    /// an old length of 0 (only a shared one can be "duplicated") and for
    /// a bad MREMAP_FIXED target; ENOMEM when it must move and may not, or
    /// memory or the commit limit runs out.
    pub fn mremap(&mut self, phys: &mut dyn PhysMem, req: &RemapRequest) -> Result<u64, Errno> {
        let vma = self.map.find(req.old).ok_or(Errno::EFAULT)?.clone();
        if req.fixed.is_some() || req.dont_unmap {
            return self.mremap_to(phys, req, &vma);
        }
        if req.old_len >= req.new_len {
            // Shrinking is munmap of the tail, wherever it lies.
            let end = req
                .old
                .checked_add(req.old_len)
                .filter(|&e| e <= USER_END)
                .ok_or(Errno::EINVAL)?;
            self.munmap(phys, req.old + req.new_len, end)?;
            return Ok(req.old);
        }
        check_resize(&vma, req, req.old_len)?;
        let (old_end, grow) = (req.old + req.old_len, req.new_len - req.old_len);
        if old_end == vma.end && self.expandable(old_end, grow) {
            self.grow_in_place(phys, &vma, grow)?;
            return Ok(req.old);
        }
        if !req.may_move {
            return Err(Errno::ENOMEM);
        }
        if self.map.len() + 3 > max_map_count() {
            return Err(Errno::ENOMEM); // move_vma's check
        }
        let new = self.place_moved(
            &Placement::Anywhere { hint: 0 },
            req.old,
            req.old_len,
            req.new_len,
        )?;
        let plan = Move {
            old: req.old,
            old_len: req.old_len,
            moved: req.old_len,
            new,
            new_len: req.new_len,
            fixed: false,
            dont_unmap: false,
        };
        self.move_pages(phys, &vma, &plan)
    }

    /// MREMAP_FIXED and MREMAP_DONTUNMAP (Linux's mremap_to): always a
    /// move; a shrinking one drops the old range's tail.
    fn mremap_to(
        &mut self,
        phys: &mut dyn PhysMem,
        req: &RemapRequest,
        vma: &Vma,
    ) -> Result<u64, Errno> {
        let fixed = req.check_fixed()?;
        if self.map.len() + 2 + 3 >= max_map_count() {
            return Err(Errno::ENOMEM);
        }
        let moved = req.old_len.min(req.new_len);
        check_resize(vma, req, moved)?;
        let new = match fixed {
            Some(addr) => addr,
            None => {
                let hint = Placement::Anywhere { hint: req.hint };
                self.place_moved(&hint, req.old, moved, req.new_len)?
            }
        };
        let plan = Move {
            old: req.old,
            old_len: req.old_len,
            moved,
            new,
            new_len: req.new_len,
            fixed: fixed.is_some(),
            dont_unmap: req.dont_unmap,
        };
        self.move_pages(phys, vma, &plan)
    }

    /// Whether `grow` bytes from `at` are free for a mapping to grow into.
    fn expandable(&self, at: u64, grow: u64) -> bool {
        at.checked_add(grow)
            .is_some_and(|end| end <= USER_END && self.map.range(at, end).next().is_none())
    }

    /// Extend `vma` by `grow` bytes at its end (the range there is free).
    fn grow_in_place(&mut self, phys: &mut dyn PhysMem, vma: &Vma, grow: u64) -> Result<(), Errno> {
        if vma.is_charged() && !phys.charge(grow / PAGE) {
            return Err(Errno::ENOMEM);
        }
        let mut grown = self.map.remove_range(vma.start, vma.end);
        debug_assert_eq!(grown.len(), 1, "mremap: the VMA found is not one VMA");
        let mut grown = grown.pop().expect("mremap: the VMA found went away");
        let old_end = grown.end;
        grown.end += grow;
        let inserted = self.map.insert(grown);
        debug_assert!(inserted.is_ok(), "mremap: the range above was not free");
        if vma.flags.contains(VmaFlags::LOCKED) {
            let _ = self.populate(phys, old_end, old_end + grow); // best effort, as Linux's mm_populate
        }
        Ok(())
    }

    /// Where a moved mapping goes when it is not fixed: as `placement`
    /// says, page-aligned. (Lab 5 of docs/src/labs.md: keep the old
    /// range's offset within 2 MiB when 2 MiB pages move, so that
    /// `prepare_huge` need not split them.)
    fn place_moved(
        &self,
        placement: &Placement,
        old: u64,
        moved: u64,
        new_len: u64,
    ) -> Result<u64, Errno> {
        let _ = (old, moved);
        self.place(placement, new_len, PAGE, false, 0)
    }

    /// Carry out `plan` for the mapping `vma` (which holds the old range):
    /// charge, move the entries, then rewrite the tree. Returns the new
    /// address.
    fn move_pages(&mut self, phys: &mut dyn PhysMem, vma: &Vma, plan: &Move) -> Result<u64, Errno> {
        let Move {
            old,
            moved,
            new,
            new_len,
            ..
        } = *plan;
        let target_end = new
            .checked_add(new_len)
            .filter(|&e| e <= USER_END)
            .ok_or(Errno::ENOMEM)?;
        let tail = (old + moved, old + plan.old_len.max(moved));
        // The charge: the growth, and the copy beside the old mapping that
        // MREMAP_DONTUNMAP keeps; what is replaced or dropped is given back.
        let added = new_len - moved + if plan.dont_unmap { moved } else { 0 };
        let need = if vma.is_charged() { added / PAGE } else { 0 };
        let charge_of = |s: &Self, (from, to): (u64, u64)| -> u64 {
            s.map
                .range(from, to)
                .map(|v| overlap_charge(v, from, to))
                .sum()
        };
        let replaced = if plan.fixed {
            charge_of(self, (new, target_end))
        } else {
            0
        };
        let dropped = charge_of(self, tail);
        let charged = need.saturating_sub(replaced + dropped);
        if charged > 0 && !phys.charge(charged) {
            return Err(Errno::ENOMEM);
        }
        // 2 MiB pages straddling an edge become small pages (their contents
        // stay: harmless before a failure), and so do those whose alignment
        // the move would not keep.
        let prepared = self.prepare_huge(phys, plan, target_end);
        if let Err(e) = prepared {
            phys.uncharge(charged);
            return Err(e);
        }
        if plan.fixed {
            self.unmap_range(phys, new, target_end, false);
        }
        if self.pmap.move_range(old, new, moved).is_err() {
            phys.uncharge(charged + replaced);
            return Err(Errno::ENOMEM);
        }
        // From here nothing fails: the tree follows the page tables.
        let mut moved_vma = vma.clone();
        if let Backing::Object { offset, .. } = &mut moved_vma.backing {
            *offset += old - vma.start;
        }
        moved_vma.start = new;
        moved_vma.end = target_end;
        if plan.dont_unmap {
            // The old mapping stays, empty where it was private, and no
            // longer locked (Linux clears VM_LOCKED on it).
            if moved > 0 {
                self.map
                    .update_range(old, old + moved, |v| v.flags -= VmaFlags::LOCKED);
            }
        } else {
            for piece in self.map.remove_range(old, old + moved) {
                if let Backing::Object { object, .. } = piece.backing {
                    object.release(phys); // moved_vma holds its own reference
                }
            }
        }
        let locked = moved_vma.flags.contains(VmaFlags::LOCKED);
        let inserted = self.map.insert(moved_vma);
        debug_assert!(inserted.is_ok(), "mremap: the target is not free");
        if tail.0 < tail.1 {
            self.unmap_range(phys, tail.0, tail.1, false);
        }
        let surplus = (replaced + dropped).saturating_sub(need);
        if surplus > 0 {
            phys.uncharge(surplus);
        }
        if locked && new_len > moved {
            let _ = self.populate(phys, new + moved, target_end); // best effort
        }
        Ok(new)
    }

    /// Before `plan` moves anything: split the 2 MiB pages across the
    /// edges of the moved range, of the dropped tail and (when fixed) of
    /// the target [new, target_end), and every 2 MiB page of the moved
    /// range when the distance is not a multiple of 2 MiB.
    fn prepare_huge(
        &mut self,
        phys: &mut dyn PhysMem,
        plan: &Move,
        target_end: u64,
    ) -> Result<(), Errno> {
        let Move {
            old, moved, new, ..
        } = *plan;
        self.split_huge_edges(phys, old, old + moved)?;
        self.split_huge_at(phys, old + plan.old_len.max(moved))?;
        if plan.fixed {
            self.split_huge_edges(phys, new, target_end)?;
        }
        if new.abs_diff(old).is_multiple_of(HUGE_PAGE) {
            return Ok(());
        }
        let mut huge = Vec::new();
        self.pmap.visit(old, old + moved, &mut |va, m| {
            if m.huge {
                huge.push(va);
            }
        });
        for base in huge {
            self.split_huge(phys, base)?;
        }
        Ok(())
    }
}

/// Linux's vma_to_resize for `vma`, which holds `req.old`, keeping
/// `old_len` bytes of it.
fn check_resize(vma: &Vma, req: &RemapRequest, old_len: u64) -> Result<(), Errno> {
    let shared = matches!(vma.backing, Backing::Object { .. })
        && vma.sharing == crate::mmap::Sharing::Shared;
    if old_len == 0 && !shared {
        return Err(Errno::EINVAL);
    }
    let reservation = matches!(vma.backing, Backing::Guard | Backing::StackGap);
    if req.dont_unmap && reservation {
        return Err(Errno::EINVAL);
    }
    if old_len > vma.end - req.old {
        return Err(Errno::EFAULT);
    }
    if req.new_len == old_len {
        return Ok(());
    }
    if let Backing::Object { offset, .. } = &vma.backing {
        (offset + (req.old - vma.start))
            .checked_add(req.new_len)
            .ok_or(Errno::EINVAL)?;
    }
    if reservation {
        return Err(Errno::EFAULT); // VM_DONTEXPAND's rule
    }
    Ok(())
}
