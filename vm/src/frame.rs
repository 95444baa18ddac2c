//! Physical frames and the metadata the kernel keeps for each one.
//!
//! Every 4 KiB frame of RAM has a 16-byte `FrameMeta` in one array (0.39% of
//! RAM), indexed by frame number, like Linux's `struct page` array. It holds
//! the frame's reference count — how many page-table entries and kernel
//! holders point at it, which is what makes copy-on-write and sharing work —
//! and, while the frame heads a free block, the buddy allocator's free-list
//! links, so the allocator needs no memory of its own.

use bitflags::bitflags;

pub const PAGE_SIZE: u64 = 4096;

/// A physical frame number: physical address / 4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Pfn {
    pub fn addr(self) -> u64 {
        self.0 * PAGE_SIZE
    }

    pub fn from_addr(addr: u64) -> Pfn {
        Pfn(addr / PAGE_SIZE)
    }
}

bitflags! {
    /// A frame's state as the allocator sees it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FrameFlags: u8 {
        /// Not RAM the allocator manages (firmware, the kernel image, holes).
        const RESERVED = 1;
        /// Heads a free block of 2^order frames on a free list.
        const FREE = 2;
        /// Heads an allocated block of 2^order frames; `refcount` counts its users.
        const HEAD = 4;
    }
}

/// Sentinel for "no frame" in the free-list links.
pub(crate) const NO_LINK: u32 = u32::MAX;

/// Per-frame metadata, 16 bytes.
#[derive(Clone, Copy, Debug)]
pub struct FrameMeta {
    pub(crate) refcount: u32,
    pub(crate) next: u32,
    pub(crate) prev: u32,
    pub(crate) flags: FrameFlags,
    pub(crate) order: u8,
}

const _: () = assert!(size_of::<FrameMeta>() == 16, "FrameMeta must stay 16 bytes");

impl FrameMeta {
    /// The state every frame starts in, until it is handed to the allocator.
    pub const RESERVED: FrameMeta = FrameMeta {
        refcount: 0,
        next: NO_LINK,
        prev: NO_LINK,
        flags: FrameFlags::RESERVED,
        order: 0,
    };

    pub fn flags(&self) -> FrameFlags {
        self.flags
    }
}
