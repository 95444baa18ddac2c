//! The kernel heap: per-size free lists for small objects over
//! `linked_list_allocator`, in a region of the kernel half that grows on
//! demand, a frame at a time, from the frame allocator.
//!
//! The region has an L4 entry of its own, created at boot before any process
//! exists; every address space copies the kernel's L4 entries, so all of them
//! see the heap as it grows.

use crate::phys::{self, Frame};
use crate::sync::Mutex;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use linked_list_allocator::Heap;
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags as Flags};

const HEAP_START: u64 = 0xffff_c000_0000_0000;
const INITIAL_SIZE: usize = 1 << 20;
const GROW_STEP: usize = 256 << 10;

/// Frames the heap has taken (it never gives them back).
static HEAP_FRAMES: AtomicUsize = AtomicUsize::new(0);

pub fn init() {
    map_more(HEAP_START, INITIAL_SIZE).expect("heap::init: no memory for the heap");
    // SAFETY: [HEAP_START, +INITIAL_SIZE) was just mapped and is used by nothing else.
    unsafe {
        ALLOCATOR
            .0
            .lock()
            .heap
            .init(HEAP_START as *mut u8, INITIAL_SIZE)
    };
}

pub fn frames() -> usize {
    HEAP_FRAMES.load(Ordering::Relaxed)
}

/// Map `len` bytes of fresh zeroed frames at `start` in the kernel half.
/// The frames taken, page-table frames included, count as the heap's:
/// counted one by one, not as the fall in free frames, which other CPUs
/// change meanwhile (a fault elsewhere during the growth was counted as
/// the heap's, and init's exit then found frames that were never lost).
/// Pages a growth that failed half-way mapped stay mapped (the heap
/// never gives frames back) and are skipped by the next one: `MAPPED` is
/// where the heap's mapped pages end, which may lie past the heap's top.
fn map_more(start: u64, len: usize) -> Option<()> {
    let end = start + len as u64;
    while MAPPED.load(Ordering::Relaxed) < end {
        let at = MAPPED.load(Ordering::Relaxed);
        let page = Page::containing_address(VirtAddr::new(at));
        let frame = Frame::alloc_zeroed()?;
        let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
        let (mapped, tables) = crate::pmap::map_kernel(page, frame, flags);
        let taken = tables + usize::from(mapped.is_some());
        HEAP_FRAMES.fetch_add(taken, Ordering::Relaxed);
        mapped?;
        MAPPED.store(at + 4096, Ordering::Relaxed);
    }
    Some(())
}

/// The end of the heap's mapped pages (written under the heap's lock, or
/// at init before anything else runs).
static MAPPED: AtomicU64 = AtomicU64::new(HEAP_START);

/// Small objects (VMA tree nodes, vectors of a few entries) come from
/// per-size free lists, slab caches in the manner of Bonwick's allocator:
/// popping a free list is O(1) whatever the heap holds, whereas a first-fit
/// search of `linked_list_allocator` walks every hole and grows slower with
/// each of the 100 000 VMAs a process may have. Objects of a class are
/// carved from `SLAB_BYTES` chunks of the general heap; freed objects go
/// back to their list, not to the heap (the heap never shrinks anyway).
const CLASSES: [usize; 8] = [16, 32, 64, 128, 256, 512, 1024, 2048];
const SLAB_BYTES: usize = 16 << 10;

struct Inner {
    heap: Heap,
    /// The head of each class's free list (0: empty); each free object
    /// holds the address of the next.
    free: [usize; CLASSES.len()],
}

struct KernelHeap(Mutex<Inner>);

#[global_allocator]
static ALLOCATOR: KernelHeap = KernelHeap(Mutex::new(Inner {
    heap: Heap::empty(),
    free: [0; CLASSES.len()],
}));

/// The class that serves `layout`: classes are powers of two carved at
/// multiples of their size from 4 KiB-aligned chunks, so they are aligned
/// to their size.
fn class_of(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align());
    CLASSES.iter().position(|&c| c >= need)
}

impl Inner {
    /// First fit from the general heap, growing it when nothing fits.
    fn alloc_general(&mut self, layout: Layout) -> *mut u8 {
        loop {
            if let Ok(block) = self.heap.allocate_first_fit(layout) {
                return block.as_ptr();
            }
            // A step of GROW_STEP while memory lasts; when it is short (the
            // step would take more than half the free frames), only what
            // this allocation needs, so that the kernel's small objects
            // still find room while reclaim catches up.
            let need = (layout.size() + layout.align()).next_multiple_of(4096);
            let budget = phys::free_frames() * 4096 / 2;
            let step = need.max(GROW_STEP);
            let want = if step <= budget { step } else { need };
            let top = self.heap.top() as u64;
            if want > budget || map_more(top, want).is_none() {
                return core::ptr::null_mut();
            }
            // SAFETY: the pages right after the heap's top were just mapped.
            unsafe { self.heap.extend(want) };
        }
    }

    /// Pop an object of class `c`, carving a new chunk when the list is empty.
    fn alloc_small(&mut self, c: usize) -> *mut u8 {
        if self.free[c] == 0 {
            let chunk = self.alloc_general(
                Layout::from_size_align(SLAB_BYTES, 4096).expect("heap: slab layout"),
            );
            if chunk.is_null() {
                return chunk;
            }
            for offset in (0..SLAB_BYTES).step_by(CLASSES[c]).rev() {
                let object = chunk as usize + offset;
                // SAFETY: the chunk is ours and `object` lies inside it,
                // aligned for a usize (classes are at least 16 bytes).
                unsafe { (object as *mut usize).write(self.free[c]) };
                self.free[c] = object;
            }
        }
        let object = self.free[c];
        // SAFETY: a free object holds the address of the next (see above).
        self.free[c] = unsafe { (object as *const usize).read() };
        object as *mut u8
    }
}

// SAFETY: every pointer handed out comes from `Heap`, which keeps blocks
// disjoint, or from a slab chunk that `Heap` gave us and that is carved
// into disjoint objects each on at most one free list; growth maps new
// memory before the heap is told about it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        crate::vmstat::count(crate::vmstat::Event::HeapAlloc, 1);
        let mut inner = self.0.lock();
        match class_of(layout) {
            Some(c) => inner.alloc_small(c),
            None => inner.alloc_general(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mut inner = self.0.lock();
        match class_of(layout) {
            Some(c) => {
                // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with
                // this layout, so it is an object of class c, ours again.
                unsafe { (ptr as *mut usize).write(inner.free[c]) };
                inner.free[c] = ptr as usize;
            }
            // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with this layout.
            None => unsafe { inner.heap.deallocate(NonNull::new_unchecked(ptr), layout) },
        }
    }
}
