//! fork and the fork-like clone: a copy of the current process (address
//! space copy-on-write, descriptors shared, signal dispositions copied,
//! the same process group, session and current directory) that returns
//! from the same syscall with rax = 0.

use super::{MAX_PROCS, Pid, Process, TABLE, new_process, reserve_pid, start_as, with_current};
use crate::arch::idt::TrapFrame;
use crate::phys::KernelPhys;
use crate::pmap;
use alloc::boxed::Box;
use vm::errno::Errno;

/// What clone asks of a fork-like child beyond fork's copy (syscall/process.rs).
#[derive(Clone, Copy, Default)]
pub struct ForkOptions {
    /// The signal the parent gets at its exit (fork: SIGCHLD).
    pub exit_signal: i32,
    /// Its stack pointer (clone's `newsp`, 0: the parent's).
    pub stack: u64,
    /// CLONE_SETTLS: its FS base.
    pub tls: Option<u64>,
    /// CLONE_CHILD_SETTID: where in its memory its pid goes.
    pub child_tid: Option<u64>,
}

/// fork: a copy of the current process whose user state is `frame` with
/// rax = 0. Returns the child's pid. EAGAIN past the process limit, ENOMEM
/// when its address space cannot be made (nothing is left behind).
pub fn fork(frame: &TrapFrame, options: ForkOptions) -> Result<Pid, Errno> {
    if TABLE.lock().procs.len() >= MAX_PROCS {
        return Err(Errno::EAGAIN);
    }
    let mut child = with_current(|p| -> Result<Box<Process>, Errno> {
        let pmap = pmap::Pmap::new().ok_or(Errno::ENOMEM)?;
        let space = p.space().fork(&mut KernelPhys, pmap)?;
        let res = p.res.for_child();
        let mut child = new_process(&p.name, p.pid, space, p.files.clone(), res);
        child.signals = p.signals.for_child();
        child.fs_base = options.tls.unwrap_or(p.fs_base);
        child.exit_signal = options.exit_signal;
        child.pgid = p.pgid;
        child.cwd = p.cwd.clone();
        child.sid = p.sid;
        Ok(child)
    })?;
    // The FPU registers hold the parent's user state right now.
    child.fpu.save();
    let mut child_frame = *frame;
    child_frame.rax = 0;
    if options.stack != 0 {
        child_frame.rsp = options.stack;
    }
    let pid = reserve_pid();
    if let Some(at) = options.child_tid {
        // The child's own copy of the page: the parent's stays as it was.
        let written = crate::usercopy::copy_out(child.space(), at, &pid.to_le_bytes());
        if let Err(e) = written {
            if let Some(mut space) = child.space.take() {
                space.clear(&mut KernelPhys);
            }
            return Err(e);
        }
    }
    start_as(pid, child, &child_frame);
    Ok(pid)
}
