//! A file's attributes: chmod, fchmod, fchmodat, chown, fchown, lchown,
//! fchownat, utimensat (and futimens, which is utimensat on a descriptor),
//! statx, statfs, fstatfs. Mode, owner and times live in the ramfs inode
//! and show in stat; /proc's entries cannot be changed (EPERM).

use super::fs::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, fd_node, resolve_at, user_path};
use super::stat;
use crate::ramfs::{Inode, Time};
use crate::vfs::Node;
use crate::{phys, proc, ramfs, usercopy};
use alloc::sync::Arc;
use vm::errno::{Errno, SysResult};

/// The inode behind `node`, EPERM for /proc (its attributes are fixed).
fn changeable(node: &Node) -> Result<Arc<Inode>, Errno> {
    node.inode().cloned().map_err(|_| Errno::EPERM)
}

fn path_inode(dirfd: i32, path: u64, flags: u64) -> Result<Arc<Inode>, Errno> {
    let path = if path == 0 && flags & AT_EMPTY_PATH != 0 {
        alloc::string::String::new()
    } else {
        user_path(path)?
    };
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    changeable(&resolve_at(
        dirfd,
        &path,
        follow,
        flags & AT_EMPTY_PATH != 0,
    )?)
}

/// fchmodat(dirfd, path, mode): the permission bits (a link's target's).
pub fn fchmodat(dirfd: i32, path: u64, mode: u64) -> SysResult {
    path_inode(dirfd, path, 0)?.set_mode(mode as u32);
    Ok(0)
}

pub fn chmod(path: u64, mode: u64) -> SysResult {
    fchmodat(AT_FDCWD, path, mode)
}

pub fn fchmod(fd: u64, mode: u64) -> SysResult {
    changeable(&fd_node(fd).map_err(|_| Errno::EBADF)?)?.set_mode(mode as u32);
    Ok(0)
}

/// An id argument: -1 (as a 32-bit value) leaves it unchanged.
fn id(arg: u64) -> Option<u32> {
    (arg as u32 != u32::MAX).then_some(arg as u32)
}

/// fchownat(dirfd, path, uid, gid, flags): record the owner and group
/// (AT_SYMLINK_NOFOLLOW: the link's own; AT_EMPTY_PATH: dirfd's file).
pub fn fchownat(dirfd: i32, path: u64, uid: u64, gid: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    path_inode(dirfd, path, flags)?.set_owner(id(uid), id(gid));
    Ok(0)
}

pub fn chown(path: u64, uid: u64, gid: u64) -> SysResult {
    fchownat(AT_FDCWD, path, uid, gid, 0)
}

pub fn lchown(path: u64, uid: u64, gid: u64) -> SysResult {
    fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)
}

pub fn fchown(fd: u64, uid: u64, gid: u64) -> SysResult {
    changeable(&fd_node(fd).map_err(|_| Errno::EBADF)?)?.set_owner(id(uid), id(gid));
    Ok(0)
}

const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// One timespec of utimensat: None to leave the time (UTIME_OMIT), now
/// for UTIME_NOW; EINVAL for nanoseconds out of range or a negative time.
fn time_arg(sec: u64, nsec: u64) -> Result<Option<Time>, Errno> {
    match nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(ramfs::now())),
        n if n < 1_000_000_000 && (sec as i64) >= 0 => Ok(Some(
            sec.checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(n))
                .ok_or(Errno::EINVAL)?,
        )),
        _ => Err(Errno::EINVAL),
    }
}

/// utimensat(dirfd, path, times, flags): set atime and mtime (times NULL:
/// both now); path NULL is the descriptor itself (futimens).
pub fn utimensat(dirfd: i32, path: u64, times: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (atime, mtime) = if times == 0 {
        let now = ramfs::now();
        (Some(now), Some(now))
    } else {
        let mut raw = [0u8; 32];
        proc::with_current(|p| usercopy::copy_in(&mut *p.space(), times, &mut raw))?;
        let word =
            |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        (time_arg(word(0), word(1))?, time_arg(word(2), word(3))?)
    };
    let inode = if path == 0 {
        if dirfd == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        changeable(&fd_node(dirfd as u64).map_err(|_| Errno::EBADF)?)?
    } else {
        path_inode(dirfd, path, flags)?
    };
    inode.set_times(atime, mtime);
    Ok(0)
}

const STATX_RESERVED: u64 = 0x8000_0000;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

/// statx(dirfd, path, flags, mask, buf): the basic fields, whatever the mask.
pub fn statx(dirfd: i32, path: u64, flags: u64, mask: u64, buf: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let st = if path.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        super::io::fd_stat(dirfd as u64)?
    } else {
        let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
        stat::of_node(&resolve_at(
            dirfd,
            &path,
            follow,
            flags & AT_EMPTY_PATH != 0,
        )?)
    };
    stat::copy_out(buf, &st.encode_statx())
}

/// Linux's magic numbers: the ramfs behaves as tmpfs (its devtmpfs too).
const TMPFS_MAGIC: u64 = 0x0102_1994;
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const ST_VALID: u64 = 0x20;
const ST_NOSUID: u64 = 0x2;
const ST_NODEV: u64 = 0x4;
const ST_NOEXEC: u64 = 0x8;
const ST_RELATIME: u64 = 0x400;

/// struct statfs (120 bytes) for the file system `node` is in.
fn statfs_of(node: &Node) -> [u8; 120] {
    let words: [u64; 11] = match node {
        Node::Proc(_) => [
            PROC_SUPER_MAGIC,
            4096,
            0,
            0,
            0,
            0,
            0,
            0,
            255,
            4096,
            ST_VALID | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME,
        ],
        Node::Ram(inode) => {
            // tmpfs's default size: half of RAM, in pages.
            let total = phys::total_frames() as u64 / 2;
            let free = (phys::free_frames() as u64).min(total);
            [
                TMPFS_MAGIC,
                4096,
                total,
                free,
                free,
                total,
                total,
                inode.dev,
                255,
                4096,
                ST_VALID | ST_RELATIME,
            ]
        }
    };
    let mut out = [0u8; 120];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

pub fn statfs(path: u64, buf: u64) -> SysResult {
    let path = user_path(path)?;
    let node = resolve_at(AT_FDCWD, &path, true, false)?;
    stat::copy_out(buf, &statfs_of(&node))
}

pub fn fstatfs(fd: u64, buf: u64) -> SysResult {
    let node = match fd_node(fd) {
        Ok(node) => node,
        Err(Errno::ENOTDIR) => crate::vfs::root(),
        Err(e) => return Err(e),
    };
    stat::copy_out(buf, &statfs_of(&node))
}
