//! The kernel heap: `linked_list_allocator` over a region of the kernel half
//! that grows on demand, a frame at a time, from the frame allocator.
//!
//! The region has an L4 entry of its own, created at boot before any process
//! exists; every address space copies the kernel's L4 entries, so all of them
//! see the heap as it grows.

use crate::phys::{self, Frame};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags as Flags};

const HEAP_START: u64 = 0xffff_c000_0000_0000;
const INITIAL_SIZE: usize = 1 << 20;
const GROW_STEP: usize = 256 << 10;

/// Frames the heap has taken (it never gives them back).
static HEAP_FRAMES: AtomicUsize = AtomicUsize::new(0);

struct KernelHeap(Mutex<Heap>);

#[global_allocator]
static ALLOCATOR: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

pub fn init() {
    map_more(HEAP_START, INITIAL_SIZE).expect("heap::init: no memory for the heap");
    // SAFETY: [HEAP_START, +INITIAL_SIZE) was just mapped and is used by nothing else.
    unsafe { ALLOCATOR.0.lock().init(HEAP_START as *mut u8, INITIAL_SIZE) };
}

pub fn frames() -> usize {
    HEAP_FRAMES.load(Ordering::Relaxed)
}

/// Map `len` bytes of fresh zeroed frames at `start` in the kernel half.
/// The frames taken, page-table frames included, count as the heap's.
fn map_more(start: u64, len: usize) -> Option<()> {
    let free_before = phys::free_frames();
    let mut result = Some(());
    for offset in (0..len).step_by(4096) {
        let page = Page::containing_address(VirtAddr::new(start + offset as u64));
        result = Frame::alloc_zeroed().and_then(|frame| {
            crate::pmap::map_kernel(
                page,
                frame,
                Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE,
            )
        });
        if result.is_none() {
            break;
        }
    }
    HEAP_FRAMES.fetch_add(free_before - phys::free_frames(), Ordering::Relaxed);
    result
}

// SAFETY: every pointer handed out comes from `Heap`, which keeps blocks
// disjoint; growth maps new memory before the heap is told about it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.0.lock();
        loop {
            if let Ok(block) = heap.allocate_first_fit(layout) {
                return block.as_ptr();
            }
            let want = (layout.size() + layout.align())
                .next_multiple_of(4096)
                .max(GROW_STEP);
            let top = heap.top() as u64;
            if want > phys::free_frames() * 4096 / 2 || map_more(top, want).is_none() {
                return core::ptr::null_mut();
            }
            // SAFETY: the pages right after the heap's top were just mapped.
            unsafe { heap.extend(want) };
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with this layout.
        unsafe {
            self.0
                .lock()
                .deallocate(NonNull::new_unchecked(ptr), layout)
        };
    }
}
