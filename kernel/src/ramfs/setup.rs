//! Building the tree at boot (the initrd's directories, files and links,
//! /proc and /dev's mount points) and counting its page cache.

use super::{Inode, Kind, Mount, root};
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use vm::errno::Errno;
use vm::vm_object::ObjectRef;

/// Frames held by the page caches of every file reachable from the root
/// and of every mounted tree (one hidden under a later mount included),
/// each file once however many names it has (the leak check at init's
/// exit counts them as in use, not lost).
pub fn cached_frames() -> u64 {
    fn walk(node: &Arc<Inode>, seen: &mut BTreeSet<u64>) -> u64 {
        if !seen.insert(node.ino) {
            return 0;
        }
        let mounted = match node.mounted() {
            Some(Mount::Ram(tree)) => walk(&tree, seen),
            _ => 0,
        };
        mounted
            + match &node.kind {
                Kind::File(object) => object.resident_pages(),
                Kind::Dir(entries) => {
                    let children: Vec<Arc<Inode>> = entries.lock().values().cloned().collect();
                    children.iter().map(|n| walk(n, seen)).sum()
                }
                _ => 0,
            }
    }
    let mut seen = BTreeSet::new();
    let trees = crate::vfs::mounted_trees();
    walk(&root(), &mut seen) + trees.iter().map(|t| walk(t, &mut seen)).sum::<u64>()
}

/// Tell `f` the page cache of every file of the mounted trees (tmpfs
/// mounts: reclaim's objects, `vm::reclaim::Spaces::objects`). The root
/// tree, the initrd's files, stays in RAM as Linux's rootfs does when
/// it is a ramfs (the programs' text among them), unless a shared
/// mapping of one of its files makes it reclaim's through the VMA.
/// Reclaim meets these locks against the lock order, so it only
/// try-locks them: a directory or mount table that is busy is skipped
/// this time. (A file no name reaches, open or memfd, is found only
/// while some VMA maps it.)
pub fn each_file(f: &mut dyn FnMut(&ObjectRef)) {
    fn walk(node: &Arc<Inode>, seen: &mut BTreeSet<u64>, f: &mut dyn FnMut(&ObjectRef)) {
        if !seen.insert(node.ino) {
            return;
        }
        if let Some(Mount::Ram(tree)) = node.mounted() {
            walk(&tree, seen, f);
        }
        match &node.kind {
            Kind::File(object) => f(object),
            Kind::Dir(entries) => {
                let Some(entries) = entries.try_lock() else {
                    return;
                };
                let children: Vec<Arc<Inode>> = entries.values().cloned().collect();
                drop(entries);
                children.iter().for_each(|n| walk(n, seen, f));
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    for tree in crate::vfs::try_mounted_trees().unwrap_or_default() {
        walk(&tree, &mut seen, f);
    }
}

/// The directory at an absolute path of the root tree, following no links
/// and no mounts (what boot-time set-up needs).
fn plain_lookup(path: &str) -> Result<Arc<Inode>, Errno> {
    let mut node = root();
    for name in path.split('/').filter(|n| !n.is_empty() && *n != ".") {
        node = node.child(name)?;
    }
    Ok(node)
}

/// The parent directory and last name of an absolute path (boot-time set-up).
fn plain_parent(path: &str) -> Result<(Arc<Inode>, &str), Errno> {
    let path = path.trim_end_matches('/');
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() {
        return Err(Errno::EEXIST);
    }
    Ok((plain_lookup(dir)?, name))
}

/// Create a directory at an absolute path (the initrd's directories).
pub fn mkdir(path: &str, mode: u32) -> Result<Arc<Inode>, Errno> {
    let (dir, name) = plain_parent(path)?;
    dir.create_dir(name, mode)
}

/// Create a file holding `data` at an absolute path (the initrd's files).
pub fn create_file(path: &str, data: &[u8], mode: u32) -> Result<Arc<Inode>, Errno> {
    let (dir, name) = plain_parent(path)?;
    let file = dir.create_file(name, mode)?;
    if file.write_at(0, data)? != data.len() {
        return Err(Errno::ENOSPC);
    }
    Ok(file)
}

/// Create a symbolic link at an absolute path (the initrd's links).
pub fn symlink(path: &str, target: &str) -> Result<Arc<Inode>, Errno> {
    let (dir, name) = plain_parent(path)?;
    dir.create_symlink(name, target)
}

/// The directory at `path`, created (with its parents) if missing.
pub fn ensure_dir(path: &str, mode: u32) -> Arc<Inode> {
    let mut node = root();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        node = match node.child(name) {
            Ok(child) => child,
            Err(_) => node
                .create_dir(name, mode)
                .expect("ramfs::ensure_dir: cannot create a boot directory"),
        };
    }
    node
}
