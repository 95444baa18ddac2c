//! Signal numbers, sigaction flags and si_codes: Linux x86_64's values,
//! the ones a static Linux binary passes and expects back.

pub const NSIG: usize = 64;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub(super) const SIGURG: i32 = 23;
pub(super) const SIGWINCH: i32 = 28;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub(super) const SA_RESTORER: u64 = 0x0400_0000;
pub(super) const SA_RESTART: u64 = 0x1000_0000;
pub(super) const SA_ONSTACK: u64 = 0x0800_0000;
pub(super) const SA_NODEFER: u64 = 0x4000_0000;
pub(super) const SA_RESETHAND: u64 = 0x8000_0000;

/// si_code values (Linux's).
pub const SI_USER: i32 = 0;
/// Sent by tkill or tgkill.
pub const SI_TKILL: i32 = -6;
pub const SI_KERNEL: i32 = 0x80;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
pub(super) const SA_NOCLDSTOP: u64 = 1;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const TRAP_TRACE: i32 = 2;

/// SIGKILL and SIGSTOP can be neither caught, ignored nor blocked.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

pub const fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// Whether `signal` names a signal (1..=64).
pub fn valid(signal: i32) -> bool {
    (1..=NSIG as i32).contains(&signal)
}
