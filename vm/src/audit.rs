//! A self-check for debug kernels: frame reference counts against the
//! page tables. Every present PTE holds one reference to its frame, and an
//! object holds one for each of its pages (see `pmap` and `vm_object`), so
//! a frame's count can never be lower than what one address space can see
//! pointing at it (the check counts, per page, its PTE and its object:
//! a frame mapped twice in one space needs only one of the two to show).
//! A count that is lower means a `get` went missing
//! somewhere (a fault, a copy-on-write, a fault-around): the frame would
//! be freed while still mapped. The check looks at one space at a time, so
//! a reference missing between two spaces (after fork) shows only when it
//! is the last one; a `put` that went missing is a leak, which the frame
//! counts checked after every test case catch instead.
//!
//! The kernel runs the audit on every address space it tears down at
//! process exit; host tests run it on fake spaces.
//!
//! `audit_rmap` checks the reverse map (`rmap`) the same way: the
//! mappings it records for this space are exactly the present PTEs (the
//! zero frame aside, which it never records).

use crate::frame::Pfn;
use crate::pmap::{PhysMem, Pmap};
use crate::rmap::Owner;
use crate::space::{AddressSpace, USER_END};
use crate::vma::{Backing, PAGE};

/// A frame whose reference count is below what this space alone holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// A user address that maps the frame.
    pub va: u64,
    pub pfn: Pfn,
    pub refcount: u32,
    /// The PTE, plus one if the VMA's object holds the frame.
    pub held: u32,
}

impl<P: Pmap> AddressSpace<P> {
    /// Check every page this space maps (the shared zero frame aside): its
    /// frame's reference count covers the PTE, plus one if the VMA's object
    /// holds that frame. Returns the first page that falls short. Allocates
    /// nothing: it runs at exit, perhaps right after memory ran out.
    pub fn audit_frames(&mut self, phys: &dyn PhysMem) -> Result<(), Shortfall> {
        let zero = phys.zero_frame();
        let AddressSpace { map, pmap, .. } = self;
        let mut short = None;
        for vma in map.iter() {
            pmap.visit(vma.start, vma.end, &mut |va, m| {
                if short.is_some() || m.pfn == zero {
                    return;
                }
                // Only a page the object still holds counts: a private copy
                // maps a frame of its own.
                let in_object = match &vma.backing {
                    Backing::Object { object, .. } => {
                        vma.object_offset(va)
                            .and_then(|(_, offset)| object.frame_at(offset / PAGE))
                            == Some(m.pfn)
                    }
                    _ => false,
                };
                let held = 1 + u32::from(in_object);
                let refcount = phys.refcount(m.pfn);
                if refcount < held {
                    short = Some(Shortfall {
                        va,
                        pfn: m.pfn,
                        refcount,
                        held,
                    });
                }
            });
            if let Some(short) = short {
                return Err(short);
            }
        }
        Ok(())
    }
}

/// Where the reverse map and the page tables of a space disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmapMismatch {
    /// The reverse map says `owner` maps `pfn`; the PTE there maps
    /// `found` (None: no PTE).
    Stale {
        pfn: Pfn,
        owner: Owner,
        found: Option<Pfn>,
    },
    /// The counts differ: some present PTE is not recorded.
    Missing { ptes: usize, recorded: usize },
}

impl<P: Pmap> AddressSpace<P> {
    /// Check that the reverse map records exactly this space's present
    /// PTEs. Allocates nothing. Reads the whole reverse map: a debug check.
    pub fn audit_rmap(&mut self) -> Result<(), RmapMismatch> {
        let mut unrecorded = None;
        self.pmap.with_rmap(&mut |r| unrecorded = r.unrecorded());
        let mut ptes = 0;
        self.pmap.visit(0, USER_END, &mut |_, m| {
            ptes += usize::from(Some(m.pfn) != unrecorded);
        });
        let id = self.pmap.id();
        let pmap = &self.pmap;
        let mut result = Ok(());
        pmap.with_rmap(&mut |r| {
            let mut recorded = 0;
            for (pfn, owner) in r.iter().filter(|(_, o)| o.space() == id) {
                recorded += 1;
                let found = pmap.query(owner.va()).map(|m| m.pfn);
                if found != Some(pfn) && result.is_ok() {
                    result = Err(RmapMismatch::Stale { pfn, owner, found });
                }
            }
            if result.is_ok() && recorded != ptes {
                result = Err(RmapMismatch::Missing { ptes, recorded });
            }
        });
        result
    }
}
