//! The scheduler: each CPU runs `run` (the boot CPU from kmain, the others
//! once it started) and takes the next runnable thread from its own run
//! queue, or steals one from the busiest other (kernel/src/proc/runq.rs:
//! the queues, where a woken thread goes, the balance on the tick). The one
//! way a thread gives up the CPU is `switch_to_scheduler`, with the waits
//! and wake-ups built on it (`block`, `wake`).
//!
//! The scheduler holds the kernel lock (kernel/src/kernel_lock.rs) while
//! it runs and hands it to the thread it switches to; it lets it go only
//! to idle. So a thread that another CPU woke cannot be picked before the
//! CPU it ran on has saved its registers: that CPU held the lock from the
//! thread's switch until its own next thread returned to user mode.

use super::{Run, State, TABLE, Table, Tid, runq};
use crate::arch::percpu;
use crate::arch::{ipi, switch};
use crate::kernel_lock;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::VirtAddr;

/// Set once the boot CPU runs the scheduler: the others join then.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Whether the scheduler runs (the other CPUs' idle loop asks).
pub fn scheduler_started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// The scheduler loop, on this CPU's boot stack: run each runnable thread
/// in turn, idle (interrupts on, `hlt`, on the kernel's page tables,
/// without the kernel lock) when there is none. A thread of a stopped
/// process is parked when its turn comes; a dead one is freed once the
/// scheduler is off its stack.
pub fn run() -> ! {
    kernel_lock::enter();
    if !STARTED.swap(true, Ordering::AcqRel) {
        // The boot CPU: the others idle until an interrupt tells them.
        let me = percpu::this().index();
        for cpu in percpu::online().filter(|c| c.index() != me) {
            ipi::send(cpu, ipi::COUNT_VECTOR);
        }
    }
    loop {
        // A CPU waiting for the kernel lock gets it now, once (the ticket
        // order serves it first): a thread that yields in a loop inside
        // the kernel (F_SETLKW's retry) would otherwise go from this
        // scheduler back to itself with the lock kept, and the thread it
        // waits for, entering the kernel on another CPU, would never get
        // in. On the kernel's tables meanwhile, as when idle: the space of
        // the thread that just left may go while the lock is elsewhere.
        if kernel_lock::others_waiting() {
            crate::pmap::activate_kernel();
            kernel_lock::leave();
            kernel_lock::enter();
        }
        // Interrupts in for a moment, as the idle loop and the kernel
        // lock's waiters let them in: a CPU that always finds a thread to
        // run (one that yields in a loop inside the kernel) would never
        // take its tick otherwise, and the tick is what wakes the timed
        // sleepers (a holder in nanosleep, while its waiter spun, was never
        // woken on one CPU).
        x86_64::instructions::interrupts::enable();
        core::hint::spin_loop();
        x86_64::instructions::interrupts::disable();
        crate::sleep::wake_deferred();
        // A batch of the page-out daemon's, if it is awake, between two
        // threads (kernel/src/pageout.rs).
        crate::pageout::run();
        let next = {
            let mut table = TABLE.lock();
            pick(&mut table)
        };
        let Some((tid, rsp)) = next else {
            idle();
            continue;
        };
        let cpu = percpu::this();
        cpu.set_current(Some(tid));
        // SAFETY: rsp was saved by `switch` or built by `prepare_stack` on the
        // thread's kernel stack, which lives until the scheduler frees it
        // below, after this switch returned.
        unsafe { switch::switch(cpu.scheduler_rsp.get(), rsp) };
        // Its tid may have changed meanwhile (execve in a thread takes
        // the pid: exit.rs's kill_other_threads).
        let tid = cpu.current().unwrap_or(tid);
        cpu.set_current(None);
        crate::mm::set_running(None);
        let mut table = TABLE.lock();
        let Some(t) = table.threads.get_mut(&tid) else {
            continue;
        };
        // Off the CPU: if its kernel path overflowed its stack, say so now.
        t.check_stack_end();
        match t.run {
            Run::Dead => {
                table.threads.remove(&tid);
            }
            Run::Running => {
                t.cpu_cycles += crate::arch::rdtsc() - t.ran_since;
                t.run = Run::Runnable;
                runq::requeue_here(tid);
            }
            _ => t.cpu_cycles += crate::arch::rdtsc() - t.ran_since,
        }
    }
}

/// Nothing to run on this CPU: wait for an interrupt (the tick, or the
/// IPI a wake sends) on the kernel's tables, so that no shootdown waits
/// for this CPU, and without the kernel lock. Marked idle before a last
/// look at the queues: a thread queued after that look finds the mark and
/// sends the IPI (runq.rs's `idle_mask`), which ends the `hlt` even if it
/// comes first.
fn idle() {
    let me = percpu::this().index();
    runq::set_idle(me, true);
    if runq::work_for(me) {
        runq::set_idle(me, false);
        return;
    }
    crate::pmap::activate_kernel();
    kernel_lock::leave();
    crate::arch::idle();
    runq::set_idle(me, false);
    kernel_lock::enter();
}

/// The next thread to run, made current in the CPU's registers: its
/// kernel stack, address space, FPU registers and FS base. Returns its
/// tid and saved rsp.
fn pick(table: &mut Table) -> Option<(Tid, u64)> {
    let me = percpu::this().index();
    while let Some(tid) = runq::next(me) {
        let Some((p, t)) = table.pair(tid) else {
            continue;
        };
        if t.run != Run::Runnable {
            continue;
        }
        if p.state == State::Stopped {
            t.run = Run::Stopped;
            continue;
        }
        t.run = Run::Running;
        t.last_cpu = me;
        crate::arch::syscall::set_kernel_stack(VirtAddr::new(t.kernel_stack_top()));
        let mm = p
            .space
            .clone()
            .expect("sched: a thread's process has an address space");
        mm.activate();
        crate::mm::set_running(Some(mm));
        t.fpu.restore();
        // Another thread's pending signals are not known to be seen.
        crate::signal::recheck_here();
        crate::arch::set_fs_base(t.fs_base);
        t.ran_since = crate::arch::rdtsc();
        return Some((tid, t.saved_rsp));
    }
    None
}

/// Give the CPU to the scheduler; returns when this thread is picked again.
pub(super) fn switch_to_scheduler() {
    let save = {
        let mut table = TABLE.lock();
        let (_, t) = table.current();
        t.fpu.save();
        &raw mut t.saved_rsp
    };
    // SAFETY: the scheduler's rsp was saved when it switched to us; `save`
    // points into our boxed Thread, which the scheduler frees only after
    // this switch (and only if it is dead, when it never comes back).
    unsafe { switch::switch(save, *percpu::this().scheduler_rsp.get()) };
}

/// Whether a thread may be waiting for this CPU (the tick in user mode
/// then yields): one in its run queue (the tick's balance may just have
/// pulled it there), or a wake-up not yet delivered.
pub fn others_wait() -> bool {
    crate::sleep::any_deferred() || crate::pageout::woken() || runq::waiting_here()
}

/// Let other threads run (the timer tick, sched_yield).
pub fn yield_now() {
    switch_to_scheduler();
}

/// Sleep until the monotonic clock reaches `deadline` (kernel/src/sleep.rs)
/// or something wakes this thread sooner (a signal, a child's exit): the
/// caller checks which.
pub fn sleep_until(deadline: u64) {
    block(Some(deadline));
}

/// Give up the CPU until `wake` (or, with a deadline, the tick after it):
/// the one sleep of every blocking call (sleep.rs). Returns at once if a
/// wake came since the last one.
pub fn block(deadline: Option<u64>) {
    let tid = super::current_tid();
    let sleeps = {
        let mut table = TABLE.lock();
        let (_, t) = table.current();
        let sleeps = !core::mem::take(&mut t.woken);
        if sleeps {
            t.run = Run::Waiting;
        }
        sleeps
    };
    if !sleeps {
        return;
    }
    if let Some(deadline) = deadline {
        crate::sleep::add(deadline, tid);
    }
    switch_to_scheduler();
    if let Some(deadline) = deadline {
        crate::sleep::remove(deadline, tid);
    }
    // A stop signal woke it: it stops here, and its wait goes on after.
    crate::signal::stop_if_asked();
}

/// Wake a thread whose sleep's deadline passed (the tick), or that a
/// queue or a signal woke. False when the table is busy (the tick
/// interrupted a holder): try again later.
pub fn wake_sleeper(tid: Tid) -> bool {
    TABLE
        .try_lock()
        .map(|mut table| wake(&mut table, tid))
        .is_some()
}

/// The CPU time the current thread (`thread`) or its whole process used,
/// in nanoseconds, up to now.
pub fn cpu_time(thread: bool) -> u64 {
    let mut table = TABLE.lock();
    let now = crate::arch::rdtsc();
    let cycles = if thread {
        table.current().1.cycles(now)
    } else {
        let tids = table.current().0.threads.clone();
        let dead = table.current().0.dead_cycles;
        dead + tids
            .iter()
            .filter_map(|t| table.threads.get(t))
            .map(|t| t.cycles(now))
            .sum::<u64>()
    };
    crate::time::cycles_to_nanos(cycles)
}

/// Put a waiting thread back on the run queue; one that is not waiting
/// yet (it is about to, on another CPU) gets a note that makes its next
/// `block` return at once.
pub(super) fn wake(table: &mut Table, tid: Tid) {
    if let Some(t) = table.threads.get_mut(&tid) {
        match t.run {
            Run::Waiting => {
                t.run = Run::Runnable;
                runq::enqueue(tid, t.last_cpu);
            }
            Run::Dead => {}
            _ => t.woken = true,
        }
    }
}

/// Wake every thread of process `pid` (a signal for the process: each
/// thread that does not block it checks).
pub(super) fn wake_process(table: &mut Table, pid: super::Pid) {
    let tids = table
        .procs
        .get(&pid)
        .map(|p| p.threads.clone())
        .unwrap_or_default();
    for tid in tids {
        wake(table, tid);
    }
}

/// Run the stopped threads of process `pid` again (SIGCONT, SIGKILL).
pub(super) fn unpark(table: &mut Table, pid: super::Pid) {
    let tids = table
        .procs
        .get(&pid)
        .map(|p| p.threads.clone())
        .unwrap_or_default();
    for tid in tids {
        if let Some(t) = table.threads.get_mut(&tid)
            && t.run == Run::Stopped
        {
            t.run = Run::Runnable;
            runq::enqueue(tid, t.last_cpu);
        }
    }
}
