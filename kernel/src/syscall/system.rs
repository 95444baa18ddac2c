//! The small system calls a static musl program makes at start-up and in
//! stdio: arch_prctl, uname, getrandom, ioctl, reboot, and the user and
//! group ids (all root). The clocks are in time.rs.

use crate::{arch, proc, usercopy};
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
            proc::with_current(|p| p.fs_base = addr);
            arch::set_fs_base(addr);
            Ok(0)
        }
        ARCH_GET_FS => proc::with_current(|p| {
            let base = p.fs_base;
            usercopy::copy_out(p.space(), addr, &base.to_le_bytes())
        })
        .map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}

/// struct utsname: six fields of 65 bytes.
const UTS_FIELD: usize = 65;

pub fn uname(buf: u64) -> SysResult {
    let fields: [&[u8]; 6] = [
        b"pageos",
        b"pageos",
        env!("CARGO_PKG_VERSION").as_bytes(),
        b"#1",
        b"x86_64",
        b"(none)",
    ];
    let mut out = [0u8; UTS_FIELD * 6];
    for (i, field) in fields.iter().enumerate() {
        out[i * UTS_FIELD..i * UTS_FIELD + field.len()].copy_from_slice(field);
    }
    proc::with_current(|p| usercopy::copy_out(p.space(), buf, &out)).map(|()| 0)
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
    let mut state = arch::rdtsc() | 1;
    let mut chunk = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = (state >> 24) as u8;
        }
        proc::with_current(|p| usercopy::copy_out(p.space(), buf + done as u64, &chunk[..n]))?;
        done += n;
    }
    Ok(len)
}

/// ioctl: the console is not a terminal here (musl's stdio then buffers
/// stdout fully, as it does for a pipe): ENOTTY for TIOCGWINSZ (0x5413),
/// musl's isatty test, and for every other request on a valid descriptor.
pub fn ioctl(fd: u64, _request: u64, _arg: u64) -> SysResult {
    proc::with_current(|p| p.files.get(fd))?;
    Err(Errno::ENOTTY)
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

/// getuid, geteuid, getgid, getegid: everyone is root.
pub fn id() -> SysResult {
    Ok(0)
}
