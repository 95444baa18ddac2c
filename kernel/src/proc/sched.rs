//! The scheduler: one run queue of threads, round-robin, on the boot CPU;
//! and the one way a thread gives up the CPU (`switch_to_scheduler`),
//! with the waits and wake-ups built on it (`block`, `wake`).

use super::{Run, State, TABLE, Table, Tid};
use crate::arch::percpu;
use crate::arch::switch;
use x86_64::VirtAddr;

/// The scheduler loop, on the boot stack: run each runnable thread in
/// turn, idle (interrupts on, `hlt`) when there is none. A thread of a
/// stopped process is parked when its turn comes; a dead one is freed
/// once the scheduler is off its stack.
pub fn run() -> ! {
    loop {
        crate::sleep::wake_deferred();
        let next = {
            let mut table = TABLE.lock();
            pick(&mut table)
        };
        let Some((tid, rsp)) = next else {
            crate::arch::idle();
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
        let mut table = TABLE.lock();
        let Some(t) = table.threads.get_mut(&tid) else {
            continue;
        };
        match t.run {
            Run::Dead => {
                table.threads.remove(&tid);
            }
            Run::Running => {
                t.cpu_cycles += crate::arch::rdtsc() - t.ran_since;
                t.run = Run::Runnable;
                table.run_queue.push_back(tid);
            }
            _ => t.cpu_cycles += crate::arch::rdtsc() - t.ran_since,
        }
    }
}

/// The next thread to run, made current in the CPU's registers: its
/// kernel stack, address space, FPU registers and FS base. Returns its
/// tid and saved rsp.
fn pick(table: &mut Table) -> Option<(Tid, u64)> {
    while let Some(tid) = table.run_queue.pop_front() {
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
        crate::arch::syscall::set_kernel_stack(VirtAddr::new(t.kernel_stack_top()));
        p.space().pmap.activate();
        t.fpu.restore();
        // Another thread's pending signals are not known to be seen.
        crate::signal::recheck();
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
                table.run_queue.push_back(tid);
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
            table.run_queue.push_back(tid);
        }
    }
}
