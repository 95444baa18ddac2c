//! fcntl's record-lock commands: F_GETLK, F_SETLK, F_SETLKW and the OFD
//! forms F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW. The rules are in
//! `locks.rs`; here are `struct flock` and the arguments' checks.

use crate::fd::FileKind;
use crate::locks::{self, Lock, LockKind, Owner};
use crate::{proc, usercopy};
use vm::errno::{Errno, SysResult};

const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_OFD_GETLK: u64 = 36;
const F_OFD_SETLK: u64 = 37;
const F_OFD_SETLKW: u64 = 38;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

pub fn is_lock_command(cmd: u64) -> bool {
    matches!(
        cmd,
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW
    )
}

/// struct flock on x86_64: l_type (i16), l_whence (i16), 4 bytes of
/// padding, l_start (i64), l_len (i64), l_pid (i32), 4 bytes of padding.
struct Flock {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

impl Flock {
    fn read(addr: u64) -> Result<Flock, Errno> {
        let mut raw = [0u8; 32];
        proc::with_current(|p| usercopy::copy_in(&mut *p.space(), addr, &mut raw))?;
        let i64_at = |at: usize| i64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or_default());
        Ok(Flock {
            kind: i16::from_le_bytes([raw[0], raw[1]]),
            whence: i16::from_le_bytes([raw[2], raw[3]]),
            start: i64_at(8),
            len: i64_at(16),
            pid: i32::from_le_bytes(raw[24..28].try_into().unwrap_or_default()),
        })
    }

    fn write(&self, addr: u64) -> Result<(), Errno> {
        let mut raw = [0u8; 32];
        raw[0..2].copy_from_slice(&self.kind.to_le_bytes());
        raw[2..4].copy_from_slice(&self.whence.to_le_bytes());
        raw[8..16].copy_from_slice(&self.start.to_le_bytes());
        raw[16..24].copy_from_slice(&self.len.to_le_bytes());
        raw[24..28].copy_from_slice(&self.pid.to_le_bytes());
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), addr, &raw))
    }
}

/// The lock's byte range [start, end) from l_whence, l_start and l_len
/// (0: to the end of the file; negative: the bytes before l_start).
/// EINVAL for a bad whence or a range that starts before 0; EOVERFLOW
/// past the largest offset.
fn range(f: &Flock, offset: u64, size: u64) -> Result<(u64, u64), Errno> {
    let base = match f.whence {
        0 => 0,
        1 => offset as i64,
        2 => size as i64,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(f.start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match f.len {
        0 => (start, i64::MAX),
        len if len > 0 => (start, start.checked_add(len).ok_or(Errno::EOVERFLOW)?),
        len => (start.checked_add(len).ok_or(Errno::EINVAL)?, start),
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let end = if end == i64::MAX {
        u64::MAX
    } else {
        end as u64
    };
    Ok((start as u64, end))
}

pub fn fcntl_lock(fd: u64, cmd: u64, arg: u64) -> SysResult {
    let (pid, file) = proc::with_current(|p| p.files.get(fd).map(|f| (p.pid, f)))?;
    let mut f = Flock::read(arg)?;
    let (id, readable, writable, offset, size, ofd_id) = {
        let file = file.lock();
        let inode = match &file.kind {
            FileKind::Inode(inode) | FileKind::Device(inode, _) => inode.clone(),
            _ => return Err(Errno::EINVAL),
        };
        (
            (inode.dev, inode.ino),
            file.readable(),
            file.writable(),
            file.offset,
            inode.size(),
            file.id,
        )
    };
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && f.pid != 0 {
        return Err(Errno::EINVAL); // OFD locks want l_pid 0
    }
    let owner = if ofd {
        Owner::OpenFile(ofd_id)
    } else {
        Owner::Process(pid)
    };
    let kind = match f.kind {
        F_RDLCK => Some(LockKind::Read),
        F_WRLCK => Some(LockKind::Write),
        F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    let (start, end) = range(&f, offset, size)?;
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        let Some(kind) = kind else {
            return Err(Errno::EINVAL);
        };
        let want = Lock {
            owner,
            kind,
            start,
            end,
        };
        match locks::conflict(id, &want) {
            None => f.kind = F_UNLCK,
            Some(c) => {
                f.kind = if c.kind == LockKind::Write {
                    F_WRLCK
                } else {
                    F_RDLCK
                };
                f.whence = 0;
                f.start = c.start as i64;
                f.len = if c.end == u64::MAX {
                    0
                } else {
                    (c.end - c.start) as i64
                };
                f.pid = match c.owner {
                    Owner::Process(p) => p as i32,
                    Owner::OpenFile(_) => -1,
                };
            }
        }
        f.write(arg)?;
        return Ok(0);
    }
    // A read lock needs a descriptor open for reading, a write lock one
    // open for writing.
    match kind {
        Some(LockKind::Read) if !readable => return Err(Errno::EBADF),
        Some(LockKind::Write) if !writable => return Err(Errno::EBADF),
        _ => {}
    }
    if !matches!(cmd, F_SETLKW | F_OFD_SETLKW) {
        return match locks::set(id, owner, kind, start, end) {
            None => Ok(0),
            Some(_) => Err(Errno::EAGAIN),
        };
    }
    // Asleep until a lock goes (locks::CHANGED), then try again; EINTR
    // for a signal.
    crate::sleep::wait_for(&[&locks::CHANGED], None, || {
        locks::set(id, owner, kind, start, end)
            .is_none()
            .then_some(())
    })?;
    Ok(0)
}
