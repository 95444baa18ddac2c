//! A thread: what runs on a CPU. Its process (process.rs's `Process`,
//! found by `pid`) holds what the threads share — the address space, the
//! descriptors, the signal dispositions, ids and limits —; the thread
//! holds what each has of its own: a kernel stack with its saved context
//! and FPU registers, the FS base (its thread pointer), its signal mask
//! and thread-directed pending signals, the word to clear at its exit
//! (set_tid_address, CLONE_CHILD_CLEARTID), its robust futex list and the
//! CPU time it used. The first thread of a process has tid = pid.

use super::Pid;
use crate::arch::switch::FpuState;
use crate::signal::ThreadSignals;
use alloc::boxed::Box;
use core::mem::MaybeUninit;

/// Thread ids share the pid space (a process's pid is its first thread's tid).
pub type Tid = Pid;

pub(super) const KERNEL_STACK_SIZE: usize = 32 * 1024;

/// The word at the bottom of every kernel stack (Linux's STACK_END_MAGIC).
/// The stacks live in the kernel heap with no guard page below them, so a
/// kernel path that nests too deep would silently overwrite whatever the
/// heap holds there; the scheduler checks this word each time a thread
/// leaves the CPU and at its end, and panics while the damage is fresh.
const STACK_END_MAGIC: u64 = 0x57ac_6e5d_57ac_6e5d;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// On the run queue.
    Runnable,
    /// On a CPU.
    Running,
    /// Blocked (sleep.rs), off the run queue until `wake`.
    Waiting,
    /// Its process is stopped (job control): off the run queue until
    /// SIGCONT or SIGKILL.
    Stopped,
    /// It exited: the scheduler frees it once it has switched away from
    /// its stack.
    Dead,
}

pub struct Thread {
    pub tid: Tid,
    /// Its process (thread group).
    pub pid: Pid,
    pub run: Run,
    pub sig: ThreadSignals,
    /// The user FS base (arch_prctl ARCH_SET_FS, CLONE_SETTLS), loaded
    /// when it runs.
    pub fs_base: u64,
    /// set_tid_address / CLONE_CHILD_CLEARTID: at its exit, 0 is written
    /// there and one futex waiter woken (pthread_join waits on it).
    pub clear_child_tid: u64,
    /// set_robust_list: the head of its list of held robust futexes.
    pub robust_list: u64,
    /// TSC cycles spent running, up to its last switch (CPU-time clocks).
    pub(super) cpu_cycles: u64,
    /// The TSC when it last started running.
    pub(super) ran_since: u64,
    /// A wake came while it was not waiting: its next `block` returns at
    /// once (sleep.rs: a wake between a check and the sleep is not lost).
    pub(super) woken: bool,
    /// The CPU it last ran on (or its creator's, before it ran): where a
    /// wake puts it if that CPU idles (runq.rs), /proc/PID/stat's
    /// `processor`.
    pub(super) last_cpu: usize,
    /// Not zeroed: only this thread's kernel code uses it, and it writes
    /// before it reads, as on any stack. Zeroing its 32 KiB cost a fork of
    /// 16 MiB on 2 MiB pages 4 000 of its 108 000 instructions.
    kernel_stack: Box<[MaybeUninit<u8>]>,
    pub(super) saved_rsp: u64,
    pub(super) fpu: Box<FpuState>,
}

impl Thread {
    pub(super) fn new(pid: Pid, sig: ThreadSignals, fs_base: u64) -> Box<Thread> {
        let mut thread = Box::new(Thread {
            tid: 0,
            pid,
            run: Run::Runnable,
            sig,
            fs_base,
            clear_child_tid: 0,
            robust_list: 0,
            cpu_cycles: 0,
            ran_since: 0,
            woken: false,
            last_cpu: crate::arch::percpu::this().index(),
            kernel_stack: Box::new_uninit_slice(KERNEL_STACK_SIZE),
            saved_rsp: 0,
            fpu: Box::new(FpuState::initial()),
        });
        for (byte, magic) in thread
            .kernel_stack
            .iter_mut()
            .zip(STACK_END_MAGIC.to_le_bytes())
        {
            byte.write(magic);
        }
        thread
    }

    /// Panic if this thread's kernel stack overflowed (its bottom word is
    /// no longer `STACK_END_MAGIC`).
    pub(super) fn check_stack_end(&self) {
        let mut word = [0u8; 8];
        for (out, byte) in word.iter_mut().zip(&self.kernel_stack[..8]) {
            // SAFETY: `new` wrote these 8 bytes; nothing else should have.
            *out = unsafe { byte.assume_init() };
        }
        assert!(
            u64::from_le_bytes(word) == STACK_END_MAGIC,
            "kernel stack overflow: thread {} (pid {}) wrote below its {} KiB kernel stack",
            self.tid,
            self.pid,
            KERNEL_STACK_SIZE / 1024
        );
    }

    pub(super) fn kernel_stack_top(&self) -> u64 {
        (self.kernel_stack.as_ptr() as u64 + KERNEL_STACK_SIZE as u64) & !15
    }

    /// The CPU time it used up to now, in TSC cycles (`now`: rdtsc).
    pub(super) fn cycles(&self, now: u64) -> u64 {
        if self.run == Run::Running {
            self.cpu_cycles + (now - self.ran_since)
        } else {
            self.cpu_cycles
        }
    }
}
