//! The initrd format: cpio "newc", the archive format Linux's initramfs uses.
//!
//! Each entry is a 110-byte ASCII header (magic `070701` and thirteen 8-digit
//! hex fields), the NUL-terminated path, then the data; header+name and data
//! are each padded to 4 bytes. The archive ends with an entry named
//! `TRAILER!!!`. The kernel's `initrd` module reads exactly this.

const MODE_DIR: u32 = 0o040_755;
const MODE_FILE: u32 = 0o100_755;

/// An archive being built in memory.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Archive {
    /// Add a directory; `path` has no leading slash (`sbin`).
    pub fn dir(&mut self, path: &str) {
        self.entry(path, MODE_DIR, &[]);
    }

    /// Add a regular file with its contents.
    pub fn file(&mut self, path: &str, data: &[u8]) {
        self.entry(path, MODE_FILE, data);
    }

    /// Close the archive with its trailer and return the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.next_inode += 1;
        let name_size = path.len() + 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            u32::try_from(data.len()).expect("cpio: file larger than 4 GiB"),
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            u32::try_from(name_size).expect("cpio: path too long"),
            0, // check (unused by newc)
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_newc() {
        let mut a = Archive::default();
        a.file("sbin/init", b"hello");
        let bytes = a.finish();
        assert_eq!(&bytes[..6], b"070701");
        // filesize is the 7th field, namesize the 12th.
        assert_eq!(&bytes[6 + 6 * 8..6 + 7 * 8], b"00000005");
        assert_eq!(&bytes[6 + 11 * 8..6 + 12 * 8], b"0000000a");
        assert_eq!(&bytes[110..119], b"sbin/init");
        // 110 + 10 = 120 (aligned), then the data.
        assert_eq!(&bytes[120..125], b"hello");
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
