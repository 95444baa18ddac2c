//! The small system calls a static musl or glibc program makes at start-up
//! and in stdio, and the machine-wide ones: arch_prctl, uname, getrandom,
//! ioctl, reboot, sysinfo, prctl, mount, umount2, set_robust_list, and the
//! user and group ids (root, unless a set*id call changed them). The
//! clocks are in time.rs.

use super::fs::{AT_FDCWD, resolve_at, user_path};
use crate::vfs;
use crate::{arch, phys, proc, usercopy};
use vm::errno::{Errno, SysResult};
use vm::space::USER_END;

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

/// arch_prctl: set or read the FS base (musl's thread pointer). A base in
/// the kernel half is EPERM (Linux); it is loaded at each switch to us.
pub fn arch_prctl(code: u64, addr: u64) -> SysResult {
    match code {
        ARCH_SET_FS => {
            if addr >= USER_END {
                return Err(Errno::EPERM);
            }
            proc::with_current_thread(|_, t| t.fs_base = addr);
            arch::set_fs_base(addr);
            Ok(0)
        }
        ARCH_GET_FS => proc::with_current_thread(|p, t| {
            let base = t.fs_base;
            usercopy::copy_out(&mut *p.space(), addr, &base.to_le_bytes())
        })
        .map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}

/// struct utsname: six fields of 65 bytes.
const UTS_FIELD: usize = 65;

pub fn uname(buf: u64) -> SysResult {
    // The release names the Linux ABI pageos follows (glibc reads the
    // kernel's version from it); the version names pageos's own.
    let fields: [&[u8]; 6] = [
        b"pageos",
        b"pageos",
        b"6.1.0-pageos",
        concat!("#1 pageos ", env!("CARGO_PKG_VERSION")).as_bytes(),
        b"x86_64",
        b"(none)",
    ];
    let mut out = [0u8; UTS_FIELD * 6];
    for (i, field) in fields.iter().enumerate() {
        out[i * UTS_FIELD..i * UTS_FIELD + field.len()].copy_from_slice(field);
    }
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &out)).map(|()| 0)
}

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;
/// Linux caps one getrandom call at 32 MiB - 1.
const GETRANDOM_MAX: u64 = (1 << 25) - 1;

/// getrandom(buf, len, flags): bytes from a generator seeded by the TSC.
/// Not cryptographic: good enough for hash seeds and canaries in a
/// teaching kernel, and documented as such.
pub fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(GETRANDOM_MAX) as usize;
    usercopy::check_range(buf, len)?;
    let mut chunk = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        crate::dev::random_fill(&mut chunk[..n]);
        proc::with_current(|p| {
            usercopy::copy_out(&mut *p.space(), buf + done as u64, &chunk[..n])
        })?;
        done += n;
    }
    Ok(len)
}

const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;

/// ioctl: the terminal's requests go to kernel/src/tty/; pipes and
/// sockets answer FIONREAD (bytes waiting) and every descriptor FIONBIO
/// (O_NONBLOCK on or off). ENOTTY for anything else.
pub fn ioctl(fd: u64, request: u64, arg: u64) -> SysResult {
    let file = proc::with_current(|p| p.files.get(fd))?;
    let request = request as u32 as u64;
    if request == FIONBIO {
        let mut word = [0u8; 4];
        proc::with_current(|p| usercopy::copy_in(&mut *p.space(), arg, &mut word))?;
        let on = word != [0; 4];
        let mut file = file.lock();
        file.flags =
            (file.flags & !crate::fd::O_NONBLOCK) | if on { crate::fd::O_NONBLOCK } else { 0 };
        return Ok(0);
    }
    let end = match &file.lock().kind {
        crate::fd::FileKind::Socket(end) => end.clone(),
        kind if super::io::is_terminal(kind) => return crate::tty::ioctl(request, arg),
        _ => return Err(Errno::ENOTTY),
    };
    match request {
        FIONREAD => {
            let n = end.available() as u32;
            proc::with_current(|p| usercopy::copy_out(&mut *p.space(), arg, &n.to_le_bytes()))?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

const REBOOT_MAGIC1: u64 = 0xfee1_dead;
const REBOOT_MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
const CMD_RESTART: u64 = 0x0123_4567;
const CMD_HALT: u64 = 0xcdef_0123;
const CMD_POWER_OFF: u64 = 0x4321_fedc;
const CMD_CAD_ON: u64 = 0x89ab_cdef;
const CMD_CAD_OFF: u64 = 0;

/// reboot(magic, magic2, cmd, arg): power off, halt and restart all stop
/// the machine (QEMU runs with -no-reboot); Ctrl-Alt-Del settings are
/// accepted and ignored.
pub fn reboot(magic: u64, magic2: u64, cmd: u64) -> SysResult {
    if magic as u32 as u64 != REBOOT_MAGIC1 || !REBOOT_MAGIC2.contains(&(magic2 as u32 as u64)) {
        return Err(Errno::EINVAL);
    }
    match cmd as u32 as u64 {
        CMD_POWER_OFF | CMD_HALT | CMD_RESTART => proc::power_off(),
        CMD_CAD_ON | CMD_CAD_OFF => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// getuid, geteuid, getgid, getegid.
pub fn id(which: Id) -> SysResult {
    proc::with_current(|p| {
        let r = &p.res;
        Ok(match which {
            Id::Uid => r.uid,
            Id::Euid => r.euid,
            Id::Gid => r.gid,
            Id::Egid => r.egid,
        } as usize)
    })
}

#[derive(Clone, Copy)]
pub enum Id {
    Uid,
    Euid,
    Gid,
    Egid,
}

/// setresuid / setresgid (and setuid, setgid, setreuid, setregid through
/// it): -1 leaves an id. Root may set any; anyone else only ids it
/// already has (EPERM). No saved set-user-ID is kept apart: it is the
/// effective id.
pub fn setres(group: bool, real: u64, effective: u64) -> SysResult {
    let keep = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    proc::with_current(|p| {
        let r = &mut p.res;
        let (cur_real, cur_eff) = if group {
            (r.gid, r.egid)
        } else {
            (r.uid, r.euid)
        };
        let allowed =
            |v: Option<u32>| v.is_none_or(|v| r.euid == 0 || v == cur_real || v == cur_eff);
        if !allowed(keep(real)) || !allowed(keep(effective)) {
            return Err(Errno::EPERM);
        }
        let new_real = keep(real).unwrap_or(cur_real);
        let new_eff = keep(effective).unwrap_or(cur_eff);
        if group {
            (r.gid, r.egid) = (new_real, new_eff);
        } else {
            (r.uid, r.euid) = (new_real, new_eff);
        }
        Ok(0)
    })
}

/// setuid(id): root sets both ids, anyone else only the effective one.
pub fn setid(group: bool, id: u64) -> SysResult {
    let root = proc::with_current(|p| p.res.euid == 0);
    if root {
        setres(group, id, id)
    } else {
        setres(group, u64::MAX, id)
    }
}

/// getresuid / getresgid: real, effective, saved (the effective one).
pub fn getres(group: bool, real: u64, effective: u64, saved: u64) -> SysResult {
    let (r, e) = proc::with_current(|p| {
        if group {
            (p.res.gid, p.res.egid)
        } else {
            (p.res.uid, p.res.euid)
        }
    });
    proc::with_current(|p| -> Result<(), Errno> {
        for (addr, v) in [(real, r), (effective, e), (saved, e)] {
            usercopy::copy_out(&mut *p.space(), addr, &v.to_le_bytes())?;
        }
        Ok(())
    })?;
    Ok(0)
}

/// getgroups(size, list): no supplementary groups. setgroups: accepted
/// for root (EPERM otherwise), and not kept.
pub fn getgroups(size: u64) -> SysResult {
    if size as i32 >= 0 {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}

pub fn setgroups(size: u64) -> SysResult {
    if size > 65536 {
        return Err(Errno::EINVAL);
    }
    match proc::with_current(|p| p.res.euid) {
        0 => Ok(0),
        _ => Err(Errno::EPERM),
    }
}

/// sysinfo(info): uptime, RAM and process count, in bytes (mem_unit 1);
/// no swap yet, no load average measured.
pub fn sysinfo(buf: u64) -> SysResult {
    let (procs, _) = proc::counts();
    let total = phys::total_frames() as u64 * 4096;
    let free = phys::free_frames() as u64 * 4096;
    let shared = crate::ramfs::cached_frames() * 4096;
    let mut raw = [0u8; 112];
    let mut put = |at: usize, v: u64| raw[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(0, crate::time::monotonic() / 1_000_000_000);
    put(32, total);
    put(40, free);
    put(48, shared);
    raw[80..82].copy_from_slice(&(procs as u16).to_le_bytes());
    raw[104..108].copy_from_slice(&1u32.to_le_bytes());
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &raw))?;
    Ok(0)
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_CAPBSET_READ: u64 = 23;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
const PR_GET_THP_DISABLE: u64 = 42;
/// TASK_COMM_LEN.
const COMM_LEN: usize = 16;

/// prctl: the process's name (PR_SET_NAME, PR_GET_NAME: what
/// /proc/PID/comm and status show), and a few questions programs ask at
/// start-up, answered as Linux answers them for a plain root process.
pub fn prctl(option: u64, arg2: u64) -> SysResult {
    match option {
        PR_SET_NAME => {
            let name = proc::with_current(|p| usercopy::read_cstr(&mut *p.space(), arg2, 4096))?;
            let name = &name[..name.len().min(COMM_LEN - 1)];
            let name = alloc::string::String::from_utf8_lossy(name).into_owned();
            proc::with_current(|p| p.name = name);
            Ok(0)
        }
        PR_GET_NAME => {
            let mut out = [0u8; COMM_LEN];
            proc::with_current(|p| {
                let name = p.name.as_bytes();
                let n = name.len().min(COMM_LEN - 1);
                out[..n].copy_from_slice(&name[..n]);
                usercopy::copy_out(&mut *p.space(), arg2, &out)
            })?;
            Ok(0)
        }
        PR_GET_DUMPABLE | PR_CAPBSET_READ => Ok(1),
        PR_SET_DUMPABLE if arg2 <= 1 => Ok(0),
        PR_SET_PDEATHSIG if arg2 <= 64 => Ok(0),
        PR_GET_PDEATHSIG => {
            proc::with_current(|p| usercopy::copy_out(&mut *p.space(), arg2, &0u32.to_le_bytes()))?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS if arg2 == 1 => Ok(0),
        PR_GET_NO_NEW_PRIVS | PR_GET_THP_DISABLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;

/// mount(source, target, fstype, flags, data): proc, tmpfs, ramfs or
/// devtmpfs on an existing directory (what busybox and LTP mount).
/// MS_REMOUNT is accepted and changes nothing; bind mounts are EINVAL;
/// only root may mount (EPERM).
pub fn mount(source: u64, target: u64, fstype: u64, flags: u64) -> SysResult {
    if proc::with_current(|p| p.res.euid) != 0 {
        return Err(Errno::EPERM);
    }
    let target = user_path(target)?;
    let node = resolve_at(AT_FDCWD, &target, true, false)?;
    if flags & MS_REMOUNT != 0 {
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        return Err(Errno::EINVAL);
    }
    let fstype =
        user_path(fstype).map_err(|e| if e == Errno::ENOENT { Errno::ENODEV } else { e })?;
    let source = if source == 0 {
        "none".into()
    } else {
        user_path(source).unwrap_or_else(|_| "none".into())
    };
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let Some(point) = vfs::mount_point(&node) else {
        return Err(Errno::EBUSY); // a directory inside /proc
    };
    if !point.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let canonical = match target.trim_end_matches('/') {
        "" => "/",
        t => t,
    };
    vfs::mount(&source, point, canonical, &fstype)?;
    Ok(0)
}

/// umount2(target, flags): the last mount there goes (EINVAL: none).
pub fn umount2(target: u64, flags: u64) -> SysResult {
    if flags & !0xf != 0 {
        return Err(Errno::EINVAL);
    }
    let target = user_path(target)?;
    vfs::umount(match target.trim_end_matches('/') {
        "" => "/",
        t => t,
    })?;
    Ok(0)
}

/// set_robust_list(head, len): the calling thread's list of robust
/// mutexes, walked at its exit (futex.rs); a wrong `len` is EINVAL (Linux).
pub fn set_robust_list(head: u64, len: u64) -> SysResult {
    if len != crate::futex::ROBUST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    proc::with_current_thread(|_, t| t.robust_list = head);
    Ok(0)
}

/// get_robust_list(tid, head_ptr, len_ptr): tid 0 is the caller; another
/// thread's list is only the caller's to see within its process here.
pub fn get_robust_list(tid: u64, head: u64, len: u64) -> SysResult {
    let (p_head, me) = proc::with_current_thread(|p, t| ((t.robust_list, t.tid), p.pid));
    let list = if tid == 0 || tid as u32 == p_head.1 {
        p_head.0
    } else {
        proc::robust_list_of(me, tid as u32).ok_or(Errno::ESRCH)?
    };
    proc::with_current(|p| {
        usercopy::copy_out(&mut *p.space(), head, &list.to_le_bytes())?;
        usercopy::copy_out(
            &mut *p.space(),
            len,
            &crate::futex::ROBUST_HEAD_SIZE.to_le_bytes(),
        )
    })?;
    Ok(0)
}
