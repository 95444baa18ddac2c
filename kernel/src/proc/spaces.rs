//! Every address space at once, for reclaim (`vm::reclaim::Spaces`): a
//! frame's owners are named by space id in the reverse map, and reclaim
//! reaches them through the process table. Reclaim starts from a frame,
//! against the lock order (DESIGN §6): it only try-locks the table and
//! each space's lock (kernel/src/mm.rs), does nothing this time when the
//! table is held, and leaves out the spaces faults hold.

use super::{TABLE, Table};
use crate::fd::FileKind;
use crate::mm::WriteGuard;
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
    table: &'a Table,
    /// Each live space that was free, locked for writing for the whole of
    /// reclaim's call (a space it reached once stays reachable: a page it
    /// took from one owner of several goes back if another is busy), by
    /// id. Spaces held by a fault under the read lock are left out.
    spaces: Vec<(SpaceId, WriteGuard<'a>)>,
}

impl Spaces<Pmap> for AllSpaces<'_> {
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut AddressSpace<Pmap>)) -> bool {
        match self.spaces.iter_mut().find(|(s, _)| *s == id) {
            Some((_, space)) => {
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
        for (_, space) in &mut self.spaces {
            space.mapped_frames(f);
        }
    }

    /// The objects shared VMAs map (shared anonymous memory, memfds,
    /// files mapped shared), the open files no name reaches (memfds,
    /// unlinked files), then every file of the tmpfs mounts. Not the
    /// files only mapped private or open by name in the root tree (the
    /// programs' text and data: the initrd's pages stay with it). Open
    /// files are only try-locked, as everything reclaim meets.
    fn objects(&mut self, f: &mut dyn FnMut(&ObjectRef)) {
        for (_, space) in &self.spaces {
            for vma in space.vmas() {
                if vma.sharing == Sharing::Shared
                    && let Backing::Object { object, .. } = &vma.backing
                {
                    f(object);
                }
            }
        }
        for p in self.table.procs.values() {
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

/// Run `f` on every address space that is not busy; None, without running
/// it, when the process table is held (by another CPU).
pub fn try_with_spaces<R>(f: impl FnOnce(&mut dyn Spaces<Pmap>) -> R) -> Option<R> {
    let table = TABLE.try_lock()?;
    let spaces = table
        .procs
        .values()
        .filter_map(|p| p.space.as_ref()?.try_write())
        .map(|space| (space.pmap.id(), space))
        .collect();
    let mut spaces = AllSpaces {
        table: &table,
        spaces,
    };
    Some(f(&mut spaces))
}
