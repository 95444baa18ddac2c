//! Reading an ELF executable: from the file's bytes to a plan of what to
//! map, copy and relocate. The kernel's loader (`kernel/src/exec.rs`)
//! carries the plan out on a fresh address space.
//!
//! The bytes come from a user-writable file (execve of anything in the
//! ramfs), so every field is untrusted: each offset and size is checked
//! against the file and every sum is a checked one. A malformed file is
//! ENOEXEC, never a panic; `fuzz/fuzz_targets/elf_plan.rs` feeds this
//! module random files to keep it that way.
//!
//! Only what the loader needs is read: the ELF64 header, the program
//! headers (PT_LOAD, PT_DYNAMIC, PT_PHDR), and the RELA table PT_DYNAMIC
//! names (R_X86_64_RELATIVE relocations of static-PIE programs).

use crate::errno::Errno;
use crate::mmap::Prot;
use crate::space::{USER_END, USER_START};
use crate::vma::PAGE;
use alloc::vec::Vec;
use core::ops::Range;

const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
/// The size of an ELF64 program header.
const PHDR_SIZE: usize = 56;
const R_X86_64_RELATIVE: u64 = 8;
const DT_NULL: u64 = 0;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;

/// One program header, as read from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub align: u64,
}

/// Pages [start, end) mapped with `prot` (the union of the permissions of
/// the segments that share a page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
}

/// Bytes `file` of the ELF file copied to user address `addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub addr: u64,
    pub file: Range<usize>,
}

/// What loading the program takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Where the image is placed: 0 for ET_EXEC, the PIE base for ET_DYN.
    pub base: u64,
    /// Page runs to map read-write, fill, then give their `prot`, in order.
    pub runs: Vec<Run>,
    pub copies: Vec<Copy>,
    /// R_X86_64_RELATIVE relocations: the 8-byte value to store at each address.
    pub relocations: Vec<(u64, u64)>,
    /// Relocation types other than RELATIVE, which are skipped.
    pub unsupported_relocations: Vec<u32>,
    /// The auxiliary vector's AT_ENTRY, AT_PHDR, AT_PHENT, AT_PHNUM.
    pub entry: u64,
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    /// The end of the last run: where brk starts.
    pub brk_start: u64,
}

/// The little-endian integer of `N` bytes at `at`, if the file holds it.
fn read<const N: usize>(elf: &[u8], at: u64) -> Result<[u8; N], Errno> {
    let at = usize::try_from(at).map_err(|_| Errno::ENOEXEC)?;
    let end = at.checked_add(N).ok_or(Errno::ENOEXEC)?;
    let bytes = elf.get(at..end).ok_or(Errno::ENOEXEC)?;
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn u16_at(elf: &[u8], at: u64) -> Result<u16, Errno> {
    read::<2>(elf, at).map(u16::from_le_bytes)
}

fn u32_at(elf: &[u8], at: u64) -> Result<u32, Errno> {
    read::<4>(elf, at).map(u32::from_le_bytes)
}

fn u64_at(elf: &[u8], at: u64) -> Result<u64, Errno> {
    read::<8>(elf, at).map(u64::from_le_bytes)
}

/// The program headers of a 64-bit little-endian x86_64 ELF file.
pub fn program_headers(elf: &[u8]) -> Result<Vec<ProgramHeader>, Errno> {
    let ident = read::<6>(elf, 0)?;
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if ident[..4] != *b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
        return Err(Errno::ENOEXEC);
    }
    if u16_at(elf, 18)? != EM_X86_64 {
        return Err(Errno::ENOEXEC);
    }
    let ph_offset = u64_at(elf, 32)?;
    let ph_size = u64::from(u16_at(elf, 54)?);
    let ph_count = u64::from(u16_at(elf, 56)?);
    if ph_count > 0 && (ph_size as usize) < PHDR_SIZE {
        return Err(Errno::ENOEXEC);
    }
    (0..ph_count)
        .map(|i| {
            let at = ph_offset.checked_add(i * ph_size).ok_or(Errno::ENOEXEC)?;
            let field = |off: u64| at.checked_add(off).ok_or(Errno::ENOEXEC);
            Ok(ProgramHeader {
                kind: u32_at(elf, at)?,
                flags: u32_at(elf, field(4)?)?,
                offset: u64_at(elf, field(8)?)?,
                vaddr: u64_at(elf, field(16)?)?,
                file_size: u64_at(elf, field(32)?)?,
                mem_size: u64_at(elf, field(40)?)?,
                align: u64_at(elf, field(48)?)?,
            })
        })
        .collect()
}

/// The interpreter a dynamically linked program names (PT_INTERP), up to
/// its NUL: pageos has no dynamic loader, so such a file is ENOEXEC and the
/// loader logs this name. None when there is none (or it is not in the file).
pub fn interpreter(elf: &[u8]) -> Option<&[u8]> {
    let headers = program_headers(elf).ok()?;
    let ph = headers.iter().find(|ph| ph.kind == PT_INTERP)?;
    let range = file_range(elf, ph.offset, ph.file_size).ok()?;
    let name = &elf[range];
    Some(name.split(|&b| b == 0).next().unwrap_or(name))
}

/// Linux's rule for a loadable segment: its file offset and its address
/// agree modulo the page size, and modulo p_align when that is a power of
/// two above one (0 and 1 mean no alignment); otherwise the file's pages
/// could not be mapped at the segment's pages.
fn aligned(ph: &ProgramHeader) -> bool {
    let congruent = |align: u64| ph.offset % align == ph.vaddr % align;
    congruent(PAGE) && (ph.align <= 1 || !ph.align.is_power_of_two() || congruent(ph.align))
}

/// The plan for loading `elf`: ET_EXEC at its link addresses, ET_DYN
/// (static-PIE) at `pie_base` with its RELATIVE relocations. ENOEXEC for
/// anything else or anything malformed: a segment outside the user half or
/// misaligned (`aligned`), file bytes past the end of the file, a
/// relocation table that is not there, an interpreter (PT_INTERP).
pub fn plan(elf: &[u8], pie_base: u64) -> Result<LoadPlan, Errno> {
    let headers = program_headers(elf)?;
    if headers.iter().any(|ph| ph.kind == PT_INTERP) {
        return Err(Errno::ENOEXEC);
    }
    let base = match u16_at(elf, 16)? {
        ET_EXEC => 0,
        ET_DYN => pie_base,
        _ => return Err(Errno::ENOEXEC),
    };
    let at_base = |vaddr: u64| base.checked_add(vaddr).ok_or(Errno::ENOEXEC);
    let loads = || headers.iter().filter(|ph| ph.kind == PT_LOAD);

    let mut spans = Vec::new();
    let mut copies = Vec::new();
    for ph in loads() {
        let start = at_base(ph.vaddr)?;
        let end = start.checked_add(ph.mem_size).ok_or(Errno::ENOEXEC)?;
        if ph.file_size > ph.mem_size || end > USER_END || start < USER_START || !aligned(ph) {
            return Err(Errno::ENOEXEC);
        }
        let mut prot = Prot::READ;
        if ph.flags & PF_W != 0 {
            prot |= Prot::WRITE;
        }
        if ph.flags & PF_X != 0 {
            prot |= Prot::EXEC;
        }
        spans.push((start & !(PAGE - 1), end.next_multiple_of(PAGE), prot));
        copies.push(Copy {
            addr: start,
            file: file_range(elf, ph.offset, ph.file_size)?,
        });
    }
    let runs = runs_of(&spans);

    let (relocations, unsupported_relocations) = if base != 0 {
        relocations(elf, &headers, base)?
    } else {
        (Vec::new(), Vec::new())
    };
    let entry = at_base(u64_at(elf, 24)?)?;
    let first_load = loads().next().map(|ph| ph.vaddr.wrapping_sub(ph.offset));
    let phdr = headers
        .iter()
        .find(|ph| ph.kind == PT_PHDR)
        .map(|ph| ph.vaddr)
        .unwrap_or(first_load.unwrap_or(0).wrapping_add(u64_at(elf, 32)?));
    Ok(LoadPlan {
        base,
        brk_start: runs.last().map_or(0, |r| r.end),
        runs,
        copies,
        relocations,
        unsupported_relocations,
        entry,
        phdr: base.wrapping_add(phdr),
        phent: u64::from(u16_at(elf, 54)?),
        phnum: headers.len() as u64,
    })
}

/// Bytes [offset, offset + size) of the file, if it holds them.
fn file_range(elf: &[u8], offset: u64, size: u64) -> Result<Range<usize>, Errno> {
    let start = usize::try_from(offset).map_err(|_| Errno::ENOEXEC)?;
    let size = usize::try_from(size).map_err(|_| Errno::ENOEXEC)?;
    let end = start.checked_add(size).ok_or(Errno::ENOEXEC)?;
    if end > elf.len() {
        return Err(Errno::ENOEXEC);
    }
    Ok(start..end)
}

/// Maximal runs of consecutive pages with the same protection, where each
/// page has the union of the protections of the page-rounded `spans`
/// covering it. Works on span boundaries, not pages, so that a segment of
/// terabytes costs no more than one of a page.
fn runs_of(spans: &[(u64, u64, Prot)]) -> Vec<Run> {
    let mut cuts: Vec<u64> = spans.iter().flat_map(|s| [s.0, s.1]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut runs: Vec<Run> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let covering = spans.iter().filter(|s| s.0 <= start && end <= s.1);
        let Some(prot) = covering.map(|s| s.2).reduce(|a, b| a | b) else {
            continue;
        };
        match runs.last_mut() {
            Some(run) if run.end == start && run.prot == prot => run.end = end,
            _ => runs.push(Run { start, end, prot }),
        }
    }
    runs
}

/// The R_X86_64_RELATIVE relocations listed in PT_DYNAMIC, as (address,
/// value) pairs for an image at `base`, and the types of any others.
#[allow(clippy::type_complexity)]
fn relocations(
    elf: &[u8],
    headers: &[ProgramHeader],
    base: u64,
) -> Result<(Vec<(u64, u64)>, Vec<u32>), Errno> {
    let (mut relocs, mut unsupported) = (Vec::new(), Vec::new());
    let Some(dynamic) = headers.iter().find(|ph| ph.kind == PT_DYNAMIC) else {
        return Ok((relocs, unsupported));
    };
    let at = |offset: u64, i: u64, size: u64, field: u64| {
        i.checked_mul(size)
            .and_then(|o| o.checked_add(field))
            .and_then(|o| o.checked_add(offset))
            .ok_or(Errno::ENOEXEC)
    };
    let (mut rela, mut rela_size) = (0, 0);
    for i in 0..dynamic.file_size / 16 {
        let tag = u64_at(elf, at(dynamic.offset, i, 16, 0)?)?;
        let value = u64_at(elf, at(dynamic.offset, i, 16, 8)?)?;
        match tag {
            DT_NULL => break,
            DT_RELA => rela = value,
            DT_RELASZ => rela_size = value,
            _ => {}
        }
    }
    // The table's address is a virtual one: find it in the file through its segment.
    let segment = headers
        .iter()
        .find(|ph| ph.kind == PT_LOAD && ph.vaddr <= rela && rela - ph.vaddr < ph.file_size);
    let Some(segment) = segment else {
        return Ok((relocs, unsupported));
    };
    let table = (rela - segment.vaddr)
        .checked_add(segment.offset)
        .ok_or(Errno::ENOEXEC)?;
    for i in 0..rela_size / 24 {
        let offset = u64_at(elf, at(table, i, 24, 0)?)?;
        let info = u64_at(elf, at(table, i, 24, 8)?)?;
        let addend = u64_at(elf, at(table, i, 24, 16)?)?;
        if info & 0xffff_ffff == R_X86_64_RELATIVE {
            let addr = base.checked_add(offset).ok_or(Errno::ENOEXEC)?;
            relocs.push((addr, base.wrapping_add(addend)));
        } else {
            unsupported.push(info as u32);
        }
    }
    Ok((relocs, unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIE: u64 = 0x5555_5555_4000;

    /// A minimal ELF64 header with `phnum` program headers right after it.
    fn header(kind: u16, phnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[16..18].copy_from_slice(&kind.to_le_bytes());
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        h[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h
    }

    fn phdr(kind: u32, flags: u32, offset: u64, vaddr: u64, file: u64, mem: u64) -> Vec<u8> {
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&kind.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&file.to_le_bytes());
        p[40..48].copy_from_slice(&mem.to_le_bytes());
        p
    }

    #[test]
    fn segments_sharing_a_page_get_the_union_of_their_rights() {
        let mut elf = header(ET_EXEC, 2);
        elf.extend(phdr(PT_LOAD, 5, 0, 0x40_0000, 0x40, 0x1800));
        // File offsets agree with addresses modulo the page, as Linux requires.
        elf.extend(phdr(PT_LOAD, 6, 0x800, 0x40_1800, 0x10, 0x1000));
        elf.resize(0x810, 0);
        let plan = plan(&elf, PIE).unwrap();
        let rx = Prot::READ | Prot::EXEC;
        assert_eq!(
            plan.runs,
            vec![
                Run {
                    start: 0x40_0000,
                    end: 0x40_1000,
                    prot: rx
                },
                Run {
                    start: 0x40_1000,
                    end: 0x40_2000,
                    prot: Prot::all()
                },
                Run {
                    start: 0x40_2000,
                    end: 0x40_3000,
                    prot: Prot::READ | Prot::WRITE
                },
            ]
        );
        assert_eq!(plan.brk_start, 0x40_3000);
        assert_eq!(plan.entry, 0x1000);
        assert_eq!(
            plan.copies[1],
            Copy {
                addr: 0x40_1800,
                file: 0x800..0x810
            }
        );
    }

    #[test]
    fn malformed_files_are_enoexec() {
        let mut elf = header(ET_EXEC, 1);
        elf.extend(phdr(PT_LOAD, 4, 0, 0x40_0000, 0x10_0000, 0x10_0000));
        assert_eq!(
            plan(&elf, PIE),
            Err(Errno::ENOEXEC),
            "file bytes past the end"
        );
        let mut elf = header(ET_EXEC, 1);
        elf.extend(phdr(PT_LOAD, 4, u64::MAX, 0x40_0000, 2, 2));
        assert_eq!(
            plan(&elf, PIE),
            Err(Errno::ENOEXEC),
            "offset + size overflows"
        );
        let mut elf = header(ET_EXEC, 1);
        elf.extend(phdr(PT_LOAD, 4, 0, u64::MAX - 10, 0, 100));
        assert_eq!(plan(&elf, PIE), Err(Errno::ENOEXEC), "kernel-half segment");
        let mut elf = header(ET_EXEC, 3);
        elf.extend(phdr(PT_LOAD, 4, 0, 0x40_0000, 0, 1));
        assert_eq!(plan(&elf, PIE), Err(Errno::ENOEXEC), "headers past the end");
        assert_eq!(plan(&header(1, 0), PIE), Err(Errno::ENOEXEC), "ET_REL");
        assert_eq!(plan(b"\x7fELF", PIE), Err(Errno::ENOEXEC), "truncated");
    }

    /// A program header with p_align set.
    fn aligned_phdr(offset: u64, vaddr: u64, align: u64) -> Vec<u8> {
        let mut p = phdr(PT_LOAD, 5, offset, vaddr, 0x10, 0x10);
        p[48..56].copy_from_slice(&align.to_le_bytes());
        p
    }

    #[test]
    fn misaligned_segments_are_enoexec() {
        let one = |p: Vec<u8>| {
            let mut elf = header(ET_EXEC, 1);
            elf.extend(p);
            elf.resize(0x3000, 0);
            plan(&elf, PIE).map(|_| ())
        };
        assert_eq!(one(aligned_phdr(0x1000, 0x40_1000, 0x1000)), Ok(()));
        assert_eq!(
            one(aligned_phdr(0x1010, 0x40_0010, 0x20_0000)),
            Err(Errno::ENOEXEC)
        );
        assert_eq!(
            one(aligned_phdr(0x1000, 0x40_0000, 0x1000)),
            Ok(()),
            "congruent modulo p_align"
        );
        assert_eq!(
            one(aligned_phdr(0x10, 0x40_0020, 0)),
            Err(Errno::ENOEXEC),
            "p_align 0 still needs page congruence"
        );
        assert_eq!(
            one(aligned_phdr(0x1000, 0x40_0000, 0x2000)),
            Err(Errno::ENOEXEC),
            "offset % p_align != vaddr % p_align"
        );
    }

    #[test]
    fn an_interpreter_is_enoexec_and_named() {
        let mut elf = header(ET_EXEC, 2);
        let name = b"/lib64/ld-linux-x86-64.so.2\0";
        elf.extend(phdr(
            PT_INTERP,
            4,
            176,
            0,
            name.len() as u64,
            name.len() as u64,
        ));
        elf.extend(phdr(PT_LOAD, 5, 0, 0x40_0000, 0x10, 0x10));
        elf.extend(name);
        assert_eq!(plan(&elf, PIE), Err(Errno::ENOEXEC));
        assert_eq!(interpreter(&elf), Some(&b"/lib64/ld-linux-x86-64.so.2"[..]));
        assert_eq!(interpreter(&header(ET_EXEC, 0)), None);
    }

    #[test]
    fn a_huge_segment_is_planned_without_walking_its_pages() {
        let mut elf = header(ET_EXEC, 1);
        elf.extend(phdr(PT_LOAD, 6, 0, USER_START, 0, USER_END - USER_START));
        let plan = plan(&elf, PIE).unwrap();
        assert_eq!(plan.runs.len(), 1);
    }

    #[test]
    fn relative_relocations_of_a_pie() {
        let mut elf = header(ET_DYN, 2);
        // PT_DYNAMIC at file offset 176: DT_RELA = 0x1000 + 208 - 0, DT_RELASZ = 24.
        elf.extend(phdr(PT_LOAD, 6, 0, 0x1_0000, 400, 400));
        elf.extend(phdr(PT_DYNAMIC, 6, 176, 0x1_0000 + 176, 32, 32));
        for word in [DT_RELA, 0x1_0000 + 208, DT_RELASZ, 24] {
            elf.extend(word.to_le_bytes());
        }
        for word in [0x1_0100u64, R_X86_64_RELATIVE, 0x1_0040] {
            elf.extend(word.to_le_bytes());
        }
        elf.resize(400, 0);
        let plan = plan(&elf, PIE).unwrap();
        assert_eq!(plan.relocations, vec![(PIE + 0x1_0100, PIE + 0x1_0040)]);
        assert_eq!(plan.runs[0].start, PIE + 0x1_0000);
    }
}
