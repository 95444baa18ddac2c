//! vm_object: what backs memory that outlives one set of page tables.
//!
//! An object holds pages by page index, each with one frame reference of its
//! own; every PTE that maps one holds another. Shared anonymous memory
//! (MAP_SHARED|MAP_ANONYMOUS) is an object made at mmap time; every mapping
//! of it, in this process or in a child after fork, maps the same frames.
//!
//! The object does not free its frames by itself (it cannot reach the frame
//! allocator from `Drop`): whoever drops the last reference calls `release`.

use crate::frame::Pfn;
use crate::pmap::PhysMem;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use spin::Mutex;

#[derive(Debug, Default)]
pub struct VmObject {
    pages: Mutex<BTreeMap<u64, Pfn>>,
}

/// A counted reference to an object, shared by VMAs.
#[derive(Clone, Debug)]
pub struct ObjectRef(Arc<VmObject>);

impl ObjectRef {
    pub fn new_anonymous() -> ObjectRef {
        ObjectRef(Arc::new(VmObject::default()))
    }

    pub fn same(&self, other: &ObjectRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The frame at page `index`, created zero-filled if the object has none
    /// yet. The returned frame carries a new reference for the caller.
    /// None when memory is exhausted.
    pub fn page(&self, index: u64, phys: &mut dyn PhysMem) -> Option<Pfn> {
        let mut pages = self.0.pages.lock();
        let pfn = match pages.get(&index) {
            Some(&pfn) => pfn,
            None => {
                let pfn = phys.alloc_zeroed()?;
                pages.insert(index, pfn);
                pfn
            }
        };
        phys.get(pfn);
        Some(pfn)
    }

    /// Whether page `index` exists (mincore on shared memory).
    pub fn is_resident(&self, index: u64) -> bool {
        self.0.pages.lock().contains_key(&index)
    }

    /// Free pages [first, last) of the object (MADV_REMOVE: they read back
    /// as zeros). The caller has unmapped them first.
    pub fn discard(&self, first: u64, last: u64, phys: &mut dyn PhysMem) {
        let mut pages = self.0.pages.lock();
        let doomed: alloc::vec::Vec<u64> = pages.range(first..last).map(|(&i, _)| i).collect();
        for index in doomed {
            if let Some(pfn) = pages.remove(&index) {
                phys.put(pfn);
            }
        }
    }

    /// Drop this reference; the last one gives every page back.
    pub fn release(self, phys: &mut dyn PhysMem) {
        if let Some(object) = Arc::into_inner(self.0) {
            for (_, pfn) in object.pages.into_inner() {
                phys.put(pfn);
            }
        }
    }
}
