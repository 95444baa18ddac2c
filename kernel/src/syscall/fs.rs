//! File syscalls: open, openat, read, write, close.

use crate::fd::{FileKind, OpenFile};
use crate::ramfs::Inode;
use crate::{logger, proc, procfs, ramfs, usercopy};
use alloc::sync::Arc;
use alloc::vec::Vec;
use vm::errno::{Errno, SysResult};

pub const AT_FDCWD: i32 = -100;
const PATH_MAX: usize = 4096;
const O_ACCMODE: u64 = 3;
/// Largest transfer one read or write does, as Linux's MAX_RW_COUNT.
const MAX_RW: u64 = 0x7fff_f000;

/// openat: paths are absolute or relative to / (there is no cwd yet, so
/// AT_FDCWD and absolute paths are what works). Files are read-only here.
pub fn openat(dirfd: i32, path: u64, flags: u64) -> SysResult {
    let path = proc::with_current(|p| usercopy::read_cstr(p.space(), path, PATH_MAX))?;
    let path = core::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?;
    if dirfd != AT_FDCWD && !path.starts_with('/') {
        return Err(Errno::ENOSYS);
    }
    if flags & O_ACCMODE != 0 {
        return Err(Errno::EACCES);
    }
    let kind = match procfs::snapshot(path) {
        Some(snapshot) => FileKind::Snapshot(Arc::new(snapshot?)),
        None => FileKind::Inode(ramfs::lookup(path)?),
    };
    let file = OpenFile {
        kind,
        offset: 0,
        flags: flags as u32,
    };
    proc::with_current(|p| p.files.install(file))
}

pub fn close(fd: u64) -> SysResult {
    proc::with_current(|p| p.files.close(fd)).map(|()| 0)
}

pub fn read(fd: u64, buf: u64, len: u64) -> SysResult {
    let len = len.min(MAX_RW);
    let file = proc::with_current(|p| p.files.get(fd))?;
    let mut file = file.lock();
    let source = match &file.kind {
        // The console has no input: stdin reads as end of file.
        FileKind::Console => return Ok(0),
        FileKind::Inode(inode) => Source::Inode(inode.clone()),
        FileKind::Snapshot(bytes) => Source::Bytes(bytes.clone()),
    };
    usercopy::check_range(buf, len as usize)?;
    let mut chunk = [0u8; 4096];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(chunk.len() as u64) as usize;
        let n = source.read_at(file.offset, &mut chunk[..want])?;
        if n == 0 {
            break;
        }
        if let Err(e) =
            proc::with_current(|p| usercopy::copy_out(p.space(), buf + done, &chunk[..n]))
        {
            // Linux returns what was transferred before the bad page, if anything.
            return if done > 0 { Ok(done as usize) } else { Err(e) };
        }
        file.offset += n as u64;
        done += n as u64;
    }
    Ok(done as usize)
}

pub fn write(fd: u64, buf: u64, len: u64) -> SysResult {
    let len = len.min(MAX_RW);
    let file = proc::with_current(|p| p.files.get(fd))?;
    let file = file.lock();
    if !matches!(file.kind, FileKind::Console) {
        return Err(Errno::EBADF);
    }
    usercopy::check_range(buf, len as usize)?;
    let mut chunk = [0u8; 4096];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        if let Err(e) =
            proc::with_current(|p| usercopy::copy_in(p.space(), buf + done, &mut chunk[..n]))
        {
            return if done > 0 { Ok(done as usize) } else { Err(e) };
        }
        logger::write_bytes(&chunk[..n]);
        done += n as u64;
    }
    Ok(done as usize)
}

/// What a read copies from.
enum Source {
    Inode(Arc<Inode>),
    Bytes(Arc<Vec<u8>>),
}

impl Source {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            Source::Inode(inode) => inode.read_at(offset, buf),
            Source::Bytes(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                Ok(n)
            }
        }
    }
}
