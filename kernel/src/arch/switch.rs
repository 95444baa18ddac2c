//! Kernel-to-kernel context switches and the FPU/SSE state.
//!
//! A process that stops running is always inside the kernel, on its own
//! kernel stack. `switch` pushes the callee-saved registers there, saves rsp,
//! loads the other stack and pops that one's registers: the `ret` then
//! resumes whatever called `switch` on the other side (xv6's `swtch`).
//! A new process's stack is prepared so that its first switch "returns" into
//! `thread_start` (which lets the kernel lock go), then `trap_return` with
//! its `TrapFrame` on top.

use super::idt::TrapFrame;
use core::arch::{asm, naked_asm};

/// Save the current callee-saved registers and rsp into `*save`, then
/// continue on the stack `next`.
///
/// # Safety
/// `next` must be an rsp saved by `switch` or built by `prepare_stack`, on a
/// stack that is still allocated.
#[unsafe(naked)]
pub unsafe extern "C" fn switch(save: *mut u64, next: u64) {
    naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    );
}

unsafe extern "C" {
    fn thread_start();
}

// A new thread's first switch lands here: the scheduler that switched to
// it holds the kernel lock (kernel/src/kernel_lock.rs), which the thread
// lets go before it enters user mode through `trap_return`. rsp is the
// frame's address, 16-byte aligned, as the call needs.
core::arch::global_asm!(
    r#"
.section .text
.global thread_start
thread_start:
    call {leave}
    jmp trap_return
"#,
    leave = sym crate::kernel_lock::leave_for_new_thread,
);

/// Prepare a fresh kernel stack whose top is `top`: the user state `frame`
/// at the very top, and below it the six registers and return address that
/// `switch` pops, so the first switch to it "returns" into `thread_start`,
/// which lets the kernel lock go and enters user mode by `trap_return`.
/// Returns the rsp to switch to.
///
/// # Safety
/// `top` must be the 16-byte aligned end of a kernel stack that nothing uses
/// yet, with room for a `TrapFrame` and 7 words.
pub unsafe fn prepare_stack(top: u64, frame: &TrapFrame) -> u64 {
    let frame_addr = top - size_of::<TrapFrame>() as u64;
    let rsp = frame_addr - 7 * 8;
    // SAFETY: the caller guarantees these bytes are ours to write.
    unsafe {
        (frame_addr as *mut TrapFrame).write(*frame);
        let words = rsp as *mut u64;
        for i in 0..6 {
            words.add(i).write(0);
        }
        words.add(6).write(thread_start as *const () as u64);
    }
    rsp
}

/// Prepare a fresh kernel stack whose top is `top` for a kernel thread,
/// one with no user half (kernel/src/pageout.rs): the six registers and
/// return address that `switch` pops, so that the first switch to it
/// "returns" into `entry`, with the stack aligned as a call leaves it.
/// The thread holds the kernel lock the scheduler handed it, as any
/// thread does in the kernel. Returns the rsp to switch to.
///
/// # Safety
/// `top` must be the 16-byte aligned end of a kernel stack that nothing
/// uses yet, with room for 8 words.
pub unsafe fn prepare_kernel_stack(top: u64, entry: extern "C" fn() -> !) -> u64 {
    // `entry` starts with rsp = top - 8, as after a call: 8 below a
    // 16-byte boundary, the word there its (never used) return address.
    let rsp = top - 8 * 8;
    // SAFETY: the caller guarantees these bytes are ours to write.
    unsafe {
        let words = rsp as *mut u64;
        for i in 0..6 {
            words.add(i).write(0);
        }
        words.add(6).write(entry as *const () as u64);
        words.add(7).write(0);
    }
    rsp
}

/// The 512-byte area `fxsave` writes: x87, MMX and SSE registers.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState([u8; 512]);

static mut INITIAL_FPU: FpuState = FpuState([0; 512]);

/// Record a clean FPU/SSE state (default control words) for new processes.
pub fn init_fpu() {
    // SAFETY: called once at boot, after CR0/CR4 enable SSE; writes a static.
    unsafe {
        asm!("fninit", options(nomem, nostack));
        let mxcsr: u32 = 0x1f80; // all exceptions masked, round to nearest
        asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, readonly));
        asm!("fxsave64 [{}]", in(reg) &raw mut INITIAL_FPU, options(nostack));
    }
}

impl FpuState {
    pub fn initial() -> Self {
        // SAFETY: INITIAL_FPU is written once at boot, read-only afterwards.
        unsafe { (*(&raw const INITIAL_FPU)).clone() }
    }

    /// Save the CPU's FPU/SSE registers here. The kernel itself is built
    /// soft-float, so these are always the user program's.
    pub fn save(&mut self) {
        // SAFETY: self is 16-byte aligned and 512 bytes long, as fxsave needs.
        unsafe { asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    pub fn restore(&self) {
        // SAFETY: as above; the area was produced by fxsave (or sanitized by
        // `from_bytes`, so fxrstor cannot fault on reserved MXCSR bits).
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly)) };
    }

    /// The 512 bytes, as a signal frame stores them for user mode.
    pub fn as_bytes(&self) -> &[u8; 512] {
        &self.0
    }

    /// A state from bytes user mode handed back (rt_sigreturn). MXCSR's
    /// reserved bits are cleared: fxrstor raises #GP on them, in the kernel.
    pub fn from_bytes(bytes: &[u8; 512]) -> Self {
        let mut state = FpuState(*bytes);
        let initial = Self::initial();
        let mask = match u32::from_le_bytes(initial.0[28..32].try_into().unwrap_or_default()) {
            0 => 0xffbf, // the SDM's default MXCSR_MASK
            mask => mask,
        };
        let mxcsr = u32::from_le_bytes(state.0[24..28].try_into().unwrap_or_default()) & mask;
        state.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        state
    }
}
