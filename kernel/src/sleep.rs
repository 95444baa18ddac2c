//! Timed sleeps: processes waiting for a deadline, woken by the tick.
//!
//! A sleeping process is off the run queue in the `Waiting` state (as in
//! wait4) and has an entry here: its deadline on the monotonic clock
//! (kernel/src/time.rs) and its pid. The boot CPU's tick wakes every
//! process whose deadline passed, so a sleep ends at the first tick after
//! its deadline: up to 1/HZ late (10 ms), never early. Lock order: this
//! set, then the process table. A signal wakes a
//! sleeper sooner through the same path as wait4's (`proc::kill`).

use crate::proc::{self, Pid};
use alloc::collections::BTreeSet;
use spin::Mutex;

static SLEEPERS: Mutex<BTreeSet<(u64, Pid)>> = Mutex::new(BTreeSet::new());

/// Wake `pid` at `deadline` (nanoseconds, monotonic).
pub fn add(deadline: u64, pid: Pid) {
    SLEEPERS.lock().insert((deadline, pid));
}

/// Forget a sleep that ended (at its deadline or sooner).
pub fn remove(deadline: u64, pid: Pid) {
    SLEEPERS.lock().remove(&(deadline, pid));
}

/// Wake every sleeper whose deadline is at or before `now` (the tick).
/// The tick may interrupt kernel code that waits with interrupts on (a
/// disk wait, block/mod.rs) while it holds the process table or this set:
/// both are only try-locked, and a busy one leaves the wake-up to the
/// next tick.
pub fn wake_expired(now: u64) {
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
}
