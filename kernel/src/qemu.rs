//! Leaving QEMU with a status the runner understands (see boot/src/qemu.rs).
//!
//! The status goes to the debugcon port as a line `status N`, then a write to
//! the isa-debug-exit device ends QEMU (its exit status becomes 33).

use x86_64::instructions::port::Port;

const DEBUGCON: u16 = 0xe9;
const DEBUG_EXIT: u16 = 0xf4;
const EXIT_REPORTED: u32 = 0x10;

/// Exit statuses of DESIGN §1 that the kernel itself decides.
pub const STATUS_PANIC: u8 = 101;

/// Report `status` to the runner and power off.
pub fn exit(status: u8) -> ! {
    let mut line = [0u8; 16];
    let text = format_status(status, &mut line);
    // SAFETY: both ports are devices the runner attaches; writing them has
    // no effect on memory.
    unsafe {
        let mut debugcon = Port::<u8>::new(DEBUGCON);
        for &b in text {
            debugcon.write(b);
        }
        Port::<u32>::new(DEBUG_EXIT).write(EXIT_REPORTED);
    }
    // Without the exit device (a real machine) there is nothing left to do.
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

fn format_status(status: u8, buf: &mut [u8; 16]) -> &[u8] {
    let prefix = b"status ";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = prefix.len();
    let digits = [status / 100, status / 10 % 10, status % 10];
    let first = digits.iter().position(|&d| d != 0).unwrap_or(2);
    for &d in &digits[first..] {
        buf[n] = b'0' + d;
        n += 1;
    }
    buf[n] = b'\n';
    &buf[..=n]
}
