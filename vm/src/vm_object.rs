//! vm_object: what backs memory that outlives one set of page tables.
//!
//! An object holds pages by page index, each with one frame reference of its
//! own; every PTE that maps one holds another. Two kinds exist:
//!
//! - **anonymous** objects back MAP_SHARED|MAP_ANONYMOUS memory: made at
//!   mmap time, every mapping of one (in this process or in a child after
//!   fork) maps the same frames, and a page appears zero-filled on first use;
//! - **file** objects are a ramfs file's page cache: the file's bytes live in
//!   these frames and nowhere else, so read(), write() and every MAP_SHARED
//!   mapping see the same memory at all times (the spec's "VM/file system
//!   coherency"). A file object has a size: a page wholly past it does not
//!   exist (a fault there is SIGBUS), and the bytes of the last page past
//!   the size always read as zeros.
//!
//! The object does not free its frames by itself (it cannot reach the frame
//! allocator from `Drop`): whoever drops the last reference calls `release`.
//!
//! An aligned run of 512 pages may be one 2 MiB block, so that a shared
//! mapping can map it with one level-2 entry (`huge.rs`); its frames are
//! still counted one by one, so everything here works per 4 KiB page.
//!
//! Under memory pressure a page may leave for a swap slot (`swap.rs`,
//! Linux's shmem_writepage): the object then holds the slot instead of the
//! frame, and whoever wants the page next (a fault, read(), write(), a
//! truncate that zeroes its tail) reads it back through the swap cache.

mod huge;
mod swap;

pub use huge::{Block, shmem_huge_frames, shmem_pmd_mapped_frames};
pub use swap::{ObjectPageOut, ScannedPage};

use crate::errno::Errno;
use crate::frame::{PAGE_SIZE, Pfn};
use crate::pmap::PhysMem;
use crate::rmap::SpaceId;
use crate::swap_map::Slot;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

const PAGE: u64 = PAGE_SIZE;

/// The largest file size (Linux's MAX_LFS_FILESIZE on 64-bit): offsets
/// beyond it are EFBIG for write and ftruncate.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Anonymous,
    File,
}

#[derive(Debug)]
pub struct VmObject {
    kind: ObjectKind,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pages: BTreeMap<u64, Pfn>,
    /// The pages out in swap, each holding one count of its slot (a page
    /// is in `pages` or here, never both).
    swapped: BTreeMap<u64, Slot>,
    /// Where reclaim's scan of this object's pages goes on (`swap.rs`).
    hand: u64,
    /// Bytes in the file; anonymous objects have no end.
    size: u64,
    /// The address spaces that have mapped this file (Linux's i_mmap, at
    /// the grain of spaces): truncate visits these and no others. A
    /// superset: a space that unmapped it or exited is dropped from the
    /// list by the next truncate that finds it no longer maps the file.
    mappers: Vec<SpaceId>,
    /// The runs (`huge::Run`) whose 512 pages are one 2 MiB block, each
    /// frame still here in the block's order (`huge.rs`).
    blocks: BTreeSet<u64>,
    /// For each run, how many 2 MiB entries map it, in every space.
    pmd_maps: BTreeMap<u64, u32>,
}

/// Why an object has no page to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page lies wholly past the end of the file (SIGBUS).
    PastEof,
    /// No frame for it.
    NoMemory,
    /// Its slot could not be read back from the swap disk (SIGBUS, as
    /// Linux's shmem fault on a swap read error).
    Io,
}

/// A counted reference to an object, shared by VMAs and (for a file) its inode.
#[derive(Clone, Debug)]
pub struct ObjectRef(Arc<VmObject>);

impl ObjectRef {
    pub fn new_anonymous() -> ObjectRef {
        ObjectRef::new(ObjectKind::Anonymous, u64::MAX)
    }

    /// An empty file's page cache.
    pub fn new_file() -> ObjectRef {
        ObjectRef::new(ObjectKind::File, 0)
    }

    fn new(kind: ObjectKind, size: u64) -> ObjectRef {
        ObjectRef(Arc::new(VmObject {
            kind,
            inner: Mutex::new(Inner {
                pages: BTreeMap::new(),
                swapped: BTreeMap::new(),
                hand: 0,
                size,
                mappers: Vec::new(),
                blocks: BTreeSet::new(),
                pmd_maps: BTreeMap::new(),
            }),
        }))
    }

    pub fn same(&self, other: &ObjectRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A number no other live object has (its address): the kernel's
    /// futexes name a word of shared memory by (object, offset).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    pub fn kind(&self) -> ObjectKind {
        self.0.kind
    }

    /// The file's size in bytes (u64::MAX for anonymous memory).
    pub fn size(&self) -> u64 {
        self.0.inner.lock().size
    }

    /// The frame at page `index`, created zero-filled if the object has none
    /// yet (a fresh page of shared memory, or a hole in a file). The returned
    /// frame carries a new reference for the caller.
    pub fn page(&self, index: u64, phys: &mut dyn PhysMem) -> Result<Pfn, PageError> {
        self.page_and_reads(index, phys).map(|(pfn, _)| pfn)
    }

    /// `page`, and how many pages were read from the swap disk for it
    /// (0 unless it was out in swap: the fault path counts a major fault).
    pub fn page_and_reads(
        &self,
        index: u64,
        phys: &mut dyn PhysMem,
    ) -> Result<(Pfn, u32), PageError> {
        let mut inner = self.0.inner.lock();
        if !inner.holds(index) {
            return Err(PageError::PastEof);
        }
        let (pfn, read) = match inner.swap_in_counted(index, phys)? {
            (Some(pfn), read) => (pfn, read),
            (None, _) => {
                let pfn = phys.alloc_zeroed().ok_or(PageError::NoMemory)?;
                inner.pages.insert(index, pfn);
                (pfn, 0)
            }
        };
        phys.get(pfn);
        Ok((pfn, read))
    }

    /// The frames of the `count` pages from `first` that are already in
    /// memory and inside the file, each with a new reference for the
    /// caller; None for holes and pages past the end (fault-around and
    /// MAP_PREFAULT_READ never allocate). One lock for the whole run.
    pub fn resident_run(&self, first: u64, count: u64, phys: &mut dyn PhysMem) -> Vec<Option<Pfn>> {
        let inner = self.0.inner.lock();
        (first..first + count)
            .map(|index| {
                let pfn = *inner.pages.get(&index).filter(|_| inner.holds(index))?;
                phys.get(pfn);
                Some(pfn)
            })
            .collect()
    }

    /// The frame the object holds at page `index`, without taking a
    /// reference (the debug audit only compares it).
    pub fn frame_at(&self, index: u64) -> Option<Pfn> {
        self.0.inner.lock().pages.get(&index).copied()
    }

    /// The pages of [first, end) in memory, with their frames (no
    /// reference taken): a hole being punched unmaps these.
    pub fn resident_frames(&self, first: u64, end: u64) -> Vec<(u64, Pfn)> {
        if first >= end {
            return Vec::new();
        }
        let inner = self.0.inner.lock();
        inner
            .pages
            .range(first..end)
            .map(|(&i, &pfn)| (i, pfn))
            .collect()
    }

    /// Whether page `index` is in memory (mincore on shared memory and
    /// files: a page out in swap is not).
    pub fn is_resident(&self, index: u64) -> bool {
        self.0.inner.lock().pages.contains_key(&index)
    }

    /// How many pages the object holds in memory (/proc/meminfo's Shmem).
    pub fn resident_pages(&self) -> u64 {
        self.0.inner.lock().pages.len() as u64
    }

    /// How many pages the object holds, in memory or in swap (a file's
    /// st_blocks, as tmpfs counts them).
    pub fn held_pages(&self) -> u64 {
        let inner = self.0.inner.lock();
        (inner.pages.len() + inner.swapped.len()) as u64
    }

    /// Zero bytes [from, to) of one page, if the object holds that page
    /// (in memory or in swap, which it is read back from): a hole punched
    /// through part of a page, whose other bytes stay. A page not held
    /// reads as zeros already and stays a hole.
    pub fn zero_within_page(
        &self,
        from: u64,
        to: u64,
        phys: &mut dyn PhysMem,
    ) -> Result<(), Errno> {
        assert!(
            from < to && from / PAGE == (to - 1) / PAGE,
            "zero_within_page: not a part of one page"
        );
        let mut inner = self.0.inner.lock();
        if let Some(pfn) = inner.swap_in(from / PAGE, phys).map_err(PageError::errno)? {
            phys.write(pfn, (from % PAGE) as usize, &ZEROS[..(to - from) as usize]);
        }
        Ok(())
    }

    /// Free pages [first, last) of the object (a hole punched: they read
    /// back as zeros). The caller has unmapped them from every space first
    /// (`AddressSpace::punch_object`).
    pub fn discard(&self, first: u64, last: u64, phys: &mut dyn PhysMem) {
        self.0.inner.lock().discard(first, last, phys);
    }

    /// Copy file bytes from `offset` into `buf`; returns how many (0 at or
    /// past the end). Holes read as zeros; pages out in swap are read back
    /// (ENOMEM or EIO when not even the first one could be, else the bytes
    /// before it).
    pub fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
        phys: &mut dyn PhysMem,
    ) -> Result<usize, Errno> {
        let mut inner = self.0.inner.lock();
        let n = inner.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let within = (at % PAGE) as usize;
            let chunk = (PAGE as usize - within).min(n - done);
            let out = &mut buf[done..done + chunk];
            match inner.swap_in(at / PAGE, phys) {
                Ok(Some(pfn)) => phys.read(pfn, within, out),
                Ok(None) => out.fill(0),
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e.errno()),
            }
            done += chunk;
        }
        Ok(n)
    }

    /// Copy `data` into the file at `offset`, growing it if the write ends
    /// past the end. Returns how many bytes were written: fewer than asked
    /// only when memory ran out part way (ENOSPC when not even one fit, as
    /// tmpfs says when it is full).
    pub fn write_at(
        &self,
        offset: u64,
        data: &[u8],
        phys: &mut dyn PhysMem,
    ) -> Result<usize, Errno> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let mut inner = self.0.inner.lock();
        if end > inner.size {
            inner.clear_tail(phys);
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let within = (at % PAGE) as usize;
            let chunk = (PAGE as usize - within).min(data.len() - done);
            let index = at / PAGE;
            let pfn = match inner.swap_in(index, phys) {
                Ok(Some(pfn)) => pfn,
                Err(e) if done == 0 => return Err(e.errno()),
                Err(_) => break,
                Ok(None) => match phys.alloc_zeroed() {
                    Some(pfn) => {
                        inner.pages.insert(index, pfn);
                        pfn
                    }
                    None => break,
                },
            };
            phys.write(pfn, within, &data[done..done + chunk]);
            done += chunk;
        }
        if done == 0 && !data.is_empty() {
            return Err(Errno::ENOSPC);
        }
        inner.size = inner.size.max(offset + done as u64);
        Ok(done)
    }

    /// Make the file `size` bytes long (ftruncate). Shrinking frees the pages
    /// wholly past the new end and zeroes the rest of the last page, so the
    /// bytes past the end read as zeros in every mapping; growing adds a hole
    /// that reads as zeros. Mappings of the freed pages are the caller's to
    /// remove (`AddressSpace::truncate_object`), in every address space.
    pub fn set_size(&self, size: u64, phys: &mut dyn PhysMem) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut inner = self.0.inner.lock();
        if size < inner.size {
            inner.size = size;
            inner.discard(size.div_ceil(PAGE), u64::MAX, phys);
            inner.clear_tail(phys);
        } else {
            inner.clear_tail(phys);
            inner.size = size;
        }
        Ok(())
    }

    /// Note that space `id` maps this file (every mmap and fork of a file
    /// mapping does). ENOMEM when the list cannot grow.
    pub fn note_mapper(&self, id: SpaceId) -> Result<(), Errno> {
        if self.0.kind != ObjectKind::File {
            return Ok(()); // only files are truncated
        }
        let mut inner = self.0.inner.lock();
        if !inner.mappers.contains(&id) {
            inner.mappers.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            inner.mappers.push(id);
        }
        Ok(())
    }

    /// The spaces that may map this file (see `Inner::mappers`).
    pub fn mappers(&self) -> Vec<SpaceId> {
        self.0.inner.lock().mappers.clone()
    }

    /// Space `id` no longer maps this file.
    pub fn forget_mapper(&self, id: SpaceId) {
        self.0.inner.lock().mappers.retain(|m| *m != id);
    }

    /// Drop this reference; the last one gives every page back.
    pub fn release(self, phys: &mut dyn PhysMem) {
        if let Some(object) = Arc::into_inner(self.0) {
            let inner = object.inner.into_inner();
            huge::forget_blocks(inner.blocks.len());
            for (_, pfn) in inner.pages {
                phys.put(pfn);
            }
            for (_, slot) in inner.swapped {
                phys.swap_release(slot);
            }
        }
    }

    /// How many references exist (VMAs, inode): tests check lifetimes with it.
    pub fn references(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// A reference that does not keep the object (or its pages) alive.
    pub fn downgrade(&self) -> WeakObject {
        WeakObject(Arc::downgrade(&self.0))
    }
}

/// Names an object without holding it: the kernel's list of memfds, whose
/// names /proc/PID/maps shows, must not keep their pages. It is never
/// upgraded (the holder of a temporary strong reference could become the
/// last one, and only `release` frees the pages), only compared; while it
/// exists no other object can take the address it compares by.
#[derive(Clone, Debug)]
pub struct WeakObject(Weak<VmObject>);

impl WeakObject {
    /// Whether this names `object`.
    pub fn is(&self, object: &ObjectRef) -> bool {
        core::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&object.0))
    }

    /// Whether the object still exists (some VMA or inode holds it).
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl Inner {
    /// Whether page `index` lies at least partly inside the object.
    fn holds(&self, index: u64) -> bool {
        index < self.size.div_ceil(PAGE)
    }

    fn discard(&mut self, first: u64, last: u64, phys: &mut dyn PhysMem) {
        self.break_blocks(first, last);
        let doomed: Vec<u64> = self.pages.range(first..last).map(|(&i, _)| i).collect();
        for index in doomed {
            if let Some(pfn) = self.pages.remove(&index) {
                phys.put(pfn);
            }
        }
        let doomed: Vec<u64> = self.swapped.range(first..last).map(|(&i, _)| i).collect();
        for index in doomed {
            if let Some(slot) = self.swapped.remove(&index) {
                phys.swap_release(slot);
            }
        }
    }

    /// Zero the last page from the end of the file on. Stores through a
    /// MAP_SHARED mapping may have put bytes there, but they never become
    /// part of the file: before the file grows over them they are cleared.
    fn clear_tail(&mut self, phys: &mut dyn PhysMem) {
        let within = (self.size % PAGE) as usize;
        if within == 0 {
            return;
        }
        // A tail page out in swap comes back to be cleared; if it cannot,
        // its slot keeps the bytes, which `read_at` never shows, and a
        // later clear (the next write past the end) tries again.
        if let Ok(Some(pfn)) = self.swap_in(self.size / PAGE, phys) {
            phys.write(pfn, within, &ZEROS[..PAGE as usize - within]);
        }
    }
}

static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];
