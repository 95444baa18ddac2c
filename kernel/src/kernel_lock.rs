//! The kernel lock: one CPU at a time runs kernel code on behalf of a
//! thread (a system call, a trap from user mode, the scheduler), while
//! user code runs on every CPU at once.
//!
//! This is the first step of the SMP scheduler (docs/src/concurrency.md):
//! every piece of the kernel was written for one CPU, with interrupts
//! masked and no preemption, so no two system calls ever ran at the same
//! time. The kernel lock keeps that true with several CPUs (Linux 2.0's
//! and FreeBSD 5's "giant" lock), so threads of one process and different
//! processes run in parallel in user mode, while the finer locks DESIGN §6
//! names (the address-space lock, the page-table lock) are built one at a
//! time behind it.
//!
//! The lock belongs to a CPU, not to a thread: a thread that gives up the
//! CPU inside the kernel (`sched::switch_to_scheduler`) hands it to the
//! scheduler of the same CPU, which hands it to the next thread it runs.
//! It is taken on every entry from user mode (the syscall entry and the
//! traps, `enter`) and by the scheduler; it is let go on every return to
//! user mode (`leave`, a new thread's first one included) and while the
//! scheduler idles. Interrupt handlers that arrive in kernel mode do not
//! take it: they only try-lock what they touch, as they did on one CPU.
//!
//! A CPU that waits for the lock answers cross-calls (`ipi::poll`) and
//! lets interrupts in between attempts: the holder may be waiting for
//! this CPU's answer to a TLB shootdown (arch/ipi.rs), or for a disk
//! interrupt that only this CPU (the boot CPU) receives.

use crate::arch::{ipi, percpu};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

// A ticket lock, so that CPUs get it in the order they asked: a CPU whose
// thread makes one system call after another would otherwise take it
// again before a waiting CPU noticed it free (under TCG, for hundreds of
// milliseconds).
/// The next ticket to hand out, and the ticket whose holder may run.
static NEXT: AtomicU32 = AtomicU32::new(0);
static SERVING: AtomicU32 = AtomicU32::new(0);
/// The CPU index that holds the lock, or FREE (for `held`).
static OWNER: AtomicUsize = AtomicUsize::new(FREE);
const FREE: usize = usize::MAX;

/// Take the lock for this CPU (called with interrupts masked; returns
/// with them masked).
pub fn enter() {
    let me = percpu::this().index();
    debug_assert!(
        OWNER.load(Ordering::Relaxed) != me,
        "kernel_lock::enter: this CPU holds it already"
    );
    let ticket = NEXT.fetch_add(1, Ordering::Relaxed);
    while SERVING.load(Ordering::Acquire) != ticket {
        ipi::poll();
        // A moment with interrupts open: the tick, a device's interrupt
        // or a cross-call's IPI is taken here, on this CPU's kernel stack,
        // as it would be in the idle loop.
        x86_64::instructions::interrupts::enable();
        core::hint::spin_loop();
        x86_64::instructions::interrupts::disable();
    }
    OWNER.store(me, Ordering::Relaxed);
}

/// Let the lock go (on the way to user mode, or before idling).
pub fn leave() {
    debug_assert!(held(), "kernel_lock::leave: not held by this CPU");
    OWNER.store(FREE, Ordering::Relaxed);
    SERVING.fetch_add(1, Ordering::Release);
}

/// Run `f` with the lock let go, and take it again: a wait that must not
/// keep the other CPUs out of the kernel (the page-out daemon's disk
/// writes, kernel/src/reclaim.rs). The caller holds no lock that a
/// kernel-lock holder may spin for, and no state the lock guards may
/// change under it that it relies on across `f`.
pub fn without<R>(f: impl FnOnce() -> R) -> R {
    leave();
    let got = f();
    enter();
    got
}

/// Whether another CPU waits for the lock (the scheduler then lets it
/// in between two threads: sched.rs).
pub fn others_waiting() -> bool {
    NEXT.load(Ordering::Relaxed) != SERVING.load(Ordering::Relaxed).wrapping_add(1)
}

/// Whether this CPU holds the lock.
pub fn held() -> bool {
    OWNER.load(Ordering::Relaxed) == percpu::this().index()
}

/// A new thread's first return to user mode (arch/switch.rs's
/// `prepare_stack` makes its first switch arrive here): the scheduler
/// that switched to it held the lock.
pub extern "C" fn leave_for_new_thread() {
    leave();
}
