//! Every address space at once, for reclaim (`vm::reclaim::Spaces`): a
//! frame's owners are named by space id in the reverse map, and reclaim
//! reaches them through the process table. The table's lock is the
//! address-space lock of this kernel (one lock for every space, DESIGN §6),
//! and reclaim starts from a frame, against the lock order: it only
//! try-locks the table and does nothing this time when that fails.

use super::{Pid, TABLE, Table};
use crate::fd::FileKind;
use crate::pmap::{self, Pmap};
use alloc::vec::Vec;
use vm::frame::Pfn;
use vm::mmap::Sharing;
use vm::reclaim::Spaces;
use vm::rmap::{Owner, SpaceId};
use vm::space::AddressSpace;
use vm::vm_object::ObjectRef;
use vm::vma::Backing;

struct AllSpaces<'a> {
    table: &'a mut Table,
    /// Each live space's id and its process, looked up once.
    index: Vec<(SpaceId, Pid)>,
}

impl Spaces<Pmap> for AllSpaces<'_> {
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut AddressSpace<Pmap>)) -> bool {
        let Some(&(_, pid)) = self.index.iter().find(|(s, _)| *s == id) else {
            return false;
        };
        let space = self
            .table
            .procs
            .get_mut(&pid)
            .and_then(|p| p.space.as_mut());
        match space {
            Some(space) => {
                f(space);
                true
            }
            None => false,
        }
    }

    fn owners(&mut self, pfn: Pfn) -> Vec<Owner> {
        pmap::rmap::with(|r| r.owners(pfn).to_vec())
    }

    /// Space by space, in address order, not in the reverse map's (hash)
    /// order: a sweep's pages then leave in the order it wrote them, into
    /// consecutive slots, and swap-in's read-ahead of a slot's neighbours
    /// on disk brings the pages the program touches next.
    fn mapped_frames(&mut self, f: &mut dyn FnMut(Pfn)) {
        for p in self.table.procs.values_mut() {
            if let Some(space) = p.space.as_mut() {
                space.mapped_frames(f);
            }
        }
    }

    /// The objects shared VMAs map (shared anonymous memory, memfds,
    /// files mapped shared), the open files no name reaches (memfds,
    /// unlinked files), then every file of the tmpfs mounts. Not the
    /// files only mapped private or open by name in the root tree (the
    /// programs' text and data: the initrd's pages stay with it). Open
    /// files are only try-locked, as everything reclaim meets.
    fn objects(&mut self, f: &mut dyn FnMut(&ObjectRef)) {
        for p in self.table.procs.values() {
            for vma in p.space.iter().flat_map(|s| s.vmas()) {
                if vma.sharing == Sharing::Shared
                    && let Backing::Object { object, .. } = &vma.backing
                {
                    f(object);
                }
            }
            p.files.each_open(&mut |open| {
                if let Some(open) = open.try_lock()
                    && let FileKind::Inode(inode) = &open.kind
                    && inode.links() == 0
                    && let Some(object) = inode.object()
                {
                    f(object);
                }
            });
        }
        crate::ramfs::each_file(f);
    }
}

/// Run `f` on every address space; None, without running it, when the
/// process table is held (by another CPU).
pub fn try_with_spaces<R>(f: impl FnOnce(&mut dyn Spaces<Pmap>) -> R) -> Option<R> {
    let mut table = TABLE.try_lock()?;
    let index = table
        .procs
        .values()
        .filter_map(|p| Some((p.space.as_ref()?.pmap.id(), p.pid)))
        .collect();
    let mut spaces = AllSpaces {
        table: &mut table,
        index,
    };
    Some(f(&mut spaces))
}
