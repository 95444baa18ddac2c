//! ramfs: the in-memory file system, filled from the initrd at boot.
//!
//! A tree of inodes; a directory maps names to inodes, a file holds bytes.
//! Paths are absolute (there is no current directory yet); `.` and `..`
//! are resolved by name.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::{Mutex, Once};
use vm::errno::Errno;

pub enum Kind {
    Dir(Mutex<BTreeMap<String, Arc<Inode>>>),
    File(Mutex<Vec<u8>>),
}

pub struct Inode {
    pub ino: u64,
    pub kind: Kind,
}

static ROOT: Once<Arc<Inode>> = Once::new();
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

fn new_inode(kind: Kind) -> Arc<Inode> {
    Arc::new(Inode {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        kind,
    })
}

fn root() -> Arc<Inode> {
    ROOT.call_once(|| new_inode(Kind::Dir(Mutex::new(BTreeMap::new()))))
        .clone()
}

/// The path's components with `.` and `..` applied.
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
            name if name.len() > 255 => return Err(Errno::ENAMETOOLONG),
            name => parts.push(name),
        }
    }
    Ok(parts)
}

/// The inode at `path`.
pub fn lookup(path: &str) -> Result<Arc<Inode>, Errno> {
    walk(&components(path)?)
}

fn walk(names: &[&str]) -> Result<Arc<Inode>, Errno> {
    let mut node = root();
    for &name in names {
        let next = match &node.kind {
            Kind::Dir(entries) => entries.lock().get(name).cloned().ok_or(Errno::ENOENT)?,
            Kind::File(_) => return Err(Errno::ENOTDIR),
        };
        node = next;
    }
    Ok(node)
}

/// Add `kind` under `path`'s parent directory; EEXIST if the name is taken.
fn create(path: &str, kind: Kind) -> Result<Arc<Inode>, Errno> {
    let parts = components(path)?;
    let (name, parents) = parts.split_last().ok_or(Errno::EEXIST)?;
    let parent = walk(parents)?;
    let Kind::Dir(entries) = &parent.kind else {
        return Err(Errno::ENOTDIR);
    };
    let mut entries = entries.lock();
    if entries.contains_key(*name) {
        return Err(Errno::EEXIST);
    }
    let node = new_inode(kind);
    entries.insert(name.to_string(), node.clone());
    Ok(node)
}

pub fn mkdir(path: &str) -> Result<Arc<Inode>, Errno> {
    create(path, Kind::Dir(Mutex::new(BTreeMap::new())))
}

pub fn create_file(path: &str, data: Vec<u8>) -> Result<Arc<Inode>, Errno> {
    create(path, Kind::File(Mutex::new(data)))
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// File size in bytes (0 for directories).
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(data) => data.lock().len() as u64,
            Kind::Dir(_) => 0,
        }
    }

    /// Copy bytes from `offset` into `buf`; returns how many (0 at end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Kind::File(data) = &self.kind else {
            return Err(Errno::EISDIR);
        };
        let data = data.lock();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    /// The whole contents (the ELF loader reads a program this way).
    pub fn contents(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::File(data) => Ok(data.lock().clone()),
            Kind::Dir(_) => Err(Errno::EISDIR),
        }
    }
}
