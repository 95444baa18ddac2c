//! The terminal's ioctls: termios (TCGETS, TCSETS, TCSETSW, TCSETSF,
//! TCFLSH, TCSBRK, TCXONC), the window size (TIOCGWINSZ, TIOCSWINSZ), and
//! job control (TIOCSCTTY, TIOCNOTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID),
//! with Linux's numbers and errors.

use super::TTY;
use super::ldisc::Termios;
use crate::{proc, usercopy};
use vm::errno::{Errno, SysResult};

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCNOTTY: u64 = 0x5422;
const TIOCGSID: u64 = 0x5429;

fn copy_out(at: u64, bytes: &[u8]) -> Result<(), Errno> {
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), at, bytes))
}

fn copy_in<const N: usize>(at: u64) -> Result<[u8; N], Errno> {
    let mut bytes = [0u8; N];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), at, &mut bytes))?;
    Ok(bytes)
}

/// The caller's session, if the terminal is its controlling terminal
/// (ENOTTY otherwise, as Linux's job-control ioctls say).
fn controlling() -> Result<(proc::Pid, proc::Pid), Errno> {
    let (pid, sid) = proc::with_current(|p| (p.pid, p.sid));
    if TTY.lock().session == Some(sid) {
        Ok((pid, sid))
    } else {
        Err(Errno::ENOTTY)
    }
}

/// An ioctl on the terminal (any descriptor of it).
pub fn ioctl(request: u64, arg: u64) -> SysResult {
    match request {
        TCGETS => {
            let t = TTY.lock().ldisc.termios;
            copy_out(arg, &t.to_bytes())?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let t = Termios::from_bytes(&copy_in::<{ Termios::SIZE }>(arg)?);
            let mut tty = TTY.lock();
            if request == TCSETSF {
                tty.ldisc.flush_input();
            }
            tty.ldisc.set_termios(t);
        }
        // Output is never queued: tcdrain and a break have nothing to wait for.
        TCSBRK | TCXONC => {}
        TCFLSH => match arg {
            0 | 2 => TTY.lock().ldisc.flush_input(),
            1 => {}
            _ => return Err(Errno::EINVAL),
        },
        TIOCGWINSZ => {
            let w = TTY.lock().winsize;
            let mut bytes = [0u8; 8];
            for (i, v) in w.iter().enumerate() {
                bytes[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
            }
            copy_out(arg, &bytes)?;
        }
        TIOCSWINSZ => {
            let b = copy_in::<8>(arg)?;
            let w = core::array::from_fn(|i| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]));
            TTY.lock().winsize = w;
        }
        FIONREAD => {
            let n = TTY.lock().ldisc.available() as u32;
            copy_out(arg, &n.to_le_bytes())?;
        }
        TIOCSCTTY => {
            // A session leader without a controlling terminal takes this
            // one (it may take it from another session only as root: arg 1).
            let (pid, sid, pgid) = proc::with_current(|p| (p.pid, p.sid, p.pgid));
            let mut tty = TTY.lock();
            if sid != pid {
                return Err(Errno::EPERM);
            }
            if tty.session.is_some_and(|s| s != sid) && arg != 1 {
                return Err(Errno::EPERM);
            }
            tty.session = Some(sid);
            tty.foreground = pgid;
        }
        TIOCNOTTY => {
            let (pid, sid) = controlling()?;
            if pid == sid {
                TTY.lock().session = None;
            }
        }
        TIOCGPGRP => {
            controlling()?;
            let fg = TTY.lock().foreground;
            copy_out(arg, &(fg as i32).to_le_bytes())?;
        }
        TIOCSPGRP => {
            let (_, sid) = controlling()?;
            let pgid = i32::from_le_bytes(copy_in::<4>(arg)?);
            if pgid < 0 {
                return Err(Errno::EINVAL);
            }
            if !proc::group_in_session(pgid as proc::Pid, sid) {
                return Err(Errno::EPERM);
            }
            TTY.lock().foreground = pgid as proc::Pid;
        }
        TIOCGSID => {
            let (_, sid) = controlling()?;
            copy_out(arg, &(sid as i32).to_le_bytes())?;
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}
