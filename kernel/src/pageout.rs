//! The page-out daemon: a kernel thread that keeps free frames between
//! reclaim's watermarks, so that a program's allocations seldom wait for
//! reclaim themselves (Linux's kswapd, FreeBSD's pagedaemon).
//! docs/src/pressure.md, "When it runs".
//!
//! It sleeps until a fault or a system call leaves fewer frames free than
//! the low watermark (`reclaim::balance` wakes it), then reclaims in
//! batches (one round of reclaim each, for what the high watermark is
//! short of) until the high watermark is free. Between two batches it
//! gives the CPU back to the scheduler, which runs a user thread before
//! the next batch: allocations go on meanwhile, from the frames above the
//! min watermark, and only one that finds fewer than that reclaims
//! directly.
//!
//! It is a thread of the kernel alone: its own stack, no process, no user
//! half (it runs on the kernel's page tables, as an idle CPU does, so no
//! TLB shootdown waits for it), no signals, no FPU state (the kernel is
//! built soft-float). Having no process it has no pid and is not in the
//! process table, so `ps` and /proc do not list it, where Linux lists
//! `kswapd0`: every Linux kernel thread is a task, while a pageos thread
//! belongs to a process, and a process without an address space would be
//! a case for every `p.space()` of the kernel to handle. Its work shows in
//! /proc/vmstat instead: `pageoutrun` (its wake-ups), `pgscan_kswapd` and
//! `pgsteal_kswapd` (the pages it looked at and the frames it freed),
//! beside the `_direct` counts of allocations that reclaimed themselves.
//!
//! The scheduler runs it (`run`, at the top of every round of its loop):
//! it switches to the daemon's stack as it does to a thread's and hands it
//! the kernel lock, which the daemon holds while it reclaims (everything
//! it touches is behind it) and hands back with the CPU. Any CPU's
//! scheduler may run it, one at a time: `STATE` says which of asleep,
//! woken (runnable) or running it is, and a CPU's scheduler takes it from
//! woken to running only while it holds the kernel lock, which the daemon's
//! last CPU held until the daemon's registers were saved (the same reason
//! a thread that another CPU woke is safe to pick, kernel/src/proc/sched.rs).

use crate::arch::{percpu, switch};
use crate::vmstat::{self, Event};
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

const ASLEEP: u8 = 0;
const WOKEN: u8 = 1;
const RUNNING: u8 = 2;
/// Never started (no stack yet): wake-ups do nothing.
const ABSENT: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(ABSENT);

/// The daemon's rsp while it does not run (saved by `switch`, written and
/// read only under the kernel lock).
static RSP: AtomicU64 = AtomicU64::new(0);

/// The bottom of its stack, where `STACK_END_MAGIC` must stay.
static STACK_BOTTOM: AtomicU64 = AtomicU64::new(0);

/// A thread's kernel stack size: reclaim's deepest path (a swap write, the
/// disk's interrupt on top of it) fits in it as a system call's does.
const STACK_SIZE: usize = 32 * 1024;
/// The word at the bottom of the stack (Linux's STACK_END_MAGIC): checked
/// each time the daemon gives the CPU back.
const STACK_END_MAGIC: u64 = 0x57ac_6e5d_57ac_6e5d;

/// Make the daemon (its stack); it sleeps until the first wake-up. At
/// boot, before the scheduler runs.
pub fn start() {
    let stack: &'static mut [u64] = Box::leak(alloc::vec![0u64; STACK_SIZE / 8].into_boxed_slice());
    stack[0] = STACK_END_MAGIC;
    let bottom = stack.as_ptr() as u64;
    let top = (bottom + STACK_SIZE as u64) & !15;
    // SAFETY: the stack was just allocated, for the daemon alone, and its
    // top is 16-byte aligned with far more than 8 words below it.
    let rsp = unsafe { switch::prepare_kernel_stack(top, daemon) };
    STACK_BOTTOM.store(bottom, Ordering::Relaxed);
    RSP.store(rsp, Ordering::Relaxed);
    STATE.store(ASLEEP, Ordering::Release);
}

/// Fewer frames than the low watermark are free: wake the daemon, and an
/// idle CPU to run it at once (else the next round of a scheduler, at the
/// latest this CPU's next tick in user mode, runs it).
pub fn wake() {
    if STATE
        .compare_exchange(ASLEEP, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        crate::proc::kick_idle_cpu();
    }
}

/// Whether the daemon waits for a CPU (the tick in user mode then yields
/// to the scheduler, which runs it).
pub fn woken() -> bool {
    STATE.load(Ordering::Acquire) == WOKEN
}

/// The scheduler's hook: one batch of the daemon's work if it is awake.
/// Called with the kernel lock held and no thread current; returns when
/// the daemon gives the CPU back.
pub fn run() {
    if STATE
        .compare_exchange(WOKEN, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    crate::pmap::activate_kernel();
    let cpu = percpu::this();
    // SAFETY: the daemon's rsp was saved by `switch` when it last gave the
    // CPU back (or built by `start`), on its stack, which is never freed;
    // `scheduler_rsp` is this CPU's, where the daemon switches back to.
    unsafe { switch::switch(cpu.scheduler_rsp.get(), RSP.load(Ordering::Relaxed)) };
}

/// The daemon's life, on its own stack: each wake-up, reclaim batches
/// until the high watermark is free (or nothing more can be taken), the
/// CPU given back after each.
extern "C" fn daemon() -> ! {
    loop {
        vmstat::count(Event::PageoutRun, 1);
        while crate::reclaim::background_batch() {
            give_back(WOKEN);
        }
        give_back(ASLEEP);
    }
}

/// Give the CPU back to the scheduler that ran the daemon, as `then`
/// (WOKEN: run again at its next round; ASLEEP: until `wake`).
fn give_back(then: u8) {
    // SAFETY: the stack's bottom word, written by `start`, is ours to read
    // (this is the stack we run on, and it lives forever).
    let magic = unsafe { *(STACK_BOTTOM.load(Ordering::Relaxed) as *const u64) };
    assert!(
        magic == STACK_END_MAGIC,
        "pageout: the daemon overflowed its stack"
    );
    // No other CPU can run the daemon before this switch saved its
    // registers: we hold the kernel lock, and this CPU's scheduler keeps
    // it until the next thread returns to user mode or the CPU idles.
    STATE.store(then, Ordering::Release);
    let cpu = percpu::this();
    // SAFETY: `scheduler_rsp` was saved by `run`'s switch on this CPU, the
    // scheduler's stack lives forever; RSP is where the next `run` resumes.
    unsafe { switch::switch(RSP.as_ptr(), *cpu.scheduler_rsp.get()) };
}
