//! Linux x86_64 system calls: number in rax, arguments in rdi, rsi, rdx, r10,
//! r8, r9, result in rax (`-errno` on failure); rcx and r11 are clobbered.

use core::arch::asm;

/// A failed call's errno (Linux's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EPERM: Errno = Errno(1);
pub const ENOENT: Errno = Errno(2);
pub const EBADF: Errno = Errno(9);
pub const ECHILD: Errno = Errno(10);
pub const EAGAIN: Errno = Errno(11);
pub const ENOMEM: Errno = Errno(12);
pub const EACCES: Errno = Errno(13);
pub const EFAULT: Errno = Errno(14);
pub const EEXIST: Errno = Errno(17);
pub const ENODEV: Errno = Errno(19);
pub const ENOTDIR: Errno = Errno(20);
pub const EISDIR: Errno = Errno(21);
pub const EINVAL: Errno = Errno(22);
pub const ENOTTY: Errno = Errno(25);
pub const ENAMETOOLONG: Errno = Errno(36);
pub const ENOSYS: Errno = Errno(38);
pub const EOVERFLOW: Errno = Errno(75);
pub const EOPNOTSUPP: Errno = Errno(95);

pub type Result<T> = core::result::Result<T, Errno>;

pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const OPEN: usize = 2;
    pub const CLOSE: usize = 3;
    pub const SCHED_YIELD: usize = 24;
    pub const GETPID: usize = 39;
    pub const EXIT: usize = 60;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
}

/// Raw system call with six arguments.
///
/// # Safety
/// The arguments must be valid for call `n` (pointers the kernel will read
/// or write must point at memory of the right size).
pub unsafe fn syscall6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the syscall instruction follows the Linux ABI; the caller
    // vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Turn a raw return value into a Result.
pub fn check(ret: isize) -> Result<usize> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// A system call whose arguments are plain numbers (or pointers the caller
/// deliberately wants the kernel to check, as the tests do).
pub fn raw(n: usize, a: [usize; 6]) -> Result<usize> {
    // SAFETY: a kernel must survive any argument values; a test that passes
    // a bad pointer expects an error, not memory corruption in this process
    // beyond what the call is documented to write.
    check(unsafe { syscall6(n, a) })
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    raw(
        nr::WRITE,
        [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
    )
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    raw(
        nr::READ,
        [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
    )
}

/// open(2) with a path that must end in a NUL byte (`"/etc/motd\0"`).
pub fn open(path: &str, flags: usize) -> Result<usize> {
    assert!(
        path.ends_with('\0'),
        "sys::open: path must be NUL-terminated"
    );
    raw(nr::OPEN, [path.as_ptr() as usize, flags, 0, 0, 0, 0])
}

pub fn close(fd: usize) -> Result<usize> {
    raw(nr::CLOSE, [fd, 0, 0, 0, 0, 0])
}

pub fn getpid() -> usize {
    raw(nr::GETPID, [0; 6]).unwrap_or(0)
}

pub fn sched_yield() {
    let _ = raw(nr::SCHED_YIELD, [0; 6]);
}

pub fn exit(status: i32) -> ! {
    let _ = raw(nr::EXIT_GROUP, [status as usize, 0, 0, 0, 0, 0]);
    unreachable!("exit_group returned")
}
