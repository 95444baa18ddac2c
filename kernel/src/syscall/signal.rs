//! Signal syscalls: rt_sigaction (the process's), rt_sigprocmask and
//! sigaltstack (the calling thread's), rt_sigreturn. The
//! machinery (pending sets, delivery, the frame) is in kernel/src/signal/mod.rs.

use crate::arch::idt::TrapFrame;
use crate::signal::{self, SigAction};
use crate::{proc, usercopy};
use vm::errno::{Errno, SysResult};

/// The kernel's sigset_t is 64 bits: any other sigsetsize is EINVAL.
const SIGSET_SIZE: u64 = 8;

/// rt_sigaction(sig, act, oldact, sigsetsize): read `act` (if not NULL)
/// before writing `oldact`, so both may point at the same struct. SIGKILL
/// and SIGSTOP keep their default action (EINVAL).
pub fn rt_sigaction(sig: u64, act: u64, oldact: u64, sigsetsize: u64) -> SysResult {
    let signo = sig as i32;
    if sigsetsize != SIGSET_SIZE || sig > signal::NSIG as u64 || !signal::valid(signo) {
        return Err(Errno::EINVAL);
    }
    proc::with_current(|p| {
        let new = if act != 0 {
            if signo == signal::SIGKILL || signo == signal::SIGSTOP {
                return Err(Errno::EINVAL);
            }
            let mut bytes = [0u8; 32];
            usercopy::copy_in(&mut *p.space(), act, &mut bytes)?;
            let mut action = SigAction::from_bytes(&bytes);
            action.mask &= !signal::UNBLOCKABLE;
            Some(action)
        } else {
            None
        };
        if oldact != 0 {
            let old = p.signals.action(signo).to_bytes();
            usercopy::copy_out(&mut *p.space(), oldact, &old)?;
        }
        if let Some(action) = new {
            p.signals.set_action(signo, action);
            signal::recheck();
        }
        Ok(0)
    })
}

const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;

/// rt_sigprocmask(how, set, oldset, sigsetsize). SIGKILL and SIGSTOP are
/// silently left unblocked, as on Linux.
pub fn rt_sigprocmask(how: u64, set: u64, oldset: u64, sigsetsize: u64) -> SysResult {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    proc::with_current_thread(|p, t| {
        let old = t.sig.mask;
        let new = if set != 0 {
            let value = usercopy::read_u64(&mut *p.space(), set)?;
            Some(match how {
                SIG_BLOCK => old | value,
                SIG_UNBLOCK => old & !value,
                SIG_SETMASK => value,
                _ => return Err(Errno::EINVAL),
            })
        } else {
            None
        };
        if oldset != 0 {
            usercopy::copy_out(&mut *p.space(), oldset, &old.to_le_bytes())?;
        }
        if let Some(mask) = new {
            t.sig.mask = mask & !signal::UNBLOCKABLE;
            signal::recheck();
        }
        Ok(0)
    })
}

pub fn rt_sigreturn(frame: &mut TrapFrame) -> SysResult {
    signal::sigreturn(frame)
}

/// rt_sigsuspend(mask, size): wait for a signal with `mask` blocked; it
/// always ends with EINTR, its handler having run under `mask`.
pub fn rt_sigsuspend(mask: u64, sigsetsize: u64) -> SysResult {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = proc::with_current(|p| usercopy::read_u64(&mut *p.space(), mask))?;
    let old = signal::replace_mask(mask);
    let result = crate::sleep::wait_for(&[], None, || None::<()>);
    signal::restore_mask(old, true);
    result.map(|_| 0)
}

/// pause: wait for a signal that runs a handler or ends the process;
/// always EINTR (pause(2): ignored signals do not end it).
pub fn pause() -> SysResult {
    crate::sleep::wait_for(&[], None, || None::<()>).map(|_| 0)
}

/// sigaltstack(new, old, at `rsp`): read `new` (if not NULL) before
/// writing `old`, the rules being `sigaltstack::AltStack`'s.
pub fn sigaltstack(new: u64, old: u64, rsp: u64) -> SysResult {
    proc::with_current_thread(|p, t| {
        let current = t.sig.alt;
        let wanted = if new != 0 {
            let mut bytes = [0u8; 24];
            usercopy::copy_in(&mut *p.space(), new, &mut bytes)?;
            Some(current.replaced_by(&bytes, rsp)?)
        } else {
            None
        };
        if old != 0 {
            usercopy::copy_out(&mut *p.space(), old, &current.to_bytes(rsp))?;
        }
        if let Some(alt) = wanted {
            t.sig.alt = alt;
        }
        Ok(0)
    })
}
