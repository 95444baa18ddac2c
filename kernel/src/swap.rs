//! The swap device: the disk pages go to when RAM runs short.
//!
//! At boot `init` reads page 0 of each disk and takes the first one that
//! carries Linux's swap header (vm::swap_header: "SWAPSPACE2", version 1,
//! last_page, the bad pages), the disk the runner's `--swap SIZE` attaches.
//! Its slots are handed out by a swap map (vm::swap_map: per-slot
//! reference counts, clustered allocation); this module adds the disk.
//!
//! The interface for reclaim: a page goes out with `alloc_slot` then
//! `write_page`, and its PTE keeps the slot; a fork that copies the PTE
//! calls `dup_slot`; a swap-in reads it back with `read_page` (or the
//! taken neighbours of `readahead` with `read_cluster`, one disk request
//! each, all in flight together), and whoever drops a PTE or cache entry
//! holding a slot calls `free_slot`. The slot lock is never held across
//! disk I/O: the block layer serialises requests itself, and a caller
//! holds a slot's reference while it reads or writes it.

use crate::block::{self, IoError};
use crate::phys::{self, Frame, KernelPhys};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use spin::Mutex;
use vm::frame::Pfn;
use vm::pmap::PhysMem;
use vm::swap_cache::{IoFailed, SwapCache, SwapDevice, SwapInError, SwappedIn, WriteResults};
use vm::swap_header::SwapHeader;
use vm::swap_map::{CountOverflow, Slot, SwapMap};

/// Linux gives the first swap area enabled without a priority -2 (its
/// least_priority starts at -1 and counts down): /proc/swaps shows that.
const PRIORITY: i32 = -2;

struct SwapDisk {
    disk: usize,
    /// The name Linux gives the same disk: /dev/vda for the first virtio disk.
    path: String,
    map: SwapMap,
}

static SWAP: Mutex<Option<SwapDisk>> = Mutex::new(None);
/// Slots taken, kept beside the map so that `in_use` takes no lock (every
/// fault and unmap asks).
static USED: AtomicU32 = AtomicU32::new(0);
/// Whether `SWAP` holds a device (set once, at boot: there is no
/// swapoff), so that `active`, which every fault's `reclaim::due` asks
/// while a process runs without the kernel lock, takes no lock either.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The swap cache (vm::swap_cache): one frame per slot for all its PTEs.
/// Lock order: the address space (the process table) → this → the slot
/// map and the disks → the frame allocator.
static CACHE: Mutex<SwapCache> = Mutex::new(SwapCache::new());

/// Take the first disk with a swap header as the swap device (at boot,
/// after block::init). Disks without one are left alone.
pub fn init() {
    for disk in 0..block::count() {
        let Some((name, pages)) = block::describe(disk) else {
            continue;
        };
        let Some(page) = Frame::alloc_zeroed() else {
            return;
        };
        if block::read_pages(disk, 0, &[&page]).is_err() {
            log::warn!("swap: {name}: cannot read page 0");
            continue;
        }
        let mut bytes = [0; 4096];
        page.read(0, &mut bytes);
        match SwapHeader::parse(&bytes, pages) {
            Ok(header) => {
                log::info!(
                    "swap: /dev/{name}: {} kB in {} slots, label {:?}, uuid {}",
                    u64::from(header.usable_pages()) * 4,
                    header.usable_pages(),
                    header.label(),
                    uuid(&header.uuid)
                );
                *SWAP.lock() = Some(SwapDisk {
                    disk,
                    path: format!("/dev/{name}"),
                    map: SwapMap::new(header.last_page, &header.bad_pages),
                });
                ACTIVE.store(true, Ordering::Release);
                return;
            }
            Err(why) => log::info!("swap: {name} is not a swap device ({why:?})"),
        }
    }
}

/// The swap device's path, as /proc/swaps names it.
pub fn device_path() -> Option<String> {
    SWAP.lock().as_ref().map(|s| s.path.clone())
}

/// Whether there is a swap device.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

fn with_map<R>(f: impl FnOnce(&mut SwapMap) -> R) -> Option<R> {
    SWAP.lock().as_mut().map(|s| f(&mut s.map))
}

/// A free slot, its count 1, next to the last one handed out where
/// possible; None when swap is full or there is none.
pub fn alloc_slot() -> Option<Slot> {
    let slot = with_map(SwapMap::alloc).flatten();
    if slot.is_some() {
        USED.fetch_add(1, Ordering::Relaxed);
    }
    slot
}

/// Whether any slot is taken (then some PTE or the cache holds one).
pub fn in_use() -> bool {
    USED.load(Ordering::Relaxed) > 0
}

/// One more holder of a taken slot; its new count.
pub fn dup_slot(slot: Slot) -> Result<u16, CountOverflow> {
    with_map(|m| m.dup(slot)).expect("swap::dup_slot: no swap device")
}

/// One holder fewer; the holders left (0: the slot is free again).
pub fn free_slot(slot: Slot) -> u16 {
    let left = with_map(|m| m.free(slot)).expect("swap::free_slot: no swap device");
    if left == 0 {
        USED.fetch_sub(1, Ordering::Relaxed);
    }
    left
}

/// The holders of `slot` (0 when free).
pub fn slot_count(slot: Slot) -> u16 {
    with_map(|m| m.count(slot)).unwrap_or(0)
}

/// The taken slots in the aligned `window` (a power of two) around
/// `slot`: what a swap-in may read with it.
pub fn readahead(slot: Slot, window: u32) -> Vec<Slot> {
    with_map(|m| m.readahead_window(slot, window).collect()).unwrap_or_default()
}

/// The disk of the swap device, after checking that `first..first + n`
/// are taken slots (reading or writing any other is a kernel bug).
fn disk_for(first: Slot, n: usize, what: &str) -> usize {
    let swap = SWAP.lock();
    let swap = swap
        .as_ref()
        .unwrap_or_else(|| panic!("swap::{what}: no swap device"));
    for i in 0..n as u32 {
        let slot = Slot(first.0 + i);
        assert!(
            swap.map.count(slot) > 0,
            "swap::{what}: {slot:?} is not a taken slot"
        );
    }
    swap.disk
}

/// Write `frame` to `slot`. Returns the cycles spent waiting for the disk.
pub fn write_page(slot: Slot, frame: &Frame) -> Result<u64, IoError> {
    let disk = disk_for(slot, 1, "write_page");
    block::write_pages(disk, u64::from(slot.0), &[frame])
}

/// Read `slot` into `frame`. Returns the cycles spent waiting for the disk.
pub fn read_page(slot: Slot, frame: &Frame) -> Result<u64, IoError> {
    let disk = disk_for(slot, 1, "read_page");
    block::read_pages(disk, u64::from(slot.0), &[frame])
}

/// Write `frames` to the consecutive slots from `first`, all in flight together.
pub fn write_cluster(first: Slot, frames: &[&Frame]) -> Result<u64, IoError> {
    let disk = disk_for(first, frames.len(), "write_cluster");
    block::write_pages(disk, u64::from(first.0), frames)
}

/// Read the consecutive slots from `first` into `frames`, all in flight
/// together: a swap-in with its read-ahead.
pub fn read_cluster(first: Slot, frames: &[&Frame]) -> Result<u64, IoError> {
    let disk = disk_for(first, frames.len(), "read_cluster");
    block::read_pages(disk, u64::from(first.0), frames)
}

/// What the swap device's disk has done since boot.
pub fn disk_stats() -> block::Stats {
    let disk = SWAP.lock().as_ref().map(|s| s.disk);
    disk.and_then(block::stats).unwrap_or_default()
}

/// Slots in all and slots taken (0, 0 without swap): SwapTotal, SwapFree.
pub fn totals() -> (u64, u64) {
    with_map(|m| (u64::from(m.usable()), u64::from(m.used()))).unwrap_or((0, 0))
}

/// /proc/swaps, in Linux's format (mm/swapfile.c, swap_show): the path
/// padded to 40 columns, then type, size and use in kB, priority, with a
/// second tab after numbers below 10 000 000.
pub fn proc_swaps() -> String {
    let mut out = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    if let Some(swap) = SWAP.lock().as_ref() {
        let size = u64::from(swap.map.usable()) * 4;
        let used = u64::from(swap.map.used()) * 4;
        let tab = |n: u64| if n < 10_000_000 { "\t" } else { "" };
        let pad = 40usize.saturating_sub(swap.path.len()).max(1);
        out += &format!(
            "{}{:pad$}partition\t{size}\t{}{used}\t{}{PRIORITY}\n",
            swap.path,
            "",
            tab(size),
            tab(used)
        );
    }
    out
}

fn uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The swap device as the VM layer's swap cache and reclaim use it.
pub struct Device;

impl SwapDevice for Device {
    fn alloc(&mut self) -> Option<Slot> {
        alloc_slot()
    }

    fn dup(&mut self, slot: Slot) -> bool {
        dup_slot(slot).is_ok()
    }

    fn free(&mut self, slot: Slot) -> u16 {
        free_slot(slot)
    }

    fn count(&self, slot: Slot) -> u16 {
        slot_count(slot)
    }

    fn half_full(&self) -> bool {
        let (usable, used) = totals();
        2 * used > usable
    }

    fn readahead(&self, slot: Slot, window: u32) -> Vec<Slot> {
        readahead(slot, window)
    }

    fn write(&mut self, first: Slot, frames: &[Pfn], _: &mut dyn PhysMem) -> Result<u64, IoFailed> {
        phys::with_frames(frames, |f| write_cluster(first, f)).map_err(|_| IoFailed)
    }

    fn read(&mut self, first: Slot, frames: &[Pfn], _: &mut dyn PhysMem) -> Result<u64, IoFailed> {
        phys::with_frames(frames, |f| read_cluster(first, f)).map_err(|_| IoFailed)
    }
}

/// Write the runs of a `Writeback` (each run's frames to its consecutive
/// slots, one request each), with no lock of the VM held: the page-out
/// daemon's writes (reclaim.rs). The frames are the swap cache's, under
/// writeback, so nothing frees them meanwhile.
pub fn write_runs(runs: Vec<(Slot, Vec<Pfn>)>) -> WriteResults {
    let runs = runs
        .into_iter()
        .map(|(first, pfns)| {
            let result = Device.write(first, &pfns, &mut KernelPhys);
            (first, pfns, result)
        })
        .collect();
    WriteResults::from_runs(runs)
}

/// Run `f` on the swap cache.
pub fn with_cache<R>(f: impl FnOnce(&mut SwapCache) -> R) -> R {
    f(&mut CACHE.lock())
}

/// A frame with `slot`'s page for the PTE that holds it (the fault path's
/// swap-in, through the cache).
/// Every page read counts in /proc/vmstat's pswpin here, whoever asked
/// (a fault on a swap PTE, or an object reading its page back).
pub fn swap_in(slot: Slot) -> Result<SwappedIn, SwapInError> {
    let got = with_cache(|c| c.swap_in(&mut Device, &mut KernelPhys, slot))?;
    crate::vmstat::paging(crate::vmstat::Paging::SwapIn, u64::from(got.read));
    Ok(got)
}

/// A PTE holding `slot` let go of it.
pub fn release(slot: Slot) {
    with_cache(|c| c.release(&mut Device, &mut KernelPhys, slot));
}

/// `pfn` is about to be written or was unmapped: out of the swap cache
/// if no PTE holds its slot (`SwapCache::free_swap`).
pub fn free_swap(pfn: Pfn) -> bool {
    with_cache(|c| c.free_swap(&mut Device, &mut KernelPhys, pfn))
}

/// Pages in the swap cache (/proc/meminfo's SwapCached).
pub fn cached_pages() -> usize {
    with_cache(|c| c.len())
}
