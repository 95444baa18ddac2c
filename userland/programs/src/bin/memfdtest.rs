//! `memfdtest`: memfd_create(2) and file sealing as a user program sees
//! them: the flags and their errors, a memfd as a file (read, write,
//! ftruncate, fstat), its mappings (MAP_SHARED sees what write() wrote and
//! the other way round, MAP_PRIVATE copies on write), its name in
//! /proc/self/maps, and every seal rule of fcntl(F_ADD_SEALS).
//!
//! It prints `ok NAME` / `FAIL NAME: why` per case and `N passed, M
//! failed`. The same binary passes as init of a Linux kernel (`python3
//! scripts/linux-run.py memfdtest`); the few cases where Linux 6.1 and
//! pageos differ on purpose are pageos-only (each says why).
#![no_std]
#![no_main]

use rt::sys::{
    self, EACCES, EBADF, EBUSY, EFAULT, EFBIG, EINVAL, ENOENT, ENOSYS, EOPNOTSUPP, EPERM, ESPIPE,
    MAP_PRIVATE, MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE, RW, S_IFMT, S_IFREG,
    peek, poke,
};
use rt::test::{Suite, Why, expect_err, why};
use rt::{ensure, fail};

rt::main!(main);

const PAGE: usize = 4096;

fn main(_args: rt::Args) -> i32 {
    mount_proc();
    let mut s = Suite::new("memfdtest");
    creation(&mut s);
    as_a_file(&mut s);
    allocation(&mut s);
    holes(&mut s);
    mappings(&mut s);
    seals(&mut s);
    write_seals(&mut s);
    s.finish()
}

// Linux's numbers (include/uapi/linux/memfd.h, fcntl.h).
const SYS_MEMFD_CREATE: usize = 319;
const MFD_CLOEXEC: usize = 0x1;
const MFD_ALLOW_SEALING: usize = 0x2;
const MFD_HUGETLB: usize = 0x4;
const MFD_HUGE_2MB: usize = 21 << 26;
const F_ADD_SEALS: usize = 1033;
const F_GET_SEALS: usize = 1034;
const F_SEAL_SEAL: usize = 0x1;
const F_SEAL_SHRINK: usize = 0x2;
const F_SEAL_GROW: usize = 0x4;
const F_SEAL_WRITE: usize = 0x8;
const F_SEAL_FUTURE_WRITE: usize = 0x10;
const FD_CLOEXEC: usize = 1;
const SYS_FALLOCATE: usize = 285;
const FALLOC_FL_KEEP_SIZE: usize = 0x01;
const FALLOC_FL_PUNCH_HOLE: usize = 0x02;
const FALLOC_FL_ZERO_RANGE: usize = 0x10;
const O_ACCMODE: usize = 3;
const MADV_REMOVE: usize = 9;

/// memfd_create with a name given as bytes ending in NUL.
fn memfd_create(name: &[u8], flags: usize) -> sys::Result<usize> {
    sys::raw(
        SYS_MEMFD_CREATE,
        [name.as_ptr() as usize, flags, 0, 0, 0, 0],
    )
}

fn memfd_at(name: usize, flags: usize) -> sys::Result<usize> {
    sys::raw(SYS_MEMFD_CREATE, [name, flags, 0, 0, 0, 0])
}

/// A memfd made with MFD_ALLOW_SEALING, `len` bytes of zeros.
fn sealable(len: usize) -> Result<usize, Why> {
    let fd = memfd_create(b"sealed\0", MFD_ALLOW_SEALING).map_err(why("memfd_create"))?;
    sys::ftruncate(fd, len as isize).map_err(why("ftruncate"))?;
    Ok(fd)
}

fn add_seals(fd: usize, seals: usize) -> sys::Result<usize> {
    sys::fcntl(fd, F_ADD_SEALS, seals)
}

fn get_seals(fd: usize) -> sys::Result<usize> {
    sys::fcntl(fd, F_GET_SEALS, 0)
}

fn fallocate(fd: usize, mode: usize, offset: isize, len: isize) -> sys::Result<usize> {
    sys::raw(
        SYS_FALLOCATE,
        [fd, mode, offset as usize, len as usize, 0, 0],
    )
}

fn size_of(fd: usize) -> Result<u64, Why> {
    Ok(sys::fstat(fd).map_err(why("fstat"))?.size)
}

fn map(fd: usize, len: usize, prot: usize, flags: usize) -> sys::Result<usize> {
    sys::mmap(0, len, prot, flags, fd as i32, 0)
}

/// The byte at `offset` of the file, by pread.
fn byte_at(fd: usize, offset: usize) -> Result<u8, Why> {
    let mut b = [0u8; 1];
    let n = sys::pread(fd, &mut b, offset).map_err(why("pread"))?;
    ensure!(n == 1, "pread at {offset}: {n} bytes")?;
    Ok(b[0])
}

/// /proc is where pageos mounts it; Linux's /init has to mount it itself
/// (the initramfs has no /proc: make it).
fn mount_proc() {
    if sys::open("/proc/self/maps\0", O_RDONLY)
        .map(sys::close)
        .is_ok()
    {
        return;
    }
    const SYS_MOUNT: usize = 165;
    let _ = sys::mkdir("/proc\0", 0o555);
    let (src, dir, fstype) = (b"proc\0", b"/proc\0", b"proc\0");
    let _ = sys::raw(
        SYS_MOUNT,
        [
            src.as_ptr() as usize,
            dir.as_ptr() as usize,
            fstype.as_ptr() as usize,
            0,
            0,
            0,
        ],
    );
}

fn creation(s: &mut Suite) {
    s.both(
        "memfd_create_gives_an_empty_unlinked_read_write_file",
        || {
            let fd = memfd_create(b"memfdtest\0", 0).map_err(why("memfd_create"))?;
            let result = (|| {
                let st = sys::fstat(fd).map_err(why("fstat"))?;
                ensure!(
                    st.mode & S_IFMT == S_IFREG && st.mode & 0o777 == 0o777,
                    "st_mode {:o}, expected a regular file with mode 0777",
                    st.mode
                )?;
                ensure!(st.size == 0, "st_size {}", st.size)?;
                ensure!(st.nlink == 0, "st_nlink {}: a memfd has no name", st.nlink)?;
                let fl = sys::fcntl(fd, sys::F_GETFL, 0).map_err(why("F_GETFL"))?;
                ensure!(fl & O_ACCMODE == O_RDWR, "F_GETFL {fl:#x}: not O_RDWR")?;
                let fdfl = sys::fcntl(fd, sys::F_GETFD, 0).map_err(why("F_GETFD"))?;
                ensure!(fdfl == 0, "F_GETFD {fdfl} without MFD_CLOEXEC")
            })();
            let _ = sys::close(fd);
            result
        },
    );
    s.both("mfd_cloexec_sets_close_on_exec", || {
        let fd = memfd_create(b"cloexec\0", MFD_CLOEXEC).map_err(why("memfd_create"))?;
        let fdfl = sys::fcntl(fd, sys::F_GETFD, 0);
        let _ = sys::close(fd);
        ensure!(fdfl == Ok(FD_CLOEXEC), "F_GETFD {fdfl:?}, expected 1")
    });
    s.both("memfd_create_refuses_unknown_flags", || {
        expect_err(memfd_create(b"x\0", 0x100), EINVAL, "flag 0x100")?;
        expect_err(memfd_create(b"x\0", 1 << 31), EINVAL, "flag 1 << 31")?;
        // A huge page size means nothing without MFD_HUGETLB.
        expect_err(
            memfd_create(b"x\0", MFD_HUGE_2MB),
            EINVAL,
            "MFD_HUGE_2MB alone",
        )
    });
    s.both("memfd_create_takes_names_up_to_249_bytes", || {
        let mut name = [b'n'; 251];
        name[249] = 0;
        let fd = memfd_create(&name, 0).map_err(why("249 bytes"))?;
        let _ = sys::close(fd);
        name[249] = b'n';
        name[250] = 0;
        expect_err(memfd_create(&name, 0), EINVAL, "a 250-byte name")?;
        let fd = memfd_create(b"\0", 0).map_err(why("an empty name"))?;
        let _ = sys::close(fd);
        Ok(())
    });
    s.both("memfd_create_with_a_bad_name_pointer_is_efault", || {
        expect_err(memfd_at(0, 0), EFAULT, "a NULL name")?;
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap"))?;
        // Ten bytes at the end of the page and no NUL before the hole.
        for i in 0..10 {
            poke(a + PAGE - 10 + i, b'x');
        }
        let result = expect_err(memfd_at(a + PAGE, 0), EFAULT, "an unmapped name")
            .and_then(|()| expect_err(memfd_at(a + PAGE - 10, 0), EFAULT, "a name into a hole"));
        let _ = sys::munmap(a, PAGE);
        result
    });
    // Linux built with hugetlbfs (Debian's) makes a hugetlbfs file here;
    // pageos has no hugetlbfs and answers as Linux without it does.
    s.pageos("mfd_hugetlb_is_enosys_without_hugetlbfs", || {
        expect_err(memfd_create(b"huge\0", MFD_HUGETLB), ENOSYS, "MFD_HUGETLB")?;
        expect_err(
            memfd_create(b"huge\0", MFD_HUGETLB | MFD_HUGE_2MB),
            ENOSYS,
            "MFD_HUGETLB | MFD_HUGE_2MB",
        )?;
        expect_err(
            memfd_create(b"huge\0", MFD_HUGETLB | 0x100),
            EINVAL,
            "MFD_HUGETLB with an unknown flag",
        )
    });
}

fn as_a_file(s: &mut Suite) {
    s.both("a_memfd_reads_back_what_was_written_and_truncates", || {
        let fd = memfd_create(b"file\0", 0).map_err(why("memfd_create"))?;
        let result = (|| {
            let n = sys::write(fd as i32, b"hello, memfd").map_err(why("write"))?;
            ensure!(n == 12, "write: {n}")?;
            sys::lseek(fd, 0, sys::SEEK_SET).map_err(why("lseek"))?;
            let mut buf = [0u8; 32];
            let n = sys::read(fd as i32, &mut buf).map_err(why("read"))?;
            ensure!(&buf[..n] == b"hello, memfd", "read back {:?}", &buf[..n])?;
            sys::ftruncate(fd, 3 * PAGE as isize).map_err(why("ftruncate"))?;
            let st = sys::fstat(fd).map_err(why("fstat"))?;
            ensure!(st.size == 3 * PAGE as u64, "st_size {}", st.size)?;
            ensure!(byte_at(fd, 2 * PAGE)? == 0, "the hole is not zero")?;
            sys::ftruncate(fd, 5).map_err(why("ftruncate"))?;
            let n = sys::pread(fd, &mut buf, 0).map_err(why("pread"))?;
            ensure!(&buf[..n] == b"hello", "after shrinking: {:?}", &buf[..n])
        })();
        let _ = sys::close(fd);
        result
    });
}

fn allocation(s: &mut Suite) {
    s.both(
        "fallocate_grows_the_file_unless_told_to_keep_its_size",
        || {
            let fd = memfd_create(b"fallocate\0", 0).map_err(why("memfd_create"))?;
            let result = (|| {
                fallocate(fd, 0, PAGE as isize, 2 * PAGE as isize).map_err(why("fallocate"))?;
                ensure!(size_of(fd)? == 3 * PAGE as u64, "size {}", size_of(fd)?)?;
                ensure!(byte_at(fd, PAGE)? == 0, "the new range is not zeros")?;
                fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8 * PAGE as isize)
                    .map_err(why("KEEP_SIZE"))?;
                fallocate(fd, 0, 0, PAGE as isize).map_err(why("inside the file"))?;
                ensure!(size_of(fd)? == 3 * PAGE as u64, "size {}", size_of(fd)?)
            })();
            let _ = sys::close(fd);
            result
        },
    );
    s.both("fallocate_refuses_bad_arguments", || {
        let fd = memfd_create(b"fallocate\0", 0).map_err(why("memfd_create"))?;
        let result = (|| {
            expect_err(fallocate(fd, 0, 0, 0), EINVAL, "length 0")?;
            expect_err(fallocate(fd, 0, -1, 1), EINVAL, "a negative offset")?;
            expect_err(fallocate(fd, 0x80, 0, 1), EOPNOTSUPP, "an unknown mode")?;
            expect_err(
                fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1),
                EOPNOTSUPP,
                "PUNCH_HOLE without KEEP_SIZE",
            )?;
            expect_err(
                fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 1),
                EOPNOTSUPP,
                "ZERO_RANGE on tmpfs",
            )?;
            expect_err(
                fallocate(fd, 0, isize::MAX, 2),
                EFBIG,
                "past the largest file",
            )?;
            expect_err(fallocate(9999, 0, 0, 1), EBADF, "a closed descriptor")?;
            let dir = sys::open("/\0", O_RDONLY).map_err(why("open /"))?;
            let on_dir = fallocate(dir, 0, 0, 1);
            let _ = sys::close(dir);
            expect_err(on_dir, EBADF, "a directory open for reading")?;
            let mut fds = [0i32; 2];
            pipe(&mut fds)?;
            let on_pipe = fallocate(fds[1] as usize, 0, 0, 1);
            let _ = (sys::close(fds[0] as usize), sys::close(fds[1] as usize));
            expect_err(on_pipe, ESPIPE, "a pipe")
        })();
        let _ = sys::close(fd);
        result
    });
}

/// FALLOC_FL_PUNCH_HOLE and MADV_REMOVE: a hole reads as zeros in every
/// process that maps the file, its whole pages are freed, the partial ones
/// at its ends keep their other bytes, the size stays, and a private copy
/// a write made is the process's own and stays.
fn holes(s: &mut Suite) {
    s.both(
        "punch_hole_zeroes_the_range_frees_its_pages_and_keeps_the_size",
        || {
            let fd = memfd_create(b"punch\0", 0).map_err(why("memfd_create"))?;
            let result = (|| {
                sys::pwrite(fd, &[0xab; 4 * PAGE], 0).map_err(why("pwrite"))?;
                let blocks = sys::fstat(fd).map_err(why("fstat"))?.blocks;
                ensure!(blocks == 32, "4 pages hold {blocks} blocks of 512 bytes")?;
                let (from, to) = (100, 100 + 3 * PAGE);
                fallocate(
                    fd,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    from as isize,
                    3 * PAGE as isize,
                )
                .map_err(why("PUNCH_HOLE"))?;
                for at in [from - 1, to, 4 * PAGE - 1] {
                    ensure!(
                        byte_at(fd, at)? == 0xab,
                        "byte {at} outside the hole changed"
                    )?;
                }
                for at in [from, PAGE, 2 * PAGE + 5, to - 1] {
                    ensure!(byte_at(fd, at)? == 0, "byte {at} in the hole is not zero")?;
                }
                ensure!(size_of(fd)? == 4 * PAGE as u64, "the size changed")?;
                // Pages 1 and 2 lay wholly inside: freed; 0 and 3 stay.
                let blocks = sys::fstat(fd).map_err(why("fstat"))?.blocks;
                ensure!(blocks == 16, "after the hole {blocks} blocks, not 16")?;
                // Past the end there is nothing to punch.
                fallocate(
                    fd,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    8 * PAGE as isize,
                    PAGE as isize,
                )
                .map_err(why("PUNCH_HOLE past the end"))?;
                ensure!(
                    size_of(fd)? == 4 * PAGE as u64,
                    "a hole past the end grew the file"
                )
            })();
            let _ = sys::close(fd);
            result
        },
    );
    s.both(
        "a_punched_hole_reaches_every_process_but_private_copies",
        || {
            hole_seen_by_a_child(|fd, _| {
                fallocate(
                    fd,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    0,
                    3 * PAGE as isize,
                )
                .map_err(why("PUNCH_HOLE"))
                .map(|_| ())
            })
        },
    );
    s.both(
        "madvise_remove_reaches_every_process_but_private_copies",
        || {
            hole_seen_by_a_child(|_, shared| {
                sys::madvise(shared, 3 * PAGE, MADV_REMOVE)
                    .map_err(why("MADV_REMOVE"))
                    .map(|_| ())
            })
        },
    );
}

/// A memfd of three pages of `F`, mapped shared and private by this
/// process and, through fork, by a child that has read every page (so
/// its page tables map them) before `punch(fd, shared mapping)` makes the
/// hole [0, 3 pages). Then both processes must read zeros through both
/// mappings, except the private page this process wrote before the fork,
/// which is a copy of its own (the child's is the same copy, shared).
fn hole_seen_by_a_child(punch: impl Fn(usize, usize) -> Result<(), Why>) -> Result<(), Why> {
    let fd = memfd_create(b"hole\0", 0).map_err(why("memfd_create"))?;
    sys::pwrite(fd, &[b'F'; 3 * PAGE], 0).map_err(why("pwrite"))?;
    let shared = map(fd, 3 * PAGE, RW, MAP_SHARED).map_err(why("mmap shared"))?;
    let private = map(fd, 3 * PAGE, RW, MAP_PRIVATE).map_err(why("mmap private"))?;
    poke(private + 2 * PAGE, b'P');
    // Zeros where the hole is, the private copy where this process wrote.
    let check = |who: &str| -> Result<(), Why> {
        for page in 0..3 {
            let got = peek(shared + page * PAGE + 9);
            ensure!(
                got == 0,
                "{who}: shared page {page} reads {got:#x}, not a hole"
            )?;
        }
        for page in 0..2 {
            let got = peek(private + page * PAGE + 9);
            ensure!(
                got == 0,
                "{who}: private page {page} (never written) reads {got:#x}"
            )?;
        }
        let got = peek(private + 2 * PAGE);
        ensure!(
            got == b'P',
            "{who}: the private copy reads {got:#x}, not its own byte"
        )
    };
    let (mut ready, mut go) = ([0i32; 2], [0i32; 2]);
    pipe(&mut ready)?;
    pipe(&mut go)?;
    let child = sys::fork().map_err(why("fork"))?;
    if child == 0 {
        let mut seen = 0u32;
        for page in 0..3 {
            seen += u32::from(peek(shared + page * PAGE) == b'F');
            seen += u32::from(peek(private + page * PAGE) != 0);
        }
        let _ = sys::write(ready[1], b"r");
        let mut b = [0u8; 1];
        let _ = sys::read(go[0], &mut b);
        sys::exit(if seen == 6 && check("the child").is_ok() {
            0
        } else {
            1
        });
    }
    let result = (|| {
        let mut b = [0u8; 1];
        sys::read(ready[0], &mut b).map_err(why("read"))?;
        punch(fd, shared)?;
        let _ = sys::write(go[1], b"g");
        let mut status = 0;
        sys::wait4(child as isize, &mut status, 0).map_err(why("wait4"))?;
        ensure!(
            sys::exited(status) == Some(0),
            "the child saw the old bytes (status {status:#x})"
        )?;
        check("the parent")
    })();
    for fd in [ready[0], ready[1], go[0], go[1]] {
        let _ = sys::close(fd as usize);
    }
    let _ = sys::munmap(shared, 3 * PAGE);
    let _ = sys::munmap(private, 3 * PAGE);
    let _ = sys::close(fd);
    result
}

fn pipe(fds: &mut [i32; 2]) -> Result<(), Why> {
    const SYS_PIPE2: usize = 293;
    sys::raw(SYS_PIPE2, [fds.as_mut_ptr() as usize, 0, 0, 0, 0, 0]).map_err(why("pipe2"))?;
    Ok(())
}

fn mappings(s: &mut Suite) {
    s.both("shared_mappings_and_write_see_the_same_bytes", || {
        let fd = memfd_create(b"shared\0", 0).map_err(why("memfd_create"))?;
        sys::ftruncate(fd, 2 * PAGE as isize).map_err(why("ftruncate"))?;
        let a = map(fd, 2 * PAGE, RW, MAP_SHARED).map_err(why("mmap"))?;
        let b = map(fd, 2 * PAGE, PROT_READ, MAP_SHARED).map_err(why("mmap"))?;
        let result = (|| {
            sys::pwrite(fd, b"W", PAGE + 7).map_err(why("pwrite"))?;
            ensure!(peek(a + PAGE + 7) == b'W', "the mapping missed pwrite")?;
            poke(a + 100, b'M');
            ensure!(byte_at(fd, 100)? == b'M', "pread missed the store")?;
            ensure!(peek(b + 100) == b'M', "the other mapping missed the store")
        })();
        let _ = sys::munmap(a, 2 * PAGE);
        let _ = sys::munmap(b, 2 * PAGE);
        let _ = sys::close(fd);
        result
    });
    s.both("a_mapping_outlives_the_descriptor", || {
        let fd = memfd_create(b"outlives\0", 0).map_err(why("memfd_create"))?;
        sys::pwrite(fd, b"kept", 0).map_err(why("pwrite"))?;
        let a = map(fd, PAGE, RW, MAP_SHARED).map_err(why("mmap"))?;
        sys::close(fd).map_err(why("close"))?;
        let kept = [peek(a), peek(a + 1), peek(a + 2), peek(a + 3)];
        poke(a + 8, 1);
        let _ = sys::munmap(a, PAGE);
        ensure!(&kept == b"kept", "after close the mapping reads {kept:?}")
    });
    s.both("private_mappings_copy_on_write", || {
        let fd = memfd_create(b"private\0", 0).map_err(why("memfd_create"))?;
        sys::ftruncate(fd, 2 * PAGE as isize).map_err(why("ftruncate"))?;
        sys::pwrite(fd, b"AB", 0).map_err(why("pwrite"))?;
        let p = map(fd, 2 * PAGE, RW, MAP_PRIVATE).map_err(why("mmap"))?;
        let result = (|| {
            ensure!(peek(p) == b'A', "the private mapping reads {:#x}", peek(p))?;
            poke(p, b'P');
            ensure!(byte_at(fd, 0)? == b'A', "a private store reached the file")?;
            // A page not written yet still shows the file's bytes.
            sys::pwrite(fd, b"F", PAGE).map_err(why("pwrite"))?;
            ensure!(peek(p + PAGE) == b'F', "an untouched page missed pwrite")?;
            // The copied page keeps the private bytes.
            sys::pwrite(fd, b"Z", 0).map_err(why("pwrite"))?;
            ensure!(peek(p) == b'P', "the copy changed to {:#x}", peek(p))
        })();
        let _ = sys::munmap(p, 2 * PAGE);
        let _ = sys::close(fd);
        result
    });
    s.both("proc_self_maps_names_the_memfd", || {
        let fd = memfd_create(b"memfdtest-maps\0", 0).map_err(why("memfd_create"))?;
        sys::ftruncate(fd, PAGE as isize).map_err(why("ftruncate"))?;
        let a = map(fd, PAGE, RW, MAP_SHARED).map_err(why("mmap"))?;
        let _ = sys::close(fd);
        let result = (|| {
            let mut buf = [0u8; 16384];
            let maps = read_all("/proc/self/maps\0", &mut buf)?;
            let mut range = [0u8; 40];
            let range = format_range(&mut range, a, a + PAGE);
            let line = maps
                .split(|&b| b == b'\n')
                .find(|l| l.starts_with(range))
                .ok_or_else(|| Why::new(format_args!("no line for the mapping")))?;
            let text = core::str::from_utf8(line).unwrap_or("?");
            ensure!(
                text.contains(" rw-s ") && text.ends_with(" /memfd:memfdtest-maps (deleted)"),
                "the line is {text:?}"
            )
        })();
        let _ = sys::munmap(a, PAGE);
        result
    });
}

fn seals(s: &mut Suite) {
    s.both("without_mfd_allow_sealing_the_file_is_sealed_shut", || {
        let fd = memfd_create(b"unsealable\0", 0).map_err(why("memfd_create"))?;
        let got = get_seals(fd);
        let add = add_seals(fd, F_SEAL_SHRINK);
        let _ = sys::close(fd);
        ensure!(got == Ok(F_SEAL_SEAL), "F_GET_SEALS: {got:?}")?;
        expect_err(add, EPERM, "F_ADD_SEALS")
    });
    s.both("seals_add_up_and_f_seal_seal_ends_it", || {
        let fd = sealable(PAGE)?;
        let result = (|| {
            ensure!(get_seals(fd) == Ok(0), "fresh: {:?}", get_seals(fd))?;
            add_seals(fd, F_SEAL_SHRINK).map_err(why("F_SEAL_SHRINK"))?;
            add_seals(fd, F_SEAL_GROW).map_err(why("F_SEAL_GROW"))?;
            add_seals(fd, 0).map_err(why("no seal"))?;
            let want = F_SEAL_SHRINK | F_SEAL_GROW;
            ensure!(get_seals(fd) == Ok(want), "F_GET_SEALS {:?}", get_seals(fd))?;
            expect_err(add_seals(fd, 0x100), EINVAL, "an unknown seal")?;
            add_seals(fd, F_SEAL_SEAL).map_err(why("F_SEAL_SEAL"))?;
            expect_err(add_seals(fd, F_SEAL_WRITE), EPERM, "after F_SEAL_SEAL")?;
            expect_err(add_seals(fd, 0), EPERM, "nothing after F_SEAL_SEAL")?;
            let want = want | F_SEAL_SEAL;
            ensure!(get_seals(fd) == Ok(want), "F_GET_SEALS {:?}", get_seals(fd))
        })();
        let _ = sys::close(fd);
        result
    });
    s.both("seals_of_files_that_are_not_memfds", || {
        // A file of the root file system (tmpfs on Linux, ramfs on pageos).
        let path = "/memfdtest.file\0";
        let fd = sys::open_mode(path, O_CREAT | O_RDWR, 0o644).map_err(why("open"))?;
        let (got, add) = (get_seals(fd), add_seals(fd, F_SEAL_GROW));
        let _ = sys::close(fd);
        let ro = sys::open(path, O_RDONLY).map_err(why("open"))?;
        let add_ro = add_seals(ro, 0x100);
        let _ = sys::close(ro);
        let _ = sys::unlink(path);
        ensure!(got == Ok(F_SEAL_SEAL), "a tmpfs file's seals: {got:?}")?;
        expect_err(add, EPERM, "F_ADD_SEALS on a tmpfs file")?;
        // The access mode is checked first.
        expect_err(add_ro, EPERM, "F_ADD_SEALS on a read-only descriptor")?;
        let dir = sys::open("/\0", O_RDONLY).map_err(why("open /"))?;
        let (got, add) = (get_seals(dir), add_seals(dir, F_SEAL_GROW));
        let _ = sys::close(dir);
        expect_err(got, EINVAL, "F_GET_SEALS on a directory")?;
        expect_err(add, EPERM, "F_ADD_SEALS on a read-only directory")?;
        let mut fds = [0i32; 2];
        pipe(&mut fds)?;
        let (r, w) = (fds[0] as usize, fds[1] as usize);
        let results = (get_seals(r), add_seals(w, F_SEAL_GROW));
        let _ = (sys::close(r), sys::close(w));
        expect_err(results.0, EINVAL, "F_GET_SEALS on a pipe")?;
        expect_err(results.1, EINVAL, "F_ADD_SEALS on a pipe's write end")?;
        expect_err(get_seals(9999), EBADF, "F_GET_SEALS on a closed descriptor")
    });
    s.both("f_seal_shrink_refuses_shrinking_only", || {
        let fd = sealable(2 * PAGE)?;
        let result = (|| {
            add_seals(fd, F_SEAL_SHRINK).map_err(why("F_ADD_SEALS"))?;
            expect_err(sys::ftruncate(fd, PAGE as isize), EPERM, "shrinking")?;
            sys::ftruncate(fd, 2 * PAGE as isize).map_err(why("the same size"))?;
            sys::ftruncate(fd, 3 * PAGE as isize).map_err(why("growing"))?;
            sys::pwrite(fd, b"x", 0).map_err(why("pwrite"))?;
            let st = sys::fstat(fd).map_err(why("fstat"))?;
            ensure!(st.size == 3 * PAGE as u64, "st_size {}", st.size)
        })();
        let _ = sys::close(fd);
        result
    });
    s.both("f_seal_grow_refuses_growing_by_truncate_or_write", || {
        let fd = sealable(2 * PAGE)?;
        let result = (|| {
            add_seals(fd, F_SEAL_GROW).map_err(why("F_ADD_SEALS"))?;
            expect_err(sys::ftruncate(fd, 3 * PAGE as isize), EPERM, "growing")?;
            // Linux writes a page at a time and stops at the first piece
            // that would grow the file.
            let across = sys::pwrite(fd, b"xy", 2 * PAGE - 1);
            ensure!(
                across == Ok(1),
                "a write across the end: {across:?}, expected 1"
            )?;
            expect_err(sys::pwrite(fd, b"x", 2 * PAGE), EPERM, "a write at the end")?;
            sys::pwrite(fd, b"xy", 2 * PAGE - 2).map_err(why("a write inside"))?;
            let grow = fallocate(fd, 0, PAGE as isize, 2 * PAGE as isize);
            expect_err(grow, EPERM, "fallocate past the end")?;
            let keep = fallocate(fd, FALLOC_FL_KEEP_SIZE, PAGE as isize, 2 * PAGE as isize);
            expect_err(keep, EPERM, "fallocate past the end, keeping the size")?;
            fallocate(fd, 0, 0, 2 * PAGE as isize).map_err(why("fallocate inside"))?;
            sys::ftruncate(fd, PAGE as isize + 10).map_err(why("shrinking"))?;
            expect_err(
                sys::pwrite(fd, b"xy", PAGE + 9),
                EPERM,
                "a write past the end within the last page",
            )?;
            let st = sys::fstat(fd).map_err(why("fstat"))?;
            ensure!(st.size == PAGE as u64 + 10, "st_size {}", st.size)
        })();
        let _ = sys::close(fd);
        result
    });
}

fn write_seals(s: &mut Suite) {
    s.both(
        "f_seal_write_refuses_writes_and_writable_shared_mappings",
        || {
            let fd = sealable(2 * PAGE)?;
            let result = (|| {
                sys::pwrite(fd, b"before", 0).map_err(why("pwrite"))?;
                add_seals(fd, F_SEAL_WRITE).map_err(why("F_ADD_SEALS"))?;
                ensure!(get_seals(fd) == Ok(F_SEAL_WRITE), "{:?}", get_seals(fd))?;
                expect_err(sys::pwrite(fd, b"x", 0), EPERM, "pwrite")?;
                expect_err(sys::write(fd as i32, b"x"), EPERM, "write")?;
                expect_err(map(fd, PAGE, RW, MAP_SHARED), EPERM, "a shared RW mapping")?;
                expect_err(
                    map(fd, PAGE, PROT_WRITE, MAP_SHARED),
                    EPERM,
                    "a shared write-only mapping",
                )?;
                let punch = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1);
                expect_err(punch, EPERM, "punching a hole")?;
                // The size is not sealed: only the bytes are.
                sys::ftruncate(fd, 3 * PAGE as isize).map_err(why("ftruncate"))?;
                fallocate(fd, 0, 0, 4 * PAGE as isize).map_err(why("fallocate"))?;
                // A private mapping copies on write: the file stays as it is.
                let p = map(fd, PAGE, RW, MAP_PRIVATE).map_err(why("a private mapping"))?;
                poke(p, b'P');
                let (mine, file) = (peek(p), byte_at(fd, 0));
                let _ = sys::munmap(p, PAGE);
                ensure!(mine == b'P' && file? == b'b', "private {mine:#x}")
            })();
            let _ = sys::close(fd);
            result
        },
    );
    s.both(
        "f_seal_write_is_ebusy_while_a_shared_mapping_may_write",
        || {
            let fd = sealable(PAGE)?;
            let result = (|| {
                let a = map(fd, PAGE, RW, MAP_SHARED).map_err(why("mmap"))?;
                let busy = add_seals(fd, F_SEAL_WRITE);
                // Read-only now, but mprotect could make it writable again.
                let _ = sys::mprotect(a, PAGE, PROT_READ);
                let busy_ro = add_seals(fd, F_SEAL_WRITE);
                let _ = sys::munmap(a, PAGE);
                expect_err(busy, EBUSY, "with a writable shared mapping")?;
                expect_err(busy_ro, EBUSY, "with a read-only shared mapping")?;
                ensure!(get_seals(fd) == Ok(0), "seals {:?}", get_seals(fd))?;
                // A private mapping never writes to the file.
                let p = map(fd, PAGE, RW, MAP_PRIVATE).map_err(why("mmap"))?;
                let sealed = add_seals(fd, F_SEAL_WRITE);
                let _ = sys::munmap(p, PAGE);
                sealed.map_err(why("F_SEAL_WRITE with a private mapping"))?;
                Ok(())
            })();
            let _ = sys::close(fd);
            result
        },
    );
    // Shared and read-only is allowed, for good: the mapping can never be
    // made writable (Linux since 6.7, and Debian's 6.1.192 has the change).
    s.both("a_write_sealed_file_maps_shared_read_only_for_good", || {
        let fd = sealable(PAGE)?;
        let result = (|| {
            sys::pwrite(fd, b"R", 0).map_err(why("pwrite"))?;
            add_seals(fd, F_SEAL_WRITE).map_err(why("F_ADD_SEALS"))?;
            let a = map(fd, PAGE, PROT_READ, MAP_SHARED).map_err(why("mmap"))?;
            let (read, got) = (peek(a), sys::mprotect(a, PAGE, RW));
            let _ = sys::munmap(a, PAGE);
            ensure!(read == b'R', "the mapping reads {read:#x}")?;
            expect_err(got, EACCES, "mprotect to PROT_WRITE")
        })();
        let _ = sys::close(fd);
        result
    });
    s.both(
        "f_seal_future_write_keeps_old_mappings_and_refuses_new",
        || {
            let fd = sealable(PAGE)?;
            let result = (|| {
                let a = map(fd, PAGE, RW, MAP_SHARED).map_err(why("mmap"))?;
                let sealed = add_seals(fd, F_SEAL_FUTURE_WRITE);
                poke(a + 1, b'O');
                let (old, written) = (byte_at(fd, 1), sys::pwrite(fd, b"x", 0));
                let new_rw = map(fd, PAGE, RW, MAP_SHARED);
                let ro = map(fd, PAGE, PROT_READ, MAP_SHARED);
                let _ = sys::munmap(a, PAGE);
                sealed.map_err(why("F_SEAL_FUTURE_WRITE with a mapping"))?;
                ensure!(old? == b'O', "the old mapping's store is not in the file")?;
                expect_err(written, EPERM, "pwrite")?;
                expect_err(new_rw, EPERM, "a new shared RW mapping")?;
                let ro = ro.map_err(why("a new shared read-only mapping"))?;
                let got = sys::mprotect(ro, PAGE, RW);
                let _ = sys::munmap(ro, PAGE);
                expect_err(got, EACCES, "mprotect of the read-only one")
            })();
            let _ = sys::close(fd);
            result
        },
    );
    s.both("seals_bind_every_descriptor_of_the_file", || {
        let fd = sealable(PAGE)?;
        let dup = sys::dup(fd).map_err(why("dup"));
        let result = (|| {
            let dup = dup?;
            add_seals(fd, F_SEAL_WRITE | F_SEAL_SHRINK).map_err(why("F_ADD_SEALS"))?;
            let got = get_seals(dup);
            let written = sys::pwrite(dup, b"x", 0);
            let shrunk = sys::ftruncate(dup, 0);
            let _ = sys::close(dup);
            ensure!(got == Ok(F_SEAL_WRITE | F_SEAL_SHRINK), "{got:?}")?;
            expect_err(written, EPERM, "pwrite on the dup")?;
            expect_err(shrunk, EPERM, "ftruncate on the dup")
        })();
        let _ = sys::close(fd);
        result
    });
    s.both("a_closed_memfd_is_gone", || {
        let fd = memfd_create(b"gone\0", 0).map_err(why("memfd_create"))?;
        sys::close(fd).map_err(why("close"))?;
        expect_err(get_seals(fd), EBADF, "F_GET_SEALS after close")?;
        expect_err(sys::open("/memfd:gone\0", O_RDONLY), ENOENT, "a path")
    });
}

/// The whole of a small file (a /proc file) into `buf`.
fn read_all<'a>(path: &str, buf: &'a mut [u8]) -> Result<&'a [u8], Why> {
    let fd = sys::open(path, O_RDONLY).map_err(why("open"))?;
    let mut len = 0;
    while len < buf.len() {
        match sys::read(fd as i32, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => {
                let _ = sys::close(fd);
                return fail!("read: errno {}", e.0);
            }
        }
    }
    let _ = sys::close(fd);
    Ok(&buf[..len])
}

/// "start-end" in lower-case hex, as /proc/self/maps writes it.
fn format_range(out: &mut [u8; 40], start: usize, end: usize) -> &[u8] {
    let mut len = 0;
    for (i, value) in [start, end].into_iter().enumerate() {
        if i == 1 {
            out[len] = b'-';
            len += 1;
        }
        let digits = ((usize::BITS - value.leading_zeros()).div_ceil(4) as usize).max(8);
        for d in (0..digits).rev() {
            out[len] = b"0123456789abcdef"[(value >> (d * 4)) & 0xf];
            len += 1;
        }
    }
    &out[..len]
}
