//! The swap map: which slots of the swap device are taken, and by how many.
//!
//! A *slot* is one page of the swap device, named by its page index on the
//! disk (slot n starts at byte n * 4096), so a swapped-out page's PTE can
//! hold its slot and the disk address follows from it. Page 0 is the
//! header and never a slot; the header's bad pages are never handed out.
//!
//! Each slot has a reference count, Linux's `swap_map[]`: one for each
//! holder that will want the page back from that slot — a PTE of a
//! swapped-out page, and, after fork, the same PTE copied into the child
//! (`dup`), or the swap cache while it keeps the page in a frame. The last
//! `free` makes the slot free again. A count is 16 bits wide: 65534
//! holders, more than the processes a machine may have (Linux packs 6 bits
//! and chains continuation pages past them).
//!
//! Allocation is clustered, as Linux's: the slots are grouped in clusters
//! of `CLUSTER` slots; a run of page-outs fills one cluster front to back
//! before it takes the next wholly free one, so pages written one after the
//! other sit one after the other on the disk, and swap-in can read the
//! neighbours of a slot in the same request (`readahead_window`). Only when
//! no cluster is wholly free does allocation take holes in partly used
//! clusters, scanning on from where the last scan ended.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

/// Slots per cluster: 64 pages, 256 KiB of disk.
pub const CLUSTER: u32 = 64;
/// The count of a slot that is never handed out (the header, a bad page,
/// the tail of the last cluster past the device's end): Linux's SWAP_MAP_BAD.
const UNUSABLE: u16 = u16::MAX;
/// The largest count a slot may reach.
pub const MAX_COUNT: u16 = UNUSABLE - 1;

/// One page of the swap device: its page index on the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u32);

/// `dup` on a slot already at `MAX_COUNT` (Linux's swap_duplicate: ENOMEM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountOverflow;

pub struct SwapMap {
    /// Per page of the device, rounded up to whole clusters: 0 free,
    /// 1..=MAX_COUNT taken, UNUSABLE never handed out.
    counts: Vec<u16>,
    /// Per cluster: slots taken, and slots that may be taken at all.
    cluster_taken: Vec<u16>,
    cluster_usable: Vec<u16>,
    /// Clusters that were empty (nothing taken) when listed (stale entries are
    /// skipped when popped), and whether each cluster is on that list.
    free_clusters: Vec<u32>,
    listed: Vec<bool>,
    /// The cluster being filled, and its next slot to try.
    current: Option<u32>,
    next: u32,
    /// Where the search for holes in partly used clusters goes on.
    scan_from: u32,
    used: u32,
    usable: u32,
}

impl SwapMap {
    /// The map of a device whose header says `last_page` and `bad_pages`
    /// (see swap_header): slots 1..=last_page but the bad ones, all free.
    pub fn new(last_page: u32, bad_pages: &[u32]) -> SwapMap {
        let pages = last_page as usize + 1;
        let clusters = pages.div_ceil(CLUSTER as usize);
        let mut counts = vec![0; clusters * CLUSTER as usize];
        counts[0] = UNUSABLE;
        counts[pages..].fill(UNUSABLE);
        for &bad in bad_pages {
            counts[bad as usize] = UNUSABLE;
        }
        let cluster_usable: Vec<u16> = counts
            .chunks(CLUSTER as usize)
            .map(|c| c.iter().filter(|&&n| n == 0).count() as u16)
            .collect();
        let usable = cluster_usable.iter().map(|&n| u32::from(n)).sum();
        // Listed highest first: the stack pops the lowest cluster first.
        let free_clusters: Vec<u32> = (0..clusters as u32)
            .rev()
            .filter(|&c| cluster_usable[c as usize] > 0)
            .collect();
        let mut listed = vec![false; clusters];
        for &c in &free_clusters {
            listed[c as usize] = true;
        }
        SwapMap {
            counts,
            cluster_taken: vec![0; clusters],
            cluster_usable,
            free_clusters,
            listed,
            current: None,
            next: 0,
            scan_from: 0,
            used: 0,
            usable,
        }
    }

    /// A free slot, its count 1; None when every usable slot is taken.
    pub fn alloc(&mut self) -> Option<Slot> {
        if self.used == self.usable {
            return None;
        }
        let slot = self
            .take_in_current()
            .or_else(|| self.take_in_empty_cluster())
            .or_else(|| self.take_a_hole())
            .expect("swap_map::alloc: used < usable but no free slot found");
        self.take(slot);
        Some(Slot(slot))
    }

    /// One more holder of a taken slot (fork copied a PTE that holds it).
    /// Panics if the slot is free or unusable: a holder must exist to share.
    pub fn dup(&mut self, slot: Slot) -> Result<u16, CountOverflow> {
        let count = self.count_mut(slot, "dup");
        if *count == MAX_COUNT {
            return Err(CountOverflow);
        }
        *count += 1;
        Ok(*count)
    }

    /// One holder fewer; returns the holders left, and at 0 the slot is
    /// free again. Panics on a free or unusable slot (a double free).
    pub fn free(&mut self, slot: Slot) -> u16 {
        let count = self.count_mut(slot, "free");
        *count -= 1;
        let left = *count;
        if left == 0 {
            self.used -= 1;
            let c = slot.0 / CLUSTER;
            self.cluster_taken[c as usize] -= 1;
            if self.cluster_taken[c as usize] == 0 && self.current != Some(c) {
                self.list_free(c);
            }
        }
        left
    }

    /// The holders of `slot`: 0 when free (or not a slot at all).
    pub fn count(&self, slot: Slot) -> u16 {
        match self.counts.get(slot.0 as usize) {
            Some(&UNUSABLE) | None => 0,
            Some(&n) => n,
        }
    }

    /// The taken slots among the `window` (a power of two) slots of the
    /// aligned window around `slot`, in disk order: what a swap-in of
    /// `slot` may read in the same request (Linux's page_cluster).
    pub fn readahead_window(&self, slot: Slot, window: u32) -> impl Iterator<Item = Slot> + '_ {
        assert!(
            window.is_power_of_two(),
            "swap_map::readahead_window: window {window} not a power of two"
        );
        let start = slot.0 & !(window - 1);
        let range: Range<u32> = start..start.saturating_add(window);
        range.map(Slot).filter(move |&s| self.count(s) > 0)
    }

    /// Slots that may be handed out (Linux's si->pages: /proc/swaps' Size).
    pub fn usable(&self) -> u32 {
        self.usable
    }

    /// Slots taken now (/proc/swaps' Used).
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Slots free now (SwapFree).
    pub fn free_slots(&self) -> u32 {
        self.usable - self.used
    }

    /// The next slot of the cluster being filled.
    fn take_in_current(&mut self) -> Option<u32> {
        let c = self.current?;
        let end = (c + 1) * CLUSTER;
        while self.next < end {
            let slot = self.next;
            self.next += 1;
            if self.counts[slot as usize] == 0 {
                return Some(slot);
            }
        }
        self.retire_current();
        None
    }

    /// The first free slot of an empty cluster, which becomes the current one.
    fn take_in_empty_cluster(&mut self) -> Option<u32> {
        while let Some(c) = self.free_clusters.pop() {
            self.listed[c as usize] = false;
            if self.cluster_taken[c as usize] == 0 {
                self.current = Some(c);
                self.next = c * CLUSTER;
                return self.take_in_current();
            }
        }
        None
    }

    /// A hole in a partly used cluster, scanning on from the last hole found;
    /// its cluster becomes the current one, so the next allocations take
    /// the holes after it.
    fn take_a_hole(&mut self) -> Option<u32> {
        let clusters = self.cluster_taken.len() as u32;
        for step in 0..clusters {
            let c = (self.scan_from + step) % clusters;
            if self.cluster_taken[c as usize] == self.cluster_usable[c as usize] {
                continue;
            }
            let first = c * CLUSTER;
            if let Some(i) = (first..first + CLUSTER).find(|&s| self.counts[s as usize] == 0) {
                self.scan_from = c;
                self.current = Some(c);
                self.next = i + 1;
                return Some(i);
            }
        }
        None
    }

    /// Stop filling the current cluster; back on the free list if it emptied meanwhile.
    fn retire_current(&mut self) {
        if let Some(c) = self.current.take()
            && self.cluster_taken[c as usize] == 0
            && self.cluster_usable[c as usize] > 0
        {
            self.list_free(c);
        }
    }

    fn list_free(&mut self, c: u32) {
        if !self.listed[c as usize] {
            self.listed[c as usize] = true;
            self.free_clusters.push(c);
        }
    }

    fn take(&mut self, slot: u32) {
        self.counts[slot as usize] = 1;
        self.cluster_taken[(slot / CLUSTER) as usize] += 1;
        self.used += 1;
    }

    fn count_mut(&mut self, slot: Slot, what: &str) -> &mut u16 {
        match self.counts.get_mut(slot.0 as usize) {
            Some(n) if *n != 0 && *n != UNUSABLE => n,
            _ => panic!("swap_map::{what}: {slot:?} is not a taken slot"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_map_counts_the_header_and_bad_pages_out() {
        let map = SwapMap::new(100, &[7, 50]);
        assert_eq!(map.usable(), 98);
        assert_eq!(map.free_slots(), 98);
        assert_eq!(map.count(Slot(0)), 0);
    }

    #[test]
    fn consecutive_allocations_are_consecutive_slots() {
        let mut map = SwapMap::new(1000, &[3]);
        let slots: Vec<u32> = (0..200).map(|_| map.alloc().unwrap().0).collect();
        let expected: Vec<u32> = (1..=201).filter(|&s| s != 3).collect();
        assert_eq!(slots, expected);
    }

    #[test]
    fn counts_go_up_with_dup_and_free_releases_at_zero() {
        let mut map = SwapMap::new(100, &[]);
        let slot = map.alloc().unwrap();
        assert_eq!(map.dup(slot), Ok(2));
        assert_eq!(map.free(slot), 1);
        assert_eq!(map.used(), 1);
        assert_eq!(map.free(slot), 0);
        assert_eq!(map.used(), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "65 533 dups take minutes under Miri")]
    fn a_count_stops_at_its_maximum() {
        let mut map = SwapMap::new(100, &[]);
        let slot = map.alloc().unwrap();
        for _ in 1..MAX_COUNT {
            map.dup(slot).unwrap();
        }
        assert_eq!(map.dup(slot), Err(CountOverflow));
        assert_eq!(map.count(slot), MAX_COUNT);
    }

    #[test]
    #[should_panic(expected = "not a taken slot")]
    fn double_free_panics() {
        let mut map = SwapMap::new(100, &[]);
        let slot = map.alloc().unwrap();
        map.free(slot);
        map.free(slot);
    }

    #[test]
    fn a_full_map_says_none_and_takes_holes_after_frees() {
        let mut map = SwapMap::new(300, &[]);
        let slots: Vec<Slot> = core::iter::from_fn(|| map.alloc()).collect();
        assert_eq!(slots.len(), 300);
        map.free(Slot(10));
        map.free(Slot(200));
        assert_eq!(map.alloc(), Some(Slot(10)));
        assert_eq!(map.alloc(), Some(Slot(200)));
        assert_eq!(map.alloc(), None);
    }

    #[test]
    fn a_wholly_free_cluster_is_preferred_to_holes() {
        let mut map = SwapMap::new(4 * CLUSTER - 1, &[]);
        // Clusters 0 (less the header), 1 and 2 taken; then a hole in
        // cluster 0 and all of cluster 1 freed.
        for _ in 0..3 * CLUSTER - 1 {
            map.alloc().unwrap();
        }
        map.free(Slot(5));
        for s in CLUSTER..2 * CLUSTER {
            map.free(Slot(s));
        }
        let next: Vec<u32> = (0..2 * CLUSTER + 1)
            .map(|_| map.alloc().unwrap().0)
            .collect();
        let expected: Vec<u32> = (CLUSTER..2 * CLUSTER)
            .chain(3 * CLUSTER..4 * CLUSTER)
            .chain([5])
            .collect();
        assert_eq!(next, expected);
        assert_eq!(map.alloc(), None);
    }

    #[test]
    fn the_readahead_window_holds_taken_neighbours() {
        let mut map = SwapMap::new(100, &[]);
        for _ in 0..12 {
            map.alloc();
        }
        map.free(Slot(9));
        let window: Vec<u32> = map.readahead_window(Slot(10), 8).map(|s| s.0).collect();
        assert_eq!(window, [8, 10, 11, 12]);
    }
}
