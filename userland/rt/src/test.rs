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

const WHY_LEN: usize = 120;

/// A failure message, formatted into a fixed buffer (no heap needed).
pub struct Why {
    /// Small enough that `Result<T, Why>` stays cheap to return (clippy's
    /// result_large_err limit is 128 bytes); longer messages are cut.
    bytes: [u8; WHY_LEN],
    len: u8,
}

impl Why {
    pub fn new(args: fmt::Arguments) -> Self {
        let mut why = Why {
            bytes: [0; WHY_LEN],
            len: 0,
        };
        let _ = why.write_fmt(args);
        why
    }

    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len);
        // A cut in the middle of a character leaves the valid prefix.
        match core::str::from_utf8(&self.bytes[..len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.bytes[..e.valid_up_to()]).unwrap_or("?"),
        }
    }
}

impl Write for Why {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let at = usize::from(self.len);
        let room = self.bytes.len() - at;
        let n = s.len().min(room);
        self.bytes[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n as u8;
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

/// A test program's cases, run on pageos or on Linux (the same binary is
/// `/init` of a Debian kernel in `make linux-test`). On pageos each case
/// must also give back every frame it took.
pub struct Suite {
    report: Report,
    /// Running on Linux: pageos-only cases are skipped.
    pub linux: bool,
}

impl Suite {
    /// Start `program`'s suite: tell pageos from Linux (minherit is
    /// pageos's and FreeBSD's; Linux has no such call) and grow the stack
    /// before the first frame count.
    pub fn new(program: &str) -> Suite {
        let linux = crate::sys::minherit(0, 0, 0) == Err(crate::sys::ENOSYS);
        if linux {
            println!("{program}: running on Linux: the pageos-only cases are skipped");
        }
        grow_stack();
        Suite {
            report: Report::default(),
            linux,
        }
    }

    /// A rule Linux shares: run everywhere.
    pub fn both(&mut self, name: &str, case: impl FnOnce() -> Outcome) {
        self.run(name, case);
    }

    /// A rule from the BSD pages or a pageos choice: not run on Linux.
    pub fn pageos(&mut self, name: &str, case: impl FnOnce() -> Outcome) {
        if !self.linux {
            self.run(name, case);
        }
    }

    /// Run a case; on pageos also check that it gave back every frame.
    fn run(&mut self, name: &str, case: impl FnOnce() -> Outcome) {
        let linux = self.linux;
        self.report.case(name, || {
            let before = if linux { 0 } else { frames_in_use()? };
            case()?;
            if !linux {
                let after = frames_in_use()?;
                ensure!(
                    after == before,
                    "frames in use: {before} kB before the case, {after} kB after"
                )?;
            }
            Ok(())
        });
    }

    /// Print the summary line and return the exit status.
    pub fn finish(self) -> i32 {
        self.report.finish()
    }
}

/// Touch 64 KiB of stack now, so that a case using a little more stack than
/// the one before does not look like a frame leak: the stack keeps its pages.
#[inline(never)]
pub fn grow_stack() {
    let mut area = [0u8; 64 * 1024];
    for i in (0..area.len()).step_by(4096) {
        // SAFETY: a plain store into a local array; volatile so that it happens.
        unsafe { core::ptr::write_volatile(&mut area[i], 1) };
    }
    core::hint::black_box(&area);
}

/// RAM the kernel has handed out (MemTotal - MemFree - KernelHeap), from
/// /proc/meminfo: the heap only grows, so it is not counted as in use.
pub fn frames_in_use() -> Result<u64, Why> {
    let total = proc_number("/proc/meminfo\0", "MemTotal")?;
    let free = proc_number("/proc/meminfo\0", "MemFree")?;
    let heap = proc_number("/proc/meminfo\0", "KernelHeap")?;
    Ok(total - free - heap)
}

/// The number after `name` in a /proc file (`name: 123 kB` in meminfo,
/// `name 123` in vmstat); `path` ends in a NUL byte.
pub fn proc_number(path: &str, name: &str) -> Result<u64, Why> {
    use crate::sys;
    let fd = sys::open(path, 0).map_err(why("open"))?;
    // Linux's /proc/vmstat is some 6 KiB, and read returns what fits.
    let mut buf = [0u8; 16384];
    let mut n = 0;
    while let Ok(got @ 1..) = sys::read(fd as i32, &mut buf[n..]) {
        n += got;
    }
    let _ = sys::close(fd);
    let text = core::str::from_utf8(&buf[..n]).unwrap_or("");
    let value = text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !rest.starts_with([':', ' ']) {
            return None; // a longer name that starts with this one
        }
        rest.trim_start_matches(':')
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    });
    match value {
        Some(v) => Ok(v),
        None => fail!("no {name} in {path}"),
    }
}

/// A call that must fail with `want`.
pub fn expect_err(got: crate::sys::Result<usize>, want: crate::sys::Errno, what: &str) -> Outcome {
    match got {
        Err(e) if e == want => Ok(()),
        other => fail!("{what}: want errno {}, got {other:?}", want.0),
    }
}

/// mincore's answer for [addr, addr + pages pages): how many are resident.
pub fn resident(addr: usize, pages: usize) -> Result<usize, Why> {
    let mut vec = [0u8; 1024];
    let mut count = 0;
    for chunk in (0..pages).step_by(vec.len()) {
        let n = (pages - chunk).min(vec.len());
        crate::sys::mincore(addr + chunk * 4096, n * 4096, &mut vec).map_err(why("mincore"))?;
        count += vec[..n].iter().filter(|&&b| b & 1 != 0).count();
    }
    Ok(count)
}
