//! pipe(2), pipe2(2), socketpair(2), shutdown(2), and read and write on
//! the pipes and connected AF_UNIX pairs of `socket.rs`. Other socket
//! types and domains are not there yet.

use crate::fd::{FileKind, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, OpenFile};
use crate::socket::{CAPACITY, End, Kind};
use crate::{proc, socket, usercopy};
use alloc::sync::Arc;
use alloc::vec;
use vm::errno::{Errno, SysResult};

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_SEQPACKET: u64 = 5;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;

/// socketpair(AF_UNIX, SOCK_STREAM or SOCK_SEQPACKET [| SOCK_NONBLOCK |
/// SOCK_CLOEXEC], 0, sv).
/// EOPNOTSUPP for AF_INET and AF_INET6, EAFNOSUPPORT for another domain; EOPNOTSUPP for another type (Linux
/// has datagram pairs; pageos does not yet); EPROTONOSUPPORT for a protocol.
pub fn socketpair(domain: u64, kind: u64, protocol: u64, sv: u64) -> SysResult {
    match domain {
        AF_UNIX => {}
        // Internet sockets exist on Linux but cannot be made in pairs.
        AF_INET | AF_INET6 => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    let flags = kind & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let seqpacket = match kind & !flags {
        SOCK_STREAM => false,
        SOCK_SEQPACKET => true,
        _ => return Err(Errno::EOPNOTSUPP),
    };
    if protocol != 0 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    usercopy::check_range(sv, 8)?;
    let (a, b) = socket::pair(seqpacket);
    let open_flags = O_RDWR
        | if flags & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
    let cloexec = flags & SOCK_CLOEXEC != 0;
    install_pair(sv, (a, open_flags), (b, open_flags), cloexec)
}

/// pipe2(fds, flags): O_CLOEXEC and O_NONBLOCK (O_DIRECT's packet mode
/// is not there: EINVAL, as for any other flag).
pub fn pipe2(fds: u64, flags: u64) -> SysResult {
    let allowed = u64::from(O_CLOEXEC | O_NONBLOCK);
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    usercopy::check_range(fds, 8)?;
    let (r, w) = socket::pipe();
    let nonblock = flags as u32 & O_NONBLOCK;
    let cloexec = flags as u32 & O_CLOEXEC != 0;
    install_pair(
        fds,
        (r, O_RDONLY | nonblock),
        (w, O_WRONLY | nonblock),
        cloexec,
    )
}

/// Two new descriptors for two ends, their numbers written to `out` (two
/// ints); on any failure neither stays open.
fn install_pair(out: u64, a: (End, u32), b: (End, u32), cloexec: bool) -> SysResult {
    let open = |(end, flags): (End, u32)| OpenFile::new(FileKind::Socket(Arc::new(end)), flags);
    let (fa, fb) = (open(a), open(b));
    proc::with_current(|p| {
        let fa = p.files.install(fa, cloexec)?;
        let fb = match p.files.install(fb, cloexec) {
            Ok(fb) => fb,
            Err(e) => {
                let _ = p.files.close(fa as u64);
                return Err(e);
            }
        };
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(fa as i32).to_le_bytes());
        bytes[4..].copy_from_slice(&(fb as i32).to_le_bytes());
        let copied = usercopy::copy_out(&mut *p.space(), out, &bytes);
        if let Err(e) = copied {
            let _ = p.files.close(fa as u64);
            let _ = p.files.close(fb as u64);
            return Err(e);
        }
        Ok(0)
    })
}

/// shutdown(fd, how): ENOTSOCK for a descriptor that is not a socket.
pub fn shutdown(fd: u64, how: u64) -> SysResult {
    let file = proc::with_current(|p| p.files.get(fd))?;
    let file = file.lock();
    match &file.kind {
        FileKind::Socket(end) if end.kind != Kind::Pipe => end.shutdown(how).map(|()| 0),
        _ => Err(Errno::ENOTSOCK),
    }
}

/// read(2) on a socket: what one wait brings (a SEQPACKET message), through
/// a kernel buffer of at most the socket's capacity.
pub fn read(end: &Arc<End>, buf: u64, len: u64, nonblock: bool) -> SysResult {
    let len = len.min(CAPACITY as u64) as usize;
    usercopy::check_range(buf, len)?;
    let mut data = vec![0u8; len];
    let n = end.read(&mut data, nonblock)?;
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &data[..n]))?;
    Ok(n)
}

/// write(2) on a socket: a stream end takes it all, a capacity at a time;
/// a SEQPACKET end takes it as one message.
pub fn write(end: &Arc<End>, buf: u64, len: u64, nonblock: bool) -> SysResult {
    usercopy::check_range(buf, len as usize)?;
    if end.kind == Kind::SeqPacket && len > CAPACITY as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut done = 0u64;
    while done < len || len == 0 {
        let n = (len - done).min(CAPACITY as u64) as usize;
        let mut data = vec![0u8; n];
        let copied =
            proc::with_current(|p| usercopy::copy_in(&mut *p.space(), buf + done, &mut data));
        if let Err(e) = copied {
            return if done > 0 { Ok(done as usize) } else { Err(e) };
        }
        let sent = match end.write(&data, nonblock) {
            Ok(sent) => sent,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += sent as u64;
        if sent < n || len == 0 {
            break;
        }
    }
    Ok(done as usize)
}
