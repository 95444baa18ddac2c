//! Unpacking the initrd (a cpio "newc" archive, see boot/src/cpio.rs) into ramfs.

use crate::ramfs;
use alloc::string::String;

const HEADER_LEN: usize = 110;
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Create every directory and file of the archive in ramfs; returns how many.
pub fn unpack(archive: &[u8]) -> usize {
    let mut at = 0;
    let mut count = 0;
    while at + HEADER_LEN <= archive.len() {
        let header = &archive[at..at + HEADER_LEN];
        if &header[..6] != b"070701" {
            log::error!("initrd: bad cpio magic at offset {at}");
            break;
        }
        let field = |i: usize| {
            let hex = core::str::from_utf8(&header[6 + i * 8..6 + (i + 1) * 8]).unwrap_or("0");
            u32::from_str_radix(hex, 16).unwrap_or(0) as usize
        };
        let (mode, size, name_len) = (field(1) as u32, field(6), field(11));
        let name_start = at + HEADER_LEN;
        let data_start = (name_start + name_len).next_multiple_of(4);
        let Some(name) = archive.get(name_start..name_start + name_len.saturating_sub(1)) else {
            break;
        };
        let Some(data) = archive.get(data_start..data_start + size) else {
            break;
        };
        let name = String::from_utf8_lossy(name);
        if name == "TRAILER!!!" {
            break;
        }
        let created = match mode & S_IFMT {
            S_IFDIR => ramfs::mkdir(&name, mode & 0o7777).map(|_| ()),
            S_IFREG => ramfs::create_file(&name, data, mode & 0o7777).map(|_| ()),
            S_IFLNK => ramfs::symlink(&name, &String::from_utf8_lossy(data)).map(|_| ()),
            _ => Ok(()),
        };
        match created {
            Ok(()) => count += 1,
            Err(e) => log::warn!("initrd: {name}: {e:?}"),
        }
        at = (data_start + size).next_multiple_of(4);
    }
    count
}
