//! Syscalls on descriptors: read, write, pread64, pwrite64, readv, writev,
//! lseek, close, dup, dup2, dup3, fcntl (record locks: `lock.rs`), fstat,
//! ftruncate, getdents64, fsync, fdatasync, sendfile.
//!
//! Data moves between user memory and the file's page cache through a
//! kernel buffer, a page at a time: the user side goes through `usercopy`
//! (which faults user pages in, so read() into fresh mmap memory fills it,
//! and a bad pointer is EFAULT), the file side through the file's
//! `vm_object`. No lock is held across a user copy, so a read into a shared
//! mapping of the same file cannot deadlock on the file.

use super::stat;
use crate::dev::Device;
use crate::fd::{FileKind, FileRef, MAX_FDS, O_APPEND, O_CLOEXEC, O_NONBLOCK, SETFL_MASK};
use crate::{locks, proc, usercopy};
use alloc::sync::Arc;
use alloc::vec::Vec;
use vm::errno::{Errno, SysResult};

/// Largest transfer one read or write does, as Linux's MAX_RW_COUNT.
const MAX_RW: u64 = 0x7fff_f000;
/// Linux's UIO_MAXIOV: the most iovecs readv/writev take.
const IOV_MAX: u64 = 1024;
const CHUNK: usize = 4096;

fn file(fd: u64) -> Result<FileRef, Errno> {
    proc::with_current(|p| p.files.get(fd))
}

pub fn read(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd)?;
    let mut file = file.lock();
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    let nonblock = file.flags & O_NONBLOCK != 0;
    if let Some(end) = socket_end(&file.kind) {
        drop(file);
        return super::unix::read(&end, buf, len, nonblock);
    }
    if is_terminal(&file.kind) {
        drop(file);
        return read_terminal(buf, len, nonblock);
    }
    let n = read_from(&file.kind, file.offset, buf, len, nonblock)?;
    file.offset += n as u64;
    Ok(n)
}

/// Whether a descriptor's file is the terminal (kernel/src/tty/): init's
/// console descriptors, /dev/console, /dev/tty.
pub fn is_terminal(kind: &FileKind) -> bool {
    matches!(
        kind,
        FileKind::Console | FileKind::Device(_, Device::Tty | Device::Console)
    )
}

/// read(2) of the terminal, which may wait (without the open file's lock).
fn read_terminal(buf: u64, len: u64, nonblock: bool) -> SysResult {
    let len = len.min(CHUNK as u64) as usize;
    usercopy::check_range(buf, len)?;
    let mut data = [0u8; CHUNK];
    let n = crate::tty::read(&mut data[..len], nonblock)?;
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &data[..n]))?;
    Ok(n)
}

/// A socket end, to use without the open file's lock: a reader or writer
/// that waits must not hold it (a process sharing the open file through
/// fork would spin on it forever; the kernel is not preemptible).
fn socket_end(kind: &FileKind) -> Option<Arc<crate::socket::End>> {
    match kind {
        FileKind::Socket(end) => Some(end.clone()),
        _ => None,
    }
}

pub fn write(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd)?;
    let mut file = file.lock();
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    if file.flags & O_APPEND != 0
        && let FileKind::Inode(inode) = &file.kind
    {
        file.offset = inode.size();
    }
    let nonblock = file.flags & O_NONBLOCK != 0;
    if let Some(end) = socket_end(&file.kind) {
        drop(file);
        return super::unix::write(&end, buf, len, nonblock);
    }
    let n = write_to(&file.kind, file.offset, buf, len, nonblock)?;
    file.offset += n as u64;
    Ok(n)
}

/// pread64: read at `offset` without moving the file's offset.
pub fn pread(fd: u64, buf: u64, len: u64, offset: u64) -> SysResult {
    let offset = positional(offset)?;
    let file = file(fd)?;
    let file = file.lock();
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    if !seekable(&file.kind) {
        return Err(Errno::ESPIPE);
    }
    read_from(&file.kind, offset, buf, len, false)
}

/// Whether the descriptor has a file offset (lseek, pread, pwrite).
fn seekable(kind: &FileKind) -> bool {
    !matches!(kind, FileKind::Console | FileKind::Socket(_))
}

/// pwrite64: write at `offset` without moving the file's offset. With
/// O_APPEND the data goes to the end anyway (Linux's documented quirk).
pub fn pwrite(fd: u64, buf: u64, len: u64, offset: u64) -> SysResult {
    let mut offset = positional(offset)?;
    let file = file(fd)?;
    let file = file.lock();
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    match &file.kind {
        kind if !seekable(kind) => return Err(Errno::ESPIPE),
        FileKind::Inode(inode) if file.flags & O_APPEND != 0 => offset = inode.size(),
        _ => {}
    }
    write_to(&file.kind, offset, buf, len, false)
}

/// A file offset from a syscall: negative is EINVAL.
fn positional(offset: u64) -> Result<u64, Errno> {
    i64::try_from(offset)
        .map(|o| o as u64)
        .map_err(|_| Errno::EINVAL)
}

/// readv and writev: the iovec array, then each buffer in turn, stopping
/// at the first short transfer (what Linux returns is the total so far).
pub fn readv(fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(fd, iov, count, read)
}

pub fn writev(fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(fd, iov, count, write)
}

fn vectored(fd: u64, iov: u64, count: u64, transfer: fn(u64, u64, u64) -> SysResult) -> SysResult {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    file(fd)?;
    let mut raw = alloc::vec![0u8; count as usize * 16];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), iov, &mut raw))?;
    let vecs: Vec<(u64, u64)> = raw
        .as_chunks::<16>()
        .0
        .iter()
        .map(|v| {
            let word = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().unwrap_or_default());
            (word(0), word(8))
        })
        .collect();
    let mut total: u64 = 0;
    for &(_, len) in &vecs {
        total = total
            .checked_add(len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
    }
    let mut done = 0;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        match transfer(fd, base, len) {
            Ok(n) => {
                done += n;
                if (n as u64) < len {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// Copy up to `len` bytes of `kind` from `offset` to user memory at `buf`.
/// A bad buffer after some bytes moved returns the count (Linux).
pub fn read_from(kind: &FileKind, offset: u64, buf: u64, len: u64, nonblock: bool) -> SysResult {
    let len = len.min(MAX_RW);
    usercopy::check_range(buf, len as usize)?;
    let mut chunk = [0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(CHUNK as u64) as usize;
        let at = offset.saturating_add(done);
        let piece = &mut chunk[..want];
        let got = match kind {
            // read() takes the terminal elsewhere (read_terminal).
            FileKind::Console => Ok(0),
            FileKind::Inode(inode) => inode.read_at(at, piece),
            FileKind::Device(_, device) => device.read(piece),
            FileKind::Proc(open) => open.read_at(at, piece),
            // A stream: what is there now, after the first piece.
            FileKind::Socket(end) => end.read(piece, nonblock || done > 0),
        };
        let n = match got {
            Ok(n) => n,
            Err(Errno::EAGAIN) if done > 0 => break,
            Err(e) if done > 0 && matches!(kind, FileKind::Proc(_)) => {
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let copied =
            proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf + done, &chunk[..n]));
        if let Err(e) = copied {
            return if done > 0 { Ok(done as usize) } else { Err(e) };
        }
        done += n as u64;
        if n < want {
            break;
        }
    }
    Ok(done as usize)
}

/// Copy up to `len` bytes from user memory at `buf` into `kind` at `offset`.
pub fn write_to(kind: &FileKind, offset: u64, buf: u64, len: u64, nonblock: bool) -> SysResult {
    let len = len.min(MAX_RW);
    usercopy::check_range(buf, len as usize)?;
    match kind {
        FileKind::Inode(inode) if inode.object().is_none() => return Err(Errno::EBADF),
        FileKind::Proc(open) if open.node.is_dir() => return Err(Errno::EBADF),
        _ => {}
    }
    let mut chunk = [0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let copied =
            proc::with_current(|p| usercopy::copy_in(&mut *p.space(), buf + done, &mut chunk[..n]));
        if let Err(e) = copied {
            return if done > 0 { Ok(done as usize) } else { Err(e) };
        }
        let piece = &chunk[..n];
        let at = offset + done;
        let result = match kind {
            FileKind::Console => Ok(crate::tty::write(piece)),
            FileKind::Inode(inode) => inode.write_at(at, piece),
            FileKind::Device(_, device) => device.write(piece),
            FileKind::Proc(open) => open.write_at(at, piece),
            FileKind::Socket(end) => end.write(piece, nonblock),
        };
        let written = match result {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => 0,
        };
        done += written as u64;
        if written < n {
            break;
        }
    }
    Ok(done as usize)
}

const SEEK_SET: u64 = 0;
const SEEK_CUR: u64 = 1;
const SEEK_END: u64 = 2;
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;

/// lseek: the new offset; EINVAL for a bad `whence` or a negative result,
/// ESPIPE on the console, ENXIO for SEEK_DATA/SEEK_HOLE at or past the end.
pub fn lseek(fd: u64, offset: u64, whence: u64) -> SysResult {
    let file = file(fd)?;
    let mut file = file.lock();
    let size = match &file.kind {
        kind if !seekable(kind) => return Err(Errno::ESPIPE),
        FileKind::Inode(inode) => inode.size(),
        FileKind::Proc(open) => open.size(),
        _ => 0,
    };
    let offset = offset as i64;
    let new = match whence {
        SEEK_SET => Some(offset),
        SEEK_CUR => (file.offset as i64).checked_add(offset),
        SEEK_END => (size as i64).checked_add(offset),
        // Every byte of a ramfs file counts as data (holes read as zeros
        // but are not reported), so the only hole is the one at the end.
        SEEK_DATA | SEEK_HOLE if offset < 0 || offset as u64 >= size => {
            return Err(Errno::ENXIO);
        }
        SEEK_DATA => Some(offset),
        SEEK_HOLE => Some(size as i64),
        _ => return Err(Errno::EINVAL),
    };
    let new = new.filter(|&n| n >= 0).ok_or(Errno::EINVAL)?;
    file.offset = new as u64;
    Ok(new as usize)
}

/// close: the descriptor goes, and with it every POSIX lock the process
/// holds on its file (however many other descriptors remain).
pub fn close(fd: u64) -> SysResult {
    let (pid, file) = proc::with_current(|p| p.files.close(fd).map(|f| (p.pid, f)))?;
    locks::closed(pid, &[file]);
    Ok(0)
}

pub fn dup(fd: u64) -> SysResult {
    proc::with_current(|p| {
        let file = p.files.get(fd)?;
        p.files.install_from(file, 0, false)
    })
    .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })
}

/// dup2: `new` refers to `old`'s open file; the same number is a no-op.
pub fn dup2(old: u64, new: u64) -> SysResult {
    let (pid, replaced, result) = proc::with_current(|p| {
        let replaced = p.files.get(new).ok().filter(|_| old != new);
        let result = match p.files.get(old) {
            Ok(_) if old == new => Ok(new as usize),
            Ok(file) => p.files.install_at(new, file, false),
            Err(e) => Err(e),
        };
        (p.pid, replaced, result)
    });
    if let (Ok(_), Some(replaced)) = (&result, replaced) {
        locks::closed(pid, &[replaced]);
    }
    result
}

/// dup3: as dup2, but the same number is EINVAL and only O_CLOEXEC is a flag.
pub fn dup3(old: u64, new: u64, flags: u64) -> SysResult {
    if flags & !u64::from(O_CLOEXEC) != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    let (pid, replaced, result) = proc::with_current(|p| {
        let replaced = p.files.get(new).ok();
        let result = p
            .files
            .get(old)
            .and_then(|file| p.files.install_at(new, file, flags != 0));
        (p.pid, replaced, result)
    });
    if let (Ok(_), Some(replaced)) = (&result, replaced) {
        locks::closed(pid, &[replaced]);
    }
    result
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;

/// fcntl: duplicating, the close-on-exec flag, the status flags, record
/// locks (`lock.rs`) and seals (`memfd.rs`).
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    if super::lock::is_lock_command(cmd) {
        return super::lock::fcntl_lock(fd, cmd, arg);
    }
    if matches!(cmd, super::memfd::F_ADD_SEALS | super::memfd::F_GET_SEALS) {
        return super::memfd::fcntl(fd, cmd, arg);
    }
    proc::with_current(|p| {
        let file = p.files.get(fd)?;
        match cmd {
            F_DUPFD | F_DUPFD_CLOEXEC => {
                let min = usize::try_from(arg).unwrap_or(MAX_FDS);
                p.files.install_from(file, min, cmd == F_DUPFD_CLOEXEC)
            }
            F_GETFD => Ok(usize::from(p.files.cloexec(fd)?)),
            F_SETFD => p.files.set_cloexec(fd, arg & FD_CLOEXEC != 0).map(|()| 0),
            F_GETFL => Ok(file.lock().flags as usize),
            F_SETFL => {
                let mut file = file.lock();
                file.flags = (file.flags & !SETFL_MASK) | (arg as u32 & SETFL_MASK);
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    })
}

pub fn fstat(fd: u64, buf: u64) -> SysResult {
    stat::copy_out(buf, &fd_stat(fd)?.encode())
}

/// What fstat (and statx with AT_EMPTY_PATH) reports for a descriptor.
pub fn fd_stat(fd: u64) -> Result<stat::Stat, Errno> {
    let file = file(fd)?;
    let file = file.lock();
    Ok(match &file.kind {
        FileKind::Console => stat::of_console(),
        FileKind::Inode(inode) | FileKind::Device(inode, _) => stat::of_inode(inode),
        FileKind::Proc(open) => stat::of_proc(&open.node),
        FileKind::Socket(end) if end.kind == crate::socket::Kind::Pipe => {
            stat::of_special(stat::S_IFIFO | 0o600, 0)
        }
        FileKind::Socket(_) => stat::of_special(stat::S_IFSOCK | 0o777, 0),
    })
}

/// ftruncate: EINVAL for a negative length or a descriptor that is not a
/// regular file open for writing (Linux's choice of errno).
pub fn ftruncate(fd: u64, len: u64) -> SysResult {
    let len = i64::try_from(len).map_err(|_| Errno::EINVAL)?;
    let file = file(fd)?;
    let inode = {
        let file = file.lock();
        match &file.kind {
            FileKind::Inode(inode) if inode.object().is_some() && file.writable() => inode.clone(),
            _ => return Err(Errno::EINVAL),
        }
    };
    inode.truncate(len as u64)?;
    Ok(0)
}

/// getdents64: as many entries as fit in `len` bytes, from where the last
/// call stopped; 0 at the end; EINVAL if not even one fits.
pub fn getdents64(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd)?;
    let mut file = file.lock();
    // (name, inode number, d_type) of each entry, `.` and `..` first.
    let entries: Vec<(alloc::string::String, u64, u8)> = match &file.kind {
        FileKind::Inode(dir) => {
            let mut all = alloc::vec![(".".into(), dir.ino, stat::dtype(stat::S_IFDIR))];
            let up = dir.parent().map_or(dir.ino, |p| p.ino);
            all.push(("..".into(), up, stat::dtype(stat::S_IFDIR)));
            for (name, inode) in dir.entries()? {
                all.push((name, inode.ino, stat::dtype(stat::of_inode(&inode).mode)));
            }
            all
        }
        FileKind::Proc(open) if open.node.is_dir() => {
            let dir = open.node;
            let mut all = alloc::vec![(".".into(), dir.ino(), stat::dtype(stat::S_IFDIR))];
            all.push(("..".into(), 1, stat::dtype(stat::S_IFDIR)));
            for (name, node) in dir.entries() {
                all.push((name, node.ino(), stat::dtype(stat::of_proc(&node).mode)));
            }
            all
        }
        _ => return Err(Errno::ENOTDIR),
    };
    let len = len.min(MAX_RW) as usize;
    usercopy::check_range(buf, len)?;
    let mut out = Vec::new();
    let mut index = file.offset as usize;
    let all = entries.len();
    while index < all {
        let (name, ino, dtype) = &entries[index];
        let record = stat::dirent(*ino, *dtype, name, index as u64 + 1);
        if out.len() + record.len() > len {
            break;
        }
        out.extend_from_slice(&record);
        index += 1;
    }
    if out.is_empty() && index < all {
        return Err(Errno::EINVAL);
    }
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &out))?;
    file.offset = index as u64;
    Ok(out.len())
}

/// fsync and fdatasync: the ramfs keeps every file's pages in memory and
/// coherent with its mappings, so there is nothing to write back; the
/// descriptor must be open (EBADF), and a socket cannot be synced (EINVAL).
pub fn fsync(fd: u64) -> SysResult {
    match file(fd)?.lock().kind {
        FileKind::Socket(_) => Err(Errno::EINVAL),
        _ => Ok(0),
    }
}

/// sendfile(out, in, offset, count): copy from `in` (at `*offset`, which is
/// advanced, or at its file offset) to `out`, through a kernel buffer.
pub fn sendfile(out_fd: u64, in_fd: u64, offset_ptr: u64, count: u64) -> SysResult {
    let (input, output) = (file(in_fd)?, file(out_fd)?);
    if !input.lock().readable() || !output.lock().writable() {
        return Err(Errno::EBADF);
    }
    if output.lock().flags & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut at = if offset_ptr != 0 {
        let off = proc::with_current(|p| usercopy::read_u64(&mut *p.space(), offset_ptr))?;
        positional(off)?
    } else {
        input.lock().offset
    };
    if !seekable(&input.lock().kind) {
        return Err(Errno::EINVAL);
    }
    let count = count.min(MAX_RW);
    let mut chunk = alloc::vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < count {
        let want = (count - done).min(CHUNK as u64) as usize;
        let n = {
            let input = input.lock();
            match &input.kind {
                FileKind::Inode(inode) => inode.read_at(at, &mut chunk[..want])?,
                FileKind::Device(_, device) => device.read(&mut chunk[..want])?,
                FileKind::Proc(open) => open.read_at(at, &mut chunk[..want])?,
                _ => return Err(Errno::EINVAL),
            }
        };
        if n == 0 {
            break;
        }
        let socket = socket_end(&output.lock().kind);
        let written = if let Some(end) = socket {
            end.write(&chunk[..n], false)?
        } else {
            let mut output = output.lock();
            let offset = output.offset;
            let w = write_kernel(&output.kind, offset, &chunk[..n])?;
            output.offset += w as u64;
            w
        };
        done += written as u64;
        at += written as u64;
        if written < n {
            break;
        }
    }
    if offset_ptr != 0 {
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), offset_ptr, &at.to_le_bytes()))?;
    } else {
        input.lock().offset = at;
    }
    Ok(done as usize)
}

/// Write kernel bytes to a descriptor's file (sendfile's output side).
fn write_kernel(kind: &FileKind, offset: u64, data: &[u8]) -> Result<usize, Errno> {
    match kind {
        FileKind::Console => Ok(crate::tty::write(data)),
        FileKind::Inode(inode) if inode.object().is_some() => inode.write_at(offset, data),
        FileKind::Device(_, device) => device.write(data),
        FileKind::Socket(end) => end.write(data, false),
        _ => Err(Errno::EINVAL),
    }
}
