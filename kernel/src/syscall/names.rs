//! Syscalls on names: rename, renameat, renameat2, link, linkat, symlink,
//! symlinkat, readlink, readlinkat, mknod, mknodat.

use super::fs::{
    AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, UMASK, parent_at, resolve_at, user_path,
};
use super::stat::{S_IFCHR, S_IFREG};
use crate::ramfs::{self, MAY_WRITE, RENAME_EXCHANGE, RENAME_NOREPLACE};
use crate::{proc, usercopy};
use vm::errno::{Errno, SysResult};

/// renameat2(olddirfd, old, newdirfd, new, flags): RENAME_NOREPLACE and
/// RENAME_EXCHANGE (not both: EINVAL; RENAME_WHITEOUT: EINVAL).
pub fn renameat2(old_dirfd: i32, old: u64, new_dirfd: i32, new: u64, flags: u64) -> SysResult {
    let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
        || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
    {
        return Err(Errno::EINVAL);
    }
    let (old, new) = (user_path(old)?, user_path(new)?);
    let (from_dir, from) = parent_at(old_dirfd, &old)?;
    let (to_dir, to) = parent_at(new_dirfd, &new)?;
    // `.`, `..` or the root as either name: EBUSY (Linux).
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Errno::EBUSY);
    };
    from_dir.check_access(MAY_WRITE)?;
    to_dir.check_access(MAY_WRITE)?;
    ramfs::rename(&from_dir, &from, &to_dir, &to, flags)?;
    Ok(0)
}

pub fn renameat(old_dirfd: i32, old: u64, new_dirfd: i32, new: u64) -> SysResult {
    renameat2(old_dirfd, old, new_dirfd, new, 0)
}

pub fn rename(old: u64, new: u64) -> SysResult {
    renameat2(AT_FDCWD, old, AT_FDCWD, new, 0)
}

/// linkat(olddirfd, old, newdirfd, new, flags): a new name for the file.
/// A symbolic link is linked itself unless AT_SYMLINK_FOLLOW.
pub fn linkat(old_dirfd: i32, old: u64, new_dirfd: i32, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (old, new) = (user_path(old)?, user_path(new)?);
    let follow = flags & AT_SYMLINK_FOLLOW != 0;
    let node = resolve_at(old_dirfd, &old, follow, flags & AT_EMPTY_PATH != 0)?;
    let inode = node.inode().map_err(|_| Errno::EXDEV)?.clone();
    let (dir, name) = parent_at(new_dirfd, &new)?;
    let name = name.ok_or(Errno::EEXIST)?;
    if new.ends_with('/') {
        return Err(if inode.is_dir() {
            Errno::EPERM
        } else {
            Errno::ENOENT
        });
    }
    dir.check_access(MAY_WRITE)?;
    dir.link(&name, &inode)?;
    Ok(0)
}

pub fn link(old: u64, new: u64) -> SysResult {
    linkat(AT_FDCWD, old, AT_FDCWD, new, 0)
}

/// symlinkat(target, newdirfd, linkpath): the target is stored as given
/// (it need not exist); an empty one is ENOENT.
pub fn symlinkat(target: u64, dirfd: i32, path: u64) -> SysResult {
    let (target, path) = (user_path(target)?, user_path(path)?);
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let (dir, name) = parent_at(dirfd, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    dir.check_access(MAY_WRITE)?;
    dir.create_symlink(&name, &target)?;
    Ok(0)
}

pub fn symlink(target: u64, path: u64) -> SysResult {
    symlinkat(target, AT_FDCWD, path)
}

/// readlinkat(dirfd, path, buf, size): the link's target, truncated to
/// `size` bytes, no NUL. EINVAL for what is not a link, or size <= 0.
pub fn readlinkat(dirfd: i32, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let node = resolve_at(dirfd, &path, false, true)?;
    let target = node.link_target().ok_or(Errno::EINVAL)?;
    let n = target.len().min(size as usize);
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &target.as_bytes()[..n]))?;
    Ok(n)
}

pub fn readlink(path: u64, buf: u64, size: u64) -> SysResult {
    readlinkat(AT_FDCWD, path, buf, size)
}

/// mknodat(dirfd, path, mode, dev): a regular file or a character device
/// node (block devices, FIFOs and sockets: EPERM here, pageos has none).
pub fn mknodat(dirfd: i32, path: u64, mode: u64, dev: u64) -> SysResult {
    let path = user_path(path)?;
    let mode = mode as u32;
    let (dir, name) = parent_at(dirfd, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    dir.check_access(MAY_WRITE)?;
    let perms = mode & 0o7777 & !UMASK;
    match mode & 0o170000 {
        0 | S_IFREG => dir.create_file(&name, perms)?,
        S_IFCHR => {
            // Linux's new_decode_dev.
            let major = ((dev >> 8) & 0xfff) as u32;
            let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
            dir.create_chardev(&name, perms, (major, minor))?
        }
        0o010000 | 0o060000 | 0o140000 => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    Ok(0)
}

pub fn mknod(path: u64, mode: u64, dev: u64) -> SysResult {
    mknodat(AT_FDCWD, path, mode, dev)
}
