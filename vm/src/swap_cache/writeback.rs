//! Pages on their way to swap, and how their writes went: what reclaim
//! hands the disk between `SwapCache::start_writeback` and
//! `SwapCache::written` (the cache's state of each page is in the parent
//! module).

use super::{IoFailed, SwapDevice};
use crate::frame::Pfn;
use crate::pmap::PhysMem;
use crate::swap_map::Slot;
use alloc::vec::Vec;

/// Pages on their way to swap: each is in the swap cache under writeback
/// (`SwapCache::start_writeback`), every PTE or object that had it
/// holding its slot already, so a fault meanwhile finds the frame in the
/// cache. Reclaim hands them to `write` (the host tests, direct reclaim)
/// or writes them with no lock held (the kernel's page-out daemon), then
/// to `SwapCache::written`.
#[derive(Debug, Default)]
pub struct Writeback {
    pub(super) pages: Vec<(Slot, Pfn)>,
}

/// The writes of a `Writeback`, done: each run of consecutive slots with
/// its frames and how its write went.
#[derive(Debug, Default)]
pub struct WriteResults {
    pub(super) runs: Vec<(Slot, Vec<Pfn>, Result<u64, IoFailed>)>,
}

/// What `SwapCache::written` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Pages written to the disk.
    pub written: u64,
    /// Frames freed (pages written that no one mapped meanwhile).
    pub freed: u64,
    /// TSC cycles waited for the disk.
    pub cycles: u64,
}

impl Writeback {
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The runs of consecutive slots, one write each: (first slot, frames).
    pub fn runs(mut self) -> Vec<(Slot, Vec<Pfn>)> {
        self.pages.sort_unstable_by_key(|&(slot, _)| slot);
        let mut runs: Vec<(Slot, Vec<Pfn>)> = Vec::new();
        for (slot, pfn) in self.pages {
            match runs.last_mut() {
                Some((first, pfns)) if first.0 + pfns.len() as u32 == slot.0 => pfns.push(pfn),
                _ => runs.push((slot, alloc::vec![pfn])),
            }
        }
        runs
    }

    /// Write every run to `dev`, one request each.
    pub fn write(self, dev: &mut dyn SwapDevice, phys: &mut dyn PhysMem) -> WriteResults {
        let runs = self
            .runs()
            .into_iter()
            .map(|(first, pfns)| {
                let result = dev.write(first, &pfns, phys);
                (first, pfns, result)
            })
            .collect();
        WriteResults { runs }
    }
}

impl WriteResults {
    /// The results of writes made elsewhere (the kernel's page-out
    /// daemon writes `Writeback::runs` itself).
    pub fn from_runs(runs: Vec<(Slot, Vec<Pfn>, Result<u64, IoFailed>)>) -> WriteResults {
        WriteResults { runs }
    }
}
