//! A self-check for debug kernels: frame reference counts against the
//! page tables. Every present PTE holds one reference to its frame, and an
//! object holds one for each of its pages (see `pmap` and `vm_object`), so
//! a frame's count can never be lower than what one address space can see
//! pointing at it. A count that is lower means a `get` went missing
//! somewhere (a fault, a copy-on-write, a fault-around): the frame would
//! be freed while still mapped. The check looks at one space at a time, so
//! a reference missing between two spaces (after fork) shows only when it
//! is the last one; a `put` that went missing is a leak, which the frame
//! counts checked after every test case catch instead.
//!
//! The kernel runs the audit on every address space it tears down at
//! process exit; host tests run it on fake spaces.

use crate::frame::Pfn;
use crate::pmap::{PhysMem, Pmap};
use crate::space::AddressSpace;
use crate::vma::{Backing, PAGE};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A frame whose reference count is below what this space alone holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// A user address that maps the frame.
    pub va: u64,
    pub pfn: Pfn,
    pub refcount: u32,
    /// PTEs of this space that map the frame, plus one if an object of
    /// this space holds it.
    pub held: u32,
}

impl<P: Pmap> AddressSpace<P> {
    /// Check every frame this space maps (the shared zero frame aside):
    /// its reference count covers this space's PTEs and objects. Returns
    /// the first frame that falls short.
    pub fn audit_frames(&mut self, phys: &dyn PhysMem) -> Result<(), Shortfall> {
        let zero = phys.zero_frame();
        // pfn -> (PTEs here, held by an object here, an address for the report)
        let mut held: BTreeMap<Pfn, (u32, bool, u64)> = BTreeMap::new();
        let ranges: Vec<(u64, u64)> = self.map.iter().map(|v| (v.start, v.end)).collect();
        for (start, end) in ranges {
            self.pmap.visit(start, end, &mut |va, m| {
                held.entry(m.pfn).or_insert((0, false, va)).0 += 1;
            });
        }
        for vma in self.map.iter() {
            let Backing::Object { object, .. } = &vma.backing else {
                continue;
            };
            for va in (vma.start..vma.end).step_by(PAGE as usize) {
                let Some(mapped) = self.pmap.query(va) else {
                    continue;
                };
                // Only a page the object still holds counts: a private
                // copy maps a frame of its own.
                let index = vma.object_offset(va).map(|(_, offset)| offset / PAGE);
                if index.and_then(|i| object.frame_at(i)) == Some(mapped.pfn)
                    && let Some(entry) = held.get_mut(&mapped.pfn)
                {
                    entry.1 = true;
                }
            }
        }
        for (&pfn, &(ptes, in_object, va)) in &held {
            if pfn == zero {
                continue;
            }
            let needed = ptes + u32::from(in_object);
            let refcount = phys.refcount(pfn);
            if refcount < needed {
                return Err(Shortfall {
                    va,
                    pfn,
                    refcount,
                    held: needed,
                });
            }
        }
        Ok(())
    }
}
