//! poll, ppoll, select and pselect6: wait until one of several
//! descriptors is ready, a timeout passes or a signal comes.
//!
//! Each descriptor says what it is ready for now (`ready`): regular files,
//! devices and /proc files always are, a pipe or socket end when its
//! buffer has data or room (socket.rs), the terminal when a line (or, in
//! raw mode, a byte) is there (kernel/src/tty/). The wait is
//! `sleep::wait_for` over the wait queues of every descriptor asked
//! about, with the timeout as its deadline: whatever changes one of them
//! wakes the caller, which then asks every descriptor again.
//!
//! ppoll and pselect6 replace the blocked mask for the wait. When a
//! signal interrupts it, the mask stays replaced until that signal's
//! handler has been set up (its frame saves the caller's mask, which
//! rt_sigreturn brings back): the race-free wait those calls exist for.

use crate::fd::{FileKind, FileRef};
use crate::signal;
use crate::sleep::{self, WaitQueue};
use crate::socket::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::{proc, time, usercopy};

use alloc::vec;
use alloc::vec::Vec;
use vm::errno::{Errno, SysResult};

const POLLNVAL: u16 = 0x20;
const POLLPRI: u16 = 0x2;
/// What poll reports whether asked or not.
const ALWAYS: u16 = POLLERR | POLLHUP | POLLNVAL;
/// select's sets hold at most this many descriptors (glibc's FD_SETSIZE
/// is 1024; Linux takes any n up to RLIMIT_NOFILE, rounded).
const SELECT_MAX: u64 = crate::fd::MAX_FDS as u64;

/// What `file` is ready for now, of POLLIN | POLLOUT | POLLERR | POLLHUP.
fn ready(file: &FileRef) -> u16 {
    let file = file.lock();
    let (reads, writes) = (file.readable(), file.writable());
    match &file.kind {
        FileKind::Socket(end) => end.poll(reads, writes),
        kind if super::io::is_terminal(kind) => crate::tty::poll(reads, writes),
        _ => POLLIN | POLLOUT,
    }
}

/// Run `f` on the wait queues a wait on `file` sleeps on.
fn with_queues(files: &[Option<FileRef>], f: impl FnOnce(&[&WaitQueue]) -> SysResult) -> SysResult {
    let mut ends = Vec::new();
    let mut tty = false;
    for file in files.iter().flatten() {
        match &file.lock().kind {
            FileKind::Socket(end) => ends.push(end.clone()),
            kind if super::io::is_terminal(kind) => tty = true,
            _ => {}
        }
    }
    let mut queues: Vec<&WaitQueue> = ends.iter().flat_map(|e| e.queues()).collect();
    if tty {
        queues.push(crate::tty::queue());
    }
    f(&queues)
}

/// A timeout in milliseconds (negative: none) as a monotonic deadline.
fn deadline_ms(timeout: i64) -> Option<u64> {
    u64::try_from(timeout)
        .ok()
        .map(|ms| time::monotonic().saturating_add(ms.saturating_mul(1_000_000)))
}

/// A `struct timespec` timeout (NULL: none) as a monotonic deadline.
fn deadline_timespec(at: u64) -> Result<Option<u64>, Errno> {
    if at == 0 {
        return Ok(None);
    }
    let nanos = super::time::read_timespec(at)?;
    Ok(Some(time::monotonic().saturating_add(nanos)))
}

/// The descriptors' open files; None for a negative fd (ignored) or one
/// not open (POLLNVAL).
fn open_files(fds: &[i32]) -> Vec<Option<FileRef>> {
    proc::with_current(|p| {
        fds.iter()
            .map(|&fd| u64::try_from(fd).ok().and_then(|fd| p.files.get(fd).ok()))
            .collect()
    })
}

pub fn poll(fds: u64, nfds: u64, timeout: u64) -> SysResult {
    poll_until(fds, nfds, deadline_ms(i64::from(timeout as i32)))
}

pub fn ppoll(fds: u64, nfds: u64, tmo: u64, sigmask: u64, sigsetsize: u64) -> SysResult {
    let deadline = deadline_timespec(tmo)?;
    with_mask(sigmask, sigsetsize, || poll_until(fds, nfds, deadline))
}

/// poll over `nfds` `struct pollfd`s (int fd, short events, short revents).
fn poll_until(fds: u64, nfds: u64, deadline: Option<u64>) -> SysResult {
    let limit = proc::with_current(|p| p.res.limit(crate::resource::RLIMIT_NOFILE));
    if nfds > limit.min(1 << 20) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), fds, &mut raw))?;
    let entries: Vec<(i32, u16)> = raw
        .as_chunks::<8>()
        .0
        .iter()
        .map(|e| {
            let fd = i32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            (fd, u16::from_le_bytes([e[4], e[5]]))
        })
        .collect();
    let fd_list: Vec<i32> = entries.iter().map(|e| e.0).collect();
    let files = open_files(&fd_list);
    let scan = || {
        let revents: Vec<u16> = entries
            .iter()
            .zip(&files)
            .map(|(&(fd, events), file)| match file {
                _ if fd < 0 => 0,
                None => POLLNVAL,
                Some(file) => ready(file) & (events | ALWAYS) & !POLLPRI,
            })
            .collect();
        let count = revents.iter().filter(|&&r| r != 0).count();
        (count > 0).then_some((count, revents))
    };
    let count = with_queues(&files, |queues| {
        let found = sleep::wait_for(queues, deadline, scan)?;
        // A timeout: every revents is 0.
        let (count, revents) = found.unwrap_or_else(|| (0, vec![0; entries.len()]));
        for (e, r) in raw.as_chunks_mut::<8>().0.iter_mut().zip(revents) {
            e[6..8].copy_from_slice(&r.to_le_bytes());
        }
        Ok(count)
    })?;
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), fds, &raw))?;
    Ok(count)
}

pub fn select(n: u64, readfds: u64, writefds: u64, exceptfds: u64, timeout: u64) -> SysResult {
    // struct timeval: seconds, microseconds.
    let deadline = if timeout == 0 {
        None
    } else {
        let (secs, usecs) = proc::with_current(|p| -> Result<_, Errno> {
            let s = usercopy::read_u64(&mut *p.space(), timeout)?;
            let u = usercopy::read_u64(&mut *p.space(), timeout + 8)?;
            Ok((s as i64, u as i64))
        })?;
        if secs < 0 || !(0..1_000_000).contains(&usecs) {
            return Err(Errno::EINVAL);
        }
        let nanos = (secs as u64).saturating_mul(1_000_000_000) + usecs as u64 * 1000;
        Some(time::monotonic().saturating_add(nanos))
    };
    select_until(n, [readfds, writefds, exceptfds], deadline)
}

/// pselect6(n, r, w, e, timespec, {sigmask pointer, size}).
pub fn pselect6(n: u64, r: u64, w: u64, e: u64, tmo: u64, sig: u64) -> SysResult {
    let deadline = deadline_timespec(tmo)?;
    let (mask, size) = if sig == 0 {
        (0, 8)
    } else {
        proc::with_current(|p| -> Result<_, Errno> {
            let space = &mut *p.space();
            Ok((
                usercopy::read_u64(space, sig)?,
                usercopy::read_u64(space, sig + 8)?,
            ))
        })?
    };
    with_mask(mask, size, || select_until(n, [r, w, e], deadline))
}

/// select over the bit sets at `sets` (read, write, except; 0: absent),
/// each `n` bits rounded up to whole longs.
fn select_until(n: u64, sets: [u64; 3], deadline: Option<u64>) -> SysResult {
    if n > SELECT_MAX.max(proc::with_current(|p| {
        p.res.limit(crate::resource::RLIMIT_NOFILE)
    })) {
        return Err(Errno::EINVAL);
    }
    let bytes = n.div_ceil(64) as usize * 8;
    let mut bits = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    proc::with_current(|p| -> Result<(), Errno> {
        for (set, at) in bits.iter_mut().zip(sets) {
            if at != 0 {
                usercopy::copy_in(&mut *p.space(), at, set)?;
            }
        }
        Ok(())
    })?;
    let asked = |set: &[u8], fd: usize| set[fd / 8] & (1 << (fd % 8)) != 0;
    let fds: Vec<i32> = (0..n as usize)
        .filter(|&fd| bits.iter().any(|set| asked(set, fd)))
        .map(|fd| fd as i32)
        .collect();
    let files = open_files(&fds);
    if files.iter().any(Option::is_none) {
        return Err(Errno::EBADF);
    }
    let scan = || {
        let mut out = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
        let mut count = 0;
        for (&fd, file) in fds.iter().zip(&files) {
            let Some(file) = file else { continue };
            let events = ready(file);
            let fd = fd as usize;
            // Linux: readable includes end of stream and hang-up; writable
            // includes the error of a pipe without readers.
            let hits = [
                events & (POLLIN | POLLHUP | POLLERR) != 0,
                events & (POLLOUT | POLLERR) != 0,
                false,
            ];
            for ((o, set), hit) in out.iter_mut().zip(&bits).zip(hits) {
                if hit && asked(set, fd) {
                    o[fd / 8] |= 1 << (fd % 8);
                    count += 1;
                }
            }
        }
        (count > 0).then_some((count, out))
    };
    let mut found = None;
    with_queues(&files, |queues| {
        found = sleep::wait_for(queues, deadline, scan)?;
        Ok(0)
    })?;
    let (count, out) = found.unwrap_or_else(|| (0, bits.clone().map(|b| vec![0; b.len()])));
    proc::with_current(|p| -> Result<(), Errno> {
        for (set, at) in out.iter().zip(sets) {
            if at != 0 {
                usercopy::copy_out(&mut *p.space(), at, set)?;
            }
        }
        Ok(())
    })?;
    Ok(count)
}

/// Run `wait` with the blocked mask at `sigmask` (0: unchanged); see the
/// module comment for what happens to the mask when a signal ends it.
fn with_mask(sigmask: u64, sigsetsize: u64, wait: impl FnOnce() -> SysResult) -> SysResult {
    if sigmask == 0 {
        return wait();
    }
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = proc::with_current(|p| usercopy::read_u64(&mut *p.space(), sigmask))?;
    let old = signal::replace_mask(mask);
    let result = wait();
    signal::restore_mask(old, result == Err(Errno::EINTR));
    result
}
