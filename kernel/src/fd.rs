//! Open files and the per-process descriptor table.

use crate::ramfs::Inode;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;
use vm::errno::Errno;

pub enum FileKind {
    /// The serial console: fds 0, 1 and 2 of init.
    Console,
    Inode(Arc<Inode>),
    /// A /proc file: its contents as they were when it was opened.
    Snapshot(Arc<Vec<u8>>),
}

pub struct OpenFile {
    pub kind: FileKind,
    pub offset: u64,
    pub flags: u32,
}

/// Shared by descriptors that refer to one open file (dup, fork).
pub type FileRef = Arc<Mutex<OpenFile>>;

/// Linux's default RLIMIT_NOFILE soft limit.
const MAX_FDS: usize = 1024;

/// Cloning a table (fork) shares each open file, offsets included, as
/// Linux's fork does.
#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<FileRef>>,
}

impl FdTable {
    /// stdin, stdout and stderr on the console.
    pub fn with_console() -> Self {
        let console = Arc::new(Mutex::new(OpenFile {
            kind: FileKind::Console,
            offset: 0,
            flags: 2,
        }));
        FdTable {
            slots: (0..3).map(|_| Some(console.clone())).collect(),
        }
    }

    /// No descriptors at all (a process that has exited).
    pub fn empty() -> Self {
        FdTable { slots: Vec::new() }
    }

    pub fn get(&self, fd: u64) -> Result<FileRef, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots
            .get(index)
            .and_then(Clone::clone)
            .ok_or(Errno::EBADF)
    }

    /// Put `file` in the lowest free slot and return its number.
    pub fn install(&mut self, file: OpenFile) -> Result<usize, Errno> {
        let file = Arc::new(Mutex::new(file));
        if let Some(index) = self.slots.iter().position(Option::is_none) {
            self.slots[index] = Some(file);
            return Ok(index);
        }
        if self.slots.len() >= MAX_FDS {
            return Err(Errno::EMFILE);
        }
        self.slots.push(Some(file));
        Ok(self.slots.len() - 1)
    }

    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.slots
            .get_mut(index)
            .and_then(Option::take)
            .map(|_| ())
            .ok_or(Errno::EBADF)
    }
}
