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
//! interrupt that only this CPU (the boot CPU) receives. After spinning
//! a while it halts, and the CPU that lets the lock go to it sends it an
//! IPI (`halt_for_turn`): a spinning vCPU takes a host core from the one
//! that holds the lock.

use crate::arch::ipi;
use crate::arch::percpu::{self, MAX_CPUS};
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

/// For each ticket being waited for, by `ticket % MAX_CPUS`, the index
/// plus one of the CPU that halted waiting for it (0: none halted). A CPU
/// holds or waits for one ticket at a time, so at most MAX_CPUS tickets
/// are in flight and no two share a slot.
static HALTED: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// How long a waiter spins before it halts (Linux's paravirt spinlocks
/// halt after SPIN_THRESHOLD spins): long enough for most hand-overs,
/// short against a host's time slice.
const SPIN_NANOS: u64 = 50_000;

/// Take the lock for this CPU (called with interrupts masked; returns
/// with them masked).
pub fn enter() {
    let me = percpu::this().index();
    debug_assert!(
        OWNER.load(Ordering::Relaxed) != me,
        "kernel_lock::enter: this CPU holds it already"
    );
    let ticket = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut halt_at = crate::arch::rdtsc() + crate::time::nanos_to_cycles(SPIN_NANOS);
    while SERVING.load(Ordering::Acquire) != ticket {
        ipi::poll();
        if crate::arch::rdtsc() >= halt_at {
            halt_for_turn(ticket, me);
            halt_at = crate::arch::rdtsc() + crate::time::nanos_to_cycles(SPIN_NANOS);
            continue;
        }
        // A moment with interrupts open: the tick, a device's interrupt
        // or a cross-call's IPI is taken here, on this CPU's kernel stack,
        // as it would be in the idle loop.
        x86_64::instructions::interrupts::enable();
        core::hint::spin_loop();
        x86_64::instructions::interrupts::disable();
    }
    OWNER.store(me, Ordering::Relaxed);
}

/// Halt until an interrupt, after telling whoever lets the lock go to
/// `ticket` to send one. A spinning vCPU takes a host core from the vCPU
/// that holds the lock or whose turn comes next (4 vCPUs on 2 host cores:
/// the pthreads program's contended mutex took 125 s on 4 CPUs, 4 s on
/// 2); a halted one gives it back. Either `leave` sees the mark, or this
/// sees the turn come (both SeqCst); any interrupt (the tick, a
/// cross-call's IPI) also ends the halt.
fn halt_for_turn(ticket: u32, me: usize) {
    let slot = &HALTED[ticket as usize % MAX_CPUS];
    slot.store(me + 1, Ordering::SeqCst);
    if SERVING.load(Ordering::SeqCst) != ticket {
        crate::arch::idle();
    }
    slot.store(0, Ordering::Relaxed);
}

/// Let the lock go (on the way to user mode, or before idling), and wake
/// the CPU whose turn it is if it halted.
pub fn leave() {
    debug_assert!(held(), "kernel_lock::leave: not held by this CPU");
    OWNER.store(FREE, Ordering::Relaxed);
    let next = SERVING.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
    let halted = HALTED[next as usize % MAX_CPUS].load(Ordering::SeqCst);
    if halted != 0 {
        ipi::send(&percpu::all()[halted - 1], ipi::COUNT_VECTOR);
    }
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
