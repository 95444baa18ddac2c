//! Physical frames and the metadata the kernel keeps for each one.
//!
//! Every 4 KiB frame of RAM has a 12-byte `FrameMeta` in one array, indexed
//! by frame number, like Linux's `struct page` array, and a 4-byte atomic
//! reference count in a second (0.39% of RAM for both): how many page-table
//! entries and kernel holders point at it, which is what makes copy-on-write
//! and sharing work (`buddy::Counts`). The metadata holds, while the frame
//! heads a free block, the buddy allocator's free-list links, so the
//! allocator needs no memory of its own.

use bitflags::bitflags;
use core::fmt;

pub const PAGE_SIZE: u64 = 4096;

/// A physical frame number: physical address / 4096.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The physical address of the frame's first byte.
    pub fn addr(self) -> u64 {
        self.0 * PAGE_SIZE
    }

    /// The frame that contains physical address `addr`.
    pub fn from_addr(addr: u64) -> Pfn {
        Pfn(addr / PAGE_SIZE)
    }
}

/// Hex, so that a frame number reads as its address without the last three
/// zeros: `Pfn(0x1a2)` is the frame at 0x1a2000.
impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

bitflags! {
    /// A frame's state as the allocator sees it. A frame inside a block
    /// (not its head) has no flags: the head speaks for the whole block.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FrameFlags: u8 {
        /// Not RAM the allocator manages (firmware, the kernel image, holes,
        /// the metadata array itself): never handed out.
        const RESERVED = 1;
        /// Heads a free block of 2^order frames and is on that order's free list.
        const FREE = 2;
        /// Heads an allocated block of 2^order frames; `refcount` counts its users.
        const HEAD = 4;
    }
}

/// "No frame" in the free-list links. Links are u32 indices into the table
/// rather than pointers or u64 frame numbers so that the metadata fits in 12
/// bytes; a table is therefore limited to 2^32 - 1 frames (16 TiB).
pub(crate) const NO_LINK: u32 = u32::MAX;

/// Per-frame metadata, 12 bytes; its reference count is beside it, atomic
/// (`buddy::Counts`).
#[derive(Clone, Copy, Debug)]
pub struct FrameMeta {
    /// Free-list neighbours (table indices), meaningful only while `FREE`.
    /// Threading the lists through the frames themselves (Linux's
    /// `page->lru`) is what lets the allocator run before any heap exists.
    pub(crate) next: u32,
    pub(crate) prev: u32,
    pub(crate) flags: FrameFlags,
    /// log2 of the block's length, meaningful only while `FREE` or `HEAD`:
    /// it lets `free` take just the head, as xv6's `kfree` takes a pointer.
    pub(crate) order: u8,
}

const _: () = assert!(size_of::<FrameMeta>() == 12, "FrameMeta must stay 12 bytes");

impl FrameMeta {
    /// The state every frame starts in, until it is handed to the allocator.
    pub const RESERVED: FrameMeta = FrameMeta {
        next: NO_LINK,
        prev: NO_LINK,
        flags: FrameFlags::RESERVED,
        order: 0,
    };

    pub fn flags(&self) -> FrameFlags {
        self.flags
    }
}
