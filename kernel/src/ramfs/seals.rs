//! File seals (fcntl F_ADD_SEALS / F_GET_SEALS, Linux's memfd sealing):
//! promises a file makes about itself that nobody, its owner included,
//! can take back. A process that receives a sealed memfd can then map it
//! and read it without fearing that the sender shrinks it under its feet
//! (SIGBUS) or changes the bytes it has checked.
//!
//! As on Linux's tmpfs, every regular file carries a seal set; a file
//! made any other way than by `memfd_create(MFD_ALLOW_SEALING)` starts
//! with F_SEAL_SEAL, so nothing can be added to it (EPERM). The checks
//! sit where the change happens: `Inode::write_at` (write, pwrite,
//! writev, sendfile), `Inode::truncate` and `fallocate` (ftruncate,
//! truncate), `syscall::memory::file_vma` (mmap), and writable shared
//! mappings are found through the object's mappers when F_SEAL_WRITE
//! is added (EBUSY).

use super::Inode;
use core::sync::atomic::Ordering;
use vm::errno::Errno;
use vm::frame::PAGE_SIZE as PAGE;

/// No more seals may be added.
pub const F_SEAL_SEAL: u32 = 0x1;
/// The file may not get smaller.
pub const F_SEAL_SHRINK: u32 = 0x2;
/// The file may not get larger.
pub const F_SEAL_GROW: u32 = 0x4;
/// The contents may not change: no write(), no writable shared mapping.
pub const F_SEAL_WRITE: u32 = 0x8;
/// As F_SEAL_WRITE for what comes after it; writable shared mappings
/// made before it keep writing.
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
/// The seals Linux 6.1 knows (F_SEAL_EXEC came with 6.3): others are EINVAL.
pub const F_ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

impl Inode {
    /// The seals in force (0 for anything but a regular file, which has none).
    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::Relaxed)
    }

    /// Whether the contents are sealed against writing (F_SEAL_WRITE or
    /// F_SEAL_FUTURE_WRITE): no write(), no new writable shared mapping.
    pub fn write_sealed(&self) -> bool {
        self.seals() & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0
    }

    /// Add `seals` (F_ADD_SEALS, after the caller's checks of the
    /// descriptor and the bits): EPERM once F_SEAL_SEAL is set, EBUSY
    /// when F_SEAL_WRITE is new and `mapped_writable` says a writable
    /// shared mapping of the file exists (Linux's mapping_deny_writable).
    pub fn add_seals(
        &self,
        seals: u32,
        mapped_writable: impl FnOnce() -> bool,
    ) -> Result<(), Errno> {
        let now = self.seals();
        if now & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_WRITE != 0 && now & F_SEAL_WRITE == 0 && mapped_writable() {
            return Err(Errno::EBUSY);
        }
        self.seals.fetch_or(seals, Ordering::Relaxed);
        Ok(())
    }

    /// How many of `len` bytes at `offset` may be written: EPERM under a
    /// write seal. Under F_SEAL_GROW Linux writes page by page and refuses
    /// the first piece that would end past the end of the file
    /// (shmem_write_begin), so a write across the end stops at the last
    /// page boundary inside the file, and is EPERM when there is none.
    pub(super) fn sealed_write_len(&self, offset: u64, len: usize) -> Result<usize, Errno> {
        let seals = self.seals();
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let (end, size) = (offset.saturating_add(len as u64), self.size());
        if seals & F_SEAL_GROW == 0 || end <= size {
            return Ok(len);
        }
        let last_boundary = size / PAGE * PAGE;
        match last_boundary.checked_sub(offset) {
            Some(n) if n > 0 => Ok(n as usize),
            _ => Err(Errno::EPERM),
        }
    }

    /// fallocate's range [.., end): the ramfs reserves nothing (a page
    /// comes on first touch, a hole reads as zeros), so this only makes
    /// the file `end` bytes long if it is shorter and `keep_size` is not
    /// asked. F_SEAL_GROW refuses an end past the size even with
    /// `keep_size` (EPERM), as Linux's shmem_fallocate.
    pub fn allocate(&self, end: u64, keep_size: bool) -> Result<(), Errno> {
        self.check_not_running()?;
        if self.seals() & F_SEAL_GROW != 0 && end > self.size() {
            return Err(Errno::EPERM);
        }
        if keep_size || end <= self.size() {
            return Ok(());
        }
        self.truncate(end)
    }

    /// May the file become `size` bytes long? EPERM for a shrink under
    /// F_SEAL_SHRINK and a growth under F_SEAL_GROW (Linux's shmem_setattr).
    pub(super) fn check_sealed_resize(&self, size: u64) -> Result<(), Errno> {
        let (seals, now) = (self.seals(), self.size());
        if (size < now && seals & F_SEAL_SHRINK != 0) || (size > now && seals & F_SEAL_GROW != 0) {
            return Err(Errno::EPERM);
        }
        Ok(())
    }
}
