//! Machine-independent virtual memory for pageos.
//!
//! Everything here is pure logic: it decides, and the kernel's `pmap` carries
//! the decisions out on real page tables. Because nothing here touches
//! hardware, every rule is unit- and property-tested on the host
//! (`cargo test -p vm`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod audit;
pub mod buddy;
pub mod clock;
pub mod elf;
pub mod errno;
pub mod fake;
mod fake_swap;
pub mod fork;
pub mod frame;
pub mod labs;
pub mod mmap;
pub mod pager;
pub mod pmap;
pub mod reclaim;
pub mod rmap;
pub mod space;
pub mod swap_cache;
pub mod swap_header;
pub mod swap_map;
pub mod thp;
pub mod vm_fault;
pub mod vm_map;
pub mod vm_object;
pub mod vma;
