//! Process and thread syscalls: fork, clone, execve, exit, exit_group,
//! wait4, kill, tkill, tgkill, getpid, gettid, getppid, sched_yield,
//! set_tid_address.

use crate::arch::idt::TrapFrame;
use crate::ramfs::Executing;
use crate::signal::{self, SigInfo};
use crate::usercopy::{self, UserMemory};
use crate::{exec, proc};
use alloc::vec::Vec;
use vm::errno::{Errno, SysResult};

pub fn getpid() -> SysResult {
    Ok(proc::current_pid() as usize)
}

pub fn gettid() -> SysResult {
    Ok(proc::current_tid() as usize)
}

pub fn getppid() -> SysResult {
    Ok(proc::with_current(|p| p.parent) as usize)
}

pub fn sched_yield() -> SysResult {
    proc::yield_now();
    Ok(0)
}

/// exit_group: every thread of the process ends.
pub fn exit(code: u64) -> SysResult {
    proc::exit_current(proc::exited(code as i32))
}

/// exit: the calling thread ends; the process with it if it was the last.
pub fn exit_thread(code: u64) -> SysResult {
    proc::exit_thread(proc::exited(code as i32))
}

/// fork (and vfork, which may behave as fork): the parent gets the child's
/// pid, the child 0 (see proc::fork).
pub fn fork(frame: &TrapFrame) -> SysResult {
    let options = proc::ForkOptions {
        exit_signal: signal::SIGCHLD,
        ..Default::default()
    };
    proc::fork(frame, options).map(|pid| pid as usize)
}

// clone(2) flags (Linux's values).
const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
/// Ignored by Linux since 2.6.2; musl's pthread_create still passes it.
const CLONE_DETACHED: u64 = 0x400000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// What a fork-like clone may ask for. CLONE_VM is accepted only with
/// CLONE_VFORK (glibc's posix_spawn): the parent waits for nothing and the
/// child gets a copy, which a vfork child cannot tell apart as long as it
/// only calls execve or _exit (all vfork(2) allows it).
const CLONE_FORKLIKE: u64 = CSIGNAL
    | CLONE_VFORK
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID
    | CLONE_DETACHED
    | CLONE_SYSVSEM;
/// A thread shares everything pageos keeps per process: memory, the
/// descriptor table, the current directory (CLONE_FS) and the signal
/// handlers. A thread without one of them would need that part copied,
/// which pageos does not do: EINVAL.
const CLONE_THREAD_SHARES: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;

/// clone(flags, newsp, parent_tid, child_tid, tls): a new process (glibc's
/// fork is clone(SIGCHLD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) or,
/// with CLONE_THREAD, a new thread (musl's and glibc's pthread_create:
/// CLONE_VM | FS | FILES | SIGHAND | THREAD | SYSVSEM | SETTLS |
/// PARENT_SETTID | CHILD_CLEARTID). Linux's EINVAL rules: CLONE_THREAD
/// needs CLONE_SIGHAND, CLONE_SIGHAND needs CLONE_VM; and EINVAL for a
/// sharing pageos does not have (CLONE_VM or CLONE_FILES without a thread).
pub fn clone(
    frame: &TrapFrame,
    flags: u64,
    newsp: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult {
    let shares = CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_PIDFD;
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
        || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SETTLS != 0 && tls >= vm::space::USER_END {
        return Err(Errno::EPERM);
    }
    if flags & CLONE_THREAD != 0 {
        return clone_thread(frame, flags, newsp, parent_tid, child_tid, tls);
    }
    if flags & shares != 0 || flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        log::warn!("clone: flags {flags:#x} share what only threads share here");
        return Err(Errno::EINVAL);
    }
    let exit_signal = (flags & CSIGNAL) as i32;
    if exit_signal != 0 && !signal::valid(exit_signal) {
        return Err(Errno::EINVAL);
    }
    if flags & !(CLONE_FORKLIKE | CLONE_VM) != 0 {
        return Err(Errno::EINVAL);
    }
    let options = proc::ForkOptions {
        exit_signal,
        stack: newsp,
        tls: (flags & CLONE_SETTLS != 0).then_some(tls),
        child_tid: (flags & CLONE_CHILD_SETTID != 0).then_some(child_tid),
        clear_tid: (flags & CLONE_CHILD_CLEARTID != 0).then_some(child_tid),
    };
    let pid = proc::fork(frame, options)?;
    set_parent_tid(flags, parent_tid, pid);
    Ok(pid as usize)
}

/// clone with CLONE_THREAD (see `clone`).
fn clone_thread(
    frame: &TrapFrame,
    flags: u64,
    newsp: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult {
    let known = CLONE_THREAD_SHARES | CLONE_FORKLIKE & !(CSIGNAL | CLONE_VFORK);
    if flags & CLONE_THREAD_SHARES != CLONE_THREAD_SHARES || flags & !(known | CSIGNAL) != 0 {
        log::warn!("clone: thread flags {flags:#x} are not the sharing pageos has");
        return Err(Errno::EINVAL);
    }
    let options = proc::ForkOptions {
        exit_signal: 0,
        stack: newsp,
        tls: (flags & CLONE_SETTLS != 0).then_some(tls),
        child_tid: (flags & CLONE_CHILD_SETTID != 0).then_some(child_tid),
        clear_tid: (flags & CLONE_CHILD_CLEARTID != 0).then_some(child_tid),
    };
    let tid = proc::spawn_thread(frame, options)?;
    set_parent_tid(flags, parent_tid, tid);
    Ok(tid as usize)
}

/// CLONE_PARENT_SETTID: the new id in the caller's memory.
fn set_parent_tid(flags: u64, parent_tid: u64, pid: proc::Pid) {
    if flags & CLONE_PARENT_SETTID != 0 {
        // As Linux's kernel_clone: the child exists; a bad pointer is ignored.
        let _ = proc::with_current(|p| {
            usercopy::copy_out(&mut *p.space(), parent_tid, &pid.to_le_bytes())
        });
    }
}

/// set_tid_address(tidptr): at the caller's exit, 0 goes to `tidptr` and
/// one futex waiter there is woken. Returns the caller's tid.
pub fn set_tid_address(tidptr: u64) -> SysResult {
    proc::with_current_thread(|_, t| t.clear_child_tid = tidptr);
    gettid()
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WCONTINUED: u64 = 8;
/// Flags accepted and without effect here: __WNOTHREAD, __WALL, __WCLONE
/// (threads are not children: no clone child has another exit signal
/// that __WCLONE would select).
const WAIT_IGNORED: u64 = 0x2000_0000 | 0x4000_0000 | 0x8000_0000;

/// wait4(pid, status, options, rusage): reap a zombie child, or (WUNTRACED,
/// WCONTINUED) report one that stopped or continued. The status word is
/// Linux's (exit code << 8, the signal number, 0x7f | signal << 8 for a
/// stop, 0xffff for a continue); rusage, if asked, is what the child used
/// (its waited-for children included). 0 with WNOHANG when no selected
/// child has anything to report yet.
pub fn wait4(pid: u64, status: u64, options: u64, rusage: u64) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WAIT_IGNORED) != 0 {
        return Err(Errno::EINVAL);
    }
    let target = i64::from(pid as i32);
    if target == i64::from(i32::MIN) {
        // -INT_MIN has no process group: Linux says ESRCH.
        return Err(Errno::ESRCH);
    }
    let how = proc::WaitFor {
        nohang: options & WNOHANG != 0,
        stops: options & WUNTRACED != 0,
        continues: options & WCONTINUED != 0,
    };
    let Some(waited) = proc::wait_child(target, how)? else {
        return Ok(0);
    };
    let (child, wstatus, zombie) = match waited {
        proc::Waited::Exited(child, wstatus) => (child, wstatus, true),
        proc::Waited::Changed(child, wstatus) => (child, wstatus, false),
    };
    let usage = super::limits::encode_rusage(&proc::zombie_usage(child));
    proc::with_current(|p| -> Result<(), Errno> {
        if status != 0 {
            usercopy::copy_out(&mut *p.space(), status, &wstatus.to_le_bytes())?;
        }
        if rusage != 0 {
            usercopy::copy_out(&mut *p.space(), rusage, &usage)?;
        }
        Ok(())
    })?;
    if zombie {
        proc::reap(child);
    }
    Ok(child as usize)
}

/// kill(pid, sig): sig 0 only checks that the target exists.
pub fn kill(pid: u64, sig: u64) -> SysResult {
    let signo = sig as i32;
    if sig > signal::NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let info = SigInfo {
        signo,
        code: signal::SI_USER,
        pid: proc::current_pid(),
        ..SigInfo::default()
    };
    proc::kill(i64::from(pid as i32), info).map(|()| 0)
}

/// tkill(tid, sig) and tgkill(tgid, tid, sig): a signal for one thread
/// (raise(3) and pthread_kill use tgkill). ESRCH if `tid` is not a thread
/// (of `tgid`).
pub fn tkill(tid: u64, sig: u64) -> SysResult {
    thread_kill(None, tid, sig)
}

pub fn tgkill(tgid: u64, tid: u64, sig: u64) -> SysResult {
    if tgid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    thread_kill(Some(tgid as proc::Pid), tid, sig)
}

fn thread_kill(tgid: Option<proc::Pid>, tid: u64, sig: u64) -> SysResult {
    if tid as i32 <= 0 || sig > signal::NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let info = SigInfo {
        signo: sig as i32,
        code: signal::SI_TKILL,
        pid: proc::current_pid(),
        ..SigInfo::default()
    };
    proc::signal_thread(tgid, tid as proc::Tid, info).map(|()| 0)
}

const PATH_MAX: usize = 4096;
/// The ELF header's OS/ABI byte, and FreeBSD's brand (`brandelf -t FreeBSD`).
pub const EI_OSABI: usize = 7;
pub const ELFOSABI_FREEBSD: u8 = 9;

/// personality(persona): the old persona; 0xffffffff only asks. The
/// persona is kept for the process (and its children and later images);
/// PER_BSD selects the BSD rules of DESIGN §2, the rest changes nothing.
pub fn personality(persona: u64) -> SysResult {
    proc::with_current(|p| {
        let old = p.res.personality;
        if persona as u32 != u32::MAX {
            p.res.personality = persona as u32;
        }
        Ok(old as usize)
    })
}
/// Longest single argument or environment string (Linux's MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Most bytes of argv + envp together: a quarter of the 8 MiB stack, as Linux.
const MAX_ARG_BYTES: usize = (exec::STACK_RESERVE / 4) as usize;

/// execve(path, argv, envp): replace the program. The old image is kept
/// until the new one is fully loaded, so every error returns to the caller:
/// ENOENT/ENOTDIR (path), EACCES (a directory), ENOEXEC (not a static
/// x86_64 ELF), E2BIG (arguments too long), EFAULT, ENAMETOOLONG.
pub fn execve(frame: &mut TrapFrame, path: u64, argv: u64, envp: u64) -> SysResult {
    let (path, args, env) = proc::with_current(|p| -> Result<_, Errno> {
        let space = &mut *p.space();
        let path = usercopy::read_cstr(space, path, PATH_MAX)?;
        let mut budget = MAX_ARG_BYTES;
        let args = read_strings(space, argv, &mut budget)?;
        let env = read_strings(space, envp, &mut budget)?;
        Ok((path, args, env))
    })?;
    let path = core::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?;
    let inode = super::fs::executable(path)?;
    // The magic first: a file of any size (a sparse one of terabytes) that
    // is not an ELF program is ENOEXEC before anything reads all of it.
    let mut magic = [0u8; 4];
    if inode.read_at(0, &mut magic)? != 4 || magic != *b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    let elf = inode.contents()?;
    let res = proc::with_current(|p| p.res.clone());
    let (space, new_frame) = exec::load(&elf, &args, &env, proc::aslr(), &res, inode.object())?;
    let name = path.rsplit('/').next().unwrap_or(path);
    let exe = absolute(path);
    proc::replace_image(name, &exe, &args, space, frame, new_frame);
    proc::with_current(|p| {
        p.res.image = Some(Executing::new(inode));
        p.res.bsd_brand = elf.get(EI_OSABI) == Some(&ELFOSABI_FREEBSD);
    });
    Ok(frame.rax as usize)
}

/// The path /proc/PID/exe shows for the program execve ran: absolute,
/// without `.` and `..` (relative paths start at the root here).
fn absolute(path: &str) -> alloc::string::String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    alloc::format!("/{}", parts.join("/"))
}

/// A NULL-terminated array of string pointers (NULL itself: empty), each
/// string charged with its NUL against `budget` (E2BIG past it).
fn read_strings(
    mem: &mut dyn UserMemory,
    array: u64,
    budget: &mut usize,
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if array == 0 {
        return Ok(out);
    }
    for i in 0u64.. {
        let at = array.checked_add(i * 8).ok_or(Errno::EFAULT)?;
        let ptr = usercopy::read_u64(mem, at)?;
        if ptr == 0 {
            break;
        }
        let s = usercopy::read_cstr(mem, ptr, MAX_ARG_STRLEN).map_err(|e| match e {
            Errno::ENAMETOOLONG => Errno::E2BIG,
            e => e,
        })?;
        // The string, its NUL and its pointer on the new stack.
        let cost = s.len() + 1 + 8;
        *budget = budget.checked_sub(cost).ok_or(Errno::E2BIG)?;
        out.push(s);
    }
    Ok(out)
}

/// setpgid(pid, pgid) (proc/job.rs has the rules).
pub fn setpgid(pid: u64, pgid: u64) -> SysResult {
    proc::set_group(pid, pgid).map(|()| 0)
}

pub fn getpgid(pid: u64) -> SysResult {
    proc::group_of(pid).map(|(pgid, _)| pgid as usize)
}

pub fn getsid(pid: u64) -> SysResult {
    proc::group_of(pid).map(|(_, sid)| sid as usize)
}

pub fn setsid() -> SysResult {
    let sid = proc::new_session()?;
    crate::tty::session_left(sid);
    Ok(sid as usize)
}
