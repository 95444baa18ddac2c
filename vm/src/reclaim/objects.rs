//! Reclaim of objects' pages: shared anonymous memory (MAP_SHARED |
//! MAP_ANONYMOUS, /dev/zero shared, memfds) and ramfs files, which Linux's
//! tmpfs sends to swap too (shmem_writepage). docs/src/pressure.md, "Pages
//! of objects".
//!
//! The clock (`clock.rs`) sees only frames PTEs map, and forgets an
//! object's frame at once (the object's own reference makes it "not
//! ours"); a file page written with write() is mapped by no PTE at all.
//! So when the clock's victims are not enough, reclaim goes to the
//! objects instead (`Spaces::objects`), the largest first, each going
//! round its pages with a hand of its own (`ObjectRef::scan`):
//!
//! 1. a page in a 2 MiB block has the block's 2 MiB entries split in
//!    every space that maps it whole, and the run broken into 4 KiB pages
//!    (Linux splits a shmem THP before swapping it);
//! 2. a page some PTE maps with its accessed bit set gets a second chance
//!    (the bit is cleared; the hand comes back to it next time round); one
//!    a locked mapping (mlock, MAP_LOCKED, MAP_WIRED) or a MAP_HUGETLB one
//!    maps stays; one a kernel path holds (its count is more than the
//!    object's and its PTEs') stays;
//! 3. the rest are unmapped from every PTE (`Pmap::unmap_range` of the one
//!    page, which flushes its TLB entry): their PTEs become empty, not swap
//!    PTEs, since the object is where the next fault looks;
//! 4. the object gives each a slot and hands it to the swap cache on its
//!    way to the disk (`ObjectRef::page_out`); reclaim writes them with
//!    the clock's victims, runs of consecutive slots in one request, and
//!    frees the frames (`SwapCache::written`).
//!
//! Lock order: reclaim holds the spaces (try-locked) and the swap cache;
//! an object is only try-locked, and a busy one is left for next time.

use super::{Reclaim, Reclaimed};
use crate::frame::Pfn;
use crate::pmap::{BLOCK_FRAMES, Pmap};
use crate::swap_cache::Writeback;
use crate::vm_object::ObjectRef;
use crate::vma::{PAGE, VmaFlags};
use alloc::vec::Vec;

/// Pages looked at for each one still wanted (one step of the hand), plus
/// a few.
const SCAN_PER_WANTED: usize = 2;
const SCAN_EXTRA: usize = 32;

impl<P: Pmap> Reclaim<'_, P> {
    /// Send up to `want` of objects' pages to swap, in `wb` (the module
    /// comment).
    pub(super) fn reclaim_objects(
        &mut self,
        want: usize,
        wb: &mut Writeback,
        done: &mut Reclaimed,
    ) {
        let mut objects: Vec<ObjectRef> = Vec::new();
        self.spaces.objects(&mut |object| {
            if !objects.iter().any(|o| o.same(object)) {
                objects.push(object.clone());
            }
        });
        // The largest first: with no age per page across objects, the one
        // holding most of memory is the likeliest to hold its coldest pages
        // (and a small file, a program's text, is left alone while there
        // is a large one). A busy object counts as empty this time.
        let mut objects: Vec<(u64, ObjectRef)> = objects
            .into_iter()
            .map(|o| (o.try_resident_pages().unwrap_or(0), o))
            .filter(|&(resident, _)| resident > 0)
            .collect();
        objects.sort_by_key(|&(resident, _)| core::cmp::Reverse(resident));
        let mut left = want;
        for (resident, object) in &objects {
            if left == 0 || done.swap_full {
                break;
            }
            left = left.saturating_sub(self.reclaim_object(object, *resident, left, wb, done));
        }
    }

    /// Up to `want` pages of `object`'s into `wb`; how many. The hand
    /// may go round twice (`resident` pages each time): every page it
    /// passes the first time with its accessed bit set has it cleared, and
    /// goes the second time if unused since.
    fn reclaim_object(
        &mut self,
        object: &ObjectRef,
        resident: u64,
        want: usize,
        wb: &mut Writeback,
        done: &mut Reclaimed,
    ) -> usize {
        let budget = 2 * resident as usize + SCAN_EXTRA;
        let (mut scanned, mut freed) = (0, 0);
        while freed < want && scanned < budget && !done.swap_full {
            let batch = ((want - freed) * SCAN_PER_WANTED + SCAN_EXTRA).min(budget - scanned);
            let Some(pages) = object.scan(batch) else {
                break;
            };
            if pages.is_empty() {
                break;
            }
            scanned += pages.len();
            let mut victims = Vec::new();
            for page in pages {
                if victims.len() == want - freed {
                    break;
                }
                done.scanned += 1;
                if page.in_block && !self.split_object_run(object, page.index / BLOCK_FRAMES) {
                    continue;
                }
                if self.unmap_object_page(page.pfn) {
                    victims.push((page.index, page.pfn));
                }
            }
            let Some(out) = object.page_out(&victims, self.phys, self.dev, self.cache, wb) else {
                break;
            };
            done.swap_full |= out.swap_full;
            freed += out.queued as usize;
        }
        freed
    }

    /// Split every 2 MiB entry mapping run `run` of `object` and break the
    /// run into 4 KiB pages; whether that was done.
    fn split_object_run(&mut self, object: &ObjectRef, run: u64) -> bool {
        // None: busy, or broken meanwhile (the next scan says which).
        let Some(head) = object.block_head(run) else {
            return false;
        };
        let phys = &mut *self.phys;
        for owner in self.spaces.owners(head) {
            let mut split = false;
            let reached = self.spaces.with_space(owner.space(), &mut |space| {
                let whole = space
                    .pmap
                    .query(owner.va())
                    .is_some_and(|m| m.huge && m.pfn == head);
                // A 4 KiB PTE of the head frame needs no split.
                split = !whole || space.split_huge(phys, owner.va()).is_ok();
            });
            if !reached || !split {
                return false;
            }
        }
        object.break_block_for_page_out(run)
    }

    /// Unmap `pfn`, a frame of an object, from every PTE if it may go (the
    /// module comment's step 2); whether it was.
    fn unmap_object_page(&mut self, pfn: Pfn) -> bool {
        let owners = self.spaces.owners(pfn);
        if self.phys.refcount(pfn) != 1 + owners.len() as u32 {
            return false;
        }
        let mut keep = false;
        for &owner in &owners {
            let reached = self.spaces.with_space(owner.space(), &mut |space| {
                let locked = space
                    .find(owner.va())
                    .is_none_or(|v| v.flags.intersects(VmaFlags::LOCKED | VmaFlags::HUGE));
                let small = space
                    .pmap
                    .query(owner.va())
                    .is_some_and(|m| m.pfn == pfn && !m.huge);
                // Every bit is read (and cleared), so that all get their
                // second chance together.
                keep |= space.pmap.take_accessed(owner.va()) || locked || !small;
            });
            keep |= !reached;
        }
        if keep {
            return false;
        }
        let phys = &mut *self.phys;
        for &owner in &owners {
            self.spaces.with_space(owner.space(), &mut |space| {
                let va = owner.va();
                space
                    .pmap
                    .unmap_range(va, va + PAGE, &mut |_, m| phys.put_mapping(&m));
            });
        }
        true
    }
}
