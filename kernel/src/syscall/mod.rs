//! The system call table: Linux x86_64's numbers and calling convention.
//!
//! `syscall` puts the number in rax and the arguments in rdi, rsi, rdx, r10,
//! r8, r9; the entry (arch/syscall.rs) saves them in a `TrapFrame`, and the
//! result goes back in rax: a value, or `-errno`. A number we do not
//! implement returns -ENOSYS and is logged once.

mod attr;
mod fallocate;
mod fs;
mod io;
pub mod limits;
mod lock;
pub mod memfd;
mod memory;
mod names;
mod poll;
mod process;
mod signal;
mod stat;
mod swap;
mod system;
pub mod time;
mod unix;

use crate::arch::idt::TrapFrame;
use core::sync::atomic::{AtomicU64, Ordering};
use vm::errno::{Errno, SysResult};

pub const SYS_READ: u64 = 0;
pub const SYS_WRITE: u64 = 1;
pub const SYS_OPEN: u64 = 2;
pub const SYS_CLOSE: u64 = 3;
pub const SYS_STAT: u64 = 4;
pub const SYS_FSTAT: u64 = 5;
pub const SYS_LSTAT: u64 = 6;
pub const SYS_LSEEK: u64 = 8;
pub const SYS_MMAP: u64 = 9;
pub const SYS_MPROTECT: u64 = 10;
pub const SYS_MUNMAP: u64 = 11;
pub const SYS_BRK: u64 = 12;
pub const SYS_PREAD64: u64 = 17;
pub const SYS_PWRITE64: u64 = 18;
pub const SYS_READV: u64 = 19;
pub const SYS_WRITEV: u64 = 20;
pub const SYS_SCHED_YIELD: u64 = 24;
pub const SYS_MREMAP: u64 = 25;
pub const SYS_MSYNC: u64 = 26;
pub const SYS_MINCORE: u64 = 27;
pub const SYS_MADVISE: u64 = 28;
pub const SYS_DUP: u64 = 32;
pub const SYS_DUP2: u64 = 33;
pub const SYS_PAUSE: u64 = 34;
pub const SYS_GETPID: u64 = 39;
pub const SYS_EXIT: u64 = 60;
pub const SYS_FCNTL: u64 = 72;
pub const SYS_TRUNCATE: u64 = 76;
pub const SYS_FTRUNCATE: u64 = 77;
pub const SYS_MKDIR: u64 = 83;
pub const SYS_RMDIR: u64 = 84;
pub const SYS_UNLINK: u64 = 87;
pub const SYS_MLOCK: u64 = 149;
pub const SYS_MUNLOCK: u64 = 150;
pub const SYS_GETDENTS64: u64 = 217;
pub const SYS_EXIT_GROUP: u64 = 231;
pub const SYS_OPENAT: u64 = 257;
pub const SYS_MKDIRAT: u64 = 258;
pub const SYS_NEWFSTATAT: u64 = 262;
pub const SYS_UNLINKAT: u64 = 263;
pub const SYS_DUP3: u64 = 292;
/// FreeBSD's minherit, at a number Linux will not use (DESIGN §2).
pub const SYS_MINHERIT: u64 = 1000;
// Processes, signals and the small calls of musl's start-up and stdio.
pub const SYS_RT_SIGACTION: u64 = 13;
pub const SYS_RT_SIGPROCMASK: u64 = 14;
pub const SYS_RT_SIGRETURN: u64 = 15;
pub const SYS_RT_SIGSUSPEND: u64 = 130;
pub const SYS_SIGALTSTACK: u64 = 131;
pub const SYS_PERSONALITY: u64 = 135;
pub const SYS_IOCTL: u64 = 16;
pub const SYS_CLONE: u64 = 56;
pub const SYS_SYNC: u64 = 162;
pub const SYS_SYNCFS: u64 = 306;
pub const SYS_GETCWD: u64 = 79;
pub const SYS_CHDIR: u64 = 80;
pub const SYS_FCHDIR: u64 = 81;
pub const SYS_SETPGID: u64 = 109;
pub const SYS_GETPGRP: u64 = 111;
pub const SYS_SETSID: u64 = 112;
pub const SYS_GETPGID: u64 = 121;
pub const SYS_GETSID: u64 = 124;
pub const SYS_FORK: u64 = 57;
pub const SYS_VFORK: u64 = 58;
pub const SYS_EXECVE: u64 = 59;
pub const SYS_WAIT4: u64 = 61;
pub const SYS_KILL: u64 = 62;
pub const SYS_UNAME: u64 = 63;
pub const SYS_GETUID: u64 = 102;
pub const SYS_GETGID: u64 = 104;
pub const SYS_GETEUID: u64 = 107;
pub const SYS_GETEGID: u64 = 108;
pub const SYS_GETPPID: u64 = 110;
pub const SYS_ARCH_PRCTL: u64 = 158;
pub const SYS_SWAPON: u64 = 167;
pub const SYS_REBOOT: u64 = 169;
pub const SYS_GETTID: u64 = 186;
pub const SYS_TKILL: u64 = 200;
pub const SYS_FUTEX: u64 = 202;
pub const SYS_SET_TID_ADDRESS: u64 = 218;
pub const SYS_NANOSLEEP: u64 = 35;
pub const SYS_GETTIMEOFDAY: u64 = 96;
pub const SYS_TIME: u64 = 201;
pub const SYS_CLOCK_GETTIME: u64 = 228;
pub const SYS_CLOCK_GETRES: u64 = 229;
pub const SYS_CLOCK_NANOSLEEP: u64 = 230;
pub const SYS_TGKILL: u64 = 234;
pub const SYS_GETRANDOM: u64 = 318;
// Files, names and attributes (issue 18's system API).
pub const SYS_ACCESS: u64 = 21;
pub const SYS_SENDFILE: u64 = 40;
pub const SYS_SHUTDOWN: u64 = 48;
pub const SYS_SOCKETPAIR: u64 = 53;
pub const SYS_PIPE: u64 = 22;
pub const SYS_SELECT: u64 = 23;
pub const SYS_POLL: u64 = 7;
pub const SYS_PSELECT6: u64 = 270;
pub const SYS_PPOLL: u64 = 271;
pub const SYS_PIPE2: u64 = 293;
pub const SYS_FSYNC: u64 = 74;
pub const SYS_FDATASYNC: u64 = 75;
pub const SYS_RENAME: u64 = 82;
pub const SYS_CREAT: u64 = 85;
pub const SYS_LINK: u64 = 86;
pub const SYS_SYMLINK: u64 = 88;
pub const SYS_READLINK: u64 = 89;
pub const SYS_CHMOD: u64 = 90;
pub const SYS_FCHMOD: u64 = 91;
pub const SYS_CHOWN: u64 = 92;
pub const SYS_FCHOWN: u64 = 93;
pub const SYS_LCHOWN: u64 = 94;
pub const SYS_GETRLIMIT: u64 = 97;
pub const SYS_GETRUSAGE: u64 = 98;
pub const SYS_SYSINFO: u64 = 99;
pub const SYS_TIMES: u64 = 100;
pub const SYS_SETUID: u64 = 105;
pub const SYS_SETGID: u64 = 106;
pub const SYS_SETREUID: u64 = 113;
pub const SYS_SETREGID: u64 = 114;
pub const SYS_GETGROUPS: u64 = 115;
pub const SYS_SETGROUPS: u64 = 116;
pub const SYS_SETRESUID: u64 = 117;
pub const SYS_GETRESUID: u64 = 118;
pub const SYS_SETRESGID: u64 = 119;
pub const SYS_GETRESGID: u64 = 120;
pub const SYS_MKNOD: u64 = 133;
pub const SYS_STATFS: u64 = 137;
pub const SYS_FSTATFS: u64 = 138;
pub const SYS_PRCTL: u64 = 157;
pub const SYS_SETRLIMIT: u64 = 160;
pub const SYS_MOUNT: u64 = 165;
pub const SYS_UMOUNT2: u64 = 166;
pub const SYS_MKNODAT: u64 = 259;
pub const SYS_FCHOWNAT: u64 = 260;
pub const SYS_RENAMEAT: u64 = 264;
pub const SYS_LINKAT: u64 = 265;
pub const SYS_SYMLINKAT: u64 = 266;
pub const SYS_READLINKAT: u64 = 267;
pub const SYS_FCHMODAT: u64 = 268;
pub const SYS_FACCESSAT: u64 = 269;
pub const SYS_SET_ROBUST_LIST: u64 = 273;
pub const SYS_GET_ROBUST_LIST: u64 = 274;
pub const SYS_UTIMENSAT: u64 = 280;
pub const SYS_PRLIMIT64: u64 = 302;
pub const SYS_RENAMEAT2: u64 = 316;
pub const SYS_STATX: u64 = 332;
pub const SYS_RSEQ: u64 = 334;
pub const SYS_FACCESSAT2: u64 = 439;
pub const SYS_MLOCKALL: u64 = 151;
pub const SYS_MUNLOCKALL: u64 = 152;
pub const SYS_MLOCK2: u64 = 325;
pub const SYS_MEMFD_CREATE: u64 = 319;
pub const SYS_FALLOCATE: u64 = 285;

/// The six argument registers, in the ABI's order.
pub struct Args([u64; 6]);

impl Args {
    fn from_frame(f: &TrapFrame) -> Self {
        Args([f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9])
    }
}

/// Called by the syscall entry with the caller's saved registers. On the
/// way out, pending signals are delivered (which may run a handler or end
/// the process). Returns whether the entry may leave by sysretq.
pub extern "C" fn dispatch(frame: &mut TrapFrame) -> bool {
    if let Some(value) = lockless(frame) {
        frame.rax = value;
        return crate::arch::syscall::can_sysret(frame);
    }
    // One CPU at a time in the kernel (kernel_lock.rs); let go below, on
    // the way back to user mode.
    crate::kernel_lock::enter();
    let nr = frame.rax;
    let a = Args::from_frame(frame).0;
    let result: SysResult = match nr {
        SYS_READ => io::read(a[0], a[1], a[2]),
        SYS_WRITE => io::write(a[0], a[1], a[2]),
        SYS_PREAD64 => io::pread(a[0], a[1], a[2], a[3]),
        SYS_PWRITE64 => io::pwrite(a[0], a[1], a[2], a[3]),
        SYS_READV => io::readv(a[0], a[1], a[2]),
        SYS_WRITEV => io::writev(a[0], a[1], a[2]),
        SYS_LSEEK => io::lseek(a[0], a[1], a[2]),
        SYS_CLOSE => io::close(a[0]),
        SYS_DUP => io::dup(a[0]),
        SYS_DUP2 => io::dup2(a[0], a[1]),
        SYS_DUP3 => io::dup3(a[0], a[1], a[2]),
        SYS_FCNTL => io::fcntl(a[0], a[1], a[2]),
        SYS_FSTAT => io::fstat(a[0], a[1]),
        SYS_FTRUNCATE => io::ftruncate(a[0], a[1]),
        SYS_GETDENTS64 => io::getdents64(a[0], a[1], a[2]),
        SYS_OPEN => fs::open(a[0], a[1], a[2]),
        SYS_OPENAT => fs::openat(a[0] as i32, a[1], a[2], a[3]),
        SYS_STAT => fs::stat(a[0], a[1]),
        SYS_LSTAT => fs::lstat(a[0], a[1]),
        SYS_NEWFSTATAT => fs::fstatat(a[0] as i32, a[1], a[2], a[3]),
        SYS_UNLINK => fs::unlink(a[0]),
        SYS_UNLINKAT => fs::unlinkat(a[0] as i32, a[1], a[2]),
        SYS_RMDIR => fs::rmdir(a[0]),
        SYS_MKDIR => fs::mkdir(a[0], a[1]),
        SYS_MKDIRAT => fs::mkdirat(a[0] as i32, a[1], a[2]),
        SYS_TRUNCATE => fs::truncate(a[0], a[1]),
        SYS_MMAP => memory::mmap(a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_MPROTECT => memory::mprotect(a[0], a[1], a[2]),
        SYS_MUNMAP => memory::munmap(a[0], a[1]),
        SYS_BRK => memory::brk(a[0]),
        SYS_MREMAP => memory::mremap(a[0], a[1], a[2], a[3], a[4]),
        SYS_MSYNC => memory::msync(a[0], a[1], a[2]),
        SYS_MINCORE => memory::mincore(a[0], a[1], a[2]),
        SYS_MADVISE => memory::madvise(a[0], a[1], a[2]),
        SYS_MLOCK => memory::mlock(a[0], a[1], true),
        SYS_MUNLOCK => memory::mlock(a[0], a[1], false),
        SYS_MINHERIT => memory::minherit(a[0], a[1], a[2]),
        SYS_SCHED_YIELD => process::sched_yield(),
        SYS_GETPID => process::getpid(),
        SYS_EXIT => process::exit_thread(a[0]),
        SYS_EXIT_GROUP => process::exit(a[0]),
        // Processes, signals, start-up and stdio.
        SYS_FORK | SYS_VFORK => process::fork(frame),
        SYS_CLONE => process::clone(frame, a[0], a[1], a[2], a[3], a[4]),
        SYS_SETPGID => process::setpgid(a[0], a[1]),
        // Files live in RAM: there is nothing to write back.
        SYS_SYNC => Ok(0),
        SYS_SYNCFS => io::fsync(a[0]),
        SYS_GETCWD => fs::getcwd(a[0], a[1]),
        SYS_CHDIR => fs::chdir(a[0]),
        SYS_FCHDIR => fs::fchdir(a[0]),
        SYS_GETPGRP => process::getpgid(0),
        SYS_GETPGID => process::getpgid(a[0]),
        SYS_GETSID => process::getsid(a[0]),
        SYS_SETSID => process::setsid(),
        SYS_EXECVE => process::execve(frame, a[0], a[1], a[2]),
        SYS_WAIT4 => process::wait4(a[0], a[1], a[2], a[3]),
        SYS_KILL => process::kill(a[0], a[1]),
        SYS_TKILL => process::tkill(a[0], a[1]),
        SYS_TGKILL => process::tgkill(a[0], a[1], a[2]),
        SYS_GETPPID => process::getppid(),
        SYS_GETTID => process::gettid(),
        SYS_FUTEX => crate::futex::futex(a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_SET_TID_ADDRESS => process::set_tid_address(a[0]),
        SYS_RT_SIGACTION => signal::rt_sigaction(a[0], a[1], a[2], a[3]),
        SYS_RT_SIGPROCMASK => signal::rt_sigprocmask(a[0], a[1], a[2], a[3]),
        SYS_RT_SIGRETURN => signal::rt_sigreturn(frame),
        SYS_RT_SIGSUSPEND => signal::rt_sigsuspend(a[0], a[1]),
        SYS_PAUSE => signal::pause(),
        SYS_SIGALTSTACK => signal::sigaltstack(a[0], a[1], frame.rsp),
        SYS_PERSONALITY => process::personality(a[0]),
        SYS_ARCH_PRCTL => system::arch_prctl(a[0], a[1]),
        SYS_UNAME => system::uname(a[0]),
        SYS_CLOCK_GETTIME => time::clock_gettime(a[0], a[1]),
        SYS_CLOCK_GETRES => time::clock_getres(a[0], a[1]),
        SYS_GETTIMEOFDAY => time::gettimeofday(a[0], a[1]),
        SYS_TIME => time::time(a[0]),
        SYS_NANOSLEEP => time::nanosleep(a[0], a[1]),
        SYS_CLOCK_NANOSLEEP => time::clock_nanosleep(a[0], a[1], a[2], a[3]),
        SYS_GETRANDOM => system::getrandom(a[0], a[1], a[2]),
        SYS_IOCTL => system::ioctl(a[0], a[1], a[2]),
        SYS_REBOOT => system::reboot(a[0], a[1], a[2]),
        SYS_SWAPON => swap::swapon(a[0], a[1]),
        SYS_GETUID => system::id(system::Id::Uid),
        SYS_GETEUID => system::id(system::Id::Euid),
        SYS_GETGID => system::id(system::Id::Gid),
        SYS_GETEGID => system::id(system::Id::Egid),
        _ => dispatch_sysapi(nr, a),
    };
    frame.rax = match result {
        // SA_RESTART: run the call again once the handler has returned
        // (the frame the handler's sigreturn restores points back at the
        // `syscall` instruction, with the number in rax again).
        Err(Errno::EINTR) if restartable(nr) && crate::signal::restarts() => {
            frame.rip -= SYSCALL_INSN_LEN;
            nr
        }
        Ok(value) => value as u64,
        Err(errno) => errno.to_return(),
    };
    crate::reclaim::balance();
    crate::sleep::wake_deferred();
    crate::signal::deliver_pending(frame);
    crate::kernel_lock::leave();
    crate::arch::syscall::can_sysret(frame)
}

/// The calls answered without the kernel lock when nothing they need is
/// the lock's (as `trap.rs` answers first-touch faults): clock_gettime on
/// the TSC clocks, munmap of anonymous memory. None: the call goes the usual way, under the lock
/// (also whenever a signal may be pending or reclaim is due, which the
/// way back from a locked call sees to).
fn lockless(frame: &TrapFrame) -> Option<u64> {
    if crate::signal::may_be_pending() || crate::reclaim::due() {
        return None;
    }
    match frame.rax {
        SYS_CLOCK_GETTIME => time::clock_gettime_lockless(frame.rdi, frame.rsi),
        SYS_MUNMAP => memory::munmap_lockless(frame.rdi, frame.rsi),
        _ => None,
    }
}

/// `syscall` is two bytes (0f 05): a restarted call goes back by that much.
const SYSCALL_INSN_LEN: u64 = 2;

/// The calls Linux restarts after a handler with SA_RESTART (its
/// ERESTARTSYS ones, signal(7)): reads and writes that block, wait4,
/// waitid, blocking record locks and flock, open, ioctl and the socket
/// calls. Not nanosleep, poll, select, sigsuspend or pause: those end with
/// EINTR whatever the flags say.
fn restartable(nr: u64) -> bool {
    const SYS_CONNECT: u64 = 42;
    const SYS_ACCEPT: u64 = 43;
    const SYS_SENDTO: u64 = 44;
    const SYS_RECVFROM: u64 = 45;
    const SYS_SENDMSG: u64 = 46;
    const SYS_RECVMSG: u64 = 47;
    const SYS_FLOCK: u64 = 73;
    const SYS_WAITID: u64 = 247;
    matches!(
        nr,
        SYS_READ
            | SYS_WRITE
            | SYS_READV
            | SYS_WRITEV
            | SYS_PREAD64
            | SYS_PWRITE64
            | SYS_WAIT4
            | SYS_WAITID
            | SYS_FCNTL
            | SYS_FLOCK
            | SYS_OPEN
            | SYS_OPENAT
            | SYS_IOCTL
            | SYS_SENDFILE
            | SYS_CONNECT
            | SYS_ACCEPT
            | SYS_SENDTO
            | SYS_RECVFROM
            | SYS_SENDMSG
            | SYS_RECVMSG
    )
}

/// The calls real programs (busybox, glibc, SQLite, Lua, LTP) need beyond
/// the core set: files' names and attributes, limits and accounting, /proc
/// and mounts, sockets, ids.
fn dispatch_sysapi(nr: u64, a: [u64; 6]) -> SysResult {
    let fd = |x: u64| x as i32;
    match nr {
        SYS_ACCESS => fs::access(a[0], a[1]),
        SYS_FACCESSAT => fs::faccessat(fd(a[0]), a[1], a[2]),
        SYS_FACCESSAT2 => fs::faccessat2(fd(a[0]), a[1], a[2], a[3]),
        SYS_CREAT => fs::creat(a[0], a[1]),
        SYS_FSYNC | SYS_FDATASYNC => io::fsync(a[0]),
        SYS_SENDFILE => io::sendfile(a[0], a[1], a[2], a[3]),
        SYS_RENAME => names::rename(a[0], a[1]),
        SYS_RENAMEAT => names::renameat(fd(a[0]), a[1], fd(a[2]), a[3]),
        SYS_RENAMEAT2 => names::renameat2(fd(a[0]), a[1], fd(a[2]), a[3], a[4]),
        SYS_LINK => names::link(a[0], a[1]),
        SYS_LINKAT => names::linkat(fd(a[0]), a[1], fd(a[2]), a[3], a[4]),
        SYS_SYMLINK => names::symlink(a[0], a[1]),
        SYS_SYMLINKAT => names::symlinkat(a[0], fd(a[1]), a[2]),
        SYS_READLINK => names::readlink(a[0], a[1], a[2]),
        SYS_READLINKAT => names::readlinkat(fd(a[0]), a[1], a[2], a[3]),
        SYS_MKNOD => names::mknod(a[0], a[1], a[2]),
        SYS_MKNODAT => names::mknodat(fd(a[0]), a[1], a[2], a[3]),
        SYS_CHMOD => attr::chmod(a[0], a[1]),
        SYS_FCHMOD => attr::fchmod(a[0], a[1]),
        SYS_FCHMODAT => attr::fchmodat(fd(a[0]), a[1], a[2]),
        SYS_CHOWN => attr::chown(a[0], a[1], a[2]),
        SYS_FCHOWN => attr::fchown(a[0], a[1], a[2]),
        SYS_LCHOWN => attr::lchown(a[0], a[1], a[2]),
        SYS_FCHOWNAT => attr::fchownat(fd(a[0]), a[1], a[2], a[3], a[4]),
        SYS_UTIMENSAT => attr::utimensat(fd(a[0]), a[1], a[2], a[3]),
        SYS_STATX => attr::statx(fd(a[0]), a[1], a[2], a[3], a[4]),
        SYS_STATFS => attr::statfs(a[0], a[1]),
        SYS_FSTATFS => attr::fstatfs(a[0], a[1]),
        SYS_GETRLIMIT => limits::getrlimit(a[0], a[1]),
        SYS_SETRLIMIT => limits::setrlimit(a[0], a[1]),
        SYS_PRLIMIT64 => limits::prlimit64(a[0], a[1], a[2], a[3]),
        SYS_GETRUSAGE => limits::getrusage(a[0], a[1]),
        SYS_TIMES => limits::times(a[0]),
        SYS_SYSINFO => system::sysinfo(a[0]),
        SYS_PRCTL => system::prctl(a[0], a[1]),
        SYS_MOUNT => system::mount(a[0], a[1], a[2], a[3]),
        SYS_UMOUNT2 => system::umount2(a[0], a[1]),
        SYS_SET_ROBUST_LIST => system::set_robust_list(a[0], a[1]),
        SYS_GET_ROBUST_LIST => system::get_robust_list(a[0], a[1], a[2]),
        // glibc registers rseq at start-up and carries on without it.
        SYS_RSEQ => Err(Errno::ENOSYS),
        SYS_SETUID => system::setid(false, a[0]),
        SYS_SETGID => system::setid(true, a[0]),
        SYS_SETREUID | SYS_SETRESUID => system::setres(false, a[0], a[1]),
        SYS_SETREGID | SYS_SETRESGID => system::setres(true, a[0], a[1]),
        SYS_GETRESUID => system::getres(false, a[0], a[1], a[2]),
        SYS_GETRESGID => system::getres(true, a[0], a[1], a[2]),
        SYS_GETGROUPS => system::getgroups(a[0]),
        SYS_SETGROUPS => system::setgroups(a[0]),
        SYS_SOCKETPAIR => unix::socketpair(a[0], a[1], a[2], a[3]),
        SYS_SHUTDOWN => unix::shutdown(a[0], a[1]),
        SYS_PIPE => unix::pipe2(a[0], 0),
        SYS_PIPE2 => unix::pipe2(a[0], a[1]),
        SYS_POLL => poll::poll(a[0], a[1], a[2]),
        SYS_PPOLL => poll::ppoll(a[0], a[1], a[2], a[3], a[4]),
        SYS_SELECT => poll::select(a[0], a[1], a[2], a[3], a[4]),
        SYS_PSELECT6 => poll::pselect6(a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_MLOCK2 => memory::mlock2(a[0], a[1], a[2]),
        SYS_MLOCKALL => memory::mlockall(a[0]),
        SYS_MUNLOCKALL => memory::munlockall(),
        SYS_MEMFD_CREATE => memfd::memfd_create(a[0], a[1]),
        SYS_FALLOCATE => fallocate::fallocate(a[0], a[1], a[2], a[3]),
        _ => not_implemented(nr),
    }
}

/// Numbers already reported, so a program that retries one does not flood the log.
static REPORTED: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn not_implemented(nr: u64) -> SysResult {
    let (word, bit) = ((nr / 64) as usize, nr % 64);
    if let Some(slot) = REPORTED.get(word) {
        if slot.fetch_or(1 << bit, Ordering::Relaxed) & (1 << bit) == 0 {
            log::warn!("syscall {nr} is not implemented (-ENOSYS)");
        }
    } else {
        log::warn!("syscall {nr} is not implemented (-ENOSYS)");
    }
    Err(Errno::ENOSYS)
}
