//! fallocate(fd, mode, offset, len): make room in a file.
//!
//! The ramfs allocates a page when it is first touched (a hole reads as
//! zeros until then), so there is nothing to reserve: mode 0 makes the
//! file at least `offset + len` bytes long, FALLOC_FL_KEEP_SIZE only
//! checks, and both obey the seals (F_SEAL_GROW: EPERM) the way Linux's
//! tmpfs does. FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE, as Linux requires)
//! frees the pages of the range and zeroes the partial ones at its ends
//! (`Inode::punch_hole`; EPERM under a write seal).

use crate::fd::FileKind;
use crate::proc;
use vm::errno::{Errno, SysResult};
use vm::vm_object::MAX_FILE_SIZE;

const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
const FALLOC_FL_COLLAPSE_RANGE: u32 = 0x08;
const FALLOC_FL_ZERO_RANGE: u32 = 0x10;
const FALLOC_FL_INSERT_RANGE: u32 = 0x20;
const FALLOC_FL_UNSHARE_RANGE: u32 = 0x40;
/// Every mode bit Linux defines (FALLOC_FL_SUPPORTED_MASK).
const SUPPORTED: u32 = 0x7f;

/// fallocate, with Linux's vfs_fallocate checks in its order: EBADF (not
/// open), EINVAL (negative offset, length not positive, a range operation
/// mixed with others), EOPNOTSUPP (an unknown mode, PUNCH_HOLE without
/// KEEP_SIZE or with ZERO_RANGE), EBADF (not open for writing), ESPIPE (a
/// pipe), EISDIR, ENODEV (not a regular file), EFBIG (the end past the
/// largest file); then tmpfs's: EOPNOTSUPP for anything but KEEP_SIZE
/// and PUNCH_HOLE, and the seals.
pub fn fallocate(fd: u64, mode: u64, offset: u64, len: u64) -> SysResult {
    let file = proc::with_current(|p| p.files.get(fd))?;
    let (mode, offset, len) = (mode as u32, offset as i64, len as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !SUPPORTED != 0
        || mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)
            == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE
        || (mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0)
    {
        return Err(Errno::EOPNOTSUPP);
    }
    let alone = |flag: u32, with: u32| mode & flag != 0 && mode & !(flag | with) != 0;
    if alone(FALLOC_FL_COLLAPSE_RANGE, 0)
        || alone(FALLOC_FL_INSERT_RANGE, 0)
        || alone(FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_KEEP_SIZE)
    {
        return Err(Errno::EINVAL);
    }
    let inode = {
        let file = file.lock();
        if !file.writable() {
            return Err(Errno::EBADF);
        }
        match &file.kind {
            FileKind::Socket(end) if end.kind == crate::socket::Kind::Pipe => {
                return Err(Errno::ESPIPE);
            }
            FileKind::Inode(inode) if inode.is_dir() => return Err(Errno::EISDIR),
            FileKind::Inode(inode) if inode.object().is_some() => inode.clone(),
            _ => return Err(Errno::ENODEV),
        }
    };
    let end = offset
        .checked_add(len)
        .map(|e| e as u64)
        .filter(|&e| e <= MAX_FILE_SIZE)
        .ok_or(Errno::EFBIG)?;
    if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if mode & FALLOC_FL_PUNCH_HOLE != 0 {
        return inode.punch_hole(offset as u64, end).map(|()| 0);
    }
    inode.allocate(end, mode & FALLOC_FL_KEEP_SIZE != 0)?;
    Ok(0)
}
