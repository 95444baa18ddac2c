//! ramfs: the in-memory file system, filled from the initrd at boot.
//!
//! A tree of inodes. A directory maps names to inodes; a regular file's
//! bytes live in the frames of its `vm_object` (its page cache), which
//! read(), write() and every mapping of the file share, so they always
//! agree. A name is only a way to find an inode: unlink removes the name,
//! and the data lives on while an open file (which holds the inode) or a
//! mapping (which holds the object) still uses it.
//!
//! Paths are absolute, or relative to a directory (the root when there is
//! no other: pageos has no current directory). There is one user and no
//! superuser override: a file's owner permission bits are what open checks.

use crate::phys::KernelPhys;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::{Mutex, Once};
use vm::errno::Errno;
use vm::vm_object::ObjectRef;

pub enum Kind {
    Dir(Mutex<BTreeMap<String, Arc<Inode>>>),
    /// A regular file: its size and pages are the object's.
    File(ObjectRef),
}

pub struct Inode {
    pub ino: u64,
    pub kind: Kind,
    /// Permission bits (0o7777).
    mode: AtomicU32,
    /// Names that refer to the inode: 0 once unlinked.
    links: AtomicU32,
}

/// Owner permission bits, the ones pageos's single user has.
pub const MAY_READ: u32 = 0o400;
pub const MAY_WRITE: u32 = 0o200;
pub const MAY_EXEC: u32 = 0o100;
const NAME_MAX: usize = 255;

static ROOT: Once<Arc<Inode>> = Once::new();
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

fn new_inode(kind: Kind, mode: u32) -> Arc<Inode> {
    Arc::new(Inode {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        kind,
        mode: AtomicU32::new(mode & 0o7777),
        links: AtomicU32::new(1),
    })
}

pub fn root() -> Arc<Inode> {
    ROOT.call_once(|| new_inode(Kind::Dir(Mutex::new(BTreeMap::new())), 0o755))
        .clone()
}

/// The path's components with `.` and `..` applied (`..` of the root is
/// the root). ENOENT for an empty path, ENAMETOOLONG for a long name.
fn components(path: &str) -> Result<Vec<&str>, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name if name.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
            name => parts.push(name),
        }
    }
    Ok(parts)
}

/// Where a relative path starts: `base`, or the root for absolute paths.
fn start(path: &str, base: Option<&Arc<Inode>>) -> Arc<Inode> {
    match base {
        Some(dir) if !path.starts_with('/') => dir.clone(),
        _ => root(),
    }
}

/// The inode at `path` (relative paths start at `base`, or the root).
/// A trailing slash demands a directory (ENOTDIR).
pub fn lookup_at(base: Option<&Arc<Inode>>, path: &str) -> Result<Arc<Inode>, Errno> {
    let node = walk(start(path, base), &components(path)?)?;
    if path.ends_with('/') && !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(node)
}

pub fn lookup(path: &str) -> Result<Arc<Inode>, Errno> {
    lookup_at(None, path)
}

fn walk(mut node: Arc<Inode>, names: &[&str]) -> Result<Arc<Inode>, Errno> {
    for &name in names {
        let next = match &node.kind {
            Kind::Dir(entries) => entries.lock().get(name).cloned().ok_or(Errno::ENOENT)?,
            Kind::File(_) => return Err(Errno::ENOTDIR),
        };
        node = next;
    }
    Ok(node)
}

/// The directory that holds `path`'s last name, and that name. The root
/// itself has no parent: EEXIST for a create, EBUSY for a removal.
pub fn parent_at(
    base: Option<&Arc<Inode>>,
    path: &str,
) -> Result<(Arc<Inode>, Option<String>), Errno> {
    let parts = components(path)?;
    let Some((name, parents)) = parts.split_last() else {
        return Ok((root(), None));
    };
    let dir = walk(start(path, base), parents)?;
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok((dir, Some(name.to_string())))
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// The page cache of a regular file (None for a directory).
    pub fn object(&self) -> Option<&ObjectRef> {
        match &self.kind {
            Kind::File(object) => Some(object),
            Kind::Dir(_) => None,
        }
    }

    pub fn mode(&self) -> u32 {
        self.mode.load(Ordering::Relaxed)
    }

    pub fn links(&self) -> u32 {
        self.links.load(Ordering::Relaxed)
    }

    /// EACCES unless the permission bits allow every access in `want`.
    pub fn check_access(&self, want: u32) -> Result<(), Errno> {
        if self.mode() & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// File size in bytes (0 for directories).
    pub fn size(&self) -> u64 {
        self.object().map_or(0, ObjectRef::size)
    }

    /// Copy bytes from `offset` into `buf`; returns how many (0 at end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        Ok(object.read_at(offset, buf, &KernelPhys))
    }

    /// Copy `data` into the file at `offset`, growing it as needed.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        object.write_at(offset, data, &mut KernelPhys)
    }

    /// Make the file `size` bytes long and unmap what went past the new end
    /// from every address space that maps it (a later touch is SIGBUS).
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        let object = self.object().ok_or(Errno::EISDIR)?;
        object.set_size(size, &mut KernelPhys)?;
        crate::proc::for_each_space(|space| {
            space.truncate_object(&mut KernelPhys, object, size);
        });
        Ok(())
    }

    /// The whole contents (the ELF loader reads a program this way).
    pub fn contents(&self) -> Result<Vec<u8>, Errno> {
        let size = usize::try_from(self.size()).map_err(|_| Errno::EFBIG)?;
        let mut data = alloc::vec![0; size];
        let n = self.read_at(0, &mut data)?;
        data.truncate(n);
        Ok(data)
    }

    /// A directory's entries, sorted by name (getdents).
    pub fn entries(&self) -> Result<Vec<(String, Arc<Inode>)>, Errno> {
        match &self.kind {
            Kind::Dir(entries) => Ok(entries
                .lock()
                .iter()
                .map(|(name, inode)| (name.clone(), inode.clone()))
                .collect()),
            Kind::File(_) => Err(Errno::ENOTDIR),
        }
    }

    /// Add `name` → a new inode of `kind` in this directory (EEXIST if taken).
    fn insert(&self, name: &str, kind: Kind, mode: u32) -> Result<Arc<Inode>, Errno> {
        let Kind::Dir(entries) = &self.kind else {
            return Err(Errno::ENOTDIR);
        };
        if self.links() == 0 {
            return Err(Errno::ENOENT); // a removed directory takes no new names
        }
        let mut entries = entries.lock();
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let node = new_inode(kind, mode);
        entries.insert(name.to_string(), node.clone());
        Ok(node)
    }

    /// A new empty regular file called `name` in this directory.
    pub fn create_file(&self, name: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
        self.insert(name, Kind::File(ObjectRef::new_file()), mode)
    }

    pub fn create_dir(&self, name: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
        self.insert(name, Kind::Dir(Mutex::new(BTreeMap::new())), mode)
    }

    /// Remove `name` from this directory: a file (unlink; EISDIR for a
    /// directory) or an empty directory (rmdir; ENOTDIR for a file,
    /// ENOTEMPTY if it has entries). The inode lives on while it is used.
    pub fn remove(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let Kind::Dir(entries) = &self.kind else {
            return Err(Errno::ENOTDIR);
        };
        let mut entries = entries.lock();
        let node = entries.get(name).ok_or(Errno::ENOENT)?;
        match (&node.kind, dir) {
            (Kind::Dir(_), false) => return Err(Errno::EISDIR),
            (Kind::File(_), true) => return Err(Errno::ENOTDIR),
            (Kind::Dir(children), true) if !children.lock().is_empty() => {
                return Err(Errno::ENOTEMPTY);
            }
            _ => {}
        }
        let node = entries.remove(name).expect("ramfs::remove: entry vanished");
        node.links.store(0, Ordering::Relaxed);
        Ok(())
    }
}

/// The page cache's frames go back when the last holder of the inode (a
/// directory entry, an open file) and of the object (a mapping) are gone.
impl Drop for Inode {
    fn drop(&mut self) {
        let kind = core::mem::replace(&mut self.kind, Kind::Dir(Mutex::new(BTreeMap::new())));
        if let Kind::File(object) = kind {
            object.release(&mut KernelPhys);
        }
    }
}

/// Frames held by the page caches of every file reachable from the root
/// (the leak check at init's exit counts them as in use, not lost).
pub fn cached_frames() -> u64 {
    fn walk(node: &Inode) -> u64 {
        match &node.kind {
            Kind::File(object) => object.resident_pages(),
            Kind::Dir(entries) => entries.lock().values().map(|n| walk(n)).sum(),
        }
    }
    walk(&root())
}

/// Create a directory at an absolute path (the initrd's directories).
pub fn mkdir(path: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
    let (dir, name) = parent_at(None, path)?;
    dir.create_dir(&name.ok_or(Errno::EEXIST)?, mode)
}

/// Create a file holding `data` at an absolute path (the initrd's files).
pub fn create_file(path: &str, data: &[u8], mode: u32) -> Result<Arc<Inode>, Errno> {
    let (dir, name) = parent_at(None, path)?;
    let file = dir.create_file(&name.ok_or(Errno::EEXIST)?, mode)?;
    if file.write_at(0, data)? != data.len() {
        return Err(Errno::ENOSPC);
    }
    Ok(file)
}
