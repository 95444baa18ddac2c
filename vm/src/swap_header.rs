//! The swap header: page 0 of a swap device, in Linux's layout (`union
//! swap_header` in include/linux/swap.h), so one disk image serves pageos
//! and Linux alike. `mkswap` writes it; Linux's `swapon` and pageos's
//! `swap` module read it with the same rules.
//!
//! ```text
//!   offset  size  field
//!        0  1024  bootbits     room for a boot sector or disk label: zeros
//!     1024     4  version      1
//!     1028     4  last_page    the last page index the swap area may use
//!     1032     4  nr_badpages  how many entries of badpages follow
//!     1036    16  uuid         the device's UUID (blkid shows it)
//!     1052    16  volume       its label, NUL-padded (swaplabel shows it)
//!     1068   468  padding
//!     1536  4*n   badpages     page indexes never to use
//!     4086    10  magic        "SWAPSPACE2"
//! ```
//!
//! Page 0 itself is never a slot. Slots are pages 1..=last_page less the
//! bad ones, so an image of N pages made by mkswap (last_page = N - 1) has
//! N - 1 slots, and Linux's /proc/swaps shows (N - 1) * 4 kB.

use crate::frame::PAGE_SIZE;

const MAGIC: &[u8; 10] = b"SWAPSPACE2";
const MAGIC_AT: usize = PAGE_SIZE as usize - MAGIC.len();
const VERSION_AT: usize = 1024;
const LAST_PAGE_AT: usize = 1028;
const NR_BADPAGES_AT: usize = 1032;
const UUID_AT: usize = 1036;
const LABEL_AT: usize = 1052;
const BADPAGES_AT: usize = 1536;
/// Linux's MAX_SWAP_BADPAGES: the bad-page list ends where the magic begins.
pub const MAX_BAD_PAGES: usize = (MAGIC_AT - BADPAGES_AT) / 4;
pub const LABEL_LEN: usize = 16;
/// mkswap refuses areas of fewer pages (its MIN_GOODPAGES).
pub const MIN_PAGES: u64 = 10;

/// What page 0 of a swap device says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapHeader {
    pub last_page: u32,
    pub bad_pages: alloc::vec::Vec<u32>,
    pub uuid: [u8; 16],
    pub label: [u8; LABEL_LEN],
}

/// Why a page 0 is not a usable swap header (Linux's swapon says EINVAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// No "SWAPSPACE2" at byte 4086: not a swap device.
    NoSignature,
    /// A version other than 1 (either byte order).
    Version(u32),
    /// last_page is 0: nothing to swap to.
    Empty,
    /// last_page lies beyond the end of the device.
    LongerThanDevice,
    /// More bad pages than the header has room for.
    TooManyBadPages,
    /// A bad page of 0 (the header) or past last_page.
    BadPageOutOfRange(u32),
}

impl SwapHeader {
    /// A fresh header for a device of `pages` pages, as `mkswap` writes it:
    /// every page after the header usable, no bad pages.
    pub fn new(pages: u64, uuid: [u8; 16], label: &str) -> SwapHeader {
        let mut field = [0; LABEL_LEN];
        let bytes = label.as_bytes();
        let len = bytes.len().min(LABEL_LEN);
        field[..len].copy_from_slice(&bytes[..len]);
        SwapHeader {
            last_page: u32::try_from(pages.saturating_sub(1)).unwrap_or(u32::MAX),
            bad_pages: alloc::vec::Vec::new(),
            uuid,
            label: field,
        }
    }

    /// Page 0 of the device, bytes as on disk (little-endian, x86's order).
    pub fn to_page(&self) -> [u8; PAGE_SIZE as usize] {
        assert!(
            self.bad_pages.len() <= MAX_BAD_PAGES,
            "swap_header::to_page: too many bad pages"
        );
        let mut page = [0; PAGE_SIZE as usize];
        put(&mut page, VERSION_AT, 1);
        put(&mut page, LAST_PAGE_AT, self.last_page);
        put(&mut page, NR_BADPAGES_AT, self.bad_pages.len() as u32);
        page[UUID_AT..UUID_AT + 16].copy_from_slice(&self.uuid);
        page[LABEL_AT..LABEL_AT + LABEL_LEN].copy_from_slice(&self.label);
        for (i, &bad) in self.bad_pages.iter().enumerate() {
            put(&mut page, BADPAGES_AT + 4 * i, bad);
        }
        page[MAGIC_AT..].copy_from_slice(MAGIC);
        page
    }

    /// Read page 0 of a device of `device_pages` pages, with the checks of
    /// Linux's read_swap_header and setup_swap_map_and_extents. A header
    /// written in the other byte order (by a big-endian machine) is read
    /// too, as Linux does.
    pub fn parse(page: &[u8; PAGE_SIZE as usize], device_pages: u64) -> Result<Self, HeaderError> {
        if &page[MAGIC_AT..] != MAGIC {
            return Err(HeaderError::NoSignature);
        }
        let swapped = get(page, VERSION_AT).swap_bytes() == 1;
        let word = |at| {
            let w = get(page, at);
            if swapped { w.swap_bytes() } else { w }
        };
        let version = word(VERSION_AT);
        if version != 1 {
            return Err(HeaderError::Version(version));
        }
        let last_page = word(LAST_PAGE_AT);
        if last_page == 0 {
            return Err(HeaderError::Empty);
        }
        if u64::from(last_page) >= device_pages {
            return Err(HeaderError::LongerThanDevice);
        }
        let count = word(NR_BADPAGES_AT) as usize;
        if count > MAX_BAD_PAGES {
            return Err(HeaderError::TooManyBadPages);
        }
        let bad_pages = (0..count)
            .map(|i| word(BADPAGES_AT + 4 * i))
            .map(|bad| {
                if bad == 0 || bad > last_page {
                    Err(HeaderError::BadPageOutOfRange(bad))
                } else {
                    Ok(bad)
                }
            })
            .collect::<Result<_, _>>()?;
        let mut uuid = [0; 16];
        uuid.copy_from_slice(&page[UUID_AT..UUID_AT + 16]);
        let mut label = [0; LABEL_LEN];
        label.copy_from_slice(&page[LABEL_AT..LABEL_AT + LABEL_LEN]);
        Ok(SwapHeader {
            last_page,
            bad_pages,
            uuid,
            label,
        })
    }

    /// The label up to its first NUL.
    pub fn label(&self) -> &str {
        let len = self.label.iter().position(|&b| b == 0).unwrap_or(LABEL_LEN);
        core::str::from_utf8(&self.label[..len]).unwrap_or("")
    }

    /// Usable slots: pages 1..=last_page that are not bad.
    pub fn usable_pages(&self) -> u32 {
        self.last_page - self.bad_pages.len() as u32
    }
}

fn put(page: &mut [u8], at: usize, value: u32) {
    page[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn get(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn layout_is_linuxs() {
        let page = SwapHeader::new(16384, UUID, "pageos-swap").to_page();
        assert_eq!(&page[4086..], b"SWAPSPACE2");
        assert_eq!(&page[1024..1028], &1u32.to_le_bytes());
        assert_eq!(&page[1028..1032], &16383u32.to_le_bytes());
        assert_eq!(&page[1032..1036], &0u32.to_le_bytes());
        assert_eq!(&page[1036..1052], &UUID);
        assert_eq!(&page[1052..1063], b"pageos-swap");
        assert!(page[..1024].iter().all(|&b| b == 0), "bootbits are zeros");
        assert!(page[1063..4086].iter().all(|&b| b == 0));
    }

    #[test]
    fn round_trip() {
        let mut header = SwapHeader::new(100, UUID, "x");
        header.bad_pages = alloc::vec![5, 99];
        let parsed = SwapHeader::parse(&header.to_page(), 100).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(parsed.label(), "x");
        assert_eq!(parsed.usable_pages(), 97);
    }

    #[test]
    fn a_label_is_cut_at_sixteen_bytes() {
        let header = SwapHeader::new(100, UUID, "a label longer than sixteen");
        assert_eq!(header.label(), "a label longer t");
    }

    #[test]
    fn refusals_follow_linux() {
        let good = SwapHeader::new(100, UUID, "");
        let mut page = good.to_page();
        page[4095] = b'3';
        assert_eq!(SwapHeader::parse(&page, 100), Err(HeaderError::NoSignature));
        let mut page = good.to_page();
        put(&mut page, VERSION_AT, 2);
        assert_eq!(SwapHeader::parse(&page, 100), Err(HeaderError::Version(2)));
        assert_eq!(
            SwapHeader::parse(&good.to_page(), 99),
            Err(HeaderError::LongerThanDevice)
        );
        let mut empty = good.clone();
        empty.last_page = 0;
        assert_eq!(
            SwapHeader::parse(&empty.to_page(), 100),
            Err(HeaderError::Empty)
        );
        let mut bad = good.clone();
        bad.bad_pages = alloc::vec![0];
        assert_eq!(
            SwapHeader::parse(&bad.to_page(), 100),
            Err(HeaderError::BadPageOutOfRange(0))
        );
        bad.bad_pages = alloc::vec![100];
        assert_eq!(
            SwapHeader::parse(&bad.to_page(), 100),
            Err(HeaderError::BadPageOutOfRange(100))
        );
        let mut page = good.to_page();
        put(&mut page, NR_BADPAGES_AT, MAX_BAD_PAGES as u32 + 1);
        assert_eq!(
            SwapHeader::parse(&page, 100),
            Err(HeaderError::TooManyBadPages)
        );
    }

    #[test]
    fn a_big_endian_header_is_read() {
        let mut page = SwapHeader::new(100, UUID, "").to_page();
        for at in [VERSION_AT, LAST_PAGE_AT, NR_BADPAGES_AT] {
            let w = get(&page, at);
            put(&mut page, at, w.swap_bytes());
        }
        assert_eq!(SwapHeader::parse(&page, 100).unwrap().last_page, 99);
    }
}
