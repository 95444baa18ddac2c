//! The test programs' report: one line per case, `ok NAME` or
//! `FAIL NAME: why`, and a final `N passed, M failed` that the QEMU tests and
//! CI read. The exit status is 0 only when every case passed.

use crate::println;
use core::fmt::{self, Write};

#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: usize,
}

/// What a case returns: Ok, or why it failed.
pub type Outcome = Result<(), Why>;

/// A failure message, formatted into a fixed buffer (no heap needed).
pub struct Why {
    bytes: [u8; 160],
    len: usize,
}

impl Why {
    pub fn new(args: fmt::Arguments) -> Self {
        let mut why = Why {
            bytes: [0; 160],
            len: 0,
        };
        let _ = why.write_fmt(args);
        why
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?")
    }
}

impl Write for Why {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Fail a case with a formatted reason: `return fail!("got {x}")`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { Err($crate::test::Why::new(format_args!($($arg)*))) };
}

/// Check a condition inside a case: `ensure!(x == 1, "x was {x}")?;`
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if $cond { Ok(()) } else { $crate::fail!($($arg)*) }
    };
}

/// Turn a failed call into a case failure naming the call: `sys::close(fd).map_err(why("close"))?`.
pub fn why(call: &'static str) -> impl Fn(crate::sys::Errno) -> Why {
    move |e| Why::new(format_args!("{call}: errno {}", e.0))
}

impl Report {
    /// Run one case and print its line.
    pub fn case(&mut self, name: &str, case: impl FnOnce() -> Outcome) {
        match case() {
            Ok(()) => {
                self.passed += 1;
                println!("ok {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {}", why.as_str());
            }
        }
    }

    /// Print the summary line and return the exit status.
    pub fn finish(self) -> i32 {
        println!("{} passed, {} failed", self.passed, self.failed);
        i32::from(self.failed > 0)
    }
}
