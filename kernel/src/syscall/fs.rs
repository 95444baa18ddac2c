//! File-system syscalls that take a path: open, openat, stat, unlink,
//! mkdir, rmdir, truncate (and their *at forms). Descriptor I/O is in
//! `io.rs`; the layouts of `struct stat` and directory entries in `stat.rs`.
//!
//! Every path is copied in with `usercopy` (EFAULT for a bad pointer,
//! ENAMETOOLONG past PATH_MAX) and resolved in the ramfs; the errno for
//! each refusal is the one Linux gives.

use super::stat;
use crate::fd::{
    FileKind, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_TRUNC, O_WRONLY, OpenFile,
};
use crate::ramfs::{self, Inode, MAY_READ, MAY_WRITE};
use crate::{proc, procfs, usercopy};
use alloc::string::String;
use alloc::sync::Arc;
use vm::errno::{Errno, SysResult};

pub const AT_FDCWD: i32 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;
const PATH_MAX: usize = 4096;
/// Files are created with mode & ~umask; pageos's umask is Linux's default.
const UMASK: u32 = 0o022;

/// A path argument, copied in from user memory.
pub fn user_path(addr: u64) -> Result<String, Errno> {
    let bytes = proc::with_current(|p| usercopy::read_cstr(p.space(), addr, PATH_MAX - 1))?;
    String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
}

/// The directory a relative path starts from: `dirfd`'s, or the root for
/// AT_FDCWD and absolute paths (EBADF, ENOTDIR for a bad `dirfd`).
fn base_dir(dirfd: i32, path: &str) -> Result<Option<Arc<Inode>>, Errno> {
    if dirfd == AT_FDCWD || path.starts_with('/') {
        return Ok(None);
    }
    let file = proc::with_current(|p| p.files.get(dirfd as u64))?;
    let file = file.lock();
    match &file.kind {
        FileKind::Inode(inode) if inode.is_dir() => Ok(Some(inode.clone())),
        _ => Err(Errno::ENOTDIR),
    }
}

/// openat(2): open (and with O_CREAT make) a file; returns the descriptor.
pub fn openat(dirfd: i32, path: u64, flags: u64, mode: u64) -> SysResult {
    let path = user_path(path)?;
    let flags = flags as u32;
    // Access mode 3 is Linux's "neither": permission to read and write is
    // checked, and the descriptor can do neither (it is for ioctl).
    let writes = flags & O_ACCMODE != 0;
    let kind = match procfs::snapshot(&path) {
        Some(_) if writes || flags & O_CREAT != 0 => return Err(Errno::EACCES),
        Some(snapshot) => FileKind::Snapshot(Arc::new(snapshot?)),
        None => FileKind::Inode(open_inode(dirfd, &path, flags, mode as u32)?),
    };
    if flags & O_TRUNC != 0
        && writes
        && let FileKind::Inode(inode) = &kind
        && !inode.is_dir()
    {
        inode.truncate(0)?;
    }
    let file = OpenFile::new(kind, flags);
    proc::with_current(|p| p.files.install(file, flags & O_CLOEXEC != 0))
}

/// The inode `openat` opens, created if O_CREAT asks, with its checks:
/// EEXIST (O_EXCL), EISDIR (a directory for writing), ENOTDIR
/// (O_DIRECTORY on a file), EACCES (the permission bits).
fn open_inode(dirfd: i32, path: &str, flags: u32, mode: u32) -> Result<Arc<Inode>, Errno> {
    let base = base_dir(dirfd, path)?;
    let writes = flags & O_ACCMODE != 0;
    let inode = if flags & O_CREAT != 0 {
        let (dir, name) = ramfs::parent_at(base.as_ref(), path)?;
        let Some(name) = name.filter(|_| !path.ends_with('/')) else {
            return Err(Errno::EISDIR); // O_CREAT of a directory path
        };
        match dir.entries()?.into_iter().find(|(n, _)| *n == name) {
            Some(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            Some((_, existing)) => existing,
            None => {
                dir.check_access(MAY_WRITE)?;
                // A new file is opened with the access asked, whatever its mode.
                return dir.create_file(&name, mode & 0o7777 & !UMASK);
            }
        }
    } else {
        ramfs::lookup_at(base.as_ref(), path)?
    };
    if inode.is_dir() {
        if writes || flags & O_CREAT != 0 {
            return Err(Errno::EISDIR);
        }
    } else if flags & O_DIRECTORY != 0 {
        return Err(Errno::ENOTDIR);
    }
    let mut want = 0;
    if flags & O_ACCMODE != O_WRONLY {
        want |= MAY_READ;
    }
    if writes || flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
    }
    inode.check_access(want)?;
    Ok(inode)
}

/// open(2): openat relative to the root.
pub fn open(path: u64, flags: u64, mode: u64) -> SysResult {
    openat(AT_FDCWD, path, flags, mode)
}

/// newfstatat(2) (and stat/lstat: ramfs has no symbolic links, so they
/// agree). AT_EMPTY_PATH with "" is fstat of `dirfd`.
pub fn fstatat(dirfd: i32, path: u64, buf: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return super::io::fstat(dirfd as u64, buf);
    }
    let bytes = match procfs::snapshot(&path) {
        Some(snapshot) => stat::of_snapshot(snapshot?.len() as u64),
        None => {
            let inode = ramfs::lookup_at(base_dir(dirfd, &path)?.as_ref(), &path)?;
            stat::of_inode(&inode)
        }
    };
    stat::copy_out(buf, &bytes)
}

pub fn stat(path: u64, buf: u64) -> SysResult {
    fstatat(AT_FDCWD, path, buf, 0)
}

/// unlinkat(2): remove a name (AT_REMOVEDIR: an empty directory).
pub fn unlinkat(dirfd: i32, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let (dir, name) = ramfs::parent_at(base_dir(dirfd, &path)?.as_ref(), &path)?;
    let dir_wanted = flags & AT_REMOVEDIR != 0;
    let name = name.ok_or(if dir_wanted {
        Errno::EBUSY
    } else {
        Errno::EISDIR
    })?;
    if dir_wanted && (path.ends_with("/.") || path == ".") {
        return Err(Errno::EINVAL); // rmdir refuses "." as Linux does
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
    let (dir, name) = ramfs::parent_at(base_dir(dirfd, &path)?.as_ref(), &path)?;
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
    let inode = ramfs::lookup(&path)?;
    if inode.is_dir() {
        return Err(Errno::EISDIR);
    }
    inode.check_access(MAY_WRITE)?;
    inode.truncate(len as u64)?;
    Ok(0)
}
