//! Paths: from a string to a file, across directories, symbolic links and
//! mount points. This is the one place a path is walked.
//!
//! A `Node` is something a path can name: a ramfs inode (file, directory,
//! link, device node) or a /proc entry. The walk goes one name at a time
//! from the root (absolute paths) or from a starting directory (`*at` calls'
//! `dirfd`, or the process's current directory, chdir); a
//! directory with something mounted on it is replaced by the mounted tree's
//! root; `..` of a tree's root goes to the parent of its mount point, as on
//! Linux. A symbolic link is followed where it appears, except as the last
//! name when the caller asks not to (lstat, O_NOFOLLOW, readlink, unlink);
//! more than 40 links in one walk is ELOOP.
//!
//! The mount table (`mount`, `umount2`, /proc/mounts) is here too.

use crate::procfs;
use crate::ramfs::{self, Inode, Mount};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;
use vm::errno::Errno;

/// Linux's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

#[derive(Clone)]
pub enum Node {
    Ram(Arc<Inode>),
    Proc(procfs::Node),
}

impl Node {
    pub fn is_dir(&self) -> bool {
        match self {
            Node::Ram(inode) => inode.is_dir(),
            Node::Proc(node) => node.is_dir(),
        }
    }

    /// What a symbolic link points to (None: not a link).
    pub fn link_target(&self) -> Option<String> {
        match self {
            Node::Ram(inode) => inode.link_target().ok(),
            Node::Proc(node) => node.link_target(),
        }
    }

    /// The ramfs inode, for calls that only work there (EACCES for /proc:
    /// its files can be neither created, removed nor renamed).
    pub fn inode(&self) -> Result<&Arc<Inode>, Errno> {
        match self {
            Node::Ram(inode) => Ok(inode),
            Node::Proc(_) => Err(Errno::EACCES),
        }
    }

    /// The entry `name` of this directory, mounts crossed.
    fn child(&self, name: &str) -> Result<Node, Errno> {
        match self {
            Node::Ram(dir) => Ok(enter_mount(dir.child(name)?)),
            Node::Proc(dir) => dir.child(name).map(Node::Proc),
        }
    }

    /// `..`: the parent directory, leaving a mounted tree through its mount point.
    fn parent(&self) -> Node {
        match self {
            Node::Ram(dir) => match dir.parent() {
                Some(parent) => Node::Ram(parent),
                None => mount_parent(|m| matches!(m, Mount::Ram(t) if Arc::ptr_eq(t, dir))),
            },
            Node::Proc(dir) => match dir.parent() {
                Some(parent) => Node::Proc(parent),
                None => mount_parent(|m| matches!(m, Mount::Proc)),
            },
        }
    }
}

/// A directory with a mount on it stands for the mounted tree's root.
fn enter_mount(inode: Arc<Inode>) -> Node {
    match inode.mounted() {
        Some(Mount::Ram(tree)) => Node::Ram(tree),
        Some(Mount::Proc) => Node::Proc(procfs::Node::root()),
        None => Node::Ram(inode),
    }
}

/// The root of the whole tree (with what is mounted on it).
pub fn root() -> Node {
    enter_mount(ramfs::root())
}

/// The node `path` names, starting at `base` for a relative path (None:
/// the root). `follow` says whether a symbolic link as the last name is
/// followed. A trailing slash demands a directory (ENOTDIR) and follows.
pub fn resolve(base: Option<&Node>, path: &str, follow: bool) -> Result<Node, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = base.cloned().unwrap_or_else(root);
    let mut links = 0;
    walk(start, path, follow, &mut links)
}

fn walk(start: Node, path: &str, follow: bool, links: &mut u32) -> Result<Node, Errno> {
    let mut node = if path.starts_with('/') { root() } else { start };
    let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
    let follow = follow || path.ends_with('/');
    for (i, &name) in names.iter().enumerate() {
        if !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        match name {
            "." => continue,
            ".." => {
                node = node.parent();
                continue;
            }
            _ => ramfs::check_name(name)?,
        }
        let child = node.child(name)?;
        let last = i + 1 == names.len();
        match child.link_target() {
            Some(target) if !last || follow => {
                *links += 1;
                if *links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                // A relative target starts in the directory holding the link.
                node = walk(node, &target, true, links)?;
            }
            _ => node = child,
        }
    }
    if path.ends_with('/') && !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(node)
}

/// Where a new name goes, or an old one is removed: the directory holding
/// `path`'s last name (links followed on the way) and that name. The name
/// is None when the path ends in `.`, `..` or is the root: it names a
/// directory that exists, with no name to create or remove there.
pub struct Parent {
    pub dir: Node,
    pub name: Option<String>,
}

pub fn resolve_parent(base: Option<&Node>, path: &str) -> Result<Parent, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let trimmed = path.trim_end_matches('/');
    let (dir_path, name) = match trimmed.rsplit_once('/') {
        Some((dir, name)) => (if dir.is_empty() { "/" } else { dir }, name),
        None if trimmed.is_empty() => ("/", ""),
        None => (".", trimmed),
    };
    let dir = resolve(base, dir_path, true)?;
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    match name {
        "" | "." | ".." => Ok(Parent {
            dir: resolve(base, path, true)?,
            name: None,
        }),
        name => {
            ramfs::check_name(name)?;
            Ok(Parent {
                dir,
                name: Some(name.to_string()),
            })
        }
    }
}

/// The ramfs inode at an absolute path, links followed (exec, boot).
pub fn lookup_file(path: &str) -> Result<Arc<Inode>, Errno> {
    match resolve(None, path, true)? {
        Node::Ram(inode) => Ok(inode),
        Node::Proc(_) => Err(Errno::EACCES),
    }
}

/// One line of /proc/mounts.
#[derive(Clone)]
pub struct MountEntry {
    pub source: String,
    pub target: String,
    pub fstype: &'static str,
    point: Arc<Inode>,
    mount: Mount,
}

static MOUNTS: Mutex<Vec<MountEntry>> = Mutex::new(Vec::new());

/// The parent of the mount point of the tree `is_it` recognises (the root
/// if it is not mounted anywhere).
fn mount_parent(is_it: impl Fn(&Mount) -> bool) -> Node {
    let point = MOUNTS
        .lock()
        .iter()
        .rev()
        .find(|m| is_it(&m.mount))
        .map(|m| m.point.clone());
    match point.and_then(|p| p.parent()) {
        Some(parent) => enter_mount(parent),
        None => root(),
    }
}

/// The directory a new mount at `node` goes on: `node` itself, or, when
/// `node` is the root of a mounted tree (or /proc), the directory that tree
/// is mounted on (the new mount then hides it, as stacked mounts do on
/// Linux). None for a directory inside /proc.
pub fn mount_point(node: &Node) -> Option<Arc<Inode>> {
    let under = |is_it: &dyn Fn(&Mount) -> bool| {
        MOUNTS
            .lock()
            .iter()
            .rev()
            .find(|m| is_it(&m.mount))
            .map(|m| m.point.clone())
    };
    match node {
        Node::Ram(inode) => {
            under(&|m| matches!(m, Mount::Ram(t) if Arc::ptr_eq(t, inode))).or(Some(inode.clone()))
        }
        Node::Proc(p) if *p == procfs::Node::root() => under(&|m| matches!(m, Mount::Proc)),
        Node::Proc(_) => None,
    }
}

/// The file systems `mount` knows: what Linux calls them.
pub const FILESYSTEMS: [&str; 4] = ["proc", "tmpfs", "devtmpfs", "ramfs"];

/// mount(2) of `fstype` on the directory `point` (at `target`). A new
/// mount hides what was there (tmpfs, ramfs: a fresh empty tree; devtmpfs:
/// the one device tree; proc: the process file system). ENODEV for any
/// other file-system type; EBUSY for proc or devtmpfs where it is mounted
/// already.
pub fn mount(source: &str, point: Arc<Inode>, target: &str, fstype: &str) -> Result<(), Errno> {
    let (fstype, mount) = match fstype {
        "proc" => ("proc", Mount::Proc),
        "tmpfs" => ("tmpfs", Mount::Ram(ramfs::new_tree())),
        "ramfs" => ("ramfs", Mount::Ram(ramfs::new_tree())),
        "devtmpfs" => ("devtmpfs", Mount::Ram(crate::dev::devtmpfs())),
        _ => return Err(Errno::ENODEV),
    };
    if !point.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // The same tree (proc, devtmpfs) on top of itself: EBUSY, as on Linux.
    let same = match (point.mounted(), &mount) {
        (Some(Mount::Proc), Mount::Proc) => true,
        (Some(Mount::Ram(old)), Mount::Ram(new)) => Arc::ptr_eq(&old, new),
        _ => false,
    };
    if same {
        return Err(Errno::EBUSY);
    }
    point.set_mount(Some(mount.clone()));
    MOUNTS.lock().push(MountEntry {
        source: source.into(),
        target: target.into(),
        fstype,
        point,
        mount,
    });
    Ok(())
}

/// umount2: take the last mount at `target` away (EINVAL if none).
pub fn umount(target: &str) -> Result<(), Errno> {
    let mut mounts = MOUNTS.lock();
    let at = mounts
        .iter()
        .rposition(|m| m.target == target)
        .ok_or(Errno::EINVAL)?;
    let gone = mounts.remove(at);
    let under = mounts
        .iter()
        .rev()
        .find(|m| Arc::ptr_eq(&m.point, &gone.point))
        .map(|m| m.mount.clone());
    gone.point.set_mount(under);
    Ok(())
}

/// Every ramfs tree in the mount table (hidden ones too).
pub fn mounted_trees() -> Vec<Arc<Inode>> {
    MOUNTS
        .lock()
        .iter()
        .filter_map(|m| match &m.mount {
            Mount::Ram(tree) => Some(tree.clone()),
            Mount::Proc => None,
        })
        .collect()
}

/// `mounted_trees`, or None when the mount table is held (reclaim).
pub fn try_mounted_trees() -> Option<Vec<Arc<Inode>>> {
    let mounts = MOUNTS.try_lock()?;
    Some(
        mounts
            .iter()
            .filter_map(|m| match &m.mount {
                Mount::Ram(tree) => Some(tree.clone()),
                Mount::Proc => None,
            })
            .collect(),
    )
}

/// The mount table, oldest first (/proc/mounts).
pub fn mounts() -> Vec<MountEntry> {
    MOUNTS.lock().clone()
}

/// Boot: /proc and /dev exist and have their file systems on them.
pub fn mount_boot_filesystems() {
    for (dir, fstype) in [("/proc", "proc"), ("/dev", "devtmpfs")] {
        let point = ramfs::ensure_dir(dir, 0o755);
        if point.mounted().is_none()
            && let Err(e) = mount(fstype, point, dir, fstype)
        {
            log::warn!("cannot mount {fstype} on {dir}: {e:?}");
        }
    }
}

/// The absolute path of a ramfs directory, walked up by parents and mount
/// points (fchdir's answer for getcwd). None for /proc directories and for
/// a directory no longer reachable from the root.
pub fn path_of(node: &Node) -> Option<String> {
    let Node::Ram(start) = node else {
        return None;
    };
    let mut dir = start.clone();
    let mut names: Vec<String> = Vec::new();
    let top = ramfs::root();
    while !Arc::ptr_eq(&dir, &top) {
        if let Some(parent) = dir.parent() {
            let (name, _) = parent
                .entries()
                .ok()?
                .into_iter()
                .find(|(_, child)| Arc::ptr_eq(child, &dir))?;
            names.push(name);
            dir = parent;
        } else {
            // A tree's root: go on from the directory it is mounted on.
            dir = MOUNTS
                .lock()
                .iter()
                .rev()
                .find(|m| matches!(&m.mount, Mount::Ram(t) if Arc::ptr_eq(t, &dir)))
                .map(|m| m.point.clone())?;
        }
    }
    let mut path = String::new();
    for name in names.iter().rev() {
        path.push('/');
        path.push_str(name);
    }
    Some(if path.is_empty() { "/".into() } else { path })
}
