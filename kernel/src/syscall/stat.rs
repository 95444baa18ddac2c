//! The binary layouts user programs read: Linux x86_64's `struct stat`
//! (144 bytes), `struct statx` (256 bytes) and `struct linux_dirent64`.

use crate::ramfs::{Inode, Kind};
use crate::vfs::Node;
use crate::{proc, usercopy};
use alloc::vec::Vec;
use vm::errno::SysResult;

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFIFO: u32 = 0o010000;
const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;
/// The console's device number (ttyS0 is 4:64 on Linux), and /proc's st_dev.
const CONSOLE_RDEV: u64 = (4 << 8) | 64;
const PROC_DEV: u64 = 0x16;
const STAT_SIZE: usize = 144;

/// What stat and statx report, whatever the file.
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    /// 512-byte units actually held in memory.
    pub blocks: u64,
    /// atime, mtime, ctime in ns since the epoch.
    pub times: [u64; 3],
}

/// Linux's `new_encode_dev`: a dev_t as stat shows it.
fn encode_dev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

impl Stat {
    /// Field offsets as in Linux's arch/x86/include/uapi/asm/stat.h.
    pub fn encode(&self) -> [u8; STAT_SIZE] {
        let mut out = [0u8; STAT_SIZE];
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &self.dev.to_le_bytes());
        put(8, &self.ino.to_le_bytes());
        put(16, &self.nlink.to_le_bytes());
        put(24, &self.mode.to_le_bytes());
        put(28, &self.uid.to_le_bytes());
        put(32, &self.gid.to_le_bytes());
        put(40, &self.rdev.to_le_bytes());
        put(48, &self.size.to_le_bytes());
        put(56, &4096u64.to_le_bytes()); // st_blksize
        put(64, &self.blocks.to_le_bytes());
        for (i, t) in self.times.iter().enumerate() {
            put(72 + i * 16, &(t / 1_000_000_000).to_le_bytes());
            put(80 + i * 16, &(t % 1_000_000_000).to_le_bytes());
        }
        out
    }

    /// struct statx: every basic field (STATX_BASIC_STATS), birth time
    /// not known (its mask bit stays clear).
    pub fn encode_statx(&self) -> [u8; 256] {
        const STATX_BASIC_STATS: u32 = 0x7ff;
        let mut out = [0u8; 256];
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &STATX_BASIC_STATS.to_le_bytes());
        put(4, &4096u32.to_le_bytes());
        put(16, &(self.nlink as u32).to_le_bytes());
        put(20, &self.uid.to_le_bytes());
        put(24, &self.gid.to_le_bytes());
        put(28, &(self.mode as u16).to_le_bytes());
        put(32, &self.ino.to_le_bytes());
        put(40, &self.size.to_le_bytes());
        put(48, &self.blocks.to_le_bytes());
        // atime 64, btime 80, ctime 96, mtime 112: {tv_sec i64, tv_nsec u32, pad}.
        for (at, t) in [
            (64, self.times[0]),
            (96, self.times[2]),
            (112, self.times[1]),
        ] {
            put(at, &(t / 1_000_000_000).to_le_bytes());
            put(at + 8, &((t % 1_000_000_000) as u32).to_le_bytes());
        }
        let (rmaj, rmin) = (
            self.rdev >> 8 & 0xfff,
            self.rdev & 0xff | (self.rdev >> 12 & !0xff),
        );
        put(128, &(rmaj as u32).to_le_bytes());
        put(132, &(rmin as u32).to_le_bytes());
        let (dmaj, dmin) = (self.dev >> 8 & 0xfff, self.dev & 0xff);
        put(136, &(dmaj as u32).to_le_bytes());
        put(140, &(dmin as u32).to_le_bytes());
        out
    }
}

pub fn of_inode(inode: &Inode) -> Stat {
    let (kind, nlink, rdev) = match inode.kind {
        Kind::Dir(_) => (S_IFDIR, inode.dir_links(), 0),
        Kind::File(_) => (S_IFREG, inode.links(), 0),
        Kind::Symlink(_) => (S_IFLNK, inode.links(), 0),
        Kind::CharDev(major, minor) => (
            S_IFCHR,
            inode.links(),
            encode_dev(u64::from(major), u64::from(minor)),
        ),
    };
    // In memory or in swap, as tmpfs counts st_blocks.
    let pages = inode.object().map_or(0, |o| o.held_pages());
    let meta = inode.meta();
    Stat {
        dev: inode.dev,
        ino: inode.ino,
        nlink: u64::from(nlink),
        mode: kind | inode.mode(),
        uid: meta.uid,
        gid: meta.gid,
        rdev,
        size: inode.size(),
        blocks: pages * 8,
        times: [meta.atime, meta.mtime, meta.ctime],
    }
}

/// A /proc entry: its mode, size 0 (as Linux), the time of the boot.
pub fn of_proc(node: &crate::procfs::Node) -> Stat {
    let kind = if node.is_dir() {
        S_IFDIR
    } else if node.link_target().is_some() {
        S_IFLNK
    } else {
        S_IFREG
    };
    Stat {
        dev: PROC_DEV,
        ino: node.ino(),
        nlink: if node.is_dir() { 2 } else { 1 },
        mode: kind | node.mode(),
        uid: 0,
        gid: 0,
        rdev: 0,
        size: 0,
        blocks: 0,
        times: [0; 3],
    }
}

pub fn of_node(node: &Node) -> Stat {
    match node {
        Node::Ram(inode) => of_inode(inode),
        Node::Proc(node) => of_proc(node),
    }
}

/// What is not in a file system: the console, a socket.
pub fn of_special(mode: u32, rdev: u64) -> Stat {
    Stat {
        dev: 0,
        ino: 0,
        nlink: 1,
        mode,
        uid: 0,
        gid: 0,
        rdev,
        size: 0,
        blocks: 0,
        times: [0; 3],
    }
}

pub fn of_console() -> Stat {
    of_special(S_IFCHR | 0o620, CONSOLE_RDEV)
}

pub fn copy_out(buf: u64, bytes: &[u8]) -> SysResult {
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, bytes))?;
    Ok(0)
}

/// The d_type of a stat mode.
pub fn dtype(mode: u32) -> u8 {
    match mode & 0o170000 {
        S_IFDIR => DT_DIR,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        S_IFCHR => DT_CHR,
        _ => 0,
    }
}

/// One `linux_dirent64`: inode, the offset of the next entry, the record
/// length (8-byte aligned), the type, and the NUL-terminated name.
pub fn dirent(ino: u64, dtype: u8, name: &str, next: u64) -> Vec<u8> {
    let len = (19 + name.len() + 1).next_multiple_of(8);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.push(dtype);
    out.extend_from_slice(name.as_bytes());
    out.resize(len, 0);
    out
}
