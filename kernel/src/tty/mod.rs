//! The terminal: the serial console as a tty.

use crate::sleep::WaitQueue;
use crate::socket::{POLLIN, POLLOUT};

static INPUT: WaitQueue = WaitQueue::new();

/// The queue readers of the terminal wait on.
pub fn queue() -> &'static WaitQueue {
    &INPUT
}

/// poll's events for the terminal: output never waits; input reads end of
/// file (the runner gives QEMU no stdin).
pub fn poll(reads: bool, writes: bool) -> u16 {
    let mut events = 0;
    if reads {
        events |= POLLIN;
    }
    if writes {
        events |= POLLOUT;
    }
    events
}

/// Session `sid` was made: the terminal has no session leader now if it
/// was the caller's (setsid loses the controlling terminal).
pub fn session_left(_sid: crate::proc::Pid) {}

/// A terminal ioctl on the console: none yet (ENOTTY: musl's and glibc's
/// isatty then say no, and stdio buffers stdout fully).
pub fn ioctl(_request: u64, _arg: u64) -> vm::errno::SysResult {
    Err(vm::errno::Errno::ENOTTY)
}
