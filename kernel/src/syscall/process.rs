//! Process syscalls: fork, execve, exit, wait4, kill, getpid, getppid,
//! sched_yield, set_tid_address.

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

pub fn getppid() -> SysResult {
    Ok(proc::with_current(|p| p.parent) as usize)
}

pub fn sched_yield() -> SysResult {
    proc::yield_now();
    Ok(0)
}

/// exit and exit_group (one thread per process: the same thing).
pub fn exit(code: u64) -> SysResult {
    proc::exit_current(proc::exited(code as i32))
}

/// fork (and vfork, which may behave as fork): the parent gets the child's
/// pid, the child 0 (see proc::fork).
pub fn fork(frame: &TrapFrame) -> SysResult {
    proc::fork(frame).map(|pid| pid as usize)
}

/// set_tid_address: one thread per process, so the thread id is the pid.
/// (clear_child_tid matters only to threads, which pageos does not have.)
pub fn set_tid_address(_tidptr: u64) -> SysResult {
    getpid()
}

const WNOHANG: u64 = 1;
/// Flags accepted and without effect here: WUNTRACED, WCONTINUED (no job
/// control), __WNOTHREAD, __WALL, __WCLONE (no threads).
const WAIT_IGNORED: u64 = 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;

/// wait4(pid, status, options, rusage): reap a zombie child. The status
/// word is Linux's (exit code << 8, or the signal number); rusage, if
/// asked, is what the child used (its waited-for children included). 0 with WNOHANG when no selected
/// child has exited yet.
pub fn wait4(pid: u64, status: u64, options: u64, rusage: u64) -> SysResult {
    if options & !(WNOHANG | WAIT_IGNORED) != 0 {
        return Err(Errno::EINVAL);
    }
    let target = i64::from(pid as i32);
    if target == i64::from(i32::MIN) {
        // -INT_MIN has no process group: Linux says ESRCH.
        return Err(Errno::ESRCH);
    }
    let Some((child, wstatus)) = proc::wait_child(target, options & WNOHANG != 0)? else {
        return Ok(0);
    };
    let usage = super::limits::encode_rusage(&proc::zombie_usage(child));
    proc::with_current(|p| -> Result<(), Errno> {
        if status != 0 {
            usercopy::copy_out(p.space(), status, &wstatus.to_le_bytes())?;
        }
        if rusage != 0 {
            usercopy::copy_out(p.space(), rusage, &usage)?;
        }
        Ok(())
    })?;
    proc::reap(child);
    Ok(child as usize)
}

/// kill(pid, sig): sig 0 only checks that the target exists. SIGSTOP is
/// refused (EINVAL): pageos has no job control to stop a process with.
pub fn kill(pid: u64, sig: u64) -> SysResult {
    let signo = sig as i32;
    if sig > signal::NSIG as u64 || signo == signal::SIGSTOP {
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

/// tkill and tgkill: every process has one thread, whose id is its pid.
pub fn tkill(tid: u64, sig: u64) -> SysResult {
    if tid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    kill(tid, sig)
}

pub fn tgkill(tgid: u64, tid: u64, sig: u64) -> SysResult {
    if tgid as i32 <= 0 || tid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != tid {
        return Err(Errno::ESRCH);
    }
    kill(tid, sig)
}

const PATH_MAX: usize = 4096;
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
        let space = p.space();
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
    proc::with_current(|p| p.res.image = Some(Executing::new(inode)));
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
