//! Process syscalls: getpid, sched_yield, exit.

use crate::proc;
use vm::errno::SysResult;

pub fn getpid() -> SysResult {
    Ok(proc::with_current(|p| p.pid) as usize)
}

pub fn sched_yield() -> SysResult {
    proc::yield_now();
    Ok(0)
}

/// exit and exit_group (one thread per process: the same thing).
pub fn exit(code: u64) -> SysResult {
    proc::exit_current(proc::exited(code as i32))
}
