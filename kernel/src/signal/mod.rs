//! Signals: dispositions, the blocked mask, pending signals, and delivery
//! on the way back to user mode with Linux's x86_64 signal frame.
//!
//! A signal is *posted* (kill, a fault, a child's exit) by setting its bit
//! in the target's pending set. Whenever a process is about to return to
//! user mode (the end of every syscall and every trap from user mode),
//! `deliver_pending` takes the lowest pending, unblocked signal and acts:
//! ignore it, terminate the process (the signal goes into its wait status),
//! or run its handler. Standard signals do not queue: a second kill of a
//! pending signal is merged into the first.
//!
//! Running a handler means building Linux's `struct rt_sigframe` on the
//! user stack (below the 128-byte red zone) and pointing rip at the handler:
//!
//! ```text
//!  higher   | interrupted stack ...          |
//!           | red zone (128 bytes)           |
//!           | FPU/SSE state (fxsave, 512 B)  |  <- sigcontext.fpstate
//!           | siginfo (128 B)                |  <- rsi (frame + 312)
//!           | ucontext: flags, link, stack,  |  <- rdx (frame + 8)
//!           |   sigcontext (256 B), sigmask  |
//!  rsp ->   | pretcode = sa_restorer         |  the handler's `ret` goes there
//! ```
//!
//! The restorer (musl's `__restore_rt`) calls rt_sigreturn, which reads the
//! sigcontext back, with the checks that keep user mode from handing the
//! kernel a frame it cannot return through: user CS/SS forced, only the
//! arithmetic and trap flags of rflags taken, rip/rsp inside the user half.

use crate::arch::idt::TrapFrame;
use crate::arch::switch::FpuState;
use crate::arch::{ipi, percpu};
use crate::proc::{self, Pid};
use crate::usercopy;
use core::sync::atomic::Ordering;
use vm::errno::{Errno, SysResult};
use vm::space::USER_END;

/// Whether `deliver_pending` must look is each CPU's `PerCpu::recheck`:
/// set whenever a signal may have become deliverable (one was posted, a
/// mask or a disposition changed: on every CPU, since the thread it
/// concerns may run on any; another thread was scheduled: on that CPU),
/// cleared when a look found nothing. Most syscalls then return to user
/// mode without touching the process table.
///
/// Make the next return to user mode of every CPU look for pending
/// signals; a CPU running a thread in user mode is sent an IPI, so that it
/// enters the kernel and looks now rather than at its next tick.
pub fn recheck() {
    let me = percpu::this().index();
    for cpu in percpu::online() {
        cpu.recheck.store(true, Ordering::Relaxed);
        if cpu.index() != me && cpu.current().is_some() {
            ipi::send(cpu, ipi::COUNT_VECTOR);
        }
    }
}

/// A thread was scheduled on this CPU: its signals are not known to be seen.
pub fn recheck_here() {
    percpu::this().recheck.store(true, Ordering::Relaxed);
}

/// Whether the next return to user mode on this CPU must look for
/// signals (`deliver_pending` would): a fault resolved without the
/// kernel lock takes it only then.
pub fn may_be_pending() -> bool {
    percpu::this().recheck.load(Ordering::Relaxed)
}

pub mod numbers;
pub mod state;
pub use numbers::*;
use state::{STOPS, default_ignores};
pub use state::{Sig, Signals, ThreadSignals};

/// What the kernel tells a handler about a signal (the parts of siginfo_t
/// we fill in).
#[derive(Clone, Copy, Debug, Default)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    /// si_addr: the faulting address (SIGSEGV, SIGBUS) or instruction (SIGILL, SIGFPE).
    pub addr: u64,
    /// si_pid: the sender (kill) or the child (SIGCHLD).
    pub pid: Pid,
    /// si_status: the child's exit code or signal (SIGCHLD).
    pub status: i32,
}

/// The kernel's `struct sigaction` for x86_64 (handler, flags, restorer,
/// mask: 32 bytes, the layout rt_sigaction reads and writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub fn from_bytes(b: &[u8; 32]) -> SigAction {
        let word =
            |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        SigAction {
            handler: word(0),
            flags: word(1),
            restorer: word(2),
            mask: word(3),
        }
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut b = [0; 32];
        for (i, w) in [self.handler, self.flags, self.restorer, self.mask]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// A thread's view of its signals (see state.rs), for `f`.
pub fn with_sig<R>(f: impl FnOnce(&mut Sig) -> R) -> R {
    proc::with_current_thread(|p, t| {
        f(&mut Sig {
            shared: &mut p.signals,
            own: &mut t.sig,
        })
    })
}

/// See `Sig::restarts`: asked by the dispatcher when a call that Linux
/// restarts ended with EINTR.
pub fn restarts() -> bool {
    with_sig(|s| s.restarts())
}

/// Whether a pending signal would interrupt a blocking call (sleep.rs).
pub fn interrupts() -> bool {
    with_sig(|s| s.interrupts())
}

/// Stop now if a stop signal at its default action is pending (the way
/// back to user mode, and every blocking wait: sleep::interrupted). Returns
/// once the process is continued.
pub fn stop_if_asked() {
    while let Some(signal) = with_sig(|s| s.take_stop()) {
        proc::stop_current(signal);
    }
}

/// Block `mask` instead for a wait (ppoll, pselect6, rt_sigsuspend);
/// returns the mask it replaced, for `restore_mask`.
pub fn replace_mask(mask: u64) -> u64 {
    recheck();
    proc::with_current_thread(|_, t| core::mem::replace(&mut t.sig.mask, mask & !UNBLOCKABLE))
}

/// The wait is over: bring `old` back now, or (`interrupted`, EINTR)
/// once the signal that ended it has been delivered, so that it is
/// delivered under the wait's mask and its handler's frame saves `old`.
pub fn restore_mask(old: u64, interrupted: bool) {
    recheck();
    proc::with_current_thread(|_, t| {
        if interrupted {
            t.sig.saved_mask = Some(old);
        } else {
            t.sig.mask = old;
        }
    });
}

/// A synchronous signal from a fault in user mode, for the thread that
/// faulted (DESIGN §6). If it catches it, the handler runs on the way out
/// of the trap; if it is blocked,
/// ignored or left at its default, the process dies with it (Linux's
/// force_sig: a fault cannot be ignored, it would only repeat). `report`
/// runs first in that case: the console tells why the process died, but
/// stays quiet about faults a handler deals with.
pub fn force(info: SigInfo, report: impl FnOnce()) {
    let caught = proc::with_current_thread(|p, t| {
        let action = p.signals.action(info.signo);
        let caught = action.handler != SIG_DFL
            && action.handler != SIG_IGN
            && t.sig.mask & bit(info.signo) == 0;
        if caught {
            t.sig.pending.post(info);
        }
        caught
    });
    if !caught {
        report();
        proc::exit_current(proc::killed(info.signo));
    }
}

/// On the way back to user mode: act on pending signals. Returns when
/// there is nothing (more) to do now, or after setting `frame` up to run
/// one handler; does not return if a signal terminates the process.
pub fn deliver_pending(frame: &mut TrapFrame) {
    if !percpu::this().recheck.swap(false, Ordering::Relaxed) {
        return;
    }
    loop {
        let next = with_sig(|s| {
            let Some(info) = s.take() else {
                // Nothing to deliver: a wait's own mask ends here.
                if let Some(mask) = s.own.saved_mask.take() {
                    s.own.mask = mask;
                }
                return None;
            };
            let action = s.shared.action(info.signo);
            let own = &mut *s.own;
            // A handler's frame saves the mask a wait replaced (see above).
            let old_mask = if action.handler > SIG_IGN {
                own.saved_mask.take().unwrap_or(own.mask)
            } else {
                own.mask
            };
            if action.handler > SIG_IGN {
                own.mask |= action.mask;
                if action.flags & SA_NODEFER == 0 {
                    own.mask |= bit(info.signo);
                }
                own.mask &= !UNBLOCKABLE;
                if action.flags & SA_RESETHAND != 0 {
                    s.shared.set_action(info.signo, SigAction::default());
                }
            }
            Some((info, action, old_mask))
        });
        let Some((info, action, old_mask)) = next else {
            return;
        };
        match action.handler {
            SIG_IGN => continue,
            SIG_DFL if default_ignores(info.signo) => continue,
            SIG_DFL if STOPS & bit(info.signo) != 0 => proc::stop_current(info.signo),
            SIG_DFL => proc::exit_current(proc::killed(info.signo)),
            _ => {
                if let Err(e) = push_frame(frame, &info, &action, old_mask) {
                    log::info!(
                        "pid {}: cannot deliver signal {} ({e:?}): killed by it",
                        proc::current_pid(),
                        info.signo
                    );
                    proc::exit_current(proc::killed(info.signo));
                }
                // More may be pending: look again on the next return.
                recheck();
                return;
            }
        }
    }
}

// Offsets in struct rt_sigframe (x86_64): pretcode, then struct ucontext
// (uc_flags, uc_link, uc_stack, uc_mcontext = struct sigcontext, uc_sigmask),
// then siginfo_t.
const UC: usize = 8;
const MCONTEXT: usize = UC + 40;
const SIGMASK: usize = MCONTEXT + 256;
const SIGINFO: usize = SIGMASK + 8;
const FRAME_SIZE: usize = SIGINFO + 128;
const FPSTATE_SIZE: u64 = 512;
const RED_ZONE: u64 = 128;

/// The general registers in struct sigcontext's order (r8 first, rip and
/// eflags last).
fn sigcontext_regs(f: &TrapFrame) -> [u64; 18] {
    [
        f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.rdi, f.rsi, f.rbp, f.rbx, f.rdx,
        f.rax, f.rcx, f.rsp, f.rip, f.rflags,
    ]
}

/// Build the rt_sigframe for `info` on the user stack and redirect `frame`
/// to the handler. EFAULT if the stack cannot take it; EINVAL without a
/// restorer (x86_64 Linux requires SA_RESTORER) or with a handler outside
/// the user half.
fn push_frame(
    frame: &mut TrapFrame,
    info: &SigInfo,
    action: &SigAction,
    old_mask: u64,
) -> Result<(), Errno> {
    if action.flags & SA_RESTORER == 0 || action.handler >= USER_END {
        return Err(Errno::EINVAL);
    }
    // An SA_ONSTACK handler starts at the top of the alternate stack
    // (no red zone to skip there); any other below the interrupted one.
    let alt = proc::with_current_thread(|_, t| t.sig.alt);
    let top = alt.frame_top(frame.rsp, action.flags & SA_ONSTACK != 0);
    let skip = if top == frame.rsp { RED_ZONE } else { 0 };
    let below = top.checked_sub(skip + FPSTATE_SIZE).ok_or(Errno::EFAULT)?;
    let fpstate = below & !63;
    let base = fpstate
        .checked_sub(FRAME_SIZE as u64)
        .ok_or(Errno::EFAULT)?
        & !15;
    let base = base.checked_sub(8).ok_or(Errno::EFAULT)?;

    let mut fpu = FpuState::initial();
    fpu.save();
    let mut bytes = [0u8; FRAME_SIZE];
    let mut put = |at: usize, value: u64| bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0, action.restorer);
    // uc_flags 0, uc_link NULL, then uc_stack: the alternate stack.
    let stack = alt.to_bytes(frame.rsp);
    for (i, word) in stack.as_chunks::<8>().0.iter().enumerate() {
        put(UC + 16 + i * 8, u64::from_le_bytes(*word));
    }
    for (i, reg) in sigcontext_regs(frame).into_iter().enumerate() {
        put(MCONTEXT + i * 8, reg);
    }
    // cs, gs, fs, ss as four u16.
    let segments = frame.cs | (frame.ss << 48);
    put(MCONTEXT + 144, segments);
    let (err, trapno) = if frame.vector < 32 {
        (frame.error_code, frame.vector)
    } else {
        (0, 0)
    };
    let cr2 = if matches!(info.signo, SIGSEGV | SIGBUS) {
        info.addr
    } else {
        0
    };
    put(MCONTEXT + 152, err);
    put(MCONTEXT + 160, trapno);
    put(MCONTEXT + 168, old_mask);
    put(MCONTEXT + 176, cr2);
    put(MCONTEXT + 184, fpstate);
    put(SIGMASK, old_mask);
    bytes[SIGINFO..SIGINFO + 128].copy_from_slice(&siginfo_bytes(info));

    proc::with_current(|p| {
        let space = &mut *p.space();
        usercopy::copy_out(space, fpstate, fpu.as_bytes())?;
        usercopy::copy_out(space, base, &bytes)
    })?;
    // The handler starts with a clean FPU (Linux does the same).
    FpuState::initial().restore();
    frame.rdi = info.signo as u64;
    frame.rsi = base + SIGINFO as u64;
    frame.rdx = base + UC as u64;
    frame.rax = 0;
    frame.rip = action.handler;
    frame.rsp = base;
    frame.rflags &= !(TF | DF | RF);
    frame.cs = u64::from(crate::arch::gdt::USER_CS.0);
    frame.ss = u64::from(crate::arch::gdt::USER_DS.0);
    Ok(())
}

const TF: u64 = 1 << 8;
const DF: u64 = 1 << 10;
const RF: u64 = 1 << 16;
/// The rflags bits user mode may set through rt_sigreturn (Linux's
/// FIX_EFLAGS: AC, OF, DF, TF, SF, ZF, AF, PF, CF, RF); IF stays on.
const USER_FLAGS: u64 = 0x40dd5;
const RFLAGS_BASE: u64 = 0x202;

/// Linux's siginfo_t: signo, errno, code, then the union at byte 16.
fn siginfo_bytes(info: &SigInfo) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[0..4].copy_from_slice(&info.signo.to_le_bytes());
    b[8..12].copy_from_slice(&info.code.to_le_bytes());
    match info.signo {
        SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if info.code > 0 => {
            b[16..24].copy_from_slice(&info.addr.to_le_bytes());
        }
        _ => {
            b[16..20].copy_from_slice(&info.pid.to_le_bytes());
            // si_uid 0 at 20; for SIGCHLD si_status at 24.
            b[24..28].copy_from_slice(&info.status.to_le_bytes());
        }
    }
    b
}

/// rt_sigreturn: restore the registers, mask and FPU state saved in the
/// frame the handler returned through (at rsp - 8: its `ret` popped
/// pretcode). A frame that does not check out kills the process with
/// SIGSEGV, as on Linux. Returns rax as it was saved, so the dispatcher
/// leaves it untouched.
pub fn sigreturn(frame: &mut TrapFrame) -> SysResult {
    match restore_frame(frame) {
        Ok(rax) => Ok(rax as usize),
        Err(_) => {
            log::info!(
                "pid {}: bad signal frame at {:#x}: SIGSEGV",
                proc::current_pid(),
                frame.rsp
            );
            proc::exit_current(proc::killed(SIGSEGV))
        }
    }
}

fn restore_frame(frame: &mut TrapFrame) -> Result<u64, Errno> {
    let base = frame.rsp.checked_sub(8).ok_or(Errno::EFAULT)?;
    let mut bytes = [0u8; FRAME_SIZE];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), base, &mut bytes))?;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let regs: [u64; 18] = core::array::from_fn(|i| word(MCONTEXT + i * 8));
    let (rsp, rip) = (regs[15], regs[16]);
    if rip >= USER_END || rsp >= USER_END {
        return Err(Errno::EFAULT);
    }
    let fpstate = word(MCONTEXT + 184);
    let fpu = if fpstate == 0 {
        FpuState::initial()
    } else {
        let mut area = [0u8; 512];
        proc::with_current(|p| usercopy::copy_in(&mut *p.space(), fpstate, &mut area))?;
        FpuState::from_bytes(&area)
    };
    let mask = word(SIGMASK) & !UNBLOCKABLE;
    proc::with_current_thread(|_, t| t.sig.mask = mask);
    recheck();
    fpu.restore();
    [
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
    ] = regs[0..8].try_into().unwrap_or_default();
    frame.rdi = regs[8];
    frame.rsi = regs[9];
    frame.rbp = regs[10];
    frame.rbx = regs[11];
    frame.rdx = regs[12];
    frame.rax = regs[13];
    frame.rcx = regs[14];
    frame.rsp = rsp;
    frame.rip = rip;
    frame.rflags = RFLAGS_BASE | (regs[17] & USER_FLAGS);
    frame.cs = u64::from(crate::arch::gdt::USER_CS.0);
    frame.ss = u64::from(crate::arch::gdt::USER_DS.0);
    Ok(frame.rax)
}
