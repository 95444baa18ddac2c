//! Linux x86_64 system calls: number in rax, arguments in rdi, rsi, rdx, r10,
//! r8, r9, result in rax (`-errno` on failure); rcx and r11 are clobbered.

use core::arch::asm;

/// A failed call's errno (Linux's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EPERM: Errno = Errno(1);
pub const ENOENT: Errno = Errno(2);
pub const ENXIO: Errno = Errno(6);
pub const EBADF: Errno = Errno(9);
pub const ECHILD: Errno = Errno(10);
pub const EAGAIN: Errno = Errno(11);
pub const ENOMEM: Errno = Errno(12);
pub const EACCES: Errno = Errno(13);
pub const EFAULT: Errno = Errno(14);
pub const EBUSY: Errno = Errno(16);
pub const EEXIST: Errno = Errno(17);
pub const ENODEV: Errno = Errno(19);
pub const ENOTDIR: Errno = Errno(20);
pub const EISDIR: Errno = Errno(21);
pub const EINVAL: Errno = Errno(22);
pub const ENOTTY: Errno = Errno(25);
pub const EFBIG: Errno = Errno(27);
pub const ENOSPC: Errno = Errno(28);
pub const ESPIPE: Errno = Errno(29);
pub const ENAMETOOLONG: Errno = Errno(36);
pub const ENOSYS: Errno = Errno(38);
pub const ENOTEMPTY: Errno = Errno(39);
pub const EOVERFLOW: Errno = Errno(75);
pub const EOPNOTSUPP: Errno = Errno(95);

pub type Result<T> = core::result::Result<T, Errno>;

pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const OPEN: usize = 2;
    pub const CLOSE: usize = 3;
    pub const STAT: usize = 4;
    pub const FSTAT: usize = 5;
    pub const LSEEK: usize = 8;
    pub const MMAP: usize = 9;
    pub const MPROTECT: usize = 10;
    pub const MUNMAP: usize = 11;
    pub const BRK: usize = 12;
    pub const PREAD64: usize = 17;
    pub const PWRITE64: usize = 18;
    pub const READV: usize = 19;
    pub const WRITEV: usize = 20;
    pub const SCHED_YIELD: usize = 24;
    pub const MSYNC: usize = 26;
    pub const MINCORE: usize = 27;
    pub const MADVISE: usize = 28;
    pub const MLOCK: usize = 149;
    pub const MUNLOCK: usize = 150;
    pub const DUP: usize = 32;
    pub const DUP2: usize = 33;
    pub const GETPID: usize = 39;
    pub const FCNTL: usize = 72;
    pub const TRUNCATE: usize = 76;
    pub const FTRUNCATE: usize = 77;
    pub const MKDIR: usize = 83;
    pub const RMDIR: usize = 84;
    pub const UNLINK: usize = 87;
    pub const GETDENTS64: usize = 217;
    pub const EXIT: usize = 60;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const NEWFSTATAT: usize = 262;
    pub const UNLINKAT: usize = 263;
    pub const DUP3: usize = 292;
    /// FreeBSD's minherit, pageos's number (DESIGN §2); ENOSYS on Linux.
    pub const MINHERIT: usize = 1000;
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

// ---- files ------------------------------------------------------------

pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_RDWR: usize = 2;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const O_TRUNC: usize = 0o1000;
pub const O_APPEND: usize = 0o2000;
pub const O_DIRECTORY: usize = 0o200000;
pub const O_CLOEXEC: usize = 0o2000000;
pub const SEEK_SET: usize = 0;
pub const SEEK_CUR: usize = 1;
pub const SEEK_END: usize = 2;
pub const SEEK_DATA: usize = 3;
pub const SEEK_HOLE: usize = 4;
pub const F_DUPFD: usize = 0;
pub const F_GETFD: usize = 1;
pub const F_SETFD: usize = 2;
pub const F_GETFL: usize = 3;
pub const F_SETFL: usize = 4;
pub const AT_FDCWD: i32 = -100;
pub const AT_REMOVEDIR: usize = 0x200;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

/// The path as a NUL-terminated C string (paths are short; longer ones panic).
fn with_cstr<R>(path: &str, f: impl FnOnce(usize) -> R) -> R {
    let mut buf = [0u8; 512];
    assert!(path.len() < buf.len(), "sys: path too long for the buffer");
    buf[..path.len()].copy_from_slice(path.as_bytes());
    f(buf.as_ptr() as usize)
}

/// open(2) with a creation mode; `path` needs no NUL.
pub fn open_mode(path: &str, flags: usize, mode: usize) -> Result<usize> {
    with_cstr(path, |p| raw(nr::OPEN, [p, flags, mode, 0, 0, 0]))
}

pub fn openat(dirfd: i32, path: &str, flags: usize, mode: usize) -> Result<usize> {
    with_cstr(path, |p| {
        raw(nr::OPENAT, [dirfd as usize, p, flags, mode, 0, 0])
    })
}

pub fn pread(fd: usize, buf: &mut [u8], offset: usize) -> Result<usize> {
    raw(
        nr::PREAD64,
        [fd, buf.as_mut_ptr() as usize, buf.len(), offset, 0, 0],
    )
}

pub fn pwrite(fd: usize, buf: &[u8], offset: usize) -> Result<usize> {
    raw(
        nr::PWRITE64,
        [fd, buf.as_ptr() as usize, buf.len(), offset, 0, 0],
    )
}

pub fn lseek(fd: usize, offset: isize, whence: usize) -> Result<usize> {
    raw(nr::LSEEK, [fd, offset as usize, whence, 0, 0, 0])
}

/// The fields of Linux's `struct stat` the tests look at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub size: u64,
    pub blocks: u64,
}

impl Stat {
    fn decode(raw: &[u8; 144]) -> Stat {
        let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or_default());
        Stat {
            ino: word(8),
            nlink: word(16),
            mode: word(24) as u32,
            size: word(48),
            blocks: word(64),
        }
    }
}

pub fn fstat(fd: usize) -> Result<Stat> {
    let mut raw_stat = [0u8; 144];
    raw(nr::FSTAT, [fd, raw_stat.as_mut_ptr() as usize, 0, 0, 0, 0])?;
    Ok(Stat::decode(&raw_stat))
}

pub fn stat(path: &str) -> Result<Stat> {
    let mut raw_stat = [0u8; 144];
    with_cstr(path, |p| {
        raw(nr::STAT, [p, raw_stat.as_mut_ptr() as usize, 0, 0, 0, 0])
    })?;
    Ok(Stat::decode(&raw_stat))
}

pub fn ftruncate(fd: usize, len: isize) -> Result<usize> {
    raw(nr::FTRUNCATE, [fd, len as usize, 0, 0, 0, 0])
}

pub fn truncate(path: &str, len: isize) -> Result<usize> {
    with_cstr(path, |p| raw(nr::TRUNCATE, [p, len as usize, 0, 0, 0, 0]))
}

pub fn unlink(path: &str) -> Result<usize> {
    with_cstr(path, |p| raw(nr::UNLINK, [p, 0, 0, 0, 0, 0]))
}

pub fn mkdir(path: &str, mode: usize) -> Result<usize> {
    with_cstr(path, |p| raw(nr::MKDIR, [p, mode, 0, 0, 0, 0]))
}

/// Linux's /init has no /proc: mount it (pageos's is always there), for
/// the test programs that read /proc/self as init of both kernels.
pub fn mount_proc() -> Result<usize> {
    const SYS_MOUNT: usize = 165;
    if let Ok(fd) = open("/proc/self/smaps\0", O_RDONLY) {
        return close(fd);
    }
    let _ = mkdir("/proc\0", 0o555);
    let (source, target, kind) = (b"proc\0", b"/proc\0", b"proc\0");
    raw(
        SYS_MOUNT,
        [
            source.as_ptr() as usize,
            target.as_ptr() as usize,
            kind.as_ptr() as usize,
            0,
            0,
            0,
        ],
    )
}

pub fn rmdir(path: &str) -> Result<usize> {
    with_cstr(path, |p| raw(nr::RMDIR, [p, 0, 0, 0, 0, 0]))
}

pub fn getdents64(fd: usize, buf: &mut [u8]) -> Result<usize> {
    raw(
        nr::GETDENTS64,
        [fd, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
    )
}

pub fn dup(fd: usize) -> Result<usize> {
    raw(nr::DUP, [fd, 0, 0, 0, 0, 0])
}

pub fn dup2(old: usize, new: usize) -> Result<usize> {
    raw(nr::DUP2, [old, new, 0, 0, 0, 0])
}

pub fn dup3(old: usize, new: usize, flags: usize) -> Result<usize> {
    raw(nr::DUP3, [old, new, flags, 0, 0, 0])
}

pub fn fcntl(fd: usize, cmd: usize, arg: usize) -> Result<usize> {
    raw(nr::FCNTL, [fd, cmd, arg, 0, 0, 0])
}

/// The time-stamp counter (cycles; instructions under QEMU's -icount):
/// what the benchmarks and timing tests read. Ring 3 may, on both kernels.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter (neither kernel sets CR4.TSD).
    unsafe { core::arch::x86_64::_rdtsc() }
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

// ---- memory ---------------------------------------------------------------

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const PROT_EXEC: usize = 4;
pub const RW: usize = PROT_READ | PROT_WRITE;

pub const MAP_SHARED: usize = 0x1;
pub const MAP_PRIVATE: usize = 0x2;
pub const MAP_SHARED_VALIDATE: usize = 0x3;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_32BIT: usize = 0x40;
pub const MAP_GROWSDOWN: usize = 0x100;
pub const MAP_LOCKED: usize = 0x2000;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_POPULATE: usize = 0x8000;
pub const MAP_STACK: usize = 0x20000;
pub const MAP_HUGETLB: usize = 0x40000;
pub const MAP_FIXED_NOREPLACE: usize = 0x100000;
pub const MAP_UNINITIALIZED: usize = 0x400_0000;
pub const MAP_HUGE_2MB: usize = 21 << 26;
/// The BSD flags (pageos's upper-half encoding).
pub const fn map_aligned(n: usize) -> usize {
    n << 32
}
pub const MAP_ALIGNED_SUPER: usize = 1 << 32;
pub const MAP_GUARD: usize = 1 << 40;
pub const MAP_EXCL: usize = 1 << 41;
pub const MAP_NOCORE: usize = 1 << 42;
pub const MAP_NOSYNC: usize = 1 << 43;
pub const MAP_HASSEMAPHORE: usize = 1 << 44;
pub const MAP_TRYFIXED: usize = 1 << 45;
pub const MAP_PREFAULT_READ: usize = 1 << 46;
pub const MAP_INHERIT: usize = 1 << 47;
pub const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

pub const MS_ASYNC: usize = 1;
pub const MS_INVALIDATE: usize = 2;
pub const MS_SYNC: usize = 4;

pub const MADV_NORMAL: usize = 0;
pub const MADV_RANDOM: usize = 1;
pub const MADV_SEQUENTIAL: usize = 2;
pub const MADV_WILLNEED: usize = 3;
pub const MADV_DONTNEED: usize = 4;
pub const MADV_FREE: usize = 8;

pub const INHERIT_SHARE: usize = 0;
pub const INHERIT_COPY: usize = 1;
pub const INHERIT_NONE: usize = 2;
pub const INHERIT_ZERO: usize = 3;

pub fn mmap(
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
    fd: i32,
    offset: usize,
) -> Result<usize> {
    raw(nr::MMAP, [addr, len, prot, flags, fd as usize, offset])
}

/// Private anonymous read-write memory anywhere.
pub fn mmap_anon(len: usize) -> Result<usize> {
    mmap(0, len, RW, ANON, -1, 0)
}

pub fn munmap(addr: usize, len: usize) -> Result<usize> {
    raw(nr::MUNMAP, [addr, len, 0, 0, 0, 0])
}

pub fn mprotect(addr: usize, len: usize, prot: usize) -> Result<usize> {
    raw(nr::MPROTECT, [addr, len, prot, 0, 0, 0])
}

pub fn madvise(addr: usize, len: usize, advice: usize) -> Result<usize> {
    raw(nr::MADVISE, [addr, len, advice, 0, 0, 0])
}

pub fn msync(addr: usize, len: usize, flags: usize) -> Result<usize> {
    raw(nr::MSYNC, [addr, len, flags, 0, 0, 0])
}

pub fn mincore(addr: usize, len: usize, vec: &mut [u8]) -> Result<usize> {
    assert!(
        vec.len() >= len.div_ceil(4096),
        "sys::mincore: vector too short"
    );
    raw(nr::MINCORE, [addr, len, vec.as_mut_ptr() as usize, 0, 0, 0])
}

pub fn mlock(addr: usize, len: usize) -> Result<usize> {
    raw(nr::MLOCK, [addr, len, 0, 0, 0, 0])
}

pub fn munlock(addr: usize, len: usize) -> Result<usize> {
    raw(nr::MUNLOCK, [addr, len, 0, 0, 0, 0])
}

pub fn minherit(addr: usize, len: usize, inherit: usize) -> Result<usize> {
    raw(nr::MINHERIT, [addr, len, inherit, 0, 0, 0])
}

/// The raw brk syscall: returns the break in force afterwards.
pub fn brk(addr: usize) -> usize {
    raw(nr::BRK, [addr, 0, 0, 0, 0, 0]).unwrap_or(0)
}

/// Read a byte of memory the way a program would; if the page is not
/// readable, the process gets the fault (that is what the tests check).
pub fn peek(addr: usize) -> u8 {
    // SAFETY: the tests only peek at addresses they mapped, or on purpose
    // at ones whose fault they are testing.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

/// Write a byte of memory the way a program would (see `peek`).
pub fn poke(addr: usize, value: u8) {
    // SAFETY: as for `peek`.
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}

// ---- processes ---------------------------------------------------------

pub const ESRCH: Errno = Errno(3);
pub const EINTR: Errno = Errno(4);
pub const E2BIG: Errno = Errno(7);
pub const ENOEXEC: Errno = Errno(8);
pub const ETXTBSY: Errno = Errno(26);

pub mod nr_proc {
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const GETPPID: usize = 110;
}

pub const WNOHANG: usize = 1;

/// fork: Ok(0) in the child, Ok(child's pid) in the parent.
pub fn fork() -> Result<usize> {
    raw(nr_proc::FORK, [0; 6])
}

pub fn getppid() -> usize {
    raw(nr_proc::GETPPID, [0; 6]).unwrap_or(0)
}

/// execve with NUL-terminated strings and NULL-terminated pointer arrays
/// (the caller builds them: `b"/bin/x\0"`, `[p1, p2, null]`).
pub fn execve(path: *const u8, argv: *const *const u8, envp: *const *const u8) -> Result<usize> {
    raw(
        nr_proc::EXECVE,
        [path as usize, argv as usize, envp as usize, 0, 0, 0],
    )
}

/// wait4(pid, &status, options, NULL): the reaped child's pid (0 with
/// WNOHANG when none has exited yet).
pub fn wait4(pid: isize, status: &mut i32, options: usize) -> Result<usize> {
    raw(
        nr_proc::WAIT4,
        [pid as usize, status as *mut i32 as usize, options, 0, 0, 0],
    )
}

pub fn kill(pid: isize, signal: usize) -> Result<usize> {
    raw(nr_proc::KILL, [pid as usize, signal, 0, 0, 0, 0])
}

/// The wait status's parts, as <sys/wait.h>'s macros.
pub fn exited(status: i32) -> Option<i32> {
    (status & 0x7f == 0).then_some((status >> 8) & 0xff)
}

pub fn killed_by(status: i32) -> Option<i32> {
    (status & 0x7f != 0 && status & 0x7f != 0x7f).then_some(status & 0x7f)
}

// ---- signals -----------------------------------------------------------

pub mod nr_signal {
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const RT_SIGRETURN: usize = 15;
}

pub const SIGILL: usize = 4;
pub const SIGTRAP: usize = 5;
pub const SIGABRT: usize = 6;
pub const SIGBUS: usize = 7;
pub const SIGFPE: usize = 8;
pub const SIGKILL: usize = 9;
pub const SIGUSR1: usize = 10;
pub const SIGSEGV: usize = 11;
pub const SIGUSR2: usize = 12;
pub const SIGTERM: usize = 15;
pub const SIGCHLD: usize = 17;
pub const SIGSTOP: usize = 19;

pub const SIG_DFL: usize = 0;
pub const SIG_IGN: usize = 1;
pub const SA_SIGINFO: usize = 4;
pub const SA_RESTORER: usize = 0x0400_0000;
pub const SA_NODEFER: usize = 0x4000_0000;
pub const SIG_BLOCK: usize = 0;
pub const SIG_UNBLOCK: usize = 1;
pub const SIG_SETMASK: usize = 2;

pub const SI_USER: i32 = 0;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

/// The kernel's struct sigaction on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: usize,
    pub flags: usize,
    pub restorer: usize,
    pub mask: u64,
}

/// siginfo_t's first fields; `fields` is the union (si_addr for faults,
/// si_pid and si_uid for kill).
#[repr(C)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    _pad: i32,
    pub fields: [u64; 14],
}

impl SigInfo {
    pub fn addr(&self) -> usize {
        self.fields[0] as usize
    }

    pub fn pid(&self) -> u32 {
        self.fields[0] as u32
    }
}

/// A handler as SA_SIGINFO calls it: signal, siginfo, ucontext.
pub type Handler = extern "C" fn(i32, &SigInfo, *mut u8);

/// Where a handler returns: calls rt_sigreturn (musl's __restore_rt).
#[unsafe(naked)]
pub extern "C" fn restore_rt() -> ! {
    core::arch::naked_asm!("mov rax, 15", "syscall", "ud2");
}

pub fn rt_sigaction(
    signal: usize,
    new: Option<&SigAction>,
    old: Option<&mut SigAction>,
) -> Result<usize> {
    let new = new.map_or(0, |a| a as *const SigAction as usize);
    let old = old.map_or(0, |a| a as *mut SigAction as usize);
    raw(nr_signal::RT_SIGACTION, [signal, new, old, 8, 0, 0])
}

/// Catch `signal` with `handler` (SA_SIGINFO, our restorer) and `flags`.
pub fn catch(signal: usize, handler: Handler, flags: usize) -> Result<usize> {
    let action = SigAction {
        handler: handler as usize,
        flags: flags | SA_SIGINFO | SA_RESTORER,
        restorer: restore_rt as *const () as usize,
        mask: 0,
    };
    rt_sigaction(signal, Some(&action), None)
}

/// Set `signal` to SIG_DFL or SIG_IGN.
pub fn set_disposition(signal: usize, disposition: usize) -> Result<usize> {
    let action = SigAction {
        handler: disposition,
        flags: SA_RESTORER,
        restorer: restore_rt as *const () as usize,
        mask: 0,
    };
    rt_sigaction(signal, Some(&action), None)
}

pub fn rt_sigprocmask(how: usize, set: Option<u64>, old: Option<&mut u64>) -> Result<usize> {
    let set_word = set.unwrap_or(0);
    let set_ptr = set.map_or(0, |_| &set_word as *const u64 as usize);
    let old = old.map_or(0, |o| o as *mut u64 as usize);
    raw(nr_signal::RT_SIGPROCMASK, [how, set_ptr, old, 8, 0, 0])
}

pub const fn sigbit(signal: usize) -> u64 {
    1 << (signal - 1)
}
