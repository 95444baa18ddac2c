//! Open files and the per-process descriptor table.
//!
//! As in Unix, a descriptor is an index into the process's table; the slot
//! refers to an *open file* (the file, the offset, the access mode), which
//! dup and fork share, so they share the offset too. Only close-on-exec
//! belongs to the descriptor itself.

use crate::dev::Device;
use crate::ramfs::Inode;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use vm::errno::Errno;

pub enum FileKind {
    /// The serial console: fds 0, 1 and 2 of init.
    Console,
    /// A ramfs file, directory or symbolic link (O_PATH | O_NOFOLLOW).
    Inode(Arc<Inode>),
    /// A device node opened: the node (for fstat) and its device.
    Device(Arc<Inode>, Device),
    /// A /proc file or directory.
    Proc(Arc<crate::procfs::Open>),
    /// One end of a socketpair.
    Socket(Arc<crate::socket::End>),
}

// open(2) flags (Linux x86_64 values).
pub const O_ACCMODE: u32 = 3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_PATH: u32 = 0o10000000;
pub const O_CLOEXEC: u32 = 0o2000000;
/// The status flags F_SETFL may change (Linux lets O_APPEND and a few
/// others change; the access mode and creation flags never do).
pub const SETFL_MASK: u32 = O_APPEND | 0o4000 | 0o20000 | 0o40000 | 0o1000000;

pub struct OpenFile {
    pub kind: FileKind,
    /// Where the next read or write starts (for a directory: the index of
    /// the next entry getdents returns).
    pub offset: u64,
    /// The open flags that stay with the open file: access mode, O_APPEND.
    pub flags: u32,
    /// Names this open file description (the owner of its OFD locks).
    pub id: u64,
}

static NEXT_OPEN_FILE: AtomicU64 = AtomicU64::new(1);

/// The last descriptor of an open file is gone: its OFD locks go with it.
impl Drop for OpenFile {
    fn drop(&mut self) {
        crate::locks::release_open_file(self.id);
    }
}

impl OpenFile {
    pub fn new(kind: FileKind, flags: u32) -> OpenFile {
        OpenFile {
            kind,
            offset: 0,
            flags: flags & !(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW),
            id: NEXT_OPEN_FILE.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn readable(&self) -> bool {
        self.flags & O_PATH == 0 && matches!(self.flags & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    pub fn writable(&self) -> bool {
        self.flags & O_PATH == 0 && matches!(self.flags & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    /// The ramfs inode behind the descriptor, if any (fstat, fchmod, locks).
    pub fn inode(&self) -> Option<&Arc<Inode>> {
        match &self.kind {
            FileKind::Inode(inode) | FileKind::Device(inode, _) => Some(inode),
            _ => None,
        }
    }
}

/// Shared by descriptors that refer to one open file (dup, fork).
pub type FileRef = Arc<Mutex<OpenFile>>;

/// Linux's default RLIMIT_NOFILE soft limit.
pub const MAX_FDS: usize = 1024;

#[derive(Clone)]
struct Slot {
    file: FileRef,
    /// FD_CLOEXEC: closed by execve.
    cloexec: bool,
}

/// Cloning a table (fork) shares each open file, offsets included, as
/// Linux's fork does.
#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// RLIMIT_NOFILE's soft limit: descriptors are numbered below it.
    limit: usize,
}

impl FdTable {
    /// stdin, stdout and stderr on the console.
    pub fn with_console() -> Self {
        let console = Arc::new(Mutex::new(OpenFile::new(FileKind::Console, O_RDWR)));
        FdTable {
            limit: MAX_FDS,
            slots: (0..3)
                .map(|_| {
                    Some(Slot {
                        file: console.clone(),
                        cloexec: false,
                    })
                })
                .collect(),
        }
    }

    /// No descriptors at all (a process that has exited).
    pub fn empty() -> Self {
        FdTable {
            slots: Vec::new(),
            limit: MAX_FDS,
        }
    }

    fn slot(&self, fd: u64) -> Result<&Slot, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    /// Tell `f` every open file of the table (once per descriptor).
    pub fn each_open(&self, f: &mut dyn FnMut(&FileRef)) {
        self.slots.iter().flatten().for_each(|s| f(&s.file));
    }

    pub fn get(&self, fd: u64) -> Result<FileRef, Errno> {
        self.slot(fd).map(|s| s.file.clone())
    }

    /// Put `file` in the lowest free slot and return its number.
    pub fn install(&mut self, file: OpenFile, cloexec: bool) -> Result<usize, Errno> {
        self.install_from(Arc::new(Mutex::new(file)), 0, cloexec)
    }

    /// Put an open file in the lowest free slot numbered `min` or more
    /// (dup, F_DUPFD); EMFILE when none is left, EINVAL for a `min` past
    /// the limit (as F_DUPFD says).
    pub fn install_from(
        &mut self,
        file: FileRef,
        min: usize,
        cloexec: bool,
    ) -> Result<usize, Errno> {
        if min >= self.limit {
            return Err(Errno::EINVAL);
        }
        let free = (min..self.limit).find(|&i| self.slots.get(i).is_none_or(Option::is_none));
        let index = free.ok_or(Errno::EMFILE)?;
        self.place(index, file, cloexec);
        Ok(index)
    }

    /// Make `fd` refer to `file`, closing what it referred to (dup2);
    /// EBADF for a number past the limit.
    pub fn install_at(&mut self, fd: u64, file: FileRef, cloexec: bool) -> Result<usize, Errno> {
        let index = usize::try_from(fd)
            .ok()
            .filter(|&i| i < self.limit)
            .ok_or(Errno::EBADF)?;
        self.place(index, file, cloexec);
        Ok(index)
    }

    fn place(&mut self, index: usize, file: FileRef, cloexec: bool) {
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(Slot { file, cloexec });
    }

    /// Close `fd`; returns the open file it referred to (POSIX locks of
    /// its file go on any close: the caller releases them).
    pub fn close(&mut self, fd: u64) -> Result<FileRef, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots
            .get_mut(index)
            .and_then(Option::take)
            .map(|slot| slot.file)
            .ok_or(Errno::EBADF)
    }

    /// RLIMIT_NOFILE changed: new descriptors are numbered below `limit`.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub fn cloexec(&self, fd: u64) -> Result<bool, Errno> {
        self.slot(fd).map(|s| s.cloexec)
    }

    pub fn set_cloexec(&mut self, fd: u64, on: bool) -> Result<(), Errno> {
        self.slot(fd)?;
        if let Some(Some(slot)) = self.slots.get_mut(fd as usize) {
            slot.cloexec = on;
        }
        Ok(())
    }

    /// Close every close-on-exec descriptor (execve); returns what they
    /// referred to.
    pub fn close_on_exec(&mut self) -> Vec<FileRef> {
        let mut closed = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.cloexec)
                && let Some(s) = slot.take()
            {
                closed.push(s.file);
            }
        }
        closed
    }
}
