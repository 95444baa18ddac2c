//! Signal state, split as POSIX splits it between a process and its
//! threads: the dispositions and the process-directed pending set belong
//! to the process (`Signals`, shared by every thread, CLONE_SIGHAND); the
//! blocked mask, the thread-directed pending set (a fault's signal,
//! tgkill) and the alternate stack belong to each thread
//! (`ThreadSignals`). `Sig` is one thread's view of both: what delivery
//! and the blocking calls ask.

use super::numbers::*;
use super::{SigAction, SigInfo, recheck};

/// Signals waiting to be delivered, with what the kernel knows of each.
/// Standard signals do not queue: a second post of a pending one merges.
#[derive(Clone)]
pub struct Pending {
    bits: u64,
    info: [SigInfo; NSIG],
}

impl Pending {
    pub const fn new() -> Pending {
        Pending {
            bits: 0,
            info: [SigInfo {
                signo: 0,
                code: 0,
                addr: 0,
                pid: 0,
                status: 0,
            }; NSIG],
        }
    }

    /// Mark `info.signo` pending. A continue cancels pending stops and a
    /// stop a pending continue.
    pub fn post(&mut self, info: SigInfo) {
        recheck();
        if info.signo == SIGCONT {
            self.bits &= !STOPS;
        } else if STOPS & bit(info.signo) != 0 {
            self.bits &= !bit(SIGCONT);
        }
        let b = bit(info.signo);
        if self.bits & b == 0 {
            self.bits |= b;
            self.info[(info.signo - 1) as usize] = info;
        }
    }

    pub fn has(&self, signal: i32) -> bool {
        self.bits & bit(signal) != 0
    }

    fn take(&mut self, signal: i32) -> SigInfo {
        self.bits &= !bit(signal);
        self.info[(signal - 1) as usize]
    }
}

/// A process's signal state: what each signal does, and the signals sent
/// to the process as a whole (kill, a child's exit, the terminal), which
/// any thread that does not block them may take.
#[derive(Clone)]
pub struct Signals {
    actions: [SigAction; NSIG],
    pub pending: Pending,
}

impl Signals {
    pub fn new() -> Signals {
        Signals {
            actions: [SigAction::default(); NSIG],
            pending: Pending::new(),
        }
    }

    /// fork: the child inherits dispositions, nothing pending.
    pub fn for_child(&self) -> Signals {
        Signals {
            actions: self.actions,
            pending: Pending::new(),
        }
    }

    /// execve: handlers go back to default (the code they pointed at is
    /// gone); ignored signals stay ignored, the pending set stays.
    pub fn reset_for_exec(&mut self) {
        for action in &mut self.actions {
            let handler = if action.handler == SIG_IGN {
                SIG_IGN
            } else {
                SIG_DFL
            };
            *action = SigAction {
                handler,
                ..SigAction::default()
            };
        }
    }

    pub fn action(&self, signal: i32) -> SigAction {
        self.actions[(signal - 1) as usize]
    }

    pub fn set_action(&mut self, signal: i32, action: SigAction) {
        self.actions[(signal - 1) as usize] = action;
    }

    pub fn post(&mut self, info: SigInfo) {
        self.pending.post(info);
    }

    /// Whether `signal` would not interrupt a wait: ignored, or left at a
    /// default that ignores it or stops the process (a stop happens in
    /// the wait itself: `stop_if_asked`, and the wait goes on after it).
    fn ignores(&self, signal: i32) -> bool {
        match self.action(signal).handler {
            SIG_IGN => true,
            SIG_DFL => default_ignores(signal) || STOPS & bit(signal) != 0,
            _ => false,
        }
    }

    /// Whether SIGCONT is pending (a stop that would come now is moot).
    pub fn continue_pending(&self) -> bool {
        self.pending.has(SIGCONT)
    }

    /// Whether the SIGCHLD handler asked not to hear of stops (SA_NOCLDSTOP).
    pub fn no_child_stops(&self) -> bool {
        let action = self.action(SIGCHLD);
        action.flags & SA_NOCLDSTOP != 0 || action.handler == SIG_IGN
    }
}

/// One thread's own signal state.
#[derive(Clone)]
pub struct ThreadSignals {
    /// Blocked signals (never SIGKILL or SIGSTOP).
    pub mask: u64,
    /// Signals sent to this thread (its faults, tgkill).
    pub pending: Pending,
    /// The mask to bring back once the signal that interrupted ppoll,
    /// pselect6 or rt_sigsuspend (which ran with another) was handled.
    pub saved_mask: Option<u64>,
    /// The alternate stack SA_ONSTACK handlers run on (sigaltstack).
    pub alt: crate::sigaltstack::AltStack,
}

impl ThreadSignals {
    pub fn new() -> ThreadSignals {
        ThreadSignals {
            mask: 0,
            pending: Pending::new(),
            saved_mask: None,
            alt: Default::default(),
        }
    }

    /// A new thread or fork child: the creator's mask, nothing pending,
    /// no alternate stack for a thread (Linux clears it on CLONE_VM; a
    /// fork child keeps it: `fork_alt`).
    pub fn for_new(&self, keep_alt: bool) -> ThreadSignals {
        ThreadSignals {
            mask: self.mask,
            pending: Pending::new(),
            saved_mask: None,
            alt: if keep_alt {
                self.alt
            } else {
                Default::default()
            },
        }
    }
}

/// A thread's view of its signals: its own and its process's.
pub struct Sig<'a> {
    pub shared: &'a mut Signals,
    pub own: &'a mut ThreadSignals,
}

impl Sig<'_> {
    /// Pending signals this thread may take now.
    fn ready(&self) -> u64 {
        (self.own.pending.bits | self.shared.pending.bits) & !self.own.mask
    }

    /// Whether a pending signal would interrupt a blocking call: unblocked
    /// and not ignored.
    pub fn interrupts(&self) -> bool {
        let mut ready = self.ready();
        while ready != 0 {
            let signal = ready.trailing_zeros() as i32 + 1;
            if !self.shared.ignores(signal) {
                return true;
            }
            ready &= ready - 1;
        }
        false
    }

    /// Whether `signal` would stop the process: left at its default
    /// action and not blocked (a background terminal read asks).
    pub fn stops_for(&self, signal: i32) -> bool {
        self.shared.action(signal).handler == SIG_DFL && self.own.mask & bit(signal) == 0
    }

    /// Take a pending, unblocked stop signal left at its default action.
    pub fn take_stop(&mut self) -> Option<i32> {
        let mut ready = self.ready() & STOPS;
        while ready != 0 {
            let signal = ready.trailing_zeros() as i32 + 1;
            ready &= ready - 1;
            if self.shared.action(signal).handler == SIG_DFL {
                self.take_signal(signal);
                return Some(signal);
            }
        }
        None
    }

    /// Whether a blocking call a signal interrupted may start again
    /// (signal(7)): the first pending signal that will act runs a handler
    /// installed with SA_RESTART, or none will run a handler at all.
    pub fn restarts(&self) -> bool {
        let mut ready = self.ready();
        while ready != 0 {
            let signal = ready.trailing_zeros() as i32 + 1;
            ready &= ready - 1;
            let action = self.shared.action(signal);
            match action.handler {
                SIG_IGN => continue,
                SIG_DFL if default_ignores(signal) => continue,
                SIG_DFL => return true, // it ends the process anyway
                _ => return action.flags & SA_RESTART != 0,
            }
        }
        true
    }

    /// Take the lowest pending unblocked signal: the thread's own first.
    pub fn take(&mut self) -> Option<SigInfo> {
        let ready = self.ready();
        if ready == 0 {
            return None;
        }
        Some(self.take_signal(ready.trailing_zeros() as i32 + 1))
    }

    fn take_signal(&mut self, signal: i32) -> SigInfo {
        if self.own.pending.has(signal) {
            self.own.pending.take(signal)
        } else {
            self.shared.pending.take(signal)
        }
    }
}

/// Default action "ignore" (Linux's): SIGCHLD, SIGURG, SIGWINCH, SIGCONT
/// (which continues a stopped process when it is sent: proc::kill).
pub fn default_ignores(signal: i32) -> bool {
    matches!(signal, SIGCHLD | SIGCONT | SIGURG | SIGWINCH)
}

/// The signals whose default action stops the process (job control).
pub const STOPS: u64 = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);
