//! Loading a program: the ELF loader and the System V initial stack.
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
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use vm::errno::Errno;
use vm::mmap::{OnConflict, Placement, Prot};
use vm::space::{USER_END, USER_START};
use vm::vma::{PAGE, Vma, VmaFlags};
use xmas_elf::ElfFile;
use xmas_elf::header::{Machine, Type};
use xmas_elf::program;

/// Where a static-PIE program is placed (the address gdb users know from Linux).
const PIE_BASE: u64 = 0x5555_5555_4000;
/// The initial stack: its top, and how much is mapped up front.
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;

const R_X86_64_RELATIVE: u64 = 8;
const DT_NULL: u64 = 0;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;

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
/// The segments are mapped as private anonymous memory, filled, relocated,
/// then given their final protection. (Mapping them straight from the
/// ramfs file, so they page in on demand, comes with file mappings.)
pub fn load(
    elf: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    aslr: bool,
) -> Result<(Space, TrapFrame), Errno> {
    let file = ElfFile::new(elf).map_err(|_| Errno::ENOEXEC)?;
    let header = &file.header.pt2;
    if header.machine().as_machine() != Machine::X86_64
        || file.header.pt1.class() != xmas_elf::header::Class::SixtyFour
    {
        return Err(Errno::ENOEXEC);
    }
    let base = match header.type_().as_type() {
        Type::Executable => 0,
        Type::SharedObject => PIE_BASE,
        _ => return Err(Errno::ENOEXEC),
    };
    let mmap_top = STACK_TOP - STACK_RESERVE - PAGE - if aslr { aslr_offset() } else { 0 };
    let mut space = Space::new(Pmap::new().ok_or(Errno::ENOMEM)?, mmap_top);
    match load_into(&mut space, elf, &file, base, argv, envp) {
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
    file: &ElfFile,
    base: u64,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<TrapFrame, Errno> {
    let header = &file.header.pt2;
    // Pages of all PT_LOAD segments with the union of their permissions
    // (two segments may share a page).
    let mut pages: BTreeMap<u64, Prot> = BTreeMap::new();
    let mut first_load = None;
    let loads = || {
        file.program_iter()
            .filter(|ph| ph.get_type() == Ok(program::Type::Load))
    };
    for ph in loads() {
        let start = base.checked_add(ph.virtual_addr()).ok_or(Errno::ENOEXEC)?;
        let end = start.checked_add(ph.mem_size()).ok_or(Errno::ENOEXEC)?;
        if ph.file_size() > ph.mem_size() || end > USER_END || start < USER_START {
            return Err(Errno::ENOEXEC);
        }
        let mut prot = Prot::READ;
        if ph.flags().is_write() {
            prot |= Prot::WRITE;
        }
        if ph.flags().is_execute() {
            prot |= Prot::EXEC;
        }
        for page in (start & !(PAGE - 1)..end).step_by(PAGE as usize) {
            *pages.entry(page).or_insert(Prot::empty()) |= prot;
        }
        first_load.get_or_insert(ph.virtual_addr() - ph.offset());
    }
    let runs = runs_of(&pages);
    let phys = &mut KernelPhys;
    for &(start, end, _) in &runs {
        let placement = Placement::Fixed {
            addr: start,
            on_conflict: OnConflict::FailEexist,
        };
        space.map(
            phys,
            &placement,
            end - start,
            PAGE,
            false,
            Vma::anonymous(0, 0, Prot::READ | Prot::WRITE),
        )?;
    }
    for ph in loads() {
        let data = elf
            .get(ph.offset() as usize..(ph.offset() + ph.file_size()) as usize)
            .ok_or(Errno::ENOEXEC)?;
        usercopy::copy_out(space, base + ph.virtual_addr(), data)?;
    }
    if base != 0 {
        relocate(space, elf, file, base)?;
    }
    for &(start, end, prot) in &runs {
        space.mprotect(phys, start, end, prot)?;
    }
    let end = runs.last().map_or(0, |r| r.1);
    space.set_brk_start(end);

    let mut stack = Vma::anonymous(0, 0, Prot::READ | Prot::WRITE);
    stack.flags |= VmaFlags::GROWSDOWN | VmaFlags::MAIN_STACK;
    let placement = Placement::Fixed {
        addr: STACK_TOP - STACK_RESERVE,
        on_conflict: OnConflict::FailEexist,
    };
    space.map(phys, &placement, STACK_RESERVE, PAGE, false, stack)?;

    let phdr = file
        .program_iter()
        .find(|ph| ph.get_type() == Ok(program::Type::Phdr))
        .map(|ph| ph.virtual_addr())
        .unwrap_or(first_load.unwrap_or(0) + header.ph_offset());
    let image = Image {
        entry: base + header.entry_point(),
        phdr: base + phdr,
        phent: u64::from(header.ph_entry_size()),
        phnum: u64::from(header.ph_count()),
    };
    let rsp = build_stack(space, argv, envp, &image)?;
    Ok(TrapFrame::new_user(image.entry, rsp))
}

/// Maximal runs of consecutive pages with the same protection.
fn runs_of(pages: &BTreeMap<u64, Prot>) -> Vec<(u64, u64, Prot)> {
    let mut runs: Vec<(u64, u64, Prot)> = Vec::new();
    for (&page, &prot) in pages {
        match runs.last_mut() {
            Some(run) if run.1 == page && run.2 == prot => run.1 += PAGE,
            _ => runs.push((page, page + PAGE, prot)),
        }
    }
    runs
}

/// Up to 4 GiB of page-granular randomness for the mmap base.
fn aslr_offset() -> u64 {
    let mut x = crate::arch::rdtsc() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % (1 << 20)) * PAGE
}

/// Apply the R_X86_64_RELATIVE relocations listed in PT_DYNAMIC.
fn relocate(space: &mut Space, elf: &[u8], file: &ElfFile, base: u64) -> Result<(), Errno> {
    let Some(dynamic) = file
        .program_iter()
        .find(|ph| ph.get_type() == Ok(program::Type::Dynamic))
    else {
        return Ok(());
    };
    let word = |offset: u64| -> Result<u64, Errno> {
        let at = usize::try_from(offset).map_err(|_| Errno::ENOEXEC)?;
        let bytes = elf.get(at..at + 8).ok_or(Errno::ENOEXEC)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    };
    let (mut rela, mut rela_size) = (0, 0);
    for i in 0..dynamic.file_size() / 16 {
        let tag = word(dynamic.offset() + i * 16)?;
        let value = word(dynamic.offset() + i * 16 + 8)?;
        match tag {
            DT_NULL => break,
            DT_RELA => rela = value,
            DT_RELASZ => rela_size = value,
            _ => {}
        }
    }
    // The table's address is a virtual one: find it in the file through its segment.
    let segment = file.program_iter().find(|ph| {
        ph.get_type() == Ok(program::Type::Load)
            && (ph.virtual_addr()..ph.virtual_addr() + ph.file_size()).contains(&rela)
    });
    let Some(segment) = segment else {
        return Ok(());
    };
    let table = rela - segment.virtual_addr() + segment.offset();
    for i in 0..rela_size / 24 {
        let (offset, info, addend) = (
            word(table + i * 24)?,
            word(table + i * 24 + 8)?,
            word(table + i * 24 + 16)?,
        );
        if info & 0xffff_ffff == R_X86_64_RELATIVE {
            let value = base.wrapping_add(addend);
            usercopy::copy_out(space, base + offset, &value.to_le_bytes())?;
        } else {
            log::warn!("exec: unsupported relocation type {}", info & 0xffff_ffff);
        }
    }
    Ok(())
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
    // Linux caps argv + envp at a quarter of the stack limit.
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
