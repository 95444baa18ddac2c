//! File-system syscalls that take a path: open, openat, stat, lstat,
//! newfstatat, access, faccessat(2), unlink, mkdir, rmdir, truncate (and
//! their *at forms). Names (rename, link, symlink, readlink, mknod) are in
//! `names.rs`; attributes (chmod, chown, utimensat, statx, statfs) in
//! `attr.rs`; descriptor I/O in `io.rs`; the layouts in `stat.rs`.
//!
//! Every path is copied in with `usercopy` (EFAULT for a bad pointer,
//! ENAMETOOLONG past PATH_MAX) and walked by `vfs` (symbolic links, mounts,
//! /proc); the errno for each refusal is the one Linux gives.

use super::stat;
use crate::fd::{
    FileKind, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_TRUNC,
    O_WRONLY, OpenFile,
};
use crate::ramfs::{Inode, Kind, MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::vfs::{self, Node};
use crate::{dev, proc, procfs, usercopy};
use alloc::string::String;
use alloc::sync::Arc;
use vm::errno::{Errno, SysResult};

pub const AT_FDCWD: i32 = -100;
const AT_REMOVEDIR: u64 = 0x200;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
pub const AT_EMPTY_PATH: u64 = 0x1000;
const AT_EACCESS: u64 = 0x200;
const PATH_MAX: usize = 4096;
/// Files are created with mode & ~umask; pageos's umask is Linux's default.
pub const UMASK: u32 = 0o022;

/// A path argument, copied in from user memory.
pub fn user_path(addr: u64) -> Result<String, Errno> {
    let bytes = proc::with_current(|p| usercopy::read_cstr(&mut *p.space(), addr, PATH_MAX - 1))?;
    String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
}

/// The directory a relative path starts from: `dirfd`'s, or the current
/// directory for AT_FDCWD; None (the root) for absolute paths (EBADF,
/// ENOTDIR for a bad `dirfd`). This is the one place a relative path gets
/// its start.
pub fn start_dir(dirfd: i32, path: &str) -> Result<Option<Node>, Errno> {
    if path.starts_with('/') {
        return Ok(None);
    }
    if dirfd == AT_FDCWD {
        return Ok(current_dir());
    }
    let node = fd_node(dirfd as u64)?;
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(Some(node))
}

/// The node an open descriptor refers to (EBADF; ENOTDIR for what is not
/// a file system entry: the console, a socket).
pub fn fd_node(fd: u64) -> Result<Node, Errno> {
    let file = proc::with_current(|p| p.files.get(fd))?;
    let file = file.lock();
    match &file.kind {
        FileKind::Inode(inode) | FileKind::Device(inode, _) => Ok(Node::Ram(inode.clone())),
        FileKind::Proc(open) => Ok(Node::Proc(open.node)),
        _ => Err(Errno::ENOTDIR),
    }
}

/// `path` relative to `dirfd`, resolved (`follow`: a last symbolic link is
/// followed). With AT_EMPTY_PATH, "" names `dirfd` itself.
pub fn resolve_at(dirfd: i32, path: &str, follow: bool, empty_ok: bool) -> Result<Node, Errno> {
    if path.is_empty() && empty_ok {
        return if dirfd == AT_FDCWD {
            Ok(current_dir().unwrap_or_else(vfs::root))
        } else {
            fd_node(dirfd as u64).map_err(|e| if e == Errno::ENOTDIR { Errno::EBADF } else { e })
        };
    }
    vfs::resolve(start_dir(dirfd, path)?.as_ref(), path, follow)
}

/// The directory that would hold `path`'s last name, and the name.
pub fn parent_at(dirfd: i32, path: &str) -> Result<(Arc<Inode>, Option<String>), Errno> {
    let parent = vfs::resolve_parent(start_dir(dirfd, path)?.as_ref(), path)?;
    let dir = match parent.dir {
        Node::Ram(dir) => dir,
        // /proc's entries are made by the kernel alone.
        Node::Proc(_) => return Err(Errno::EACCES),
    };
    Ok((dir, parent.name))
}

/// openat(2): open (and with O_CREAT make) a file; returns the descriptor.
pub fn openat(dirfd: i32, path: u64, flags: u64, mode: u64) -> SysResult {
    let path = user_path(path)?;
    let flags = flags as u32;
    // Access mode 3 is Linux's "neither": permission to read and write is
    // checked, and the descriptor can do neither (it is for ioctl).
    let writes = flags & O_ACCMODE != 0 && flags & O_PATH == 0;
    let kind = match open_node(dirfd, &path, flags, mode as u32)? {
        Node::Proc(node) => {
            if flags & O_DIRECTORY != 0 && !node.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if node.is_dir() && writes {
                return Err(Errno::EISDIR);
            }
            FileKind::Proc(Arc::new(procfs::Open::new(node, writes)?))
        }
        Node::Ram(inode) => match inode.kind {
            Kind::CharDev(major, minor) if flags & O_PATH == 0 => {
                let device = dev::Device::from_numbers(major, minor)?;
                // /dev/tty is the caller's controlling terminal: ENXIO without one.
                if device == dev::Device::Tty && !crate::tty::controls_caller() {
                    return Err(Errno::ENXIO);
                }
                FileKind::Device(inode.clone(), device)
            }
            _ => FileKind::Inode(inode),
        },
    };
    if flags & O_TRUNC != 0
        && writes
        && let FileKind::Inode(inode) = &kind
        && inode.object().is_some()
    {
        inode.truncate(0)?;
    }
    let file = OpenFile::new(kind, flags);
    proc::with_current(|p| p.files.install(file, flags & O_CLOEXEC != 0))
}

/// The node `openat` opens, created if O_CREAT asks, with its checks:
/// EEXIST (O_EXCL), EISDIR (a directory for writing), ENOTDIR
/// (O_DIRECTORY on a file), ELOOP (O_NOFOLLOW on a link), EACCES (the
/// permission bits).
fn open_node(dirfd: i32, path: &str, flags: u32, mode: u32) -> Result<Node, Errno> {
    let writes = flags & O_ACCMODE != 0 && flags & O_PATH == 0;
    let follow = flags & O_NOFOLLOW == 0 && flags & (O_CREAT | O_EXCL) != (O_CREAT | O_EXCL);
    let node = if flags & O_CREAT != 0 {
        match resolve_at(dirfd, path, follow, false) {
            Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            Ok(node) => node,
            Err(Errno::ENOENT) => {
                let (dir, name) = parent_at(dirfd, path)?;
                let Some(name) = name.filter(|_| !path.ends_with('/')) else {
                    return Err(Errno::EISDIR); // O_CREAT of a directory path
                };
                dir.check_access(MAY_WRITE)?;
                // A new file is opened with the access asked, whatever its mode.
                return dir
                    .create_file(&name, mode & 0o7777 & !UMASK)
                    .map(Node::Ram);
            }
            Err(e) => return Err(e),
        }
    } else {
        resolve_at(dirfd, path, flags & O_NOFOLLOW == 0, false)?
    };
    let inode = match &node {
        Node::Ram(inode) => inode,
        Node::Proc(_) => return Ok(node),
    };
    if inode.is_symlink() && flags & O_PATH == 0 {
        return Err(Errno::ELOOP); // O_NOFOLLOW on a link
    }
    if inode.is_dir() {
        if writes || flags & O_CREAT != 0 {
            return Err(Errno::EISDIR);
        }
    } else if flags & O_DIRECTORY != 0 {
        return Err(Errno::ENOTDIR);
    }
    if flags & O_PATH != 0 {
        return Ok(node);
    }
    let mut want = 0;
    if flags & O_ACCMODE != O_WRONLY {
        want |= MAY_READ;
    }
    if writes || flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
        inode.check_not_running()?;
    }
    inode.check_access(want)?;
    Ok(node)
}

/// open(2): openat relative to the root.
pub fn open(path: u64, flags: u64, mode: u64) -> SysResult {
    openat(AT_FDCWD, path, flags, mode)
}

/// creat(2): open(O_CREAT | O_WRONLY | O_TRUNC).
pub fn creat(path: u64, mode: u64) -> SysResult {
    openat(
        AT_FDCWD,
        path,
        u64::from(O_CREAT | O_WRONLY | O_TRUNC),
        mode,
    )
}

/// newfstatat(2), and stat/lstat. AT_EMPTY_PATH with "" is fstat of `dirfd`.
pub fn fstatat(dirfd: i32, path: u64, buf: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        return super::io::fstat(dirfd as u64, buf);
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let node = resolve_at(dirfd, &path, follow, flags & AT_EMPTY_PATH != 0)?;
    stat::copy_out(buf, &stat::of_node(&node).encode())
}

pub fn stat(path: u64, buf: u64) -> SysResult {
    fstatat(AT_FDCWD, path, buf, 0)
}

pub fn lstat(path: u64, buf: u64) -> SysResult {
    fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
}

const F_OK: u64 = 0;
const R_OK: u64 = 4;
const W_OK: u64 = 2;
const X_OK: u64 = 1;

/// faccessat2(dirfd, path, mode, flags), access, faccessat: whether the
/// file exists (F_OK) and the permission bits allow R_OK, W_OK, X_OK.
/// Root passes read and write checks whatever the bits say, and execute
/// ones when any execute bit is set (Linux's rule for CAP_DAC_OVERRIDE);
/// /proc's entries are checked against their own bits.
pub fn faccessat2(dirfd: i32, path: u64, mode: u64, flags: u64) -> SysResult {
    if mode & !(R_OK | W_OK | X_OK) != F_OK
        || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let node = resolve_at(dirfd, &path, follow, flags & AT_EMPTY_PATH != 0)?;
    let bits = match &node {
        Node::Ram(inode) => inode.mode(),
        Node::Proc(n) => n.mode(),
    };
    if mode & X_OK != 0 && bits & 0o111 == 0 && !node.is_dir() {
        return Err(Errno::EACCES);
    }
    if let Node::Proc(n) = &node
        && mode & W_OK != 0
        && n.mode() & 0o200 == 0
    {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

pub fn faccessat(dirfd: i32, path: u64, mode: u64) -> SysResult {
    faccessat2(dirfd, path, mode, 0)
}

pub fn access(path: u64, mode: u64) -> SysResult {
    faccessat2(AT_FDCWD, path, mode, 0)
}

/// unlinkat(2): remove a name (AT_REMOVEDIR: an empty directory). A
/// symbolic link itself is removed, not what it points to.
pub fn unlinkat(dirfd: i32, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let dir_wanted = flags & AT_REMOVEDIR != 0;
    let (dir, name) = parent_at(dirfd, &path)?;
    let Some(name) = name else {
        return Err(if !dir_wanted {
            Errno::EISDIR
        } else if path.trim_end_matches('/').ends_with('.')
            && !path.trim_end_matches('/').ends_with("..")
        {
            Errno::EINVAL // rmdir refuses "." as Linux does
        } else if path.trim_end_matches('/').ends_with("..") {
            Errno::ENOTEMPTY
        } else {
            Errno::EBUSY
        });
    };
    if !dir_wanted && path.ends_with('/') {
        let node = dir.child(&name)?;
        return Err(if node.is_dir() {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    dir.check_access(MAY_WRITE)?;
    dir.remove(&name, dir_wanted)?;
    Ok(0)
}

pub fn unlink(path: u64) -> SysResult {
    unlinkat(AT_FDCWD, path, 0)
}

pub fn rmdir(path: u64) -> SysResult {
    unlinkat(AT_FDCWD, path, AT_REMOVEDIR)
}

/// mkdirat(2): EEXIST if the name is taken (the root included).
pub fn mkdirat(dirfd: i32, path: u64, mode: u64) -> SysResult {
    let path = user_path(path)?;
    let (dir, name) = parent_at(dirfd, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    dir.check_access(MAY_WRITE)?;
    dir.create_dir(&name, mode as u32 & 0o7777 & !UMASK)?;
    Ok(0)
}

pub fn mkdir(path: u64, mode: u64) -> SysResult {
    mkdirat(AT_FDCWD, path, mode)
}

/// truncate(2): as ftruncate, on a path; the file must be writable (EACCES).
pub fn truncate(path: u64, len: u64) -> SysResult {
    let len = i64::try_from(len).map_err(|_| Errno::EINVAL)?;
    let path = user_path(path)?;
    let node = vfs::resolve(None, &path, true)?;
    let inode = node.inode()?;
    if inode.is_dir() {
        return Err(Errno::EISDIR);
    }
    if inode.object().is_none() {
        return Err(Errno::EINVAL);
    }
    inode.check_access(MAY_WRITE)?;
    inode.truncate(len as u64)?;
    Ok(0)
}

/// The inode an exec'able path names: ENOENT, EACCES (a directory, a
/// device, a file without its execute bit, or a /proc file).
pub fn executable(path: &str) -> Result<Arc<Inode>, Errno> {
    let inode = vfs::lookup_file(path)?;
    if inode.object().is_none() {
        return Err(Errno::EACCES);
    }
    inode.check_access(MAY_EXEC)?;
    Ok(inode)
}

/// The current directory (None: the root).
fn current_dir() -> Option<Node> {
    proc::with_current(|p| p.cwd.as_ref().map(|(node, _)| node.clone()))
}

/// `path` made absolute against the current directory's path, with `.`,
/// `..` and repeated slashes taken out by name (a symbolic link in it is
/// kept as its own name: getcwd shows the path as it was walked).
fn absolute_path(path: &str) -> String {
    let mut parts: alloc::vec::Vec<String> = alloc::vec::Vec::new();
    if !path.starts_with('/') {
        let cwd = proc::with_current(|p| p.cwd.as_ref().map(|(_, s)| s.clone()));
        parts.extend(
            cwd.unwrap_or_default()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name.into()),
        }
    }
    let mut out = String::new();
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// chdir(path): ENOTDIR for what is not a directory.
pub fn chdir(path: u64) -> SysResult {
    let path = user_path(path)?;
    let node = resolve_at(AT_FDCWD, &path, true, false)?;
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let name = absolute_path(&path);
    proc::with_current(|p| p.cwd = Some((node, name)));
    Ok(0)
}

/// fchdir(fd): the directory an open descriptor names. Its path is the
/// one it was opened by, when known; else the root's name stands in.
pub fn fchdir(fd: u64) -> SysResult {
    let node = fd_node(fd)?;
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let name = vfs::path_of(&node).unwrap_or_else(|| "/".into());
    proc::with_current(|p| p.cwd = Some((node, name)));
    Ok(0)
}

/// getcwd(buf, size): the current directory's path with its NUL; ERANGE
/// if it does not fit.
pub fn getcwd(buf: u64, size: u64) -> SysResult {
    let mut name = proc::with_current(|p| p.cwd.as_ref().map(|(_, s)| s.clone()))
        .unwrap_or_else(|| "/".into())
        .into_bytes();
    name.push(0);
    if (size as usize) < name.len() {
        return Err(Errno::ERANGE);
    }
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &name))?;
    Ok(name.len())
}
