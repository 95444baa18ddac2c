//! A swap device in memory for the host tests (`fake::FakeMemory::swap`):
//! the kernel's slot map (`swap_map`) over a "disk" that keeps each
//! written slot's bytes, and the swap cache the kernel uses.

use crate::frame::Pfn;
use crate::pmap::PhysMem;
use crate::swap_cache::{IoFailed, SwapCache, SwapDevice};
use crate::swap_map::{Slot, SwapMap};
use crate::vma::PAGE;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

pub struct FakeSwap {
    pub map: SwapMap,
    /// The bytes last written to each slot.
    pub disk: BTreeMap<Slot, Vec<u8>>,
    /// Pages written and read (the tests count them).
    pub writes: u64,
    pub reads: u64,
    /// Fail this many of the next writes (the tests of a failed write).
    pub fail_writes: u32,
}

impl FakeSwap {
    /// A device of `slots` usable slots (page 0 is the header).
    pub fn new(slots: u32) -> FakeSwap {
        FakeSwap {
            map: SwapMap::new(slots, &[]),
            disk: BTreeMap::new(),
            writes: 0,
            reads: 0,
            fail_writes: 0,
        }
    }
}

impl core::fmt::Debug for FakeSwap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FakeSwap({} slots used)", self.map.used())
    }
}

impl SwapDevice for FakeSwap {
    fn alloc(&mut self) -> Option<Slot> {
        self.map.alloc()
    }

    fn dup(&mut self, slot: Slot) -> bool {
        self.map.dup(slot).is_ok()
    }

    fn free(&mut self, slot: Slot) -> u16 {
        let left = self.map.free(slot);
        if left == 0 {
            self.disk.remove(&slot);
        }
        left
    }

    fn count(&self, slot: Slot) -> u16 {
        self.map.count(slot)
    }

    fn half_full(&self) -> bool {
        2 * self.map.used() > self.map.usable()
    }

    fn readahead(&self, slot: Slot, window: u32) -> Vec<Slot> {
        self.map.readahead_window(slot, window).collect()
    }

    fn write(
        &mut self,
        first: Slot,
        frames: &[Pfn],
        phys: &mut dyn PhysMem,
    ) -> Result<u64, IoFailed> {
        if self.fail_writes > 0 {
            self.fail_writes -= 1;
            return Err(IoFailed);
        }
        for (i, &pfn) in frames.iter().enumerate() {
            let slot = Slot(first.0 + i as u32);
            assert!(self.map.count(slot) > 0, "FakeSwap::write: free {slot:?}");
            let mut bytes = vec![0; PAGE as usize];
            phys.read(pfn, 0, &mut bytes);
            self.disk.insert(slot, bytes);
            self.writes += 1;
        }
        Ok(0)
    }

    fn read(
        &mut self,
        first: Slot,
        frames: &[Pfn],
        phys: &mut dyn PhysMem,
    ) -> Result<u64, IoFailed> {
        for (i, &pfn) in frames.iter().enumerate() {
            let slot = Slot(first.0 + i as u32);
            assert!(self.map.count(slot) > 0, "FakeSwap::read: free {slot:?}");
            let bytes = self
                .disk
                .get(&slot)
                .unwrap_or_else(|| panic!("FakeSwap::read: {slot:?} never written"));
            phys.write(pfn, 0, bytes);
            self.reads += 1;
        }
        Ok(0)
    }
}

/// The device and its cache, as `FakeMemory` carries them.
#[derive(Debug)]
pub struct FakeSwapSpace {
    pub dev: FakeSwap,
    pub cache: SwapCache,
}

impl FakeSwapSpace {
    pub fn new(slots: u32) -> FakeSwapSpace {
        FakeSwapSpace {
            dev: FakeSwap::new(slots),
            cache: SwapCache::new(),
        }
    }
}
