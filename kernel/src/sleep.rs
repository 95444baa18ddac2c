//! Blocking: threads waiting for a deadline, for an event, or both.
//!
//! This is the kernel's one way to wait. A waiting thread is off the run
//! queue in the `Waiting` state (proc/sched.rs) and is put back by
//! `proc::wake`; the ids below are thread ids (a process's first thread's
//! is its pid):
//!
//! - **Deadlines**: a timed wait has an entry in `SLEEPERS`, its deadline
//!   on the monotonic clock (kernel/src/time.rs) and its pid. Every CPU's
//!   tick wakes the processes whose deadline passed, so a timeout ends at
//!   the first tick after it on any CPU: up to 1/HZ late (10 ms), never
//!   early, and not later when one CPU (the boot CPU, which once did all
//!   the waking) has interrupts masked for a while. `NEXT_DEADLINE`, the
//!   set's earliest deadline, makes a tick that finds nothing due cost one
//!   load, not a lock the other CPUs' ticks would contend for.
//! - **Events**: a `WaitQueue` belongs to what can be waited for (a pipe's
//!   or socket's buffer, the terminal's input). A waiter adds its pid to
//!   the queues of everything it waits for (poll: several), and whoever
//!   changes the thing wakes the queue.
//! - **Signals** wake a waiter through `proc::kill`; `interrupted` is the
//!   one place a blocking call turns a pending signal into EINTR.
//!
//! `wait_for` puts these together: check a condition, and sleep until one
//! of the queues is woken, the deadline passes or a signal comes; then
//! check again. A wake that comes between the check and the sleep is not
//! lost: `proc::wake` of a process that is not waiting yet leaves it a
//! note, and its next sleep returns at once. Lock order: a queue or this
//! set, then the process table.

use crate::proc::{self, Pid};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;
use vm::errno::Errno;

static SLEEPERS: Mutex<BTreeSet<(u64, Pid)>> = Mutex::new(BTreeSet::new());

/// The earliest deadline in `SLEEPERS` (u64::MAX when it is empty),
/// written only under its lock and read by the ticks without it. A tick
/// that reads a stale value misses at most a deadline added at that
/// moment, which the next tick (of any CPU) sees.
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Keep `NEXT_DEADLINE` the set's first deadline (called under its lock).
fn note_first(sleepers: &BTreeSet<(u64, Pid)>) {
    let first = sleepers.first().map_or(u64::MAX, |&(deadline, _)| deadline);
    NEXT_DEADLINE.store(first, Ordering::Release);
}

/// Wake `pid` at `deadline` (nanoseconds, monotonic).
pub fn add(deadline: u64, pid: Pid) {
    let mut sleepers = SLEEPERS.lock();
    sleepers.insert((deadline, pid));
    note_first(&sleepers);
}

/// Forget a sleep that ended (at its deadline or sooner).
pub fn remove(deadline: u64, pid: Pid) {
    let mut sleepers = SLEEPERS.lock();
    if sleepers.remove(&(deadline, pid)) {
        note_first(&sleepers);
    }
}

/// Wake every sleeper whose deadline passed (each CPU's tick). The tick
/// may interrupt kernel code that waits with interrupts on (a disk wait,
/// block/mod.rs) while it holds the process table or this set, and
/// another CPU's tick may hold them: both are only try-locked, and a busy
/// one leaves the wake-up to the next tick, this CPU's or another's
/// (`NEXT_DEADLINE` still names the deadline that passed).
pub fn wake_expired() {
    let next = NEXT_DEADLINE.load(Ordering::Acquire);
    if next == u64::MAX {
        return;
    }
    let now = crate::time::monotonic();
    if now < next {
        return;
    }
    let Some(mut sleepers) = SLEEPERS.try_lock() else {
        return;
    };
    while let Some(&(deadline, pid)) = sleepers.first()
        && deadline <= now
    {
        if !proc::wake_sleeper(pid) {
            break;
        }
        sleepers.pop_first();
    }
    note_first(&sleepers);
}

/// The processes waiting for one thing to change.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Pid>>,
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue {
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn add(&self, pid: Pid) {
        let mut waiters = self.waiters.lock();
        if !waiters.contains(&pid) {
            waiters.push(pid);
        }
    }

    fn remove(&self, pid: Pid) {
        self.waiters.lock().retain(|&p| p != pid);
    }

    /// The thing changed: every waiter runs again and checks. Callable
    /// with any lock held and from interrupt handlers (see `wake`).
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for pid in waiters {
            wake(pid);
        }
    }
}

/// Wake-ups that found the process table busy, for `wake_deferred`.
static DEFERRED: Mutex<Vec<Pid>> = Mutex::new(Vec::new());
static ANY_DEFERRED: AtomicBool = AtomicBool::new(false);

/// Wake `pid`, now if the process table is free, else soon: a queue is
/// woken from wherever its thing changes, and that may be code holding
/// the table (exit closes a process's pipes under it) or an interrupt
/// handler that interrupted a holder (a disk wait runs with interrupts on).
pub fn wake(pid: Pid) {
    if !proc::wake_sleeper(pid) {
        DEFERRED.lock().push(pid);
        ANY_DEFERRED.store(true, Ordering::Release);
    }
}

/// Whether wake-ups wait to be delivered (the scheduler delivers them).
pub fn any_deferred() -> bool {
    ANY_DEFERRED.load(Ordering::Acquire)
}

/// Deliver the deferred wake-ups: at the end of every syscall, in the
/// scheduler's loop and at each tick (only try-locked there).
pub fn wake_deferred() {
    if !ANY_DEFERRED.load(Ordering::Acquire) {
        return;
    }
    let Some(mut deferred) = DEFERRED.try_lock() else {
        return;
    };
    while let Some(&pid) = deferred.last() {
        if !proc::wake_sleeper(pid) {
            return;
        }
        deferred.pop();
    }
    ANY_DEFERRED.store(false, Ordering::Release);
}

/// EINTR if a signal that is not ignored is pending: every blocking call
/// asks here before it sleeps (and SA_RESTART's restart logic can decide
/// in this one place what the call returns). A pending stop signal stops
/// the process here, and the wait goes on once it is continued.
pub fn interrupted() -> Result<(), Errno> {
    crate::signal::stop_if_asked();
    if crate::signal::interrupts() {
        Err(Errno::EINTR)
    } else {
        Ok(())
    }
}

/// Wait until `ready` gives a value, one of `queues` is woken and `ready`
/// then gives one, or the monotonic clock reaches `deadline` (`Ok(None)`).
/// EINTR when a signal comes first. `ready` runs with no lock held, so it
/// may take the things' own locks.
pub fn wait_for<R>(
    queues: &[&WaitQueue],
    deadline: Option<u64>,
    mut ready: impl FnMut() -> Option<R>,
) -> Result<Option<R>, Errno> {
    let pid = proc::current_tid();
    loop {
        for q in queues {
            q.add(pid);
        }
        // Checked after joining the queues: a change from now on wakes us.
        let outcome = if let Some(value) = ready() {
            Some(Ok(Some(value)))
        } else if let Err(e) = interrupted() {
            Some(Err(e))
        } else if deadline.is_some_and(|d| crate::time::monotonic() >= d) {
            Some(Ok(None))
        } else {
            None
        };
        if let Some(outcome) = outcome {
            for q in queues {
                q.remove(pid);
            }
            return outcome;
        }
        proc::block(deadline);
        for q in queues {
            q.remove(pid);
        }
    }
}
