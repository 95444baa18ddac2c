//! Loading a program: the ELF loader and the System V initial stack.
//!
//! Reading the file is `vm::elf`'s (host-tested and fuzzed); this module
//! carries its plan out on a fresh address space.
//!
//! Static `ET_EXEC` binaries load at their link addresses; static-PIE
//! (`ET_DYN`) ones at `PIE_BASE`, after which the loader applies their
//! `R_X86_64_RELATIVE` relocations (Rust's x86_64-unknown-none programs do not
//! relocate themselves; musl's static-PIE start code does, and applying a
//! RELATIVE relocation twice gives the same value).

use crate::Space;
use crate::arch::idt::TrapFrame;
use crate::phys::KernelPhys;
use crate::pmap::Pmap;
use crate::usercopy::{self, UserMemory};
use alloc::vec::Vec;
use vm::elf::LoadPlan;
use vm::errno::Errno;
use vm::mmap::{OnConflict, Placement, Prot};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, PAGE, Vma, VmaFlags};

/// Where a static-PIE program is placed (the address gdb users know from Linux).
const PIE_BASE: u64 = 0x5555_5555_4000;
/// The initial stack: its top, and how much is mapped up front.
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;

/// What the loader learned that the initial stack's auxv reports.
struct Image {
    entry: u64,
    phdr: u64,
    phent: u64,
    phnum: u64,
}

/// The initial stack: an 8 MiB reservation (Linux's default RLIMIT_STACK)
/// that grows down on faults, like a MAP_STACK mapping.
pub const STACK_RESERVE: u64 = 8 << 20;

/// A fresh address space holding `elf`, its stack, and `argv`/`envp`;
/// returns it with the register state that starts the program.
///
/// `vm::elf::plan` reads the file (every field checked: a malformed file
/// is ENOEXEC); the segments' pages are then mapped privately from the
/// program's file (`file`: its page cache), so they page in on demand and
/// are shared until written, with anonymous memory for the bss; what cannot
/// be mapped from the file (no file, or a segment sharing a page with
/// another) is copied in. Then relocations, and the final protection.
pub fn load(
    elf: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    aslr: bool,
    res: &crate::resource::Resources,
    file: Option<&ObjectRef>,
) -> Result<(Space, TrapFrame), Errno> {
    if let Some(name) = vm::elf::interpreter(elf) {
        log::warn!(
            "exec: the program needs the interpreter {} (dynamic linking is not supported): ENOEXEC",
            alloc::string::String::from_utf8_lossy(name)
        );
    }
    let plan = vm::elf::plan(elf, PIE_BASE)?;
    let reserve = stack_reserve(res.limit(crate::resource::RLIMIT_STACK));
    let mmap_top = STACK_TOP - reserve - PAGE - if aslr { aslr_offset() } else { 0 };
    let mut space = Space::new(Pmap::new().ok_or(Errno::ENOMEM)?, mmap_top);
    match load_into(&mut space, elf, &plan, (argv, envp), reserve, file) {
        Ok(frame) => Ok((space, frame)),
        Err(e) => {
            space.clear(&mut KernelPhys);
            Err(e)
        }
    }
}

fn load_into(
    space: &mut Space,
    elf: &[u8],
    plan: &LoadPlan,
    (argv, envp): (&[Vec<u8>], &[Vec<u8>]),
    reserve: u64,
    file: Option<&ObjectRef>,
) -> Result<TrapFrame, Errno> {
    let phys = &mut KernelPhys;
    for run in &plan.runs {
        let placement = Placement::Fixed {
            addr: run.start,
            on_conflict: OnConflict::FailEexist,
        };
        space.map(
            phys,
            &placement,
            run.end - run.start,
            PAGE,
            false,
            Vma::anonymous(0, 0, Prot::READ | Prot::WRITE),
        )?;
    }
    let from_file = match file {
        Some(object) => map_file_pages(space, plan, object)?,
        None => alloc::vec![false; plan.copies.len()],
    };
    for (copy, _) in plan
        .copies
        .iter()
        .zip(from_file)
        .filter(|(_, mapped)| !mapped)
    {
        usercopy::copy_out(space, copy.addr, &elf[copy.file.clone()])?;
    }
    for &(addr, value) in &plan.relocations {
        usercopy::copy_out(space, addr, &value.to_le_bytes())?;
    }
    for kind in &plan.unsupported_relocations {
        log::warn!("exec: unsupported relocation type {kind}");
    }
    for run in &plan.runs {
        space.mprotect(phys, run.start, run.end, run.prot)?;
    }
    space.set_brk_start(plan.brk_start);

    let mut stack = Vma::anonymous(0, 0, Prot::READ | Prot::WRITE);
    stack.flags |= VmaFlags::GROWSDOWN | VmaFlags::MAIN_STACK;
    let placement = Placement::Fixed {
        addr: STACK_TOP - reserve,
        on_conflict: OnConflict::FailEexist,
    };
    space.map(phys, &placement, reserve, PAGE, false, stack)?;

    let image = Image {
        entry: plan.entry,
        phdr: plan.phdr,
        phent: plan.phent,
        phnum: plan.phnum,
    };
    let rsp = build_stack(space, argv, envp, &image)?;
    Ok(TrapFrame::new_user(image.entry, rsp))
}

/// Map each segment's file pages privately from the file itself, as Linux
/// does: they are the page cache's frames until written (copy-on-write),
/// and /proc/PID/maps names the file and offset. A segment whose address
/// and file offset disagree within a page, or that shares a page with
/// another, is copied instead (returned: which copies are done). The rest
/// of a writable segment's last file page is its bss: zeroed, as Linux's
/// padzero does.
fn map_file_pages(
    space: &mut Space,
    plan: &LoadPlan,
    object: &ObjectRef,
) -> Result<Vec<bool>, Errno> {
    let pages = |c: &vm::elf::Copy| {
        let end = c.addr + c.file.len() as u64;
        (c.addr & !(PAGE - 1), end.next_multiple_of(PAGE))
    };
    let mut done = Vec::with_capacity(plan.copies.len());
    for (i, copy) in plan.copies.iter().enumerate() {
        let (start, end) = pages(copy);
        let congruent = copy.addr % PAGE == copy.file.start as u64 % PAGE;
        let alone = plan.copies.iter().enumerate().all(|(j, other)| {
            let (s, e) = pages(other);
            j == i || e <= start || s >= end
        });
        if !congruent || !alone || copy.file.is_empty() {
            done.push(false);
            continue;
        }
        let mut vma = Vma::anonymous(0, 0, Prot::READ | Prot::WRITE);
        vma.backing = Backing::Object {
            object: object.clone(),
            offset: copy.file.start as u64 & !(PAGE - 1),
        };
        let placement = Placement::Fixed {
            addr: start,
            on_conflict: OnConflict::Replace,
        };
        space.map(&mut KernelPhys, &placement, end - start, PAGE, false, vma)?;
        let tail = copy.addr + copy.file.len() as u64;
        let writable = plan
            .runs
            .iter()
            .any(|r| (r.start..r.end).contains(&start) && r.prot.contains(Prot::WRITE));
        if writable && tail < end {
            usercopy::copy_out(space, tail, &ZEROS[..(end - tail) as usize])?;
        }
        done.push(true);
    }
    Ok(done)
}

static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];

/// The main stack's reservation for an RLIMIT_STACK of `limit` bytes: the
/// limit, page-aligned, between 128 KiB and 1 GiB (unlimited: 1 GiB). The
/// stack grows down on faults until it fills it, so growth past the limit
/// is SIGSEGV, as on Linux; a limit lowered after execve is checked when
/// the stack grows (`syscall::limits::StackLimits`).
fn stack_reserve(limit: u64) -> u64 {
    limit.clamp(128 << 10, 1 << 30) & !(PAGE - 1)
}

/// Up to 4 GiB of page-granular randomness for the mmap base.
fn aslr_offset() -> u64 {
    let mut x = crate::arch::rdtsc() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % (1 << 20)) * PAGE
}

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;

/// Lay out the System V initial stack below STACK_TOP and return rsp:
///
/// ```text
///   rsp -> argc | argv[0..argc] | 0 | envp[..] | 0 | auxv pairs | AT_NULL 0
///          ... padding ... | 16 random bytes | "x86_64" | strings | STACK_TOP
/// ```
fn build_stack(
    mem: &mut dyn UserMemory,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    image: &Image,
) -> Result<u64, Errno> {
    let mut sp = STACK_TOP;
    let mut push_bytes =
        |mem: &mut dyn UserMemory, bytes: &[u8], nul: bool| -> Result<u64, Errno> {
            sp -= bytes.len() as u64 + u64::from(nul);
            usercopy::copy_out(mem, sp, bytes)?;
            if nul {
                usercopy::copy_out(mem, sp + bytes.len() as u64, &[0])?;
            }
            Ok(sp)
        };
    let random = push_bytes(mem, &random_bytes(), false)?;
    let platform = push_bytes(mem, b"x86_64", true)?;
    let env_ptrs = envp
        .iter()
        .map(|s| push_bytes(mem, s, true))
        .collect::<Result<Vec<_>, _>>()?;
    let arg_ptrs = argv
        .iter()
        .map(|s| push_bytes(mem, s, true))
        .collect::<Result<Vec<_>, _>>()?;
    let execfn = arg_ptrs.first().copied().unwrap_or(0);

    let mut words = Vec::new();
    words.push(argv.len() as u64);
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (key, value) in [
        (AT_PHDR, image.phdr),
        (AT_PHENT, image.phent),
        (AT_PHNUM, image.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_ENTRY, image.entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_PLATFORM, platform),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_RANDOM, random),
        (AT_EXECFN, execfn),
        (AT_NULL, 0),
    ] {
        words.extend([key, value]);
    }
    // The ABI wants rsp 16-byte aligned at the entry point, pointing at argc.
    let rsp = (sp - words.len() as u64 * 8) & !15;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    // Linux caps argv + envp at a quarter of the stack limit (of the
    // default limit here: the reservation's, when it is smaller).
    if STACK_TOP - rsp > STACK_RESERVE / 4 {
        return Err(Errno::E2BIG);
    }
    usercopy::copy_out(mem, rsp, &bytes)?;
    Ok(rsp)
}

/// AT_RANDOM's 16 bytes (user-space stack protectors seed from them).
fn random_bytes() -> [u8; 16] {
    let mut x = crate::arch::rdtsc() | 1;
    core::array::from_fn(|_| {
        // xorshift64: good enough for canaries in a teaching kernel.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}
