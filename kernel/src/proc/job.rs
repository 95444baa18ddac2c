//! Job control: process groups and sessions, stops and continues, and
//! what wait4 and kill see of them.
//!
//! Every process is in a process group (`pgid`), every group in a session
//! (`sid`); a child starts in its parent's. A shell puts each job in a
//! group of its own (setpgid) and tells the terminal which group is in
//! the foreground (TIOCSPGRP, kernel/src/tty/): the terminal's ^C, ^\ and
//! ^Z go to that group. A stop signal at its default action stops the
//! process (`State::Stopped`, off the run queue) where it next returns to
//! user mode or waits; SIGCONT, when sent, runs it again. Its parent
//! hears of both through SIGCHLD and wait4's WUNTRACED and WCONTINUED.
//! As on Linux, SIGTSTP, SIGTTIN and SIGTTOU do not stop a process in an
//! orphaned group (no member has a parent in another group of the same
//! session: nobody is left to continue it); SIGSTOP always does.

use super::{
    INIT_PID, Pid, Process, Run, State, TABLE, Table, Tid, WaitStatus, switch_to_scheduler, unpark,
    wake, wake_process,
};
use crate::signal::{self, SigInfo};
use alloc::vec::Vec;
use vm::errno::Errno;

/// What wait4 with WUNTRACED or WCONTINUED reports, once, about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobChange {
    Stopped(i32),
    Continued,
}

/// The wait status of a stop (`WIFSTOPPED`) and of a continue (`WIFCONTINUED`).
pub fn stopped(signal: i32) -> WaitStatus {
    0x7f | (signal << 8)
}
pub const CONTINUED: WaitStatus = 0xffff;

/// Which children a wait4 `pid` argument selects: -1 any child, a
/// positive pid that child, 0 those in the caller's process group, -pgid
/// those in group pgid.
fn selects(target: i64, child: &Process, my_pgid: Pid) -> bool {
    match target {
        -1 => true,
        0 => child.pgid == my_pgid,
        t if t < 0 => i64::from(child.pgid) == -t,
        t => t == i64::from(child.pid),
    }
}

/// What wait4 asks for beyond zombies.
#[derive(Clone, Copy, Default)]
pub struct WaitFor {
    pub nohang: bool,
    /// WUNTRACED: report stops.
    pub stops: bool,
    /// WCONTINUED: report continues.
    pub continues: bool,
}

/// What wait4 found: a zombie (reaped by `reap` once its status is out)
/// or a stop or continue (already taken).
#[derive(Clone, Copy)]
pub enum Waited {
    Exited(Pid, WaitStatus),
    Changed(Pid, WaitStatus),
}

/// wait4's search: a zombie child that `target` selects, or with `how` a
/// stopped or continued one. Sleeps until there is one, unless `nohang`
/// (then Ok(None)). ECHILD without a selected child; EINTR when a signal
/// that is not ignored arrives.
pub fn wait_child(target: i64, how: WaitFor) -> Result<Option<Waited>, Errno> {
    loop {
        crate::sleep::interrupted()?;
        {
            let mut table = TABLE.lock();
            let me = table.current_process().pid;
            let my_pgid = table.current_process().pgid;
            let mut any = false;
            for c in table.procs.values_mut() {
                if c.parent != me || !selects(target, c, my_pgid) {
                    continue;
                }
                any = true;
                if let State::Zombie(status) = c.state {
                    return Ok(Some(Waited::Exited(c.pid, status)));
                }
                let status = match c.job_change {
                    Some(JobChange::Stopped(sig)) if how.stops => stopped(sig),
                    Some(JobChange::Continued) if how.continues => CONTINUED,
                    _ => continue,
                };
                c.job_change = None;
                return Ok(Some(Waited::Changed(c.pid, status)));
            }
            if !any {
                return Err(Errno::ECHILD);
            }
            if how.nohang {
                return Ok(None);
            }
            let (p, t) = table.current();
            let sig = signal::Sig {
                shared: &mut p.signals,
                own: &mut t.sig,
            };
            if sig.interrupts() {
                return Err(Errno::EINTR);
            }
            t.run = Run::Waiting;
        }
        switch_to_scheduler();
    }
}

/// Stop the current process for `signal` (its default action): its parent
/// hears of it (SIGCHLD with CLD_STOPPED, unless SA_NOCLDSTOP; wait4 with
/// WUNTRACED), and it runs again when SIGCONT or SIGKILL comes (`kill`).
/// Every thread stops: the scheduler parks each when its turn comes.
pub fn stop_current(signal: i32) {
    {
        let mut table = TABLE.lock();
        let me = table.current_process().pid;
        let p = table.current_process();
        if p.signals.continue_pending() {
            return;
        }
        let pgid = p.pgid;
        if signal != signal::SIGSTOP && orphaned(&table, pgid) {
            return;
        }
        let p = table.procs.get_mut(&me).expect("proc: current vanished");
        p.state = State::Stopped;
        p.job_change = Some(JobChange::Stopped(signal));
        let parent = p.parent;
        notify_parent(&mut table, me, parent, signal::CLD_STOPPED, signal);
    }
    switch_to_scheduler();
}

/// Tell `parent` its child `child` stopped or continued: SIGCHLD (unless
/// it asked not to hear of stops: SA_NOCLDSTOP) and a wake-up for wait4.
fn notify_parent(table: &mut Table, child: Pid, parent: Pid, code: i32, status: i32) {
    if let Some(p) = table.procs.get_mut(&parent)
        && !p.signals.no_child_stops()
    {
        p.signals.post(SigInfo {
            signo: signal::SIGCHLD,
            code,
            pid: child,
            status,
            addr: 0,
        });
    }
    wake_process(table, parent);
}

/// kill: post `signal` (0: only check) to `target`: a pid, -1 for every
/// process but init and the caller, 0 for the caller's process group,
/// -pgid for that group. ESRCH when nothing matches.
pub fn kill(target: i64, info: SigInfo) -> Result<(), Errno> {
    let mut table = TABLE.lock();
    let me = table.current_process().pid;
    let my_pgid = table.current_process().pgid;
    let chosen: Vec<Pid> = table
        .procs
        .values()
        .filter(|p| match target {
            t if t > 0 => i64::from(p.pid) == t,
            -1 => p.pid != INIT_PID && p.pid != me,
            0 => p.pgid == my_pgid && p.pid != INIT_PID,
            t => i64::from(p.pgid) == -t,
        })
        .map(|p| p.pid)
        .collect();
    if chosen.is_empty() {
        return Err(Errno::ESRCH);
    }
    if info.signo == 0 {
        return Ok(());
    }
    for pid in chosen {
        post(&mut table, pid, info);
    }
    Ok(())
}

/// Send `info` to `pid` (not a zombie): SIGCONT continues a stopped
/// process (whatever it does with the signal itself) and cancels pending
/// stops; a stop signal cancels a pending SIGCONT; SIGKILL reaches a
/// stopped process too.
fn post(table: &mut Table, pid: Pid, info: SigInfo) {
    let Some(p) = table.procs.get_mut(&pid) else {
        return;
    };
    if matches!(p.state, State::Zombie(_)) {
        return;
    }
    p.signals.post(info);
    let continued = match info.signo {
        signal::SIGCONT => true,
        signal::SIGKILL => p.state == State::Stopped,
        _ => false,
    };
    if continued && p.state == State::Stopped {
        p.state = State::Alive;
        let parent = p.parent;
        if info.signo == signal::SIGCONT {
            p.job_change = Some(JobChange::Continued);
        }
        unpark(table, pid);
        if info.signo == signal::SIGCONT {
            notify_parent(table, pid, parent, signal::CLD_CONTINUED, signal::SIGCONT);
        }
    } else {
        wake_process(table, pid);
    }
}

/// tgkill (`tgid` Some) and tkill: send `info` to thread `tid` (of
/// process `tgid`). SIGKILL, SIGSTOP and SIGCONT act on the whole
/// process, as on Linux; any other signal waits for that thread. ESRCH
/// when there is no such thread.
pub fn signal_thread(tgid: Option<Pid>, tid: Tid, info: SigInfo) -> Result<(), Errno> {
    let mut table = TABLE.lock();
    let pid = match table.threads.get(&tid) {
        Some(t) if t.run != Run::Dead && tgid.is_none_or(|g| g == t.pid) => t.pid,
        _ => return Err(Errno::ESRCH),
    };
    if info.signo == 0 {
        return Ok(());
    }
    if matches!(
        info.signo,
        signal::SIGKILL | signal::SIGSTOP | signal::SIGCONT
    ) {
        post(&mut table, pid, info);
    } else if let Some(t) = table.threads.get_mut(&tid) {
        t.sig.pending.post(info);
        wake(&mut table, tid);
    }
    Ok(())
}

/// Send `info` to every process of group `pgid` (the terminal's ^C, ^Z,
/// kill(-pgid)); false if there is none. Only try-locks the table (the
/// terminal calls it from its interrupt): None when busy.
pub fn try_signal_group(pgid: Pid, info: SigInfo) -> Option<bool> {
    let mut table = TABLE.try_lock()?;
    let members: Vec<Pid> = table
        .procs
        .values()
        .filter(|p| p.pgid == pgid && !matches!(p.state, State::Zombie(_)))
        .map(|p| p.pid)
        .collect();
    for &pid in &members {
        post(&mut table, pid, info);
    }
    Some(!members.is_empty())
}

/// Whether group `pgid` is orphaned in `table`: no member has a parent in
/// another group of the same session (Linux does not count a member whose
/// parent is init).
fn orphaned(table: &Table, pgid: Pid) -> bool {
    !table.procs.values().any(|p| {
        p.pgid == pgid
            && !matches!(p.state, State::Zombie(_))
            && p.parent != INIT_PID
            && table
                .procs
                .get(&p.parent)
                .is_some_and(|parent| parent.pgid != pgid && parent.sid == p.sid)
    })
}

/// Whether the current process's group is orphaned (a job-control stop
/// other than SIGSTOP is then discarded, and a background read of the
/// terminal fails with EIO instead of stopping).
pub fn own_group_orphaned() -> bool {
    let mut table = TABLE.lock();
    let pgid = table.current_process().pgid;
    orphaned(&table, pgid)
}

/// The pid a job-control call names: 0 is the caller.
fn named(pid: u64) -> Result<Pid, Errno> {
    match pid as i32 {
        0 => Ok(super::current_pid()),
        p if p > 0 => Ok(p as Pid),
        _ => Err(Errno::ESRCH),
    }
}

/// getpgid(pid) and getsid(pid): ESRCH for no such process.
pub fn group_of(pid: u64) -> Result<(Pid, Pid), Errno> {
    let pid = named(pid)?;
    let table = TABLE.lock();
    table
        .procs
        .get(&pid)
        .map(|p| (p.pgid, p.sid))
        .ok_or(Errno::ESRCH)
}

/// setpgid(pid, pgid) with Linux's rules: the caller or one of its
/// children (ESRCH), not a session leader and in the caller's session
/// (EPERM), into a new group named after it or an existing group of the
/// same session (EPERM).
pub fn set_group(pid: u64, pgid: u64) -> Result<(), Errno> {
    let pgid = pgid as i32;
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid as i32 == 0 {
        super::current_pid()
    } else if (pid as i32) < 0 {
        return Err(Errno::EINVAL);
    } else {
        pid as Pid
    };
    let pgid = if pgid == 0 { target } else { pgid as Pid };
    let mut table = TABLE.lock();
    let me = table.current_process().pid;
    let my_sid = table.current_process().sid;
    let t = table.procs.get(&target).ok_or(Errno::ESRCH)?;
    if target != me && t.parent != me {
        return Err(Errno::ESRCH);
    }
    if t.sid == target || t.sid != my_sid {
        return Err(Errno::EPERM);
    }
    // A zombie is still its group's member until it is reaped (Linux
    // detaches its pid only then): the second command of a pipeline joins
    // the first's group even when the first has already exited.
    if pgid != target
        && !table
            .procs
            .values()
            .any(|p| p.pgid == pgid && p.sid == my_sid)
    {
        return Err(Errno::EPERM);
    }
    if let Some(t) = table.procs.get_mut(&target) {
        t.pgid = pgid;
    }
    Ok(())
}

/// setsid: a new session and group led by the caller (EPERM if it leads a
/// group already). The new session has no controlling terminal.
pub fn new_session() -> Result<Pid, Errno> {
    let mut table = TABLE.lock();
    let me = table.current_process().pid;
    if table.procs.values().any(|p| p.pgid == me) {
        return Err(Errno::EPERM);
    }
    let p = table.current_process();
    p.sid = me;
    p.pgid = me;
    Ok(me)
}

/// Whether a group `pgid` with a member in session `sid` exists (TIOCSPGRP).
/// A zombie not yet reaped counts, as on Linux: a shell's pipeline whose
/// first command already exited is still the group it makes the
/// foreground (counting only live members made busybox's
/// `echo one two | wc -w` fail with EPERM when echo won the race).
pub fn group_in_session(pgid: Pid, sid: Pid) -> bool {
    TABLE
        .lock()
        .procs
        .values()
        .any(|p| p.pgid == pgid && p.sid == sid)
}
