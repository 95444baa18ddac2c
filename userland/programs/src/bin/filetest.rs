//! `filetest`: the ramfs and file-backed mmap, one case per rule, as a user
//! program sees them: open's flags and errors, read/write/pread/pwrite/lseek,
//! stat, ftruncate, unlink while open, directories, dup; MAP_SHARED
//! coherence in both directions, MAP_PRIVATE copy-on-write, the zero tail
//! of the last page, msync, the descriptor errors of mmap, fault-around.
//!
//! Prints `ok NAME` / `FAIL NAME: why` per case and `N passed, M failed`.
//! The same binary runs as /init of Linux (`scripts/linux-run.py
//! filetest`), where the pageos-only cases are skipped. Every case removes
//! what it created, and on pageos must give back every frame.
//!
//! `filetest fault NAME` makes one access that must raise SIGBUS (the QEMU
//! tests check the status).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use rt::sys::{self, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY, PROT_READ, RW, peek, poke};
use rt::test::{Outcome, Suite, expect_err, proc_number, why};
use rt::{Args, ensure, fail, println};

rt::main!(main);

const PAGE: usize = 4096;
const DIR: &str = "/ft";
const MAP_SHARED: usize = sys::MAP_SHARED;
const MAP_PRIVATE: usize = sys::MAP_PRIVATE;

fn main(args: Args) -> i32 {
    match sys::mkdir(DIR, 0o755) {
        Ok(_) | Err(sys::EEXIST) => {}
        Err(e) => {
            println!("filetest: cannot make {DIR}: errno {}", e.0);
            return 1;
        }
    }
    match args.get(1) {
        "" => cases(),
        "fault" => fault(args.get(2)),
        "fds" => check_fds(),
        other => {
            println!("filetest: unknown command {other:?}");
            2
        }
    }
}

fn cases() -> i32 {
    // The SIGBUS handler's statics live in .bss: bring their page in now,
    // so that the first case that uses them does not look like a leak.
    BUS_CALLS.store(0, Ordering::SeqCst);
    let mut s = Suite::new("filetest");
    files(&mut s);
    directories(&mut s);
    descriptors(&mut s);
    shared_mappings(&mut s);
    private_mappings(&mut s);
    end_of_file(&mut s);
    mmap_errors(&mut s);
    residency(&mut s);
    sigbus_handlers(&mut s);
    exec_and_descriptors(&mut s);
    s.finish()
}

// ---- helpers ----------------------------------------------------------------

/// A file path in the test directory (`name` is short).
struct Path {
    bytes: [u8; 64],
    len: usize,
}

impl Path {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

fn path(name: &str) -> Path {
    let mut p = Path {
        bytes: [0; 64],
        len: 0,
    };
    for part in [DIR, "/", name] {
        p.bytes[p.len..p.len + part.len()].copy_from_slice(part.as_bytes());
        p.len += part.len();
    }
    p
}

/// A new file `name` holding `len` bytes of `pattern(i)`, open read-write.
fn create(name: &str, len: usize) -> Result<usize, rt::test::Why> {
    let p = path(name);
    let _ = sys::unlink(p.as_str());
    let fd = sys::open_mode(p.as_str(), O_CREAT | O_RDWR | sys::O_EXCL, 0o644)
        .map_err(why("open O_CREAT"))?;
    let mut chunk = [0u8; 1024];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(done + i);
        }
        let w = sys::write(fd as i32, &chunk[..n]).map_err(why("write"))?;
        ensure!(w == n, "short write: {w} of {n}")?;
        done += n;
    }
    Ok(fd)
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

/// Close `fd` and unlink `name`.
fn remove(fd: usize, name: &str) -> Outcome {
    sys::close(fd).map_err(why("close"))?;
    sys::unlink(path(name).as_str()).map_err(why("unlink"))?;
    Ok(())
}

fn read_at(fd: usize, offset: usize, buf: &mut [u8]) -> Result<usize, rt::test::Why> {
    sys::pread(fd, buf, offset).map_err(why("pread"))
}

fn byte_at(fd: usize, offset: usize) -> Result<u8, rt::test::Why> {
    let mut b = [0u8; 1];
    let n = read_at(fd, offset, &mut b)?;
    ensure!(n == 1, "pread at {offset} returned {n}")?;
    Ok(b[0])
}

fn map(fd: usize, len: usize, prot: usize, flags: usize) -> Result<usize, rt::test::Why> {
    sys::mmap(0, len, prot, flags, fd as i32, 0).map_err(why("mmap"))
}

fn faults() -> Result<u64, rt::test::Why> {
    proc_number("/proc/vmstat\0", "pgfault")
}

// ---- files ------------------------------------------------------------------

fn files(s: &mut Suite) {
    s.both("written_bytes_read_back", || {
        let fd = create("a", 10_000)?;
        sys::lseek(fd, 0, sys::SEEK_SET).map_err(why("lseek"))?;
        let mut buf = [0u8; 4096];
        let mut at = 0;
        loop {
            let n = sys::read(fd as i32, &mut buf).map_err(why("read"))?;
            if n == 0 {
                break;
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                ensure!(b == pattern(at + i), "byte {} is {b}", at + i)?;
            }
            at += n;
        }
        ensure!(at == 10_000, "read {at} bytes")?;
        let st = sys::fstat(fd).map_err(why("fstat"))?;
        ensure!(st.size == 10_000, "st_size {}", st.size)?;
        ensure!(st.mode & sys::S_IFMT == sys::S_IFREG, "mode {:o}", st.mode)?;
        ensure!(
            st.mode & 0o777 == 0o644,
            "permissions {:o}",
            st.mode & 0o777
        )?;
        remove(fd, "a")
    });
    s.both("open_errors", || {
        let fd = create("b", 1)?;
        let p = path("b");
        expect_err(
            sys::open_mode(p.as_str(), O_CREAT | sys::O_EXCL | O_RDWR, 0o644),
            sys::EEXIST,
            "O_EXCL on an existing file",
        )?;
        expect_err(
            sys::open_mode("/ft/none", O_RDONLY, 0),
            sys::ENOENT,
            "missing file",
        )?;
        expect_err(
            sys::open_mode("/ft/b/x", O_RDONLY, 0),
            sys::ENOTDIR,
            "file as a directory",
        )?;
        expect_err(
            sys::open_mode("/ft/b/", O_RDONLY, 0),
            sys::ENOTDIR,
            "trailing slash",
        )?;
        // Access mode 3 is Linux's "neither read nor write" (for ioctl).
        let none = sys::open_mode("/ft/b", 3, 0).map_err(why("open mode 3"))?;
        expect_err(sys::read(none as i32, &mut [0]), sys::EBADF, "read, mode 3")?;
        expect_err(sys::write(none as i32, b"x"), sys::EBADF, "write, mode 3")?;
        sys::close(none).map_err(why("close"))?;
        expect_err(
            sys::raw(sys::nr::OPEN, [8, 0, 0, 0, 0, 0]),
            sys::EFAULT,
            "path at a bad address",
        )?;
        remove(fd, "b")
    });
    s.both("o_trunc_and_o_append", || {
        let fd = create("c", 5000)?;
        let p = path("c");
        let t = sys::open_mode(p.as_str(), O_RDWR | sys::O_TRUNC, 0).map_err(why("open"))?;
        ensure!(
            sys::fstat(t).map_err(why("fstat"))?.size == 0,
            "O_TRUNC left data"
        )?;
        sys::close(t).map_err(why("close"))?;
        let a = sys::open_mode(p.as_str(), O_WRONLY | sys::O_APPEND, 0).map_err(why("open"))?;
        sys::write(a as i32, b"one").map_err(why("write"))?;
        sys::lseek(a, 0, sys::SEEK_SET).map_err(why("lseek"))?;
        sys::write(a as i32, b"two").map_err(why("write"))?;
        let mut buf = [0u8; 8];
        let n = read_at(fd, 0, &mut buf)?;
        ensure!(&buf[..n] == b"onetwo", "file holds {:?}", &buf[..n])?;
        sys::close(a).map_err(why("close"))?;
        remove(fd, "c")
    });
    s.both("pread_pwrite_keep_the_offset", || {
        let fd = create("d", 100)?;
        sys::lseek(fd, 10, sys::SEEK_SET).map_err(why("lseek"))?;
        sys::pwrite(fd, b"xy", 50).map_err(why("pwrite"))?;
        ensure!(byte_at(fd, 51)? == b'y', "pwrite did not land")?;
        let here = sys::lseek(fd, 0, sys::SEEK_CUR).map_err(why("lseek"))?;
        ensure!(here == 10, "offset moved to {here}")?;
        expect_err(
            sys::pread(fd, &mut [0], usize::MAX),
            sys::EINVAL,
            "negative offset",
        )?;
        expect_err(
            sys::pread(1, &mut [0], 0),
            sys::ESPIPE,
            "pread on the console",
        )?;
        remove(fd, "d")
    });
    s.both("lseek_whence_and_errors", || {
        let fd = create("e", 300)?;
        ensure!(sys::lseek(fd, -10, sys::SEEK_END) == Ok(290), "SEEK_END")?;
        ensure!(sys::lseek(fd, 5, sys::SEEK_CUR) == Ok(295), "SEEK_CUR")?;
        ensure!(sys::lseek(fd, 0, sys::SEEK_DATA) == Ok(0), "SEEK_DATA")?;
        ensure!(sys::lseek(fd, 0, sys::SEEK_HOLE) == Ok(300), "SEEK_HOLE")?;
        expect_err(
            sys::lseek(fd, 300, sys::SEEK_DATA),
            sys::ENXIO,
            "SEEK_DATA at the end",
        )?;
        expect_err(
            sys::lseek(fd, -1, sys::SEEK_SET),
            sys::EINVAL,
            "negative offset",
        )?;
        expect_err(sys::lseek(fd, 0, 9), sys::EINVAL, "bad whence")?;
        expect_err(sys::lseek(1, 0, sys::SEEK_SET), sys::ESPIPE, "the console")?;
        expect_err(sys::lseek(999, 0, sys::SEEK_SET), sys::EBADF, "bad fd")?;
        remove(fd, "e")
    });
    s.both("writing_past_the_end_leaves_a_hole_of_zeros", || {
        let fd = create("f", 10)?;
        sys::pwrite(fd, b"z", 3 * PAGE + 7).map_err(why("pwrite"))?;
        ensure!(
            sys::fstat(fd).map_err(why("fstat"))?.size == 3 * PAGE as u64 + 8,
            "size"
        )?;
        for offset in [10, PAGE, 2 * PAGE + 5, 3 * PAGE + 6] {
            ensure!(byte_at(fd, offset)? == 0, "byte {offset} of the hole")?;
        }
        remove(fd, "f")
    });
    s.both("access_mode_is_enforced_per_descriptor", || {
        let fd = create("g", 10)?;
        let p = path("g");
        let r = sys::open_mode(p.as_str(), O_RDONLY, 0).map_err(why("open"))?;
        let w = sys::open_mode(p.as_str(), O_WRONLY, 0).map_err(why("open"))?;
        expect_err(sys::write(r as i32, b"x"), sys::EBADF, "write to O_RDONLY")?;
        expect_err(
            sys::read(w as i32, &mut [0]),
            sys::EBADF,
            "read from O_WRONLY",
        )?;
        expect_err(sys::ftruncate(r, 0), sys::EINVAL, "ftruncate of O_RDONLY")?;
        sys::close(r).map_err(why("close"))?;
        sys::close(w).map_err(why("close"))?;
        remove(fd, "g")
    });
    s.pageos("permission_bits_are_enforced", || {
        // pageos has no superuser override (Linux's root would pass).
        let p = path("h");
        let fd = sys::open_mode(p.as_str(), O_CREAT | O_RDWR, 0o444).map_err(why("create"))?;
        sys::write(fd as i32, b"new file, asked access").map_err(why("write"))?;
        expect_err(
            sys::open_mode(p.as_str(), O_WRONLY, 0),
            sys::EACCES,
            "write a 0444 file",
        )?;
        expect_err(
            sys::truncate(p.as_str(), 0),
            sys::EACCES,
            "truncate a 0444 file",
        )?;
        remove(fd, "h")
    });
    s.both("ftruncate_grows_with_zeros_and_shrinks", || {
        let fd = create("i", 3 * PAGE)?;
        sys::ftruncate(fd, 100).map_err(why("ftruncate"))?;
        ensure!(
            sys::fstat(fd).map_err(why("fstat"))?.size == 100,
            "shrunk size"
        )?;
        sys::ftruncate(fd, 2 * PAGE as isize).map_err(why("ftruncate"))?;
        ensure!(byte_at(fd, 99)? == pattern(99), "kept byte")?;
        ensure!(
            byte_at(fd, 100)? == 0 && byte_at(fd, PAGE + 1)? == 0,
            "regrown bytes"
        )?;
        expect_err(sys::ftruncate(fd, -1), sys::EINVAL, "negative length")?;
        expect_err(sys::ftruncate(999, 0), sys::EBADF, "bad fd")?;
        remove(fd, "i")
    });
    s.both("unlinked_file_lives_while_open", || {
        let fd = create("j", 2 * PAGE)?;
        sys::unlink(path("j").as_str()).map_err(why("unlink"))?;
        expect_err(
            sys::stat(path("j").as_str()).map(|_| 0),
            sys::ENOENT,
            "stat after unlink",
        )?;
        ensure!(
            byte_at(fd, PAGE + 3)? == pattern(PAGE + 3),
            "data after unlink"
        )?;
        let st = sys::fstat(fd).map_err(why("fstat"))?;
        ensure!(st.nlink == 0, "st_nlink {} after unlink", st.nlink)?;
        sys::close(fd).map_err(why("close"))?;
        Ok(())
    });
}

fn directories(s: &mut Suite) {
    s.both("directory_errors", || {
        sys::mkdir("/ft/d", 0o755).map_err(why("mkdir"))?;
        let fd = create("d/x", 1)?;
        expect_err(sys::mkdir("/ft/d", 0o755), sys::EEXIST, "mkdir existing")?;
        expect_err(
            sys::mkdir("/ft/no/d", 0o755),
            sys::ENOENT,
            "mkdir in a missing dir",
        )?;
        expect_err(
            sys::open_mode("/ft/d", O_WRONLY, 0),
            sys::EISDIR,
            "write a directory",
        )?;
        expect_err(
            sys::open_mode("/ft/d/x", sys::O_DIRECTORY, 0),
            sys::ENOTDIR,
            "O_DIRECTORY on a file",
        )?;
        expect_err(sys::rmdir("/ft/d"), sys::ENOTEMPTY, "rmdir non-empty")?;
        expect_err(sys::unlink("/ft/d"), sys::EISDIR, "unlink a directory")?;
        expect_err(sys::rmdir("/ft/d/x"), sys::ENOTDIR, "rmdir a file")?;
        let dir = sys::open_mode("/ft/d", O_RDONLY, 0).map_err(why("open dir"))?;
        expect_err(
            sys::read(dir as i32, &mut [0]),
            sys::EISDIR,
            "read a directory",
        )?;
        sys::close(dir).map_err(why("close"))?;
        remove(fd, "d/x")?;
        sys::rmdir("/ft/d").map_err(why("rmdir"))?;
        expect_err(
            sys::stat("/ft/d").map(|_| 0),
            sys::ENOENT,
            "stat after rmdir",
        )
    });
    s.both("getdents_lists_every_name", || {
        sys::mkdir("/ft/l", 0o755).map_err(why("mkdir"))?;
        let names = ["l/apple", "l/banana", "l/cherry"];
        for n in names {
            let fd = create(n, 1)?;
            sys::close(fd).map_err(why("close"))?;
        }
        let dir = sys::open_mode("/ft/l", O_RDONLY | sys::O_DIRECTORY, 0).map_err(why("open"))?;
        let mut seen = [false; 5];
        let mut buf = [0u8; 64]; // small: it takes several calls
        loop {
            let n = sys::getdents64(dir, &mut buf).map_err(why("getdents64"))?;
            if n == 0 {
                break;
            }
            let mut at = 0;
            while at < n {
                let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
                let name = &buf[at + 19..at + reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                let known = [".", "..", "apple", "banana", "cherry"];
                match known.iter().position(|k| k.as_bytes() == name) {
                    Some(i) => seen[i] = true,
                    None => return fail!("unexpected entry {name:?}"),
                }
                at += reclen;
            }
        }
        ensure!(seen.iter().all(|&s| s), "entries seen: {seen:?}")?;
        sys::lseek(dir, 0, sys::SEEK_SET).map_err(why("rewind"))?;
        expect_err(
            sys::getdents64(dir, &mut [0u8; 8]),
            sys::EINVAL,
            "a too small buffer",
        )?;
        sys::close(dir).map_err(why("close"))?;
        expect_err(
            sys::getdents64(1, &mut buf),
            sys::ENOTDIR,
            "getdents on the console",
        )?;
        for n in names {
            sys::unlink(path(n).as_str()).map_err(why("unlink"))?;
        }
        sys::rmdir("/ft/l").map_err(why("rmdir"))?;
        Ok(())
    });
}

fn descriptors(s: &mut Suite) {
    s.both("dup_shares_the_offset", || {
        let fd = create("k", 100)?;
        let d = sys::dup(fd).map_err(why("dup"))?;
        sys::lseek(fd, 40, sys::SEEK_SET).map_err(why("lseek"))?;
        ensure!(sys::lseek(d, 0, sys::SEEK_CUR) == Ok(40), "dup's offset")?;
        let d2 = sys::dup2(fd, 50).map_err(why("dup2"))?;
        ensure!(d2 == 50, "dup2 returned {d2}")?;
        ensure!(sys::dup2(fd, fd) == Ok(fd), "dup2 onto itself")?;
        expect_err(sys::dup3(fd, fd, 0), sys::EINVAL, "dup3 onto itself")?;
        expect_err(sys::dup2(999, 60), sys::EBADF, "dup2 of a bad fd")?;
        expect_err(sys::dup(999), sys::EBADF, "dup of a bad fd")?;
        let c = sys::dup3(fd, 51, sys::O_CLOEXEC).map_err(why("dup3"))?;
        ensure!(sys::fcntl(c, sys::F_GETFD, 0) == Ok(1), "dup3 O_CLOEXEC")?;
        sys::fcntl(c, sys::F_SETFD, 0).map_err(why("F_SETFD"))?;
        ensure!(sys::fcntl(c, sys::F_GETFD, 0) == Ok(0), "F_SETFD cleared")?;
        let fl = sys::fcntl(fd, sys::F_GETFL, 0).map_err(why("F_GETFL"))?;
        ensure!(fl & 3 == O_RDWR, "F_GETFL access mode {fl:#o}")?;
        let low = sys::fcntl(fd, sys::F_DUPFD, 70).map_err(why("F_DUPFD"))?;
        ensure!(low == 70, "F_DUPFD gave {low}")?;
        for x in [d, 50, c, low] {
            sys::close(x).map_err(why("close"))?;
        }
        expect_err(sys::close(d), sys::EBADF, "close twice")?;
        remove(fd, "k")
    });
}

// ---- MAP_SHARED ---------------------------------------------------------------

fn shared_mappings(s: &mut Suite) {
    s.both("shared_store_is_seen_by_read", || {
        let fd = create("m1", 2 * PAGE)?;
        let a = map(fd, 2 * PAGE, RW, MAP_SHARED)?;
        ensure!(
            peek(a + PAGE + 1) == pattern(PAGE + 1),
            "mapping shows the file"
        )?;
        poke(a + PAGE + 1, 0xab);
        ensure!(byte_at(fd, PAGE + 1)? == 0xab, "read() after a store")?;
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        remove(fd, "m1")
    });
    s.both("write_is_seen_by_a_shared_mapping", || {
        let fd = create("m2", PAGE)?;
        let a = map(fd, PAGE, PROT_READ, MAP_SHARED)?;
        ensure!(peek(a + 7) == pattern(7), "before")?;
        sys::pwrite(fd, &[0xcd], 7).map_err(why("pwrite"))?;
        ensure!(peek(a + 7) == 0xcd, "the mapping after write()")?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(fd, "m2")
    });
    s.both("shared_mapping_survives_close_and_unlink", || {
        let fd = create("m3", PAGE)?;
        let a = map(fd, PAGE, RW, MAP_SHARED)?;
        remove(fd, "m3")?;
        poke(a, 0x11);
        ensure!(
            peek(a) == 0x11 && peek(a + 1) == pattern(1),
            "after close and unlink"
        )?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.both("stores_survive_munmap_without_msync", || {
        let fd = create("m4", PAGE)?;
        let a = map(fd, PAGE, RW, MAP_SHARED)?;
        poke(a + 9, 0x99);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        let b = map(fd, PAGE, PROT_READ, MAP_SHARED)?;
        let seen = peek(b + 9);
        sys::munmap(b, PAGE).map_err(why("munmap"))?;
        ensure!(
            seen == 0x99 && byte_at(fd, 9)? == 0x99,
            "store lost: {seen:#x}"
        )?;
        remove(fd, "m4")
    });
    s.both("msync_flags_and_errors", || {
        let fd = create("m5", 2 * PAGE)?;
        let a = map(fd, 2 * PAGE, RW, MAP_SHARED)?;
        poke(a, 1);
        for flags in [
            sys::MS_SYNC,
            sys::MS_ASYNC,
            sys::MS_INVALIDATE,
            sys::MS_SYNC | sys::MS_INVALIDATE,
        ] {
            sys::msync(a, 2 * PAGE, flags).map_err(why("msync"))?;
        }
        ensure!(byte_at(fd, 0)? == 1, "msync lost the store")?;
        expect_err(
            sys::msync(a, PAGE, sys::MS_SYNC | sys::MS_ASYNC),
            sys::EINVAL,
            "SYNC|ASYNC",
        )?;
        expect_err(
            sys::msync(a + 1, PAGE, sys::MS_SYNC),
            sys::EINVAL,
            "unaligned",
        )?;
        expect_err(sys::msync(a, PAGE, 0x100), sys::EINVAL, "unknown flag")?;
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap"))?;
        expect_err(
            sys::msync(a, 2 * PAGE, sys::MS_SYNC),
            sys::ENOMEM,
            "unmapped part",
        )?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(fd, "m5")
    });
    s.both("read_into_a_fresh_shared_mapping_fills_it", || {
        let src = create("m6", PAGE)?;
        let dst = create("m7", PAGE)?;
        sys::ftruncate(dst, 0).map_err(why("ftruncate"))?;
        sys::ftruncate(dst, PAGE as isize).map_err(why("ftruncate"))?;
        let a = map(dst, PAGE, RW, MAP_SHARED)?;
        sys::lseek(src, 0, sys::SEEK_SET).map_err(why("lseek"))?;
        // SAFETY: [a, a + PAGE) is our mapping; the kernel fills it.
        let buf = unsafe { core::slice::from_raw_parts_mut(a as *mut u8, PAGE) };
        let n = sys::read(src as i32, buf).map_err(why("read"))?;
        ensure!(
            n == PAGE && byte_at(dst, 100)? == pattern(100),
            "read into the mapping"
        )?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(dst, "m7")?;
        remove(src, "m6")
    });
}

// ---- MAP_PRIVATE -----------------------------------------------------------------

fn private_mappings(s: &mut Suite) {
    s.both("private_mapping_copies_on_first_write", || {
        let fd = create("p1", PAGE)?;
        let a = map(fd, PAGE, RW, MAP_PRIVATE)?;
        ensure!(peek(a + 3) == pattern(3), "private mapping shows the file")?;
        sys::pwrite(fd, &[0x44], 3).map_err(why("pwrite"))?;
        ensure!(
            peek(a + 3) == 0x44,
            "an unwritten private page follows the file"
        )?;
        poke(a + 3, 0x55);
        ensure!(byte_at(fd, 3)? == 0x44, "a private store reached the file")?;
        sys::pwrite(fd, &[0x66], 3).map_err(why("pwrite"))?;
        ensure!(
            peek(a + 3) == 0x55,
            "the private copy changed with the file"
        )?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(fd, "p1")
    });
    s.both("private_and_shared_on_one_file", || {
        let fd = create("p2", 2 * PAGE)?;
        let sh = map(fd, 2 * PAGE, RW, MAP_SHARED)?;
        let pr = map(fd, 2 * PAGE, RW, MAP_PRIVATE)?;
        poke(sh + PAGE, 1); // before the private page is copied
        ensure!(
            peek(pr + PAGE) == 1,
            "the private mapping sees the shared store"
        )?;
        poke(pr, 2); // copies page 0 only
        poke(sh, 3);
        ensure!(peek(pr) == 2 && peek(sh) == 3, "copied page diverged")?;
        poke(sh + PAGE + 1, 4);
        ensure!(peek(pr + PAGE + 1) == 4, "uncopied page still follows")?;
        sys::munmap(sh, 2 * PAGE).map_err(why("munmap"))?;
        sys::munmap(pr, 2 * PAGE).map_err(why("munmap"))?;
        remove(fd, "p2")
    });
    s.both(
        "private_mapping_of_read_only_descriptor_may_be_written",
        || {
            let fd = create("p3", PAGE)?;
            let r = sys::open_mode(path("p3").as_str(), O_RDONLY, 0).map_err(why("open"))?;
            let a = map(r, PAGE, RW, MAP_PRIVATE)?;
            poke(a, 9);
            ensure!(byte_at(fd, 0)? == pattern(0), "file changed")?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            sys::close(r).map_err(why("close"))?;
            remove(fd, "p3")
        },
    );
}

// ---- the end of the file ------------------------------------------------------------

fn end_of_file(s: &mut Suite) {
    s.both("tail_reads_zeros_and_stores_there_do_not_extend", || {
        let fd = create("t1", 100)?;
        let a = map(fd, PAGE, RW, MAP_SHARED)?;
        ensure!(
            peek(a + 99) == pattern(99) && peek(a + 100) == 0,
            "tail not zero"
        )?;
        poke(a + 200, 7);
        let size = sys::fstat(fd).map_err(why("fstat"))?.size;
        let mut buf = [0u8; 300];
        let n = read_at(fd, 0, &mut buf)?;
        ensure!(size == 100 && n == 100, "size {size}, read {n}")?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(fd, "t1")
    });
    s.both("copy_from_a_page_past_the_end_is_efault", || {
        let fd = create("t2", 10)?;
        let a = map(fd, 2 * PAGE, PROT_READ, MAP_SHARED)?;
        // SAFETY: only the kernel reads this buffer; it lies past the end of file.
        let past = unsafe { core::slice::from_raw_parts((a + PAGE) as *const u8, 16) };
        expect_err(
            sys::write(1, past),
            sys::EFAULT,
            "write() from past the end",
        )?;
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        remove(fd, "t2")
    });
    s.both("truncate_keeps_the_pages_before_the_end", || {
        let fd = create("t3", 4 * PAGE)?;
        let a = map(fd, 4 * PAGE, RW, MAP_SHARED)?;
        poke(a + 3 * PAGE, 1);
        sys::ftruncate(fd, PAGE as isize + 1).map_err(why("ftruncate"))?;
        ensure!(
            peek(a + PAGE) == pattern(PAGE) && peek(a + PAGE + 1) == 0,
            "partial page"
        )?;
        sys::ftruncate(fd, 4 * PAGE as isize).map_err(why("ftruncate"))?;
        ensure!(peek(a + 3 * PAGE) == 0, "regrown page is not zero")?;
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        remove(fd, "t3")
    });
}

// ---- mmap's descriptor errors -----------------------------------------------------------

fn mmap_errors(s: &mut Suite) {
    s.both("mmap_descriptor_errors", || {
        let fd = create("e1", PAGE)?;
        let p = path("e1");
        let r = sys::open_mode(p.as_str(), O_RDONLY, 0).map_err(why("open"))?;
        let w = sys::open_mode(p.as_str(), O_WRONLY, 0).map_err(why("open"))?;
        let m = |fd: i32, prot, flags, off| sys::mmap(0, PAGE, prot, flags, fd, off);
        expect_err(m(999, PROT_READ, MAP_SHARED, 0), sys::EBADF, "fd 999")?;
        expect_err(
            m(-1, PROT_READ, MAP_SHARED, 0),
            sys::EBADF,
            "fd -1 without MAP_ANONYMOUS",
        )?;
        expect_err(
            m(w as i32, PROT_READ, MAP_PRIVATE, 0),
            sys::EACCES,
            "O_WRONLY",
        )?;
        expect_err(
            m(r as i32, RW, MAP_SHARED, 0),
            sys::EACCES,
            "shared write, O_RDONLY",
        )?;
        expect_err(
            m(fd as i32, PROT_READ, MAP_SHARED, 100),
            sys::EINVAL,
            "unaligned offset",
        )?;
        expect_err(m(1, PROT_READ, MAP_SHARED, 0), sys::ENODEV, "the console")?;
        let dir = sys::open_mode(DIR, O_RDONLY, 0).map_err(why("open dir"))?;
        expect_err(
            m(dir as i32, PROT_READ, MAP_SHARED, 0),
            sys::ENODEV,
            "a directory",
        )?;
        let a = m(r as i32, PROT_READ, MAP_SHARED, 0).map_err(why("mmap read-only"))?;
        expect_err(
            sys::mprotect(a, PAGE, RW),
            sys::EACCES,
            "mprotect adding write",
        )?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        for x in [r, w, dir] {
            sys::close(x).map_err(why("close"))?;
        }
        remove(fd, "e1")
    });
    s.pageos(
        "mmap_negative_offset_is_einval_and_overflow_eoverflow",
        || {
            let fd = create("e2", PAGE)?;
            // FreeBSD's rule; Linux says EOVERFLOW here too.
            let negative = sys::mmap(
                0,
                PAGE,
                PROT_READ,
                MAP_SHARED,
                fd as i32,
                usize::MAX & !0xfff,
            );
            expect_err(negative, sys::EINVAL, "negative offset")?;
            let off = 0x7fff_ffff_ffff_f000;
            let got = sys::mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd as i32, off);
            expect_err(got, sys::EOVERFLOW, "offset + len past the largest offset")?;
            remove(fd, "e2")
        },
    );
}

// ---- residency: prefault, populate, fault-around, frames ------------------------------------

fn residency(s: &mut Suite) {
    s.pageos("sequential_read_faults_once_per_16_pages", || {
        let pages = 64;
        let fd = create("r1", pages * PAGE)?;
        let a = map(fd, pages * PAGE, PROT_READ, MAP_SHARED)?;
        let before = faults()?;
        for i in 0..pages {
            peek(a + i * PAGE);
        }
        let with_around = faults()? - before;
        sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
        let a = map(fd, pages * PAGE, PROT_READ, MAP_SHARED)?;
        sys::madvise(a, pages * PAGE, sys::MADV_RANDOM).map_err(why("madvise"))?;
        let before = faults()?;
        for i in 0..pages {
            peek(a + i * PAGE);
        }
        let without = faults()? - before;
        sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
        println!("  fault-around: {pages} pages read with {with_around} faults ({without} with MADV_RANDOM)");
        // The windows are aligned in the address space, so an unaligned
        // mapping straddles one window more.
        let most = pages as u64 / 16 + 1;
        ensure!(
            with_around <= most && without == pages as u64,
            "{with_around} and {without} faults"
        )?;
        remove(fd, "r1")
    });
    s.pageos("prefault_read_and_populate_map_at_mmap_time", || {
        let fd = create("r2", 8 * PAGE)?;
        for flags in [
            MAP_SHARED | sys::MAP_PREFAULT_READ,
            MAP_PRIVATE | sys::MAP_POPULATE,
        ] {
            let a = map(fd, 8 * PAGE, PROT_READ, flags)?;
            let before = faults()?;
            for i in 0..8 {
                peek(a + i * PAGE);
            }
            let taken = faults()? - before;
            sys::munmap(a, 8 * PAGE).map_err(why("munmap"))?;
            ensure!(
                taken == 0,
                "{taken} faults after mapping with flags {flags:#x}"
            )?;
        }
        remove(fd, "r2")
    });
    s.both("mincore_reports_the_page_cache", || {
        let fd = create("r3", 2 * PAGE)?;
        sys::ftruncate(fd, 4 * PAGE as isize).map_err(why("ftruncate"))?;
        let a = map(fd, 4 * PAGE, PROT_READ, MAP_SHARED)?;
        let mut vec = [0u8; 4];
        sys::mincore(a, 4 * PAGE, &mut vec).map_err(why("mincore"))?;
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        let bits = vec.map(|b| b & 1);
        ensure!(bits == [1, 1, 0, 0], "mincore says {bits:?}")?;
        remove(fd, "r3")
    });
    s.pageos("frames_come_back_after_unlink_and_munmap", || {
        let free = || proc_number("/proc/meminfo\0", "MemFree");
        let start = free()?;
        let fd = create("r4", 256 * PAGE)?;
        let a = map(fd, 256 * PAGE, RW, MAP_SHARED)?;
        poke(a + 255 * PAGE, 1);
        remove(fd, "r4")?;
        let held = start - free()?;
        sys::munmap(a, 256 * PAGE).map_err(why("munmap"))?;
        let end = free()?;
        ensure!(held >= 1024, "the file held only {held} kB while mapped")?;
        ensure!(end == start, "MemFree {start} kB before, {end} kB after")
    });
}

// ---- SIGBUS caught: a user-space pager ------------------------------------------

const BUS_ADRERR: i32 = 2;
static BUS_CODE: AtomicI32 = AtomicI32::new(0);
static BUS_ADDR: AtomicUsize = AtomicUsize::new(0);
static BUS_CALLS: AtomicUsize = AtomicUsize::new(0);
/// The file the handler grows, and to what size.
static GROW_FD: AtomicUsize = AtomicUsize::new(0);
static GROW_TO: AtomicUsize = AtomicUsize::new(0);

/// Record the SIGBUS, then make the page exist by growing the file, and
/// return: the faulting access runs again and now succeeds.
extern "C" fn grow_file(_: i32, info: &sys::SigInfo, _: *mut u8) {
    BUS_CODE.store(info.code, Ordering::SeqCst);
    BUS_ADDR.store(info.addr(), Ordering::SeqCst);
    BUS_CALLS.fetch_add(1, Ordering::SeqCst);
    let fd = GROW_FD.load(Ordering::SeqCst);
    if sys::ftruncate(fd, GROW_TO.load(Ordering::SeqCst) as isize).is_err() {
        sys::exit(92);
    }
}

/// Catch SIGBUS with `grow_file` set to grow `fd` to `size`; run `access`;
/// restore the default; check the handler ran once with BUS_ADRERR at `addr`.
fn caught_sigbus(fd: usize, size: usize, addr: usize, access: impl FnOnce()) -> Outcome {
    BUS_CALLS.store(0, Ordering::SeqCst);
    GROW_FD.store(fd, Ordering::SeqCst);
    GROW_TO.store(size, Ordering::SeqCst);
    sys::catch(sys::SIGBUS, grow_file, 0).map_err(why("sigaction"))?;
    access();
    sys::set_disposition(sys::SIGBUS, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    let (calls, code, at) = (
        BUS_CALLS.load(Ordering::SeqCst),
        BUS_CODE.load(Ordering::SeqCst),
        BUS_ADDR.load(Ordering::SeqCst),
    );
    ensure!(calls == 1, "{calls} SIGBUS handler calls")?;
    ensure!(code == BUS_ADRERR, "si_code {code}, want BUS_ADRERR")?;
    ensure!(at == addr, "si_addr {at:#x}, want {addr:#x}")
}

fn sigbus_handlers(s: &mut Suite) {
    s.both("sigbus_past_eof_is_caught_and_the_file_grown", || {
        let fd = create("b1", 100)?;
        let a = map(fd, 2 * PAGE, RW, MAP_SHARED)?;
        caught_sigbus(fd, 2 * PAGE, a + PAGE + 5, || poke(a + PAGE + 5, 0x42))?;
        ensure!(
            byte_at(fd, PAGE + 5)? == 0x42,
            "the retried store is not in the file"
        )?;
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        remove(fd, "b1")
    });
    s.both("sigbus_after_truncate_is_caught", || {
        let fd = create("b2", PAGE)?;
        let a = map(fd, PAGE, RW, MAP_SHARED)?;
        poke(a + 10, 1);
        sys::ftruncate(fd, 0).map_err(why("ftruncate"))?;
        let mut seen = 0xff;
        caught_sigbus(fd, PAGE, a + 10, || seen = peek(a + 10))?;
        ensure!(seen == 0, "after truncate and regrow the page reads {seen}")?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        remove(fd, "b2")
    });
}

// ---- descriptors across execve -----------------------------------------------------

fn exec_and_descriptors(s: &mut Suite) {
    // Our own path: /bin/filetest on pageos, /init on Linux.
    let me: &[u8] = if s.linux {
        b"/init\0"
    } else {
        b"/bin/filetest\0"
    };
    s.both("close_on_exec_descriptors_close_in_execve", || {
        let fd = create("x1", 10)?;
        let keep = sys::dup2(fd, 40).map_err(why("dup2"))?;
        let gone = sys::dup3(fd, 41, sys::O_CLOEXEC).map_err(why("dup3"))?;
        let child = sys::fork().map_err(why("fork"))?;
        if child == 0 {
            let argv = [me.as_ptr(), c"fds".as_ptr().cast(), core::ptr::null()];
            let envp = [core::ptr::null()];
            let _ = sys::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            sys::exit(99);
        }
        let mut status = 0;
        sys::wait4(child as isize, &mut status, 0).map_err(why("wait4"))?;
        sys::close(keep).map_err(why("close"))?;
        sys::close(gone).map_err(why("close"))?;
        remove(fd, "x1")?;
        // `filetest fds` exits 0 when 40 is open and 41 is closed.
        ensure!(
            status == 0,
            "the exec'd program saw wait status {status:#x}"
        )
    });
}

/// `filetest fds`: run after execve by the case above.
fn check_fds() -> i32 {
    let open_40 = sys::fcntl(40, sys::F_GETFD, 0).is_ok();
    let closed_41 = sys::fcntl(41, sys::F_GETFD, 0) == Err(sys::EBADF);
    if open_40 && closed_41 { 0 } else { 1 }
}

// ---- faults that must kill ---------------------------------------------------------------

/// One access that must raise SIGBUS; returning means it did not.
fn fault(name: &str) -> i32 {
    let fd = match create("sigbus", 100) {
        Ok(fd) => fd,
        Err(why) => {
            println!("filetest: {}", why.as_str());
            return 1;
        }
    };
    let a = map(fd, 2 * PAGE, RW, MAP_SHARED).unwrap_or(0);
    match name {
        // The second page lies wholly past the end of the 100-byte file.
        "past-eof" => {
            peek(a + PAGE);
        }
        "after-truncate" => {
            poke(a + 10, 1);
            let _ = sys::ftruncate(fd, 0);
            peek(a + 10);
        }
        other => {
            println!("filetest: unknown fault {other:?}");
            return 2;
        }
    }
    println!("filetest: fault {name} did not kill the process");
    1
}
