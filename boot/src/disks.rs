//! The disks a run attaches: `--swap SIZE`, a fresh swap disk in the run's
//! temporary directory, and `--disk FILE`s, each a virtio-blk PCI device.
//!
//! The swap disk gets Linux's swap header (vm::swap_header, the layout
//! `mkswap` writes: "SWAPSPACE2" at byte 4086, version 1, last_page, a
//! random UUID, the label `pageos-swap`), so the same image is a swap
//! device for Linux too; the rest of the file is a hole (zeros).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use vm::swap_header::{MIN_PAGES, SwapHeader};

pub const SWAP_LABEL: &str = "pageos-swap";
const PAGE: u64 = 4096;

/// A size in QEMU's syntax: a number of bytes, or of KiB, MiB, GiB or TiB
/// with a K, M, G or T suffix (either case).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?}: not a size (examples: 64M, 1G)");
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        Some('T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Create a swap disk of `size` bytes at `path`, formatted as `mkswap`
/// formats it, with `uuid`. The size is cut down to whole pages; the slots
/// are pages 1..size/4096.
pub fn create_swap(path: &Path, size: u64, uuid: [u8; 16]) -> Result<(), String> {
    let pages = size / PAGE;
    if pages < MIN_PAGES {
        return Err(format!(
            "--swap {size}: a swap area needs at least {MIN_PAGES} pages"
        ));
    }
    if pages - 1 > u64::from(u32::MAX) {
        return Err(format!(
            "--swap {size}: larger than a swap header can describe"
        ));
    }
    let header = SwapHeader::new(pages, uuid, SWAP_LABEL);
    let mut file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(&header.to_page())
        .and_then(|()| file.set_len(pages * PAGE))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A random (version 4) UUID, as mkswap makes one.
pub fn random_uuid() -> Result<[u8; 16], String> {
    let mut uuid = [0; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    Ok(uuid)
}

/// The disk files of a run, in the order the guest sees them (vda first):
/// the swap disk made in `work` if asked for, then the `--disk` files.
pub fn prepare(swap: Option<&str>, disks: &[PathBuf], work: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    if let Some(size) = swap {
        let path = work.join("swap.img");
        create_swap(&path, parse_size(size)?, random_uuid()?)?;
        files.push(path);
    }
    for disk in disks {
        if !disk.is_file() {
            return Err(format!("--disk {}: no such file", disk.display()));
        }
        files.push(disk.clone());
    }
    Ok(files)
}

/// QEMU's arguments that attach `files` as virtio-blk PCI disks.
pub fn qemu_args(files: &[PathBuf]) -> Vec<String> {
    let mut args = Vec::new();
    for (i, file) in files.iter().enumerate() {
        args.push("-drive".into());
        args.push(format!(
            "file={},format=raw,if=none,id=disk{i}",
            file.display()
        ));
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive=disk{i}"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn sizes_in_qemus_syntax() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn a_swap_disk_has_the_header_and_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swap.img");
        create_swap(&path, (1 << 20) + 100, [7; 16]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1 << 20, "cut down to whole pages");
        let page: [u8; 4096] = bytes[..4096].try_into().unwrap();
        let header = SwapHeader::parse(&page, 256).unwrap();
        assert_eq!(header.last_page, 255);
        assert_eq!(header.label(), SWAP_LABEL);
        assert!(create_swap(&path, 9 * 4096, [7; 16]).is_err());
    }

    /// A program of util-linux (Debian's essential set): blkid, mkswap.
    fn util_linux(name: &str) -> Command {
        let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {name}: install util-linux"));
        Command::new(path)
    }

    /// Linux's own tools take the runner's swap disk for a swap area, and
    /// mkswap, given the same size, UUID and label, writes the same bytes.
    #[test]
    fn linux_tools_recognise_the_swap_disk() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.img");
        let uuid = *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef";
        create_swap(&ours, 1 << 20, uuid).unwrap();
        let out = util_linux("blkid")
            .args(["-p", "-o", "export"])
            .arg(&ours)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for line in [
            "TYPE=swap",
            "LABEL=pageos-swap",
            "UUID=01234567-89ab-cdef-0123-456789abcdef",
            "VERSION=1",
        ] {
            assert!(text.lines().any(|l| l == line), "blkid: no {line}:\n{text}");
        }

        let theirs = dir.path().join("theirs.img");
        File::create(&theirs)
            .and_then(|f| f.set_len(1 << 20))
            .unwrap();
        let status = util_linux("mkswap")
            .args([
                "-q",
                "-U",
                "01234567-89ab-cdef-0123-456789abcdef",
                "-L",
                SWAP_LABEL,
            ])
            .arg(&theirs)
            .status()
            .unwrap();
        assert!(status.success());
        let (a, b) = (
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        assert!(a == b, "the runner's swap disk differs from mkswap's");
    }

    #[test]
    fn uuids_are_version_4() {
        let uuid = random_uuid().unwrap();
        assert_eq!(uuid[6] >> 4, 4);
        assert_eq!(uuid[8] >> 6, 2);
    }
}
