//! The OOM killer: what happens when a page fault needs a frame and none
//! can be had (docs/src/pressure.md, "Out of memory").
//!
//! A fault that finds no frame does not punish whoever happened to fault.
//! As Linux's mm/oom_kill.c does, the kernel picks the process whose death
//! gives back the most, the one with the largest resident set plus swap
//! (Linux's badness without oom_score_adj), sends it SIGKILL, logs
//! `out of memory: killed pid N (name)`, and the faulting process waits for
//! the victim to be gone and then takes the fault again: its instruction
//! runs again, and this time a frame is there. Only if the faulting process
//! is itself the biggest does it die. init is never chosen (Linux's
//! `is_global_init`) unless nothing else is left.
//!
//! One victim at a time: while a victim chosen earlier still has its
//! memory, a process that runs out waits for that one instead of choosing
//! another (Linux's `oom_victims` check), so that one shortage does not
//! kill two processes.

use crate::proc::{self, INIT_PID, Pid, State};
use crate::signal::{self, SigInfo};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The pid of the victim whose memory has not come back yet (0: none).
static VICTIM: AtomicU32 = AtomicU32::new(0);
/// Processes killed (/proc/vmstat's oom_kill).
static KILLS: AtomicU64 = AtomicU64::new(0);

pub fn kills() -> u64 {
    KILLS.load(Ordering::Relaxed)
}

/// What a process that found no frame should do.
pub enum Verdict {
    /// Take the fault again: a victim's memory has come back.
    Retry,
    /// It is the victim itself: it has to exit (SIGKILL).
    Die,
}

/// A process's badness: pages resident plus pages in swap; None for a
/// process that has no memory to give back (a zombie, one exiting).
fn badness(pid: Pid) -> Option<u64> {
    proc::with_process(pid, |p| {
        if matches!(p.state, State::Zombie(_)) {
            return None;
        }
        let mut space = p.space_if_any()?;
        Some(space.pmap.resident_pages() + space.swapped_pages())
    })
    .ok()
    .flatten()
}

/// The current process found no frame for a fault: choose and kill a
/// victim (Linux's out_of_memory), or wait for the one chosen before.
pub fn out_of_memory() -> Verdict {
    let me = proc::current_pid();
    let pending = VICTIM.load(Ordering::Relaxed);
    let victim = if pending != 0 && badness(pending).is_some() {
        pending
    } else {
        let Some(victim) = choose(me) else {
            return Verdict::Die;
        };
        kill(victim, me);
        victim
    };
    if victim == me {
        return Verdict::Die;
    }
    // The victim gives its memory back when it exits, which it does the next
    // time it runs; SIGKILL woke it if it slept. Stop waiting if this process
    // was sent a signal meanwhile (it may be the next victim).
    while badness(victim).is_some() && !crate::signal::interrupts() {
        proc::yield_now();
    }
    Verdict::Retry
}

/// The process with the largest badness, init only if nothing else has
/// memory; `me` wins a tie, so that a shortage among equals ends with the
/// process that ran into it.
fn choose(me: Pid) -> Option<Pid> {
    let candidates = proc::pids().into_iter().filter_map(|pid| {
        let points = badness(pid)?;
        let rank = (pid != INIT_PID, points, pid == me);
        Some((rank, pid))
    });
    candidates.max_by_key(|&(rank, _)| rank).map(|(_, pid)| pid)
}

fn kill(victim: Pid, me: Pid) {
    let (name, rss, swap) = proc::with_process(victim, |p| {
        let space = p.space_if_any();
        let (rss, swap) =
            space.map_or((0, 0), |mut s| (s.pmap.resident_pages(), s.swapped_pages()));
        (p.name.clone(), rss, swap)
    })
    .unwrap_or_default();
    log::warn!(
        "out of memory: killed pid {victim} ({name}), rss {} kB, swap {} kB, while pid {me} faulted",
        rss * 4,
        swap * 4
    );
    KILLS.fetch_add(1, Ordering::Relaxed);
    VICTIM.store(victim, Ordering::Relaxed);
    let info = SigInfo {
        signo: signal::SIGKILL,
        code: signal::SI_KERNEL,
        ..SigInfo::default()
    };
    // The victim exists (it was just found) and is not a zombie.
    let _ = proc::kill(i64::from(victim), info);
}
