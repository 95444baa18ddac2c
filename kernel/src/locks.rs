//! Advisory record locks: fcntl's F_SETLK, F_SETLKW, F_GETLK (POSIX locks)
//! and F_OFD_* (open-file-description locks), with the semantics SQLite's
//! default VFS relies on.
//!
//! A lock covers a byte range of a file, for reading (shared) or writing
//! (exclusive). Two locks conflict when their owners differ, their ranges
//! overlap and one of them is a write lock. Who the owner is makes the two
//! kinds differ:
//! - a POSIX lock belongs to the process: its own locks never conflict
//!   with each other (a new one replaces the overlap), and all of them on a
//!   file go when the process closes *any* descriptor of that file, or exits;
//! - an OFD lock belongs to the open file description (open(2) makes one;
//!   dup and fork share it): it goes when the description's last
//!   descriptor closes.
//!
//! POSIX and OFD locks conflict with each other, even within one process.
//!
//! F_SETLKW sleeps on `CHANGED` (kernel/src/sleep.rs's `wait_for`), which
//! every change that may free a range wakes: an unlock or a replaced lock
//! (`set`), a close, an exit. It used to retry with `yield_now`, which kept
//! the waiter runnable and its CPU busy for as long as the holder took; on
//! two CPUs it was also what hid the holder from the kernel lock
//! (docs/src/concurrency.md).

use crate::fd::FileRef;
use crate::proc::Pid;
use crate::sleep::WaitQueue;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use spin::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Process(Pid),
    OpenFile(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
}

/// One lock: bytes [start, end) (end u64::MAX: to the end of the file, however it grows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    pub owner: Owner,
    pub kind: LockKind,
    pub start: u64,
    pub end: u64,
}

/// A file's identity: st_dev and inode number.
pub type FileId = (u64, u64);

static LOCKS: Mutex<BTreeMap<FileId, Vec<Lock>>> = Mutex::new(BTreeMap::new());

/// The F_SETLKW waiters, woken after any lock went or shrank: they check
/// again (one queue for every file: waits are rare and short).
pub static CHANGED: WaitQueue = WaitQueue::new();

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }

    fn conflicts(&self, other: &Lock) -> bool {
        self.owner != other.owner
            && self.overlaps(other.start, other.end)
            && (self.kind == LockKind::Write || other.kind == LockKind::Write)
    }
}

/// The first lock of another owner that would keep `want` from being taken
/// (F_GETLK's answer), if any.
pub fn conflict(file: FileId, want: &Lock) -> Option<Lock> {
    LOCKS
        .lock()
        .get(&file)
        .and_then(|locks| locks.iter().find(|l| l.conflicts(want)).copied())
}

/// Take `want` (or, with `kind` None, unlock the range): the owner's own
/// locks over the range are replaced, split at its edges. Returns the
/// conflicting lock instead when there is one (nothing changes then).
pub fn set(
    file: FileId,
    owner: Owner,
    kind: Option<LockKind>,
    start: u64,
    end: u64,
) -> Option<Lock> {
    let mut table = LOCKS.lock();
    let locks = table.entry(file).or_default();
    if let Some(kind) = kind {
        let want = Lock {
            owner,
            kind,
            start,
            end,
        };
        if let Some(c) = locks.iter().find(|l| l.conflicts(&want)) {
            return Some(*c);
        }
    }
    let mut kept = Vec::with_capacity(locks.len() + 2);
    // Whether one of the owner's locks went or changed (a waiter may fit now).
    let mut freed = false;
    for l in locks.drain(..) {
        if l.owner != owner || !l.overlaps(start, end) {
            kept.push(l);
            continue;
        }
        freed = true;
        if l.start < start {
            kept.push(Lock { end: start, ..l });
        }
        if l.end > end {
            kept.push(Lock { start: end, ..l });
        }
    }
    if let Some(kind) = kind {
        kept.push(Lock {
            owner,
            kind,
            start,
            end,
        });
    }
    kept.sort_by_key(|l| l.start);
    if kept.is_empty() {
        table.remove(&file);
    } else {
        *locks = kept;
    }
    drop(table);
    if freed {
        CHANGED.wake_all();
    }
    None
}

fn release(keep: impl Fn(&Lock) -> bool) {
    LOCKS.lock().retain(|_, locks| {
        locks.retain(|l| keep(l));
        !locks.is_empty()
    });
    CHANGED.wake_all();
}

/// A process closed a descriptor of `file`: its POSIX locks on it go.
pub fn release_process_file(pid: Pid, file: FileId) {
    if let Some(locks) = LOCKS.lock().get_mut(&file) {
        locks.retain(|l| l.owner != Owner::Process(pid));
    }
    CHANGED.wake_all();
}

/// A process exited: every POSIX lock it held goes.
pub fn release_process(pid: Pid) {
    release(|l| l.owner != Owner::Process(pid));
}

/// An open file description's last descriptor closed: its OFD locks go.
pub fn release_open_file(id: u64) {
    release(|l| l.owner != Owner::OpenFile(id));
}

/// Descriptors `closed` by process `pid` (close, dup2 over one, execve's
/// close-on-exec): the process's POSIX locks on their files go.
pub fn closed(pid: Pid, closed: &[FileRef]) {
    for file in closed {
        let id = file.lock().inode().map(|i| (i.dev, i.ino));
        if let Some(id) = id {
            release_process_file(pid, id);
        }
    }
}
