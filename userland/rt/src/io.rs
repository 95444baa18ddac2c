//! `print!`/`println!` to stdout and `eprint!`/`eprintln!` to stderr, unbuffered.

use core::fmt::{self, Write};

pub struct Fd(pub i32);

impl Write for Fd {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            match crate::sys::write(self.0, bytes) {
                Ok(0) | Err(_) => return Err(fmt::Error),
                Ok(n) => bytes = &bytes[n..],
            }
        }
        Ok(())
    }
}

/// Format into a stack buffer first so one line is one `write` (lines from
/// different processes then do not interleave mid-line).
pub fn print_to(fd: i32, args: fmt::Arguments) {
    let mut buf = Buffer {
        bytes: [0; 512],
        len: 0,
    };
    if buf.write_fmt(args).is_ok() {
        let _ = Fd(fd).write_str(buf.as_str());
    } else {
        let _ = Fd(fd).write_fmt(args);
    }
}

struct Buffer {
    bytes: [u8; 512],
    len: usize,
}

impl Buffer {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print_to(1, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::io::print_to(1, format_args!("{}\n", format_args!($($arg)*))) };
}

#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::io::print_to(2, format_args!("{}\n", format_args!($($arg)*))) };
}
