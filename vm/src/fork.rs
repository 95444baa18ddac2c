//! fork: a child address space made from its parent's, VMA by VMA, as
//! each VMA's `inherit` says (FreeBSD's `vmspace_fork`).
//!
//! | inherit | parent VMA                  | the child gets                                   |
//! |---------|-----------------------------|--------------------------------------------------|
//! | Copy    | private (anonymous, object) | the same PTEs, read-only in both: copy-on-write  |
//! | Copy    | shared object               | a private mapping of the object (writes copy)   |
//! | Share   | shared object, guard, gap   | the same object: stores are seen by both         |
//! | Share   | private anonymous           | both now map one new shared object (see below)  |
//! | None    | any                         | nothing: the range is a hole in the child        |
//! | Zero    | any                         | fresh private anonymous memory, zero-filled      |
//!
//! Private anonymous memory lives only in PTEs (see `vma.rs`), so copying it
//! means copying PTEs: the parent's writable PTEs become read-only, the child
//! gets the same frames read-only, and each frame gets one more reference.
//! The first write on either side is a copy-on-write fault; once one side
//! has copied, the other holds the last reference and its next write only
//! makes the PTE writable again (`Resolution::Reuse`).
//!
//! The page tables are copied eagerly, all at fork time, and only for the
//! VMAs whose data lives in PTEs. Shared objects are not copied at all: the
//! child faults their pages in from the object. Measured figures and the
//! reason for eager copying: docs/src/processes.md.
//!
//! A 2 MiB page is shared read-only like a small one: its level-2 entry is
//! copied, and the block gets one more reference. The first write to it
//! splits it in place into 512 small pages, still shared, and copies the
//! one 4 KiB page written (`vm_fault.rs`, `copy_on_write`).
//!
//! INHERIT_SHARE on private anonymous memory needs one set of frames that
//! both spaces keep using, faults included, so the VMA is turned into
//! shared memory first: its pages move into a new anonymous object (by
//! copy, as a page may itself be shared copy-on-write with a third space),
//! and from then on parent and child map that object.

use crate::errno::Errno;
use crate::frame::Pfn;
use crate::mmap::Sharing;
use crate::pmap::{Mapping, PhysMem, Pmap};
use crate::space::AddressSpace;
use crate::vm_map::VmaTree;
use crate::vm_object::ObjectRef;
use crate::vma::{Backing, HUGE_PAGE, Inherit, PAGE, Vma};
use alloc::vec::Vec;

impl<P: Pmap> AddressSpace<P> {
    /// A child of this space on the page tables `child_pmap`, each VMA
    /// inherited as its `inherit` says. The child's private writable VMAs
    /// are charged to the commit limit. On ENOMEM (commit limit, frames or
    /// page tables) no child exists and the parent holds the same data as
    /// before (some of its pages may be left read-only: their next write
    /// finds the frame unshared and just makes the PTE writable again).
    pub fn fork(
        &mut self,
        phys: &mut dyn PhysMem,
        child_pmap: P,
    ) -> Result<AddressSpace<P>, Errno> {
        // One pass for the charge and whether any VMA must become shared
        // first: nothing is cloned to find out.
        let mut charge = 0;
        let mut shares_private = false;
        for v in self.map.iter() {
            charge += child_charge(v);
            shares_private |= needs_object(v);
        }
        if !phys.charge(charge) {
            return Err(Errno::ENOMEM);
        }
        // The files the child will map list it (truncate finds it so).
        let child_id = child_pmap.id();
        let noted = self.map.iter().try_for_each(|v| match &v.backing {
            Backing::Object { object, .. }
                if matches!(v.inherit, Inherit::Copy | Inherit::Share) =>
            {
                object.note_mapper(child_id)
            }
            _ => Ok(()),
        });
        if let Err(e) = noted {
            phys.uncharge(charge);
            return Err(e);
        }
        if shares_private && let Err(e) = self.share_private_vmas(phys) {
            phys.uncharge(charge);
            return Err(e);
        }
        // The parent's VMAs come in address order: the child's tree is
        // built from them in one pass, not by an insert each.
        let map = VmaTree::from_sorted(self.map.iter().filter_map(child_vma))
            .expect("fork: the parent's VMAs overlap");
        let mut child = AddressSpace {
            pmap: child_pmap,
            map,
            mmap_top: self.mmap_top,
            brk_start: self.brk_start,
            brk: self.brk,
            thp: self.thp,
        };
        debug_assert_eq!(
            charge,
            child.map.iter().map(Vma::charge).sum::<u64>(),
            "fork: the charge taken is not the child's"
        );
        // The frame references the child's PTEs take, a batch at a time
        // over the whole fork; every page entered gets its reference, also
        // when the copy stops part way.
        let mut refs = Refs::new();
        let mut copied = true;
        for vma in self.map.iter().filter(|v| copies_ptes(v)) {
            let (start, end) = (vma.start, vma.end);
            copied = copy_ptes(&mut self.pmap, phys, &mut child.pmap, start, end, &mut refs)
                .and_then(|()| copy_swap_ptes(&mut self.pmap, phys, &mut child.pmap, start, end))
                .is_ok();
            if !copied {
                break;
            }
        }
        refs.take(phys);
        if !copied {
            // The child's VMAs carry exactly the charge taken above.
            child.clear(phys);
            return Err(Errno::ENOMEM);
        }
        Ok(child)
    }

    /// Turn every private anonymous VMA marked INHERIT_SHARE into shared
    /// memory backed by a new object holding its data. All or nothing:
    /// the objects are filled first, and the VMAs change only once every
    /// one has its frames.
    fn share_private_vmas(&mut self, phys: &mut dyn PhysMem) -> Result<(), Errno> {
        let ranges: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|v| needs_object(v))
            .map(|v| (v.start, v.end))
            .collect();
        let mut objects = Vec::with_capacity(ranges.len());
        for &(start, end) in &ranges {
            match self.fill_object(phys, start, end) {
                Ok(object) => objects.push(object),
                Err(e) => {
                    objects.into_iter().for_each(|o: ObjectRef| o.release(phys));
                    return Err(e);
                }
            }
        }
        for ((start, end), object) in ranges.into_iter().zip(objects) {
            self.drop_pages(phys, start, end);
            let mut uncharge = 0;
            self.map.update_range(start, end, |v| {
                uncharge += v.charge();
                v.sharing = Sharing::Shared;
                v.backing = Backing::Object {
                    object: object.clone(),
                    offset: 0,
                };
            });
            phys.uncharge(uncharge);
            object.release(phys);
        }
        Ok(())
    }

    /// A new anonymous object holding a copy of every present page of
    /// [start, end), at the page's offset from `start`.
    fn fill_object(
        &mut self,
        phys: &mut dyn PhysMem,
        start: u64,
        end: u64,
    ) -> Result<ObjectRef, Errno> {
        // Pages out in swap come back first: the object copies frames.
        let mut swapped = Vec::new();
        self.pmap
            .visit_swap(start, end, &mut |va, _| swapped.push(va));
        for va in swapped {
            self.fault(phys, va, crate::vm_fault::Access::Read)
                .map_err(|_| Errno::ENOMEM)?;
        }
        let mut present: Vec<(u64, Mapping)> = Vec::new();
        self.pmap.protect_range(start, end, &mut |va, m| {
            present.push((va, m));
            m.prot
        });
        let object = ObjectRef::new_anonymous();
        let zero = phys.zero_frame();
        for (va, m) in present {
            let frames = if m.huge { HUGE_PAGE / PAGE } else { 1 };
            for i in 0..frames {
                let src = Pfn(m.pfn.0 + i);
                if src == zero {
                    continue;
                }
                let Ok(dst) = object.page((va - start) / PAGE + i, phys) else {
                    object.release(phys);
                    return Err(Errno::ENOMEM);
                };
                phys.copy_into(src, dst);
                phys.put(dst);
            }
        }
        Ok(object)
    }
}

/// Make the PTEs of [start, end) in `parent` read-only and enter the same
/// frames, read-only, in `child`, one more reference each (queued in
/// `refs`). Err when the child has no memory for a page table; what was
/// entered stays there for the caller to tear down.
fn copy_ptes<P: Pmap>(
    parent: &mut P,
    phys: &mut dyn PhysMem,
    child: &mut P,
    start: u64,
    end: u64,
    refs: &mut Refs,
) -> Result<(), ()> {
    parent
        .copy_to(child, start, end, &mut |_, m| {
            if m.huge {
                // fork copies a 2 MiB entry as it is: one block reference.
                phys.get_block(m.pfn);
            } else {
                refs.add(phys, m.pfn);
            }
        })
        .map_err(|_| ())
}

/// Copy the swap PTEs of [start, end) from `parent` into `child`: each
/// holds one more count of its slot (the page shared copy-on-write, on disk).
fn copy_swap_ptes<P: Pmap>(
    parent: &mut P,
    phys: &mut dyn PhysMem,
    child: &mut P,
    start: u64,
    end: u64,
) -> Result<(), ()> {
    if !phys.swap_used() {
        return Ok(());
    }
    let mut swapped = Vec::new();
    parent.visit_swap(start, end, &mut |va, slot| swapped.push((va, slot)));
    for (va, slot) in swapped {
        if !phys.swap_dup(slot) {
            return Err(());
        }
        if child.set_swap(va, slot).is_err() {
            phys.swap_release(slot);
            return Err(());
        }
    }
    Ok(())
}

/// Frame references to take, queued so that the frame table is taken once
/// per 64 pages shared, not once per page (`PhysMem::get_many`).
struct Refs {
    queued: [Pfn; 64],
    len: usize,
}

impl Refs {
    fn new() -> Refs {
        Refs {
            queued: [Pfn(0); 64],
            len: 0,
        }
    }

    fn add(&mut self, phys: &mut dyn PhysMem, pfn: Pfn) {
        self.queued[self.len] = pfn;
        self.len += 1;
        if self.len == self.queued.len() {
            self.take(phys);
        }
    }

    /// Take the references queued.
    fn take(&mut self, phys: &mut dyn PhysMem) {
        phys.get_many(&self.queued[..self.len]);
        self.len = 0;
    }
}

/// The pages the child's copy of `vma` is charged: `child_vma(vma)`'s
/// charge, without making it (only its sharing differs in what counts).
fn child_charge(vma: &Vma) -> u64 {
    let sharing = match vma.inherit {
        Inherit::None => return 0,
        Inherit::Share if needs_object(vma) => Sharing::Shared,
        Inherit::Share => vma.sharing,
        Inherit::Copy | Inherit::Zero => Sharing::Private,
    };
    if vma.is_charged_as(sharing, vma.prot) {
        vma.len() / PAGE
    } else {
        0
    }
}

/// Private anonymous memory that must become shared before a fork.
fn needs_object(vma: &Vma) -> bool {
    vma.inherit == Inherit::Share
        && vma.sharing == Sharing::Private
        && matches!(vma.backing, Backing::Anonymous)
}

/// Whether the child gets copies of this VMA's PTEs: private memory that
/// is copied, whose data (or part of it) lives only in the page tables.
fn copies_ptes(vma: &Vma) -> bool {
    vma.sharing == Sharing::Private
        && matches!(vma.inherit, Inherit::Copy | Inherit::Share)
        && matches!(vma.backing, Backing::Anonymous | Backing::Object { .. })
}

/// The VMA the child gets for `vma`, if any (the table at the top).
/// Before `share_private_vmas` has run, a private anonymous VMA marked
/// Share yields a shared VMA still without its object: only its charge
/// (none) is used then.
fn child_vma(vma: &Vma) -> Option<Vma> {
    match vma.inherit {
        Inherit::None => None,
        Inherit::Zero => Some(Vma {
            sharing: Sharing::Private,
            backing: match vma.backing {
                Backing::Guard => Backing::Guard,
                Backing::StackGap => Backing::StackGap,
                _ => Backing::Anonymous,
            },
            ..vma.clone()
        }),
        Inherit::Share if needs_object(vma) => Some(Vma {
            sharing: Sharing::Shared,
            ..vma.clone()
        }),
        Inherit::Copy if vma.sharing == Sharing::Shared => Some(Vma {
            sharing: Sharing::Private,
            ..vma.clone()
        }),
        Inherit::Share | Inherit::Copy => Some(vma.clone()),
    }
}
