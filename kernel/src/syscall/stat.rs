//! The binary layouts user programs read: Linux x86_64's `struct stat`
//! (144 bytes) and `struct linux_dirent64`.

use crate::ramfs::Inode;
use crate::{proc, usercopy};
use alloc::vec::Vec;
use vm::errno::SysResult;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
/// The ramfs's device number, and the console's (ttyS0 is 4:64 on Linux).
const RAMFS_DEV: u64 = 1;
const CONSOLE_RDEV: u64 = (4 << 8) | 64;
const STAT_SIZE: usize = 144;

struct Stat {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    rdev: u64,
    size: u64,
    /// 512-byte units actually held in memory.
    blocks: u64,
}

impl Stat {
    /// Field offsets as in Linux's arch/x86/include/uapi/asm/stat.h;
    /// uid, gid and the times are 0.
    fn encode(&self) -> [u8; STAT_SIZE] {
        let mut out = [0u8; STAT_SIZE];
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &self.dev.to_le_bytes());
        put(8, &self.ino.to_le_bytes());
        put(16, &self.nlink.to_le_bytes());
        put(24, &self.mode.to_le_bytes());
        put(40, &self.rdev.to_le_bytes());
        put(48, &self.size.to_le_bytes());
        put(56, &4096u64.to_le_bytes()); // st_blksize
        put(64, &self.blocks.to_le_bytes());
        out
    }
}

pub fn of_inode(inode: &Inode) -> [u8; STAT_SIZE] {
    let (kind, nlink) = if inode.is_dir() {
        (S_IFDIR, 2)
    } else {
        (S_IFREG, u64::from(inode.links()))
    };
    let pages = inode.object().map_or(0, |o| o.resident_pages());
    Stat {
        dev: RAMFS_DEV,
        ino: inode.ino,
        nlink,
        mode: kind | inode.mode(),
        rdev: 0,
        size: inode.size(),
        blocks: pages * 8,
    }
    .encode()
}

pub fn of_console() -> [u8; STAT_SIZE] {
    Stat {
        dev: 0,
        ino: 0,
        nlink: 1,
        mode: S_IFCHR | 0o620,
        rdev: CONSOLE_RDEV,
        size: 0,
        blocks: 0,
    }
    .encode()
}

/// A /proc file: read-only, its size the snapshot's.
pub fn of_snapshot(len: u64) -> [u8; STAT_SIZE] {
    Stat {
        dev: 0,
        ino: 0,
        nlink: 1,
        mode: S_IFREG | 0o444,
        rdev: 0,
        size: len,
        blocks: 0,
    }
    .encode()
}

pub fn copy_out(buf: u64, bytes: &[u8]) -> SysResult {
    proc::with_current(|p| usercopy::copy_out(p.space(), buf, bytes))?;
    Ok(0)
}

/// One `linux_dirent64`: inode, the offset of the next entry, the record
/// length (8-byte aligned), the type, and the NUL-terminated name.
pub fn dirent(inode: &Inode, name: &str, next: u64) -> Vec<u8> {
    let len = (19 + name.len() + 1).next_multiple_of(8);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&inode.ino.to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.push(if inode.is_dir() { DT_DIR } else { DT_REG });
    out.extend_from_slice(name.as_bytes());
    out.resize(len, 0);
    out
}
