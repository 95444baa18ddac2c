//! The serial console (COM1) and the `log` backend.
//!
//! Serial is QEMU's stdout, shared by the kernel's log and the programs'
//! own output; log lines carry a `[kernel LEVEL]` prefix so a reader (or a
//! test) can tell them apart from what a program printed.

use core::fmt::Write;
use spin::Mutex;
use uart_16550::SerialPort;

pub static SERIAL: Mutex<Option<SerialPort>> = Mutex::new(None);

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            print(format_args!(
                "[kernel {:5}] {}\n",
                record.level(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

pub fn init() {
    // SAFETY: 0x3f8 is COM1 on every PC QEMU emulates.
    let mut port = unsafe { SerialPort::new(0x3f8) };
    port.init();
    *SERIAL.lock() = Some(port);
    log::set_logger(&LOGGER).expect("logger::init: called twice");
    log::set_max_level(log::LevelFilter::Info);
}

/// Write to the console; the building block of `kprint!`.
pub fn print(args: core::fmt::Arguments) {
    if let Some(port) = SERIAL.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Write raw bytes (a program's `write(1, ...)`), turning `\n` into `\r\n`
/// only as the UART driver does.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(port) = SERIAL.lock().as_mut() {
        for &b in bytes {
            port.send(b);
        }
    }
}

/// Print from a panic: the lock may be held by the code that panicked.
pub fn print_force(args: core::fmt::Arguments) {
    // SAFETY: we are about to stop the machine; a torn line is acceptable.
    unsafe { SERIAL.force_unlock() };
    print(args);
}

#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::logger::print(format_args!("{}\n", format_args!($($arg)*))) };
}
