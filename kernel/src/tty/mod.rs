//! The terminal: the serial console (COM1) as a tty, with a line
//! discipline (`ldisc.rs`), a controlling session and a foreground
//! process group (job control), and the ioctls of termios(3) (`ioctl.rs`).
//!
//! Input comes from the UART's receive interrupt (IRQ 4): each byte goes
//! through the line discipline, which edits lines, echoes, and turns ^C,
//! ^\ and ^Z into SIGINT, SIGQUIT and SIGTSTP for the foreground group.
//! Readers wait on `INPUT` (kernel/src/sleep.rs), which new input wakes.
//! Without the runner's `--interactive` (kernel switch `interactive`) QEMU
//! gives the serial port no input: then the terminal reads as hung up
//! (end of file), so a program reading stdin ends instead of waiting.
//!
//! Output goes straight to the UART through the line discipline's output
//! processing (newline as CR LF), shared with the kernel's log.
//!
//! The one terminal is fds 0-2 of init, /dev/console and /dev/tty. It
//! becomes a session's controlling terminal through TIOCSCTTY (a session
//! leader's; busybox's `setsid -c` does it); then only the foreground
//! group reads it, and a background reader is stopped by SIGTTIN (EIO if
//! its group is orphaned or it ignores SIGTTIN).

mod ioctl;
pub mod ldisc;

pub use ioctl::ioctl;

use crate::proc::{self, Pid};
use crate::signal::{self, SigInfo};
use crate::sleep::{self, WaitQueue};
use crate::socket::{POLLIN, POLLOUT};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use ldisc::{Discipline, Input, VMIN, VTIME};
use spin::Mutex;
use vm::errno::Errno;
use x86_64::instructions::port::Port;

/// COM1's interrupt line on the PIC.
pub const IRQ: u8 = 4;
const COM1: u16 = 0x3f8;
/// Line status register bit: a received byte is waiting.
const LSR_DATA_READY: u8 = 1;

pub struct Tty {
    pub ldisc: Discipline,
    /// The session it is the controlling terminal of (TIOCSCTTY).
    pub session: Option<Pid>,
    /// The foreground process group (TIOCSPGRP).
    pub foreground: Pid,
    /// rows, columns, x pixels, y pixels (TIOCGWINSZ).
    pub winsize: [u16; 4],
}

pub static TTY: Mutex<Tty> = Mutex::new(Tty {
    ldisc: Discipline::new(),
    session: None,
    foreground: 0,
    winsize: [24, 80, 0, 0],
});

static INPUT: WaitQueue = WaitQueue::new();
/// The runner connected the terminal (`--interactive`): reads wait for input.
static INTERACTIVE: AtomicBool = AtomicBool::new(false);
/// A signal for the foreground group that found the process table busy
/// (the interrupt only try-locks it): sent by the next tick.
static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Boot: with `interactive`, take the UART's receive interrupt.
/// Without it, output goes out unchanged (DESIGN §1: a program's stdout
/// is the runner's, byte for byte): no ONLCR.
pub fn init(interactive: bool) {
    INTERACTIVE.store(interactive, Ordering::Relaxed);
    if !interactive {
        TTY.lock().ldisc.termios.oflag &= !ldisc::ONLCR;
    }
    if interactive {
        // SAFETY: COM1's interrupt-enable register; bit 0 asks for an
        // interrupt per received byte. Its MCR already has OUT2 set (the
        // uart_16550 driver's init), which routes it to the PIC.
        unsafe { Port::<u8>::new(COM1 + 1).write(1) };
        crate::arch::timer::set_irq_masked(IRQ, false);
    }
}

/// The queue readers of the terminal wait on.
pub fn queue() -> &'static WaitQueue {
    &INPUT
}

/// The receive interrupt: every byte waiting goes through the discipline.
pub fn interrupt() {
    let mut echo = Vec::new();
    let mut signal = None;
    {
        let mut serial = crate::logger::SERIAL.lock();
        let mut tty = TTY.lock();
        while let Some(byte) = receive() {
            if let Input::Signal(s) = tty.ldisc.input(byte, &mut echo) {
                signal = Some(s);
            }
        }
        if let Some(port) = serial.as_mut() {
            let mut out = Vec::new();
            ldisc::output(&tty.ldisc.termios, &echo, &mut out);
            for b in out {
                port.send(b);
            }
        }
    }
    if let Some(s) = signal {
        PENDING_SIGNAL.store(s, Ordering::Relaxed);
    }
    send_pending_signal();
    INPUT.wake_all();
}

/// A byte the UART received, if one is waiting.
fn receive() -> Option<u8> {
    // SAFETY: COM1's line status and data registers; reading the data
    // register takes the byte the line status says is there, and touches
    // nothing else (the caller holds SERIAL, so no one sends meanwhile).
    unsafe {
        (Port::<u8>::new(COM1 + 5).read() & LSR_DATA_READY != 0)
            .then(|| Port::<u8>::new(COM1).read())
    }
}

/// The tick: a signal the interrupt could not send yet.
pub fn tick() {
    if PENDING_SIGNAL.load(Ordering::Relaxed) != 0 {
        send_pending_signal();
    }
}

fn send_pending_signal() {
    let signo = PENDING_SIGNAL.load(Ordering::Relaxed);
    if signo == 0 {
        return;
    }
    let Some(tty) = TTY.try_lock() else {
        return;
    };
    let (session, group) = (tty.session, tty.foreground);
    drop(tty);
    if session.is_none() {
        // No controlling session: nobody to signal (as Linux's tty->pgrp NULL).
        PENDING_SIGNAL.store(0, Ordering::Relaxed);
        return;
    }
    let info = SigInfo {
        signo,
        code: signal::SI_KERNEL,
        ..SigInfo::default()
    };
    if proc::try_signal_group(group, info).is_some() {
        PENDING_SIGNAL.store(0, Ordering::Relaxed);
    }
}

/// Whether the current process reads or writes the terminal as its
/// controlling terminal from a background group: (sid, pgid) checks.
fn background() -> bool {
    let (pgid, sid) = proc::with_current(|p| (p.pgid, p.sid));
    let tty = TTY.lock();
    tty.session == Some(sid) && tty.foreground != pgid
}

/// A background read: SIGTTIN to the reader's group (which stops it, and
/// the read goes on once continued), or EIO when it would never be
/// continued (orphaned group) or does not stop (SIGTTIN ignored or blocked).
fn background_read() -> Result<(), Errno> {
    let refuses = signal::with_sig(|s| !s.stops_for(signal::SIGTTIN));
    if refuses || proc::own_group_orphaned() {
        return Err(Errno::EIO);
    }
    let pgid = proc::with_current(|p| p.pgid);
    let info = SigInfo {
        signo: signal::SIGTTIN,
        code: signal::SI_KERNEL,
        ..SigInfo::default()
    };
    let _ = proc::kill(-i64::from(pgid), info);
    sleep::interrupted()
}

/// read(2) of the terminal into `buf`: a line in canonical mode; in raw
/// mode what is there once VMIN bytes are (VMIN 0: with VTIME, at most
/// VTIME tenths of a second for the first). End of file without
/// `--interactive`, and for a VEOF at a line's start.
pub fn read(buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
    if !INTERACTIVE.load(Ordering::Relaxed) {
        return Ok(0);
    }
    while background() {
        background_read()?;
    }
    let (vmin, vtime, canonical) = {
        let t = TTY.lock().ldisc.termios;
        (t.cc[VMIN], t.cc[VTIME], t.lflag & ldisc::ICANON != 0)
    };
    let mut take = || TTY.lock().ldisc.read(buf);
    if nonblock {
        return take().ok_or(Errno::EAGAIN);
    }
    let deadline = (!canonical && vmin == 0)
        .then(|| crate::time::monotonic() + u64::from(vtime) * 100_000_000);
    let got = sleep::wait_for(&[&INPUT], deadline, take)?;
    Ok(got.unwrap_or(0))
}

/// write(2) to the terminal: output-processed onto the UART.
pub fn write(data: &[u8]) -> usize {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    ldisc::output(&TTY.lock().ldisc.termios, data, &mut out);
    crate::logger::write_bytes(&out);
    data.len()
}

/// poll's events for the terminal: output never waits; input when a read
/// would return (always, without `--interactive`: end of file).
pub fn poll(reads: bool, writes: bool) -> u16 {
    let mut events = 0;
    let readable = !INTERACTIVE.load(Ordering::Relaxed) || TTY.lock().ldisc.readable();
    if reads && readable {
        events |= POLLIN;
    }
    if writes {
        events |= POLLOUT;
    }
    events
}

/// Whether the terminal is the caller's controlling terminal (/dev/tty).
pub fn controls_caller() -> bool {
    let sid = proc::with_current(|p| p.sid);
    TTY.lock().session == Some(sid)
}

/// Session `sid` was made by setsid: nothing changes for the terminal (it
/// stays with the session it controls), the new session has none.
pub fn session_left(_sid: Pid) {}
