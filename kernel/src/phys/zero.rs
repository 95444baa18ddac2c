//! Zeroing frames: 16-byte SSE stores from a borrowed `xmm0`.
//!
//! Every frame a process gets is zeroed first, and a default-policy fault
//! zeroes a whole 2 MiB block, so this loop is most of what a demand-zero
//! fault costs (docs/src/superpages.md, "Zeroing"). With 8-byte stores it
//! is 512 stores per 4 KiB plus the loop; with SSE2's 16-byte stores
//! (every x86_64 CPU has SSE2) it is 256 plus the loop. `rep stosq` is no
//! better here: QEMU's TCG, which pageos runs on, emulates each of its
//! iterations apart (docs/src/performance.md, item 10).
//!
//! The kernel is built soft-float and otherwise never touches the SSE
//! registers, so whatever they hold is the current thread's user state
//! (saved and restored only on a thread switch, `FpuState`). `zero`
//! borrows `xmm0` and gives it back: the user's value goes to the stack
//! first and comes back last. In between the borrowed register is
//! ordinary CPU state: an interrupt handler never touches it (soft-float),
//! a nested `zero` (an allocation from an interrupt) saves and restores it
//! in turn, and a thread switch saves and restores it with the rest of the
//! SSE registers, so the loop resumes with its zeros. CR4.OSFXSR, which
//! SSE instructions need, is set on every CPU before it allocates a frame
//! (`arch::init_features`, run before `phys::init` on the boot CPU and
//! first thing on the others).
//!
//! Two kinds of store:
//! - **Cached** (`movdqa`) for a single frame: a page table or a 4 KiB
//!   page the caller writes to at once, which then hits the cache.
//! - **Non-temporal** (`movntdq`) for a 2 MiB block: it is larger than the
//!   L1 and L2 caches, so cached stores would evict the program's working
//!   set for lines most of which are gone again before the program gets
//!   to them. These stores are weakly ordered: the `sfence` at the end
//!   makes them visible before any later store, in particular the PTE
//!   that publishes the block, so no CPU can see the mapping before the
//!   zeros. Linux clears huge pages with cached stores (`clear_page_*`,
//!   target page last, so that it is the one in the cache); non-temporal
//!   clearing of huge pages has been proposed for it on these grounds.
//!   Under TCG both kinds are the same two 8-byte host stores.

use core::arch::asm;

/// Bytes one iteration of the loop clears: sixteen 16-byte stores.
pub(super) const STEP: usize = 256;

/// Where the user's `xmm0` waits while the loop borrows the register.
#[repr(C, align(16))]
struct Saved([u8; 16]);

/// The loop with `$store` (`movdqa` or `movntdq`) and `$fence` after it:
/// `{end}` is the end of the range and `{i}` runs from minus its length
/// up to 0, so that the one `add` both advances and tests. `.irp`
/// repeats the store for each offset of the 256-byte step.
macro_rules! zero_loop {
    ($store:literal, $fence:literal) => {
        concat!(
            "movdqa [{saved}], xmm0\n",
            "pxor xmm0, xmm0\n",
            "2:\n",
            ".irp off, 0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240\n",
            $store,
            " [{end} + {i} + \\off], xmm0\n",
            ".endr\n",
            "add {i}, 256\n",
            "jnz 2b\n",
            $fence,
            "movdqa xmm0, [{saved}]\n",
        )
    };
}

/// Fill `len` bytes at `ptr` with zeros; `streaming`: with non-temporal
/// stores (for a 2 MiB block, see above).
///
/// # Safety
/// `ptr` is 16-byte aligned and valid for writes of `len` bytes that
/// nobody else uses; `len` is a non-zero multiple of `STEP`.
pub(super) unsafe fn zero(ptr: *mut u8, len: usize, streaming: bool) {
    debug_assert!(ptr.addr().is_multiple_of(16) && len.is_multiple_of(STEP) && len > 0);
    let mut saved = Saved([0; 16]);
    let end = ptr.wrapping_add(len);
    let from = (len as isize).wrapping_neg();
    // SAFETY: the stores go to [ptr, ptr + len), the caller's; `saved` is
    // ours, 16-byte aligned as movdqa needs; xmm0 is the one register
    // touched besides the operands, and it is restored before the end.
    unsafe {
        if streaming {
            asm!(
                zero_loop!("movntdq", "sfence\n"),
                saved = in(reg) &raw mut saved,
                end = in(reg) end,
                i = inout(reg) from => _,
                options(nostack),
            );
        } else {
            asm!(
                zero_loop!("movdqa", ""),
                saved = in(reg) &raw mut saved,
                end = in(reg) end,
                i = inout(reg) from => _,
                options(nostack),
            );
        }
    }
}
