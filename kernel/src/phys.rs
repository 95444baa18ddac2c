//! Physical memory: the physical map, the frame table, and `Frame` handles.
//!
//! The bootloader maps all of physical memory at one offset in the kernel
//! half (the *physical map*), so the kernel reaches any frame, including the
//! frames of user pages and page tables, at `PHYS_OFFSET + paddr`.
//!
//! Frames are handed out by the buddy allocator of `vm::buddy`, whose
//! metadata (12 bytes a frame: flags, free-list links) lives in one array
//! carved out of the first large usable region, with the atomic reference
//! counts (4 bytes a frame) in a second right after it and the reverse
//! map's first-owner words (8 bytes a frame) in a third (`boot.rs`). A
//! `Frame` is one counted reference to a frame: dropping it gives the
//! reference back, and the last reference frees the frame.

use crate::vmstat::{self, Event};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;
use vm::buddy::{Counts, FrameTable};
use vm::frame::{PAGE_SIZE, Pfn};
use vm::pmap::BLOCK_FRAMES;
use vm::rmap::FirstOwners;
use vm::swap_cache::{SwapInError, SwappedIn};
use vm::swap_map::Slot;
use x86_64::structures::paging::{PhysFrame, Size4KiB};
use x86_64::{PhysAddr, VirtAddr};

mod boot;
pub mod cache;
mod free;
mod zero;

pub use free::free_zeroed;
use free::{poison, put_pfn};

pub use boot::init;

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);
static FRAMES: Mutex<Option<FrameTable<'static>>> = Mutex::new(None);
/// The frame table's reference counts, for the calls that change them
/// without its lock (`vm::buddy::Counts`: a holder's share, a put that is
/// not the last).
static COUNTS: spin::Once<Counts<'static>> = spin::Once::new();
/// Each frame's first mapping, for the reverse map (pmap/rmap.rs): a word
/// per frame beside the counts.
static FIRST_OWNERS: spin::Once<FirstOwners<'static>> = spin::Once::new();
/// The end of the highest usable RAM region.
static RAM_END: AtomicU64 = AtomicU64::new(0);

/// The kernel-virtual address of physical address `addr`.
pub fn to_virt(addr: PhysAddr) -> VirtAddr {
    VirtAddr::new(PHYS_OFFSET.load(Ordering::Relaxed) + addr.as_u64())
}

/// The physical address behind kernel-virtual `addr` when `addr` lies in
/// the physical map's RAM, where physical and virtual ranges are one
/// contiguous run (what a device reading by DMA needs); None elsewhere
/// (the heap, the stacks, device memory).
pub fn phys_of(addr: VirtAddr) -> Option<PhysAddr> {
    let offset = addr
        .as_u64()
        .checked_sub(PHYS_OFFSET.load(Ordering::Relaxed))?;
    (offset < RAM_END.load(Ordering::Relaxed)).then(|| PhysAddr::new(offset))
}

/// Each frame's first mapping (the reverse map's lock-free part).
pub fn first_owners() -> &'static FirstOwners<'static> {
    FIRST_OWNERS.get().expect("phys: used before init")
}

fn counts() -> &'static Counts<'static> {
    COUNTS.get().expect("phys: used before init")
}

/// Another reference to the block headed by `pfn`, of which the caller
/// holds one: without the table's lock unless a split or join is moving
/// its count.
fn share_pfn(pfn: Pfn) {
    if !counts().try_share(pfn) {
        with_table(|t| t.get(pfn));
    }
}

fn with_table<R>(f: impl FnOnce(&mut FrameTable<'static>) -> R) -> R {
    vmstat::count(Event::FrameTableCall, 1);
    let mut frames = FRAMES.lock();
    let table = frames.as_mut().expect("phys: used before init");
    let result = f(table);
    TABLE_FREE.store(table.free_frames(), Ordering::Relaxed);
    result
}

/// The buddy lists' free frames as the last holder of the frame table's
/// lock left them (`with_table`), for `free_frames_roughly`.
static TABLE_FREE: AtomicUsize = AtomicUsize::new(0);

/// Frames free now: on the buddy free lists or in a CPU's cache.
pub fn free_frames() -> usize {
    with_table(|t| t.free_frames() + cache::cached_frames())
}

/// `free_frames` without the frame table's lock, for the look at the
/// watermarks after every fault (`reclaim::due`): the lists' count and
/// the caches' are each a moment's, not the same moment's, so a frame
/// moving between them meanwhile is counted twice or not at all. Who acts
/// on it looks again under the lock (`reclaim::balance`); taking the lock
/// itself after every fault made the faults of two CPUs meet there.
pub fn free_frames_roughly() -> usize {
    TABLE_FREE.load(Ordering::Relaxed) + cache::cached_frames()
}

/// Whom a frame is for. A process's pages (anonymous, copied, page
/// cache, swapped in: whatever reaches a process through `KernelPhys`)
/// stop short of the kernel's reserve, `reclaim::reserve_of` frames left
/// in the buddy allocator; the kernel's own allocations (page tables, the
/// heap, disk buffers) may take the last frames. Without the reserve a
/// process could take every frame, and the next allocation the kernel
/// cannot refuse (the heap growing for an OOM kill's bookkeeping) would
/// panic; Linux keeps it the same way, a process's allocation failing at
/// the min watermark while `__GFP_HIGH` ones dig below it
/// (mm/page_alloc.c, `__zone_watermark_ok`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum For {
    Kernel,
    Process,
}

impl For {
    /// Whether `table` (its lock held) may give this taker a frame. Only
    /// the buddy allocator's frames are checked, not every CPU's cache:
    /// the check runs only when a cache refills, so the fault's fast path
    /// is a list pop, and the reserve is whole in the allocator, where a
    /// kernel allocation on any CPU finds it.
    fn may_take(self, table: &FrameTable<'static>) -> bool {
        self == For::Kernel
            || table.free_frames() > crate::reclaim::reserve_of(table.total_frames())
    }
}

/// A single frame whose bytes are unknown: from this CPU's cache, else a
/// batch from the buddy allocator, else whatever draining every CPU's
/// cache gives back.
fn alloc_frame(taker: For) -> Option<Pfn> {
    let from_table = |t: &mut FrameTable<'static>| {
        if taker.may_take(t) {
            cache::take(t)
        } else {
            None
        }
    };
    cache::take_cached()
        .or_else(|| with_table(from_table))
        .or_else(|| {
            cache::drain_all();
            with_table(|t| if taker.may_take(t) { t.alloc(0) } else { None })
        })
}

/// Frames of RAM the allocator manages.
pub fn total_frames() -> usize {
    TOTAL_FRAMES.load(Ordering::Relaxed)
}

/// The frame table's `total_frames`, fixed once it is built (no RAM comes
/// or goes later): the watermarks are read after every fault.
static TOTAL_FRAMES: AtomicUsize = AtomicUsize::new(0);

/// Every frame of RAM is numbered below this (the frame table's length:
/// the end of the highest usable region), holes and low memory included.
pub fn frames_end() -> usize {
    (RAM_END.load(Ordering::Relaxed) / PAGE_SIZE) as usize
}

/// One counted reference to a physical frame (or, for huge pages, to the
/// head of a block of 2^order frames).
#[derive(Debug)]
pub struct Frame {
    frame: PhysFrame<Size4KiB>,
}

impl Frame {
    /// A fresh frame filled with zeros, or None when memory is exhausted.
    /// No frame reaches a process with anyone else's data in it.
    /// This is the kernel's call: it may take the reserve (`For`).
    pub fn alloc_zeroed() -> Option<Frame> {
        Frame::alloc_zeroed_for(For::Kernel)
    }

    fn alloc_zeroed_for(taker: For) -> Option<Frame> {
        if let Some(pfn) = cache::take_zeroed() {
            return Some(Frame {
                frame: pfn_frame(pfn),
            });
        }
        let frame = Frame {
            frame: pfn_frame(alloc_frame(taker)?),
        };
        frame.zero(0);
        Some(frame)
    }

    /// A zeroed, naturally aligned block of 2^order frames (order 9: a 2 MiB page).
    pub fn alloc_block_zeroed(order: usize) -> Option<Frame> {
        let pfn = with_table(|t| t.alloc(order)).or_else(|| {
            cache::drain_all();
            with_table(|t| t.alloc(order))
        })?;
        let frame = Frame {
            frame: pfn_frame(pfn),
        };
        frame.zero(order);
        Some(frame)
    }

    /// Fill the block of 2^order frames this handle heads with zeros: a
    /// single frame with cached stores, a larger block with non-temporal
    /// ones (`zero`).
    fn zero(&self, order: usize) {
        vmstat::count(Event::FrameZeroed, 1 << order);
        let len = (PAGE_SIZE as usize) << order;
        // A 2 MiB block takes half a millisecond under TCG, with
        // interrupts masked (a fault): between 64 KiB pieces this CPU
        // answers cross-calls, so another CPU's shootdown (its munmap)
        // waits for one piece, not for the block. Nothing is held here
        // that a cross-call's work needs (the frame table's lock was let
        // go with the allocation), and a fault's look holds no table
        // pointer across the allocation (pmap/shared.rs).
        if order == 0 {
            // SAFETY: the frame is ours alone (just allocated) and mapped
            // by the physical map, page-aligned, a multiple of
            // `zero::STEP` long.
            unsafe { zero::zero(self.as_mut_ptr(), len, false) };
            return;
        }
        // Blocks are powers of two: the piece divides a larger block.
        let piece = len.min(ZERO_PIECE);
        for offset in (0..len).step_by(piece) {
            // SAFETY: as above, for each piece of the block (a multiple
            // of `zero::STEP`).
            unsafe { zero::zero(self.as_mut_ptr().add(offset), piece, true) };
            crate::arch::ipi::poll();
        }
    }

    pub fn phys(&self) -> PhysFrame {
        self.frame
    }

    /// Another reference to the same frame (sharing, copy-on-write).
    pub fn share(&self) -> Frame {
        share_pfn(self.pfn());
        Frame { frame: self.frame }
    }

    pub fn refcount(&self) -> u32 {
        counts().get(self.pfn())
    }

    /// Hand this reference to a page-table entry: it is given back with `from_raw`.
    pub fn into_raw(self) -> PhysFrame {
        let frame = self.frame;
        core::mem::forget(self);
        frame
    }

    /// Take back a reference that `into_raw` handed to a page-table entry.
    ///
    /// # Safety
    /// `frame` must carry a reference obtained from `into_raw` that no one
    /// else will give back.
    pub unsafe fn from_raw(frame: PhysFrame) -> Frame {
        Frame { frame }
    }

    /// The frame's bytes through the physical map.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        to_virt(self.frame.start_address()).as_mut_ptr()
    }

    /// Copy `src` into the frame at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) {
        assert!(
            offset + src.len() <= PAGE_SIZE as usize,
            "Frame::write: past the frame"
        );
        // SAFETY: in bounds (checked); single CPU and user code is not running
        // while the kernel copies, so no one else touches these bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.as_mut_ptr().add(offset), src.len())
        };
    }

    /// Copy from the frame at `offset` into `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(
            offset + dst.len() <= PAGE_SIZE as usize,
            "Frame::read: past the frame"
        );
        // SAFETY: as in `write`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.as_mut_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
    }

    fn pfn(&self) -> Pfn {
        Pfn(self.frame.start_address().as_u64() / PAGE_SIZE)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        put_pfn(self.pfn(), false);
    }
}

/// How much of a block `Frame::zero` clears between two looks for
/// cross-calls.
const ZERO_PIECE: usize = 64 << 10;

/// The buddy order of a 2 MiB page.
const HUGE_ORDER: usize = 9;

/// 2 MiB pages handed to user memory and still whole (not split):
/// /proc/meminfo's AnonHugePages.
static HUGE_BLOCKS: AtomicU64 = AtomicU64::new(0);

/// Whole 2 MiB pages of user memory now, in 4 KiB frames.
pub fn huge_frames() -> u64 {
    HUGE_BLOCKS.load(Ordering::Relaxed) * BLOCK_FRAMES
}

/// The shared zero frame, allocated at boot and never freed.
static ZERO_FRAME: spin::Once<Pfn> = spin::Once::new();

fn pfn_frame(pfn: Pfn) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(pfn.addr()))
}

/// Run `f` on handles for `pfns`, frames whose references someone else
/// holds (the swap path's disk transfers): the handles only borrow them.
pub fn with_frames<R>(pfns: &[Pfn], f: impl FnOnce(&[&Frame]) -> R) -> R {
    let frames: alloc::vec::Vec<core::mem::ManuallyDrop<Frame>> = pfns
        .iter()
        .map(|&pfn| {
            core::mem::ManuallyDrop::new(Frame {
                frame: pfn_frame(pfn),
            })
        })
        .collect();
    let refs: alloc::vec::Vec<&Frame> = frames.iter().map(|f| &**f).collect();
    f(&refs)
}

/// Frames as the machine-independent VM layer sees them (vm::pmap::PhysMem).
pub struct KernelPhys;

impl vm::pmap::PhysMem for KernelPhys {
    fn alloc_zeroed(&mut self) -> Option<Pfn> {
        Frame::alloc_zeroed_for(For::Process)
            .map(|f| Pfn::from_addr(f.into_raw().start_address().as_u64()))
    }

    fn alloc_huge_zeroed(&mut self) -> Option<Pfn> {
        // A transparent 2 MiB page only while it leaves the reserve above
        // reclaim's high watermark: 512 frames taken at once would leave
        // the kernel's own allocations (page tables, the heap) nothing
        // while reclaim catches up. The fault then takes 4 KiB pages,
        // which reclaim can take back (Linux's THP fault, too, falls back
        // rather than reclaiming for a huge page).
        if free_frames() < (1 << HUGE_ORDER) + crate::reclaim::high() {
            return None;
        }
        let block = Frame::alloc_block_zeroed(HUGE_ORDER)?;
        HUGE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        Some(Pfn::from_addr(block.into_raw().start_address().as_u64()))
    }

    fn copy(&mut self, src: Pfn) -> Option<Pfn> {
        let pfn = alloc_frame(For::Process)?;
        self.copy_into(src, pfn);
        Some(pfn)
    }

    fn copy_into(&mut self, src: Pfn, dst: Pfn) {
        vmstat::count(Event::FrameCopied, 1);
        let from = to_virt(PhysAddr::new(src.addr())).as_ptr::<u8>();
        let to = to_virt(PhysAddr::new(dst.addr())).as_mut_ptr::<u8>();
        // SAFETY: two distinct frames of RAM in the physical map; dst is
        // owned by the caller, who has not mapped it anywhere yet.
        unsafe { core::ptr::copy_nonoverlapping(from, to, PAGE_SIZE as usize) };
    }

    fn read(&self, pfn: Pfn, offset: usize, buf: &mut [u8]) {
        // A Frame handle only borrows the reference here: forget it after use.
        let frame = core::mem::ManuallyDrop::new(Frame {
            frame: pfn_frame(pfn),
        });
        frame.read(offset, buf);
    }

    fn write(&mut self, pfn: Pfn, offset: usize, data: &[u8]) {
        let frame = core::mem::ManuallyDrop::new(Frame {
            frame: pfn_frame(pfn),
        });
        frame.write(offset, data);
    }

    fn get(&mut self, pfn: Pfn) {
        share_pfn(pfn);
    }

    fn get_many(&mut self, pfns: &[Pfn]) {
        pfns.iter().for_each(|&pfn| share_pfn(pfn));
    }

    fn put(&mut self, pfn: Pfn) {
        // SAFETY: the VM layer gives back a reference it holds.
        drop(unsafe { Frame::from_raw(pfn_frame(pfn)) });
    }

    fn put_many(&mut self, pfns: &[Pfn]) {
        free::put_many(pfns);
    }

    fn refcount(&self, pfn: Pfn) -> u32 {
        counts().get(pfn)
    }

    fn is_block(&self, head: Pfn) -> bool {
        with_table(|t| t.is_block(head, HUGE_ORDER))
    }

    fn split_block(&mut self, head: Pfn) {
        let split = with_table(|t| {
            let whole = t.is_block(head, HUGE_ORDER);
            if whole {
                t.split_block(head);
            }
            whole
        });
        if split {
            HUGE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn unsplit_block(&mut self, head: Pfn) {
        if with_table(|t| t.unsplit_block(head, HUGE_ORDER)) {
            HUGE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sole_block_owner(&mut self, head: Pfn) -> bool {
        let (sole, joined) = with_table(|t| {
            if t.is_block(head, HUGE_ORDER) {
                (t.refcount(head) == 1, false)
            } else {
                let joined = t.rejoin_block(head, HUGE_ORDER);
                (joined, joined)
            }
        });
        if joined {
            HUGE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        sole
    }

    /// One trip into the frame table for the 512 counts of a split block.
    fn get_block(&mut self, head: Pfn) {
        with_table(|t| {
            if t.is_block(head, HUGE_ORDER) {
                t.get(head);
            } else {
                (0..BLOCK_FRAMES).for_each(|i| t.get(Pfn(head.0 + i)));
            }
        });
    }

    fn put_block(&mut self, head: Pfn) {
        let freed_whole = with_table(|t| {
            if t.is_block(head, HUGE_ORDER) {
                let last = t.refcount(head) == 1;
                if last {
                    poison(head);
                }
                t.put(head);
                return last;
            }
            for pfn in (0..BLOCK_FRAMES).map(|i| Pfn(head.0 + i)) {
                if t.refcount(pfn) == 1 {
                    poison(pfn);
                }
                t.put(pfn);
            }
            false
        });
        if freed_whole {
            HUGE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn zero_frame(&self) -> Pfn {
        *ZERO_FRAME.call_once(|| {
            let frame = Frame::alloc_zeroed().expect("phys: no frame for the zero frame");
            Pfn::from_addr(frame.into_raw().start_address().as_u64())
        })
    }

    /// The commit accounting of vm.overcommit_memory (commit.rs).
    fn charge(&mut self, pages: u64) -> bool {
        crate::commit::charge(pages)
    }

    fn uncharge(&mut self, pages: u64) {
        crate::commit::uncharge(pages);
    }

    fn swap_used(&self) -> bool {
        crate::swap::in_use()
    }

    fn swap_in(&mut self, slot: Slot) -> Result<SwappedIn, SwapInError> {
        crate::swap::swap_in(slot)
    }

    fn swap_dup(&mut self, slot: Slot) -> bool {
        crate::swap::dup_slot(slot).is_ok()
    }

    fn swap_release(&mut self, slot: Slot) {
        crate::swap::release(slot);
    }

    fn free_swap(&mut self, pfn: Pfn) -> bool {
        crate::swap::free_swap(pfn)
    }
}
