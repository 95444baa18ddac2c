//! ramfs: the in-memory file system, filled from the initrd at boot.
//!
//! A tree of inodes. A directory maps names to inodes; a regular file's
//! bytes live in the frames of its `vm_object` (its page cache), which
//! read(), write() and every mapping of the file share, so they always
//! agree. A name is only a way to find an inode: unlink removes the name,
//! and the data lives on while an open file (which holds the inode) or a
//! mapping (which holds the object) still uses it. Several names may lead
//! to one file (link); a symbolic link is an inode holding a path; a device
//! node names a character device (`dev.rs`).
//!
//! Each inode keeps what `stat` shows: mode, owner, link count and the three
//! times. Walking a path (symbolic links, mount points, `..`) is `vfs.rs`'s
//! job; this module only knows one directory at a time. pageos checks the
//! owner permission bits on open, as if every process were the file's owner.

mod rename;
mod seals;
mod setup;

pub use rename::{RENAME_EXCHANGE, RENAME_NOREPLACE, rename};
pub use seals::{F_ALL_SEALS, F_SEAL_SEAL};
pub use setup::{cached_frames, create_file, each_file, ensure_dir, mkdir, symlink};

use crate::phys::KernelPhys;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::{Mutex, Once};
use vm::errno::Errno;
use vm::vm_object::ObjectRef;
use vm::vma::PAGE;

pub enum Kind {
    Dir(Mutex<BTreeMap<String, Arc<Inode>>>),
    /// A regular file: its size and pages are the object's.
    File(ObjectRef),
    /// A symbolic link: the path it holds.
    Symlink(String),
    /// A character device node: its major and minor numbers.
    CharDev(u32, u32),
}

/// A file time: nanoseconds since the epoch (CLOCK_REALTIME).
pub type Time = u64;

/// What `stat` shows besides the mode and size.
#[derive(Clone, Copy)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
}

/// What is mounted on a directory (`vfs.rs` crosses into it).
#[derive(Clone)]
pub enum Mount {
    /// Another ramfs tree: a tmpfs instance, or the devtmpfs.
    Ram(Arc<Inode>),
    /// The process file system.
    Proc,
}

pub struct Inode {
    pub ino: u64,
    /// The file system the inode belongs to (st_dev).
    pub dev: u64,
    pub kind: Kind,
    /// Permission bits (0o7777).
    mode: AtomicU32,
    /// Names that refer to the inode: 0 once the last is gone.
    links: AtomicU32,
    meta: Mutex<Meta>,
    /// A directory's parent (`..`); the root's is empty.
    parent: Mutex<Weak<Inode>>,
    mount: Mutex<Option<Mount>>,
    /// Processes running this file as their program (`Executing` handles):
    /// while any does, writes and truncation are ETXTBSY, as on Linux.
    executing: AtomicU32,
    /// A regular file's seals (`seals.rs`): F_SEAL_SEAL from birth unless
    /// memfd_create(MFD_ALLOW_SEALING) made it.
    seals: AtomicU32,
}

/// A process's hold on the file it runs: the file cannot be written or
/// truncated while one exists (the loader maps its pages privately, but
/// they are shared with the page cache until written).
pub struct Executing(Arc<Inode>);

impl Executing {
    pub fn new(inode: Arc<Inode>) -> Executing {
        inode.executing.fetch_add(1, Ordering::Relaxed);
        Executing(inode)
    }
}

impl Clone for Executing {
    fn clone(&self) -> Executing {
        Executing::new(self.0.clone())
    }
}

impl Drop for Executing {
    fn drop(&mut self) {
        self.0.executing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Owner permission bits, the ones pageos's single user has.
pub const MAY_READ: u32 = 0o400;
pub const MAY_WRITE: u32 = 0o200;
pub const MAY_EXEC: u32 = 0o100;
pub const NAME_MAX: usize = 255;
/// st_dev of the root file system (each tmpfs mount gets the next number).
pub const ROOT_DEV: u64 = 1;
static NEXT_DEV: AtomicU64 = AtomicU64::new(ROOT_DEV + 1);

static ROOT: Once<Arc<Inode>> = Once::new();
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

pub fn now() -> Time {
    crate::time::realtime()
}

fn new_inode(kind: Kind, mode: u32, dev: u64) -> Arc<Inode> {
    let t = now();
    let seals = match kind {
        Kind::File(_) => F_SEAL_SEAL,
        _ => 0,
    };
    Arc::new(Inode {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        dev,
        kind,
        mode: AtomicU32::new(mode & 0o7777),
        links: AtomicU32::new(1),
        meta: Mutex::new(Meta {
            uid: 0,
            gid: 0,
            atime: t,
            mtime: t,
            ctime: t,
        }),
        parent: Mutex::new(Weak::new()),
        mount: Mutex::new(None),
        executing: AtomicU32::new(0),
        seals: AtomicU32::new(seals),
    })
}

/// st_dev of the files no directory holds (memfds), as Linux's internal
/// shm mount has its own.
fn unlinked_dev() -> u64 {
    static DEV: Once<u64> = Once::new();
    *DEV.call_once(|| NEXT_DEV.fetch_add(1, Ordering::Relaxed))
}

/// A regular file in no directory (memfd_create): link count 0 from the
/// start, alive while a descriptor or a mapping holds it. `sealable`
/// clears F_SEAL_SEAL (MFD_ALLOW_SEALING).
pub fn create_unlinked(mode: u32, sealable: bool) -> Arc<Inode> {
    let node = new_inode(Kind::File(ObjectRef::new_file()), mode, unlinked_dev());
    node.links.store(0, Ordering::Relaxed);
    if sealable {
        node.seals.store(0, Ordering::Relaxed);
    }
    node
}

pub(super) fn empty_dir() -> Kind {
    Kind::Dir(Mutex::new(BTreeMap::new()))
}

pub fn root() -> Arc<Inode> {
    ROOT.call_once(|| new_inode(empty_dir(), 0o755, ROOT_DEV))
        .clone()
}

/// The root of a new, empty ramfs instance (a tmpfs mount) with its own st_dev.
pub fn new_tree() -> Arc<Inode> {
    new_inode(
        empty_dir(),
        0o1777,
        NEXT_DEV.fetch_add(1, Ordering::Relaxed),
    )
}

/// ENAMETOOLONG for a name past NAME_MAX.
pub fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else {
        Ok(())
    }
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    pub fn is_symlink(&self) -> bool {
        matches!(self.kind, Kind::Symlink(_))
    }

    /// The page cache of a regular file (None for anything else).
    pub fn object(&self) -> Option<&ObjectRef> {
        match &self.kind {
            Kind::File(object) => Some(object),
            _ => None,
        }
    }

    pub fn mode(&self) -> u32 {
        self.mode.load(Ordering::Relaxed)
    }

    /// chmod: the permission bits; the change time moves.
    pub fn set_mode(&self, mode: u32) {
        self.mode.store(mode & 0o7777, Ordering::Relaxed);
        self.meta.lock().ctime = now();
    }

    pub fn links(&self) -> u32 {
        self.links.load(Ordering::Relaxed)
    }

    pub fn meta(&self) -> Meta {
        *self.meta.lock()
    }

    /// chown: `None` leaves an id as it is.
    pub fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) {
        let mut meta = self.meta.lock();
        meta.uid = uid.unwrap_or(meta.uid);
        meta.gid = gid.unwrap_or(meta.gid);
        meta.ctime = now();
    }

    /// utimensat: `None` leaves a time as it is; the change time moves.
    pub fn set_times(&self, atime: Option<Time>, mtime: Option<Time>) {
        let mut meta = self.meta.lock();
        meta.atime = atime.unwrap_or(meta.atime);
        meta.mtime = mtime.unwrap_or(meta.mtime);
        meta.ctime = now();
    }

    /// The contents changed (write, truncate, a directory's entries).
    pub(super) fn modified(&self) {
        let t = now();
        let mut meta = self.meta.lock();
        meta.mtime = t;
        meta.ctime = t;
    }

    /// EACCES unless the permission bits allow every access in `want`.
    pub fn check_access(&self, want: u32) -> Result<(), Errno> {
        if self.mode() & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// File size in bytes: a file's length, a symbolic link's target's
    /// length, 20 bytes per entry for a directory (`.` and `..` included:
    /// what Linux's tmpfs shows), 0 for a device node.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(object) => object.size(),
            Kind::Symlink(target) => target.len() as u64,
            Kind::Dir(entries) => 20 * (2 + entries.lock().len() as u64),
            Kind::CharDev(..) => 0,
        }
    }

    /// Copy bytes from `offset` into `buf`; returns how many (0 at end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        object.read_at(offset, buf, &mut KernelPhys)
    }

    /// Copy `data` into the file at `offset`, growing it as needed.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        self.check_not_running()?;
        let data = match data.len() {
            0 => data,
            len => &data[..self.sealed_write_len(offset, len)?],
        };
        // Out of frames part way: reclaim (the file's own pages may go to
        // swap) and go on, as Linux's tmpfs does; ENOSPC only when
        // nothing came free.
        let mut done = 0;
        loop {
            match object.write_at(offset + done as u64, &data[done..], &mut KernelPhys) {
                Ok(n) => done += n,
                Err(Errno::ENOSPC) => {}
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            if done == data.len() || !crate::reclaim::direct() {
                break;
            }
        }
        if done == 0 && !data.is_empty() {
            return Err(Errno::ENOSPC);
        }
        self.modified();
        Ok(done)
    }

    /// Make the file `size` bytes long and unmap what went past the new end
    /// from every address space that maps it (a later touch is SIGBUS).
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        self.check_not_running()?;
        self.check_sealed_resize(size)?;
        object.set_size(size, &mut KernelPhys)?;
        // Only the spaces that mapped the file (its i_mmap list), not every
        // VMA of every process.
        crate::proc::for_each_mapper(object, |space| {
            space.truncate_object(&mut KernelPhys, object, size)
        });
        self.modified();
        Ok(())
    }

    /// FALLOC_FL_PUNCH_HOLE over [offset, end): those bytes read back as
    /// zeros and the size stays. The whole pages among them are unmapped
    /// from every space that maps the file, but not where a private write
    /// made its own copy (Linux's `unmap_mapping_range` without
    /// `even_cows`), and freed, with their swap slots; the partial pages at
    /// either end are zeroed in place. EPERM under a write seal (Linux's
    /// shmem_fallocate).
    pub fn punch_hole(&self, offset: u64, end: u64) -> Result<(), Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        self.check_not_running()?;
        if self.write_sealed() {
            return Err(Errno::EPERM);
        }
        // Nothing exists past the end to punch.
        let end = end.min(object.size());
        if offset >= end {
            return Ok(());
        }
        let (first, last) = (offset.div_ceil(PAGE), end / PAGE);
        if first < last {
            crate::proc::punch_object(object, first, last);
        }
        let head = (offset, end.min(first * PAGE));
        let tail = ((last * PAGE).max(head.1), end);
        for (from, to) in [head, tail] {
            if from < to {
                object.zero_within_page(from, to, &mut KernelPhys)?;
            }
        }
        self.modified();
        Ok(())
    }

    /// ETXTBSY while a process runs this file (Linux's deny_write_access).
    pub fn check_not_running(&self) -> Result<(), Errno> {
        match self.executing.load(Ordering::Relaxed) {
            0 => Ok(()),
            _ => Err(Errno::ETXTBSY),
        }
    }

    /// The whole contents (the ELF loader reads a program this way).
    /// ENOMEM, not a panic, when the kernel cannot hold them: the size is
    /// the user's (ftruncate makes a sparse file of any length).
    pub fn contents(&self) -> Result<Vec<u8>, Errno> {
        let size = usize::try_from(self.size()).map_err(|_| Errno::EFBIG)?;
        let mut data = Vec::new();
        data.try_reserve_exact(size).map_err(|_| Errno::ENOMEM)?;
        data.resize(size, 0);
        let n = self.read_at(0, &mut data)?;
        data.truncate(n);
        Ok(data)
    }

    /// A symbolic link's target (EINVAL for anything else, as readlink says).
    pub fn link_target(&self) -> Result<String, Errno> {
        match &self.kind {
            Kind::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn dir_entries(&self) -> Result<&Mutex<BTreeMap<String, Arc<Inode>>>, Errno> {
        match &self.kind {
            Kind::Dir(entries) => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// A directory's entries, sorted by name (getdents).
    pub fn entries(&self) -> Result<Vec<(String, Arc<Inode>)>, Errno> {
        Ok(self
            .dir_entries()?
            .lock()
            .iter()
            .map(|(name, inode)| (name.clone(), inode.clone()))
            .collect())
    }

    /// The inode called `name` in this directory (ENOENT, ENOTDIR).
    pub fn child(&self, name: &str) -> Result<Arc<Inode>, Errno> {
        self.dir_entries()?
            .lock()
            .get(name)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    /// A directory's `..` (None for the root of a tree).
    pub fn parent(&self) -> Option<Arc<Inode>> {
        self.parent.lock().upgrade()
    }

    /// What is mounted on this directory, if anything.
    pub fn mounted(&self) -> Option<Mount> {
        self.mount.lock().clone()
    }

    pub fn set_mount(&self, mount: Option<Mount>) {
        *self.mount.lock() = mount;
    }

    /// A directory's link count as Linux's tmpfs shows it: its own name,
    /// its `.`, and each subdirectory's `..`.
    pub fn dir_links(&self) -> u32 {
        let subdirs = self.dir_entries().map_or(0, |e| {
            e.lock().values().filter(|n| n.is_dir()).count() as u32
        });
        2 + subdirs
    }

    /// Add `name` → `node` in this directory (EEXIST if taken).
    fn insert(self: &Arc<Self>, name: &str, node: Arc<Inode>) -> Result<Arc<Inode>, Errno> {
        check_name(name)?;
        let entries = self.dir_entries()?;
        if self.links() == 0 {
            return Err(Errno::ENOENT); // a removed directory takes no new names
        }
        let mut entries = entries.lock();
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if node.is_dir() {
            *node.parent.lock() = Arc::downgrade(self);
        }
        entries.insert(name.to_string(), node.clone());
        drop(entries);
        self.modified();
        Ok(node)
    }

    /// A new empty regular file called `name` in this directory.
    pub fn create_file(self: &Arc<Self>, name: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
        let node = new_inode(Kind::File(ObjectRef::new_file()), mode, self.dev);
        self.insert(name, node)
    }

    pub fn create_dir(self: &Arc<Self>, name: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
        self.insert(name, new_inode(empty_dir(), mode, self.dev))
    }

    /// symlink: a link called `name` holding `target` (mode 0777, as Linux).
    pub fn create_symlink(self: &Arc<Self>, name: &str, target: &str) -> Result<Arc<Inode>, Errno> {
        self.insert(
            name,
            new_inode(Kind::Symlink(target.into()), 0o777, self.dev),
        )
    }

    /// mknod of a character device.
    pub fn create_chardev(
        self: &Arc<Self>,
        name: &str,
        mode: u32,
        (major, minor): (u32, u32),
    ) -> Result<Arc<Inode>, Errno> {
        let node = new_inode(Kind::CharDev(major, minor), mode, self.dev);
        self.insert(name, node)
    }

    /// link: another name for `node` here. Directories take no hard links
    /// (EPERM); a name in another file system is EXDEV.
    pub fn link(self: &Arc<Self>, name: &str, node: &Arc<Inode>) -> Result<(), Errno> {
        if node.is_dir() {
            return Err(Errno::EPERM);
        }
        if node.dev != self.dev {
            return Err(Errno::EXDEV);
        }
        if node.links() == 0 {
            return Err(Errno::ENOENT); // an unlinked open file cannot come back
        }
        self.insert(name, node.clone())?;
        node.links.fetch_add(1, Ordering::Relaxed);
        node.meta.lock().ctime = now();
        Ok(())
    }

    /// Remove `name` from this directory: a file (unlink; EISDIR for a
    /// directory) or an empty directory (rmdir; ENOTDIR for a file,
    /// ENOTEMPTY if it has entries). The inode lives on while it is used.
    pub fn remove(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let mut entries = self.dir_entries()?.lock();
        let node = entries.get(name).ok_or(Errno::ENOENT)?;
        match (node.is_dir(), dir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            (true, true) if !node.entries()?.is_empty() => return Err(Errno::ENOTEMPTY),
            (true, true) if node.mounted().is_some() => return Err(Errno::EBUSY),
            _ => {}
        }
        let node = entries.remove(name).expect("ramfs::remove: entry vanished");
        drop(entries);
        node.unlinked();
        self.modified();
        Ok(())
    }

    /// One name fewer (a directory has only one).
    pub(super) fn unlinked(&self) {
        if self.is_dir() {
            self.links.store(0, Ordering::Relaxed);
        } else {
            self.links.fetch_sub(1, Ordering::Relaxed);
        }
        self.meta.lock().ctime = now();
    }
}

/// The page cache's frames go back when the last holder of the inode (a
/// directory entry, an open file) and of the object (a mapping) are gone.
impl Drop for Inode {
    fn drop(&mut self) {
        let kind = core::mem::replace(&mut self.kind, empty_dir());
        if let Kind::File(object) = kind {
            object.release(&mut KernelPhys);
        }
    }
}
