//! Character devices and /dev.
//!
//! A device node in the ramfs (`ramfs::Kind::CharDev`) carries Linux's major
//! and minor numbers; opening it gives a `Device`, whose reads and writes
//! are here. At boot the kernel fills the devtmpfs tree with the nodes Linux
//! has and mounts it on /dev (`mount -t devtmpfs` mounts the same tree
//! elsewhere, as on Linux).
//!
//! /dev/tty and /dev/console are the terminal (kernel/src/tty/); read(2)
//! and write(2) of them go there before reaching `Device`.

use crate::arch;
use crate::ramfs::{self, Inode};
use alloc::sync::Arc;
use spin::Once;
use vm::errno::Errno;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Reads end of file, swallows writes.
    Null,
    /// Reads zeros, swallows writes; mapping it is anonymous memory.
    Zero,
    /// Reads zeros, writes fail with ENOSPC.
    Full,
    /// Random bytes (random and urandom are the same generator here).
    Random,
    URandom,
    /// The controlling terminal and the system console: the serial port.
    Tty,
    Console,
}

/// Name, device, major, minor, mode: the nodes of Linux's /dev that pageos has.
const NODES: [(&str, Device, u32, u32, u32); 7] = [
    ("null", Device::Null, 1, 3, 0o666),
    ("zero", Device::Zero, 1, 5, 0o666),
    ("full", Device::Full, 1, 7, 0o666),
    ("random", Device::Random, 1, 8, 0o666),
    ("urandom", Device::URandom, 1, 9, 0o666),
    ("tty", Device::Tty, 5, 0, 0o666),
    ("console", Device::Console, 5, 1, 0o600),
];

impl Device {
    /// The device a node's numbers name (ENXIO for one pageos lacks).
    pub fn from_numbers(major: u32, minor: u32) -> Result<Device, Errno> {
        NODES
            .iter()
            .find(|n| n.2 == major && n.3 == minor)
            .map(|n| n.1)
            .ok_or(Errno::ENXIO)
    }

    /// Fill `buf`; returns how many bytes (0: end of file).
    pub fn read(self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            Device::Null | Device::Tty | Device::Console => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::URandom => {
                random_fill(buf);
                Ok(buf.len())
            }
        }
    }

    /// Take `data`; returns how many bytes were written.
    pub fn write(self, data: &[u8]) -> Result<usize, Errno> {
        match self {
            Device::Full => Err(Errno::ENOSPC),
            Device::Tty | Device::Console => Ok(crate::tty::write(data)),
            _ => Ok(data.len()),
        }
    }
}

/// Bytes from a xorshift generator seeded by the TSC: not cryptographic,
/// good enough for hash seeds and canaries in a teaching kernel.
pub fn random_fill(buf: &mut [u8]) {
    let mut state = arch::rdtsc() | 1;
    for b in buf {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 24) as u8;
    }
}

static DEVTMPFS: Once<Arc<Inode>> = Once::new();

/// The devtmpfs tree, made on first use with every node of `NODES`.
pub fn devtmpfs() -> Arc<Inode> {
    DEVTMPFS
        .call_once(|| {
            let tree = ramfs::new_tree();
            tree.set_mode(0o755);
            for (name, _, major, minor, mode) in NODES {
                tree.create_chardev(name, mode, (major, minor))
                    .expect("dev: duplicate node name");
            }
            tree
        })
        .clone()
}
