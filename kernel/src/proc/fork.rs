//! fork and clone: a copy of the current process (address space
//! copy-on-write, descriptors shared, signal dispositions copied, the
//! same process group, session and current directory) whose one thread
//! is a copy of the caller — the others are not copied, as POSIX says of
//! fork in a threaded process —; or, with CLONE_THREAD, a new thread of
//! the current process. Either returns from the same syscall with rax = 0.

use super::{
    Exiting, MAX_PROCS, Pid, TABLE, Thread, new_process, reserve_pid, start_process, start_thread,
    with_current_thread,
};
use crate::arch::idt::TrapFrame;
use crate::phys::KernelPhys;
use crate::pmap;
use vm::errno::Errno;

/// What clone asks of a child beyond fork's copy (syscall/process.rs).
#[derive(Clone, Copy, Default)]
pub struct ForkOptions {
    /// The signal the parent gets at its exit (fork: SIGCHLD).
    pub exit_signal: i32,
    /// Its stack pointer (clone's `newsp`, 0: the parent's).
    pub stack: u64,
    /// CLONE_SETTLS: its FS base.
    pub tls: Option<u64>,
    /// CLONE_CHILD_SETTID: where in its memory its tid goes.
    pub child_tid: Option<u64>,
    /// CLONE_CHILD_CLEARTID: the word cleared (and futex-woken) at its exit.
    pub clear_tid: Option<u64>,
}

/// The child's registers: the caller's, with rax = 0 and maybe a new stack.
fn child_frame(frame: &TrapFrame, options: &ForkOptions) -> TrapFrame {
    let mut child = *frame;
    child.rax = 0;
    if options.stack != 0 {
        child.rsp = options.stack;
    }
    child
}

/// fork: a copy of the current process whose user state is `frame` with
/// rax = 0. Returns the child's pid. EAGAIN past the process limit, ENOMEM
/// when its address space cannot be made (nothing is left behind).
pub fn fork(frame: &TrapFrame, options: ForkOptions) -> Result<Pid, Errno> {
    if TABLE.lock().tasks() >= MAX_PROCS {
        return Err(Errno::EAGAIN);
    }
    let (mut child, mut thread) = with_current_thread(|p, t| {
        let pmap = pmap::Pmap::new().ok_or(Errno::ENOMEM)?;
        let space = p.space().fork(&mut KernelPhys, pmap)?;
        let res = p.res.for_child();
        let signals = p.signals.for_child();
        let mut child = new_process(&p.name, p.pid, space, p.files.clone(), res, signals);
        child.exit_signal = options.exit_signal;
        child.pgid = p.pgid;
        child.cwd = p.cwd.clone();
        child.sid = p.sid;
        let mut thread = Thread::new(0, t.sig.for_new(true), options.tls.unwrap_or(t.fs_base));
        thread.clear_child_tid = options.clear_tid.unwrap_or(0);
        Ok::<_, Errno>((child, thread))
    })?;
    // The FPU registers hold the parent's user state right now.
    thread.fpu.save();
    let child_frame = child_frame(frame, &options);
    let pid = reserve_pid(&mut TABLE.lock());
    if let Some(at) = options.child_tid {
        // The child's own copy of the page: the parent's stays as it was.
        let written = crate::usercopy::copy_out(&mut *child.space(), at, &pid.to_le_bytes());
        if let Err(e) = written {
            if let Some(mm) = child.space.take() {
                mm.write().clear(&mut KernelPhys);
            }
            return Err(e);
        }
    }
    start_process(&mut TABLE.lock(), pid, child, thread, &child_frame);
    Ok(pid)
}

/// clone with CLONE_THREAD: a new thread of the current process, starting
/// from `frame` with rax = 0 on `options.stack`, with the caller's signal
/// mask and none of its pending signals. Returns its tid. EAGAIN past the
/// thread limit or when the process is exiting.
pub fn spawn_thread(frame: &TrapFrame, options: ForkOptions) -> Result<Pid, Errno> {
    let mut table = TABLE.lock();
    if table.tasks() >= MAX_PROCS {
        return Err(Errno::EAGAIN);
    }
    let tid = reserve_pid(&mut table);
    let (p, t) = table.current();
    if p.exiting != Exiting::No {
        return Err(Errno::EAGAIN);
    }
    let mut thread = Thread::new(
        p.pid,
        t.sig.for_new(false),
        options.tls.unwrap_or(t.fs_base),
    );
    thread.clear_child_tid = options.clear_tid.unwrap_or(0);
    if let Some(at) = options.child_tid {
        // One address space: the parent sees it too (as on Linux).
        crate::usercopy::copy_out(&mut *p.space(), at, &tid.to_le_bytes())?;
    }
    p.threads.push(tid);
    // The FPU registers hold the caller's user state right now.
    thread.fpu.save();
    start_thread(&mut table, tid, thread, &child_frame(frame, &options));
    Ok(tid)
}
