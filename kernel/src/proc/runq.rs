//! The run queues: one per CPU, in its `PerCpu` (kernel/src/arch/percpu.rs).
//!
//! A CPU's scheduler takes the next thread from its own queue; only when
//! that is empty does it take one from the busiest other queue (an idle
//! CPU steals, as Linux's `newidle_balance` and FreeBSD ULE's
//! `tdq_idled` do). Where a thread goes when it becomes runnable is
//! `place` (Linux's `select_task_rq`, ULE's `sched_pickcpu`):
//!
//! 1. **Its last CPU, if that CPU idles**: its caches (and TLB, for a
//!    thread of a space still loaded there) may still hold its data, and
//!    nothing waits behind it.
//! 2. **Else any idle CPU**: a CPU sits unused while this thread waits.
//! 3. **Else the least loaded CPU** (queued threads, plus one for the
//!    thread it runs), ties going to its last CPU.
//!
//! Not the waker's CPU by default (Linux's wake-affine): under the kernel
//! lock the waker keeps its CPU until it blocks or its tick, so a thread
//! queued behind it waits while another CPU may idle. A thread that used
//! up its turn (preempted, or yielding) goes back on the queue of the CPU
//! it ran on, and a new thread starts as if its last CPU were its
//! creator's, so it goes to an idle CPU if there is one (Linux's fork
//! balancing).
//!
//! **Balance on the tick.** Every `BALANCE_TICKS` ticks each CPU compares
//! its queue with the busiest one and pulls one thread when that one is
//! longer by two or more (a difference of one is as even as it gets). It
//! runs in the tick's interrupt, with or without the kernel lock, so it
//! only try-locks the other CPU's queue.
//!
//! **Locks.** Each queue has its own spin lock, a leaf: taken after the
//! process table when the table is held (a wake, the scheduler's pick),
//! never two queue locks at once (a thread moved between queues is popped
//! from one, then pushed on the other). The queues hold thread ids; a
//! thread is on at most one queue, only while `Runnable` (it may be dead
//! or stopped since: the pick skips it). Running one is still the kernel
//! lock's: a stolen thread is picked under it like any other, so it
//! cannot run before the CPU it left saved its registers.

use super::Tid;
use crate::arch::{ipi, percpu};
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

/// How often (in ticks of each CPU: 40 ms at HZ = 100) a CPU balances.
const BALANCE_TICKS: u64 = 4;

/// CPUs that idle in the scheduler for want of a thread (bit i: CPU i).
static IDLE: AtomicU64 = AtomicU64::new(0);

/// One CPU's runnable threads, in the order it runs them.
pub struct RunQueue {
    queue: Mutex<VecDeque<Tid>>,
    /// Its length, read without the lock by the other CPUs (placement,
    /// stealing, balancing: a stale figure only makes a worse choice).
    len: AtomicUsize,
}

impl RunQueue {
    pub const fn new() -> RunQueue {
        RunQueue {
            queue: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn push(&self, tid: Tid) -> usize {
        let mut q = self.queue.lock();
        q.push_back(tid);
        self.len.store(q.len(), Ordering::Relaxed);
        q.len()
    }

    fn pop_front(&self) -> Option<Tid> {
        if self.len() == 0 {
            return None;
        }
        let mut q = self.queue.lock();
        let tid = q.pop_front();
        self.len.store(q.len(), Ordering::Relaxed);
        tid
    }

    /// The thread it would run last (what a steal takes); None if the
    /// queue is empty or, with `try_only`, busy.
    fn pop_back(&self, try_only: bool) -> Option<Tid> {
        let mut q = if try_only {
            self.queue.try_lock()?
        } else {
            self.queue.lock()
        };
        let tid = q.pop_back();
        self.len.store(q.len(), Ordering::Relaxed);
        tid
    }
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

fn cpu(index: usize) -> &'static percpu::PerCpu {
    &percpu::all()[index]
}

/// Threads waiting on a CPU, plus the one it runs.
fn load(index: usize) -> usize {
    let c = cpu(index);
    c.run_queue.len() + usize::from(c.current().is_some())
}

/// The idle CPUs, read after a queue grew: the fence orders that push
/// before this load (x86 lets a load pass an earlier store), as the idle
/// CPU's locked `fetch_or` orders its bit before its last look at the
/// queues. So either the waker sees the bit and sends the IPI, or the idle
/// CPU sees the thread and does not halt.
fn idle_mask() -> u64 {
    core::sync::atomic::fence(Ordering::SeqCst);
    IDLE.load(Ordering::SeqCst) & ((1u64 << percpu::online_count()) - 1)
}

/// The CPU a thread that became runnable goes to (see the module comment).
fn place(last: usize) -> usize {
    let online = percpu::online_count();
    let last = if last < online { last } else { 0 };
    if online == 1 {
        return 0;
    }
    let idle = idle_mask();
    if idle & (1 << last) != 0 {
        return last;
    }
    if idle != 0 {
        return idle.trailing_zeros() as usize;
    }
    let mut best = last;
    let mut best_load = load(last);
    for index in 0..online {
        let l = load(index);
        if l < best_load {
            (best, best_load) = (index, l);
        }
    }
    best
}

/// Thread `tid`, which last ran on CPU `last`, is runnable: queue it where
/// `place` says, and wake that CPU if it idles (an IPI ends its `hlt`).
/// Called with the process table held, or from interrupt handlers.
pub(super) fn enqueue(tid: Tid, last: usize) {
    let target = place(last);
    cpu(target).run_queue.push(tid);
    kick(target);
}

/// A thread that used up its turn on this CPU goes back on its queue. If
/// others wait behind it, an idle CPU is told, so that it steals one.
pub(super) fn requeue_here(tid: Tid) {
    if percpu::this().run_queue.push(tid) >= 2 {
        kick_idle_cpu();
    }
}

/// The next thread for CPU `me`: its own queue's first, or the last of the
/// busiest other queue's.
pub(super) fn next(me: usize) -> Option<Tid> {
    if let Some(tid) = cpu(me).run_queue.pop_front() {
        return Some(tid);
    }
    let victim = busiest(me)?;
    cpu(victim).run_queue.pop_back(false)
}

/// The other online CPU with the longest queue, if any queue holds one.
fn busiest(me: usize) -> Option<usize> {
    (0..percpu::online_count())
        .filter(|&i| i != me)
        .map(|i| (cpu(i).run_queue.len(), i))
        .filter(|&(len, _)| len > 0)
        .max()
        .map(|(_, i)| i)
}

/// Whether a thread waits for this CPU (its own queue), or one could be
/// stolen (another's): the idle loop's last look before `hlt`.
pub(super) fn work_for(me: usize) -> bool {
    cpu(me).run_queue.len() > 0 || busiest(me).is_some()
}

/// Whether threads wait in this CPU's queue (the tick then yields).
pub(super) fn waiting_here() -> bool {
    percpu::this().run_queue.len() > 0
}

/// The periodic balance, from each CPU's tick (kernel/src/arch/timer.rs).
pub fn balance_tick(ticks: u64) {
    if !ticks.is_multiple_of(BALANCE_TICKS) || percpu::online_count() == 1 {
        return;
    }
    let me = percpu::this();
    let Some(victim) = busiest(me.index()) else {
        return;
    };
    if cpu(victim).run_queue.len() < me.run_queue.len() + 2 {
        return;
    }
    if let Some(tid) = cpu(victim).run_queue.pop_back(true) {
        me.run_queue.push(tid);
    }
}

/// Mark this CPU idle (before its last look and `hlt`) or busy again.
pub(super) fn set_idle(me: usize, idle: bool) {
    if idle {
        IDLE.fetch_or(1 << me, Ordering::SeqCst);
    } else {
        IDLE.fetch_and(!(1 << me), Ordering::SeqCst);
    }
}

/// Wake CPU `index` if it idles and is not this one.
fn kick(index: usize) {
    if index != percpu::this().index() && idle_mask() & (1 << index) != 0 {
        ipi::send(cpu(index), ipi::COUNT_VECTOR);
    }
}

/// Work appeared that any CPU may take (a queue grew, the page-out daemon
/// woke): wake one idle CPU, if any.
pub fn kick_idle_cpu() {
    let idle = idle_mask() & !(1 << percpu::this().index());
    if idle != 0 {
        kick(idle.trailing_zeros() as usize);
    }
}
