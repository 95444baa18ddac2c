//! `probe`: small behaviours the QEMU tests check from outside, one per
//! sub-command: `probe exit N`, `probe segv`, `probe args A B..`, `probe ud2`,
//! `probe spin` (never exits), `probe cat PATH`, `probe mmap` (where a page lands), `probe syscalls` (the
//! foundation's syscall cases, as a test report).
#![no_std]
#![no_main]

use rt::sys;
use rt::test::{Report, why};
use rt::{Args, ensure, println};

rt::main!(main);

fn main(args: Args) -> i32 {
    match args.get(1) {
        "exit" => args.get(2).parse().unwrap_or(255),
        "segv" => {
            // SAFETY: deliberately not: this store must kill the process with SIGSEGV.
            unsafe { core::ptr::write_volatile(core::ptr::null_mut::<u64>(), 1) };
            0
        }
        "ud2" => {
            // SAFETY: deliberately raises #UD: the process dies with SIGILL.
            unsafe { core::arch::asm!("ud2") };
            0
        }
        "args" => {
            for i in 0..args.len() {
                println!("argv[{i}]={}", args.get(i));
            }
            for var in args.env() {
                println!("env {var}");
            }
            0
        }
        "syscalls" => syscalls(),
        "spin" => loop {
            core::hint::spin_loop();
        },
        "cat" => cat(args.get(2)),
        "mmap" => match sys::mmap_anon(4096) {
            // Where placement put a page: the ASLR tests compare two boots.
            Ok(addr) => {
                println!("mmap at {addr:#x}");
                0
            }
            Err(e) => e.0,
        },
        other => {
            println!("probe: unknown command {other:?}");
            2
        }
    }
}

fn syscalls() -> i32 {
    let mut report = Report::default();
    report.case("getpid_is_positive", || {
        ensure!(sys::getpid() > 0, "getpid returned 0")
    });
    report.case("write_bad_pointer_is_efault", || {
        let r = sys::raw(sys::nr::WRITE, [1, 0x10, 8, 0, 0, 0]);
        ensure!(r == Err(sys::EFAULT), "got {r:?}")
    });
    report.case("write_kernel_pointer_is_efault", || {
        let r = sys::raw(sys::nr::WRITE, [1, 0xffff_8000_0000_0000, 8, 0, 0, 0]);
        ensure!(r == Err(sys::EFAULT), "got {r:?}")
    });
    report.case("write_noncanonical_pointer_is_efault", || {
        let r = sys::raw(sys::nr::WRITE, [1, 0x0000_9000_0000_0000, 8, 0, 0, 0]);
        ensure!(r == Err(sys::EFAULT), "got {r:?}")
    });
    report.case("write_bad_fd_is_ebadf", || {
        let r = sys::write(57, b"x");
        ensure!(r == Err(sys::EBADF), "got {r:?}")
    });
    report.case("open_missing_is_enoent", || {
        let r = sys::open("/no/such/file\0", 0);
        ensure!(r == Err(sys::ENOENT), "got {r:?}")
    });
    report.case("open_read_close", || {
        let fd = sys::open("/sbin/init\0", 0).map_err(why("open"))?;
        let mut magic = [0u8; 4];
        let n = sys::read(fd as i32, &mut magic).map_err(why("read"))?;
        ensure!(n == 4 && magic == *b"\x7fELF", "read {n} bytes {magic:?}")?;
        sys::close(fd).map_err(why("close"))?;
        let again = sys::close(fd);
        ensure!(again == Err(sys::EBADF), "second close gave {again:?}")
    });
    report.case("read_into_bad_pointer_is_efault", || {
        let fd = sys::open("/sbin/init\0", 0).map_err(why("open"))?;
        let r = sys::raw(sys::nr::READ, [fd, 0xffff_ffff_8000_0000, 16, 0, 0, 0]);
        let _ = sys::close(fd);
        ensure!(r == Err(sys::EFAULT), "got {r:?}")
    });
    report.case("unknown_syscall_is_enosys", || {
        let r = sys::raw(450, [0; 6]);
        ensure!(r == Err(sys::ENOSYS), "got {r:?}")
    });
    report.finish()
}

/// Print a file: how the tests see what `--file` put in the ramfs.
fn cat(path: &str) -> i32 {
    let mut name = [0u8; 256];
    if path.len() >= name.len() {
        return 2;
    }
    name[..path.len()].copy_from_slice(path.as_bytes());
    let fd = match sys::raw(sys::nr::OPEN, [name.as_ptr() as usize, 0, 0, 0, 0, 0]) {
        Ok(fd) => fd as i32,
        Err(e) => {
            println!("cat: {path}: errno {}", e.0);
            return 1;
        }
    };
    let mut buf = [0u8; 512];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 || sys::write(1, &buf[..n]).is_err() {
            break;
        }
    }
    0
}
