//! What the fuzz targets check, shared by libFuzzer (`fuzz_targets/`,
//! `make fuzz-host`) and by the ordinary test that replays the seeds, the
//! corpus and a fixed set of mutations of them in `make test`
//! (`vm/tests/fuzz_corpus.rs`).

// Each libFuzzer target uses only its own check.
#![allow(dead_code)]

use vm::mmap::{self, Placement};
use vm::space::{USER_END, USER_START};

/// The mmap argument validator on arbitrary arguments: it never panics, and
/// what it accepts is a request the address space can carry out as asked
/// (whole pages, a power-of-two alignment, a fixed range in the user half).
pub fn mmap_validate(args: [u64; 6]) {
    let [addr, len, prot, flags, fd, offset] = args;
    if let Ok(req) = mmap::validate_mmap(addr, len, prot, flags, fd as i32, offset) {
        assert!(req.len > 0 && req.len % 4096 == 0 && req.len >= len);
        assert!(req.align.is_power_of_two() && req.align >= 4096);
        if let Placement::Fixed { addr, .. } = req.placement {
            assert!(addr % req.align == 0);
            assert!(addr >= USER_START && addr + req.len <= USER_END);
        }
    }
    for (result, len) in [
        (mmap::validate_munmap(addr, len), len),
        (mmap::validate_mincore(addr, len), len),
        (mmap::validate_msync(addr, len, prot), len),
        (mmap::validate_mprotect(addr, len, prot).map(|r| r.0), len),
        (mmap::validate_madvise(addr, len, prot).map(|r| r.0), len),
    ] {
        if let Ok(span) = result {
            assert!(span.start % 4096 == 0 && span.end % 4096 == 0);
            assert!(span.start <= span.end && span.end - span.start >= len);
            assert!(span.is_empty() || span.end <= USER_END);
        }
    }
}

/// The six arguments as libFuzzer's `[u64; 6]` reads them from a file
/// (`arbitrary`: eight little-endian bytes each, zeros past the end).
pub fn mmap_args(bytes: &[u8]) -> [u64; 6] {
    let mut args = [0u64; 6];
    for (i, arg) in args.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        for (j, byte) in word.iter_mut().enumerate() {
            *byte = bytes.get(i * 8 + j).copied().unwrap_or(0);
        }
        *arg = u64::from_le_bytes(word);
    }
    args
}

/// The ELF loader's parser on arbitrary files: it never panics (execve of
/// a file any user can write must not take the kernel down), and a plan it
/// accepts stays in the user half and inside the file.
pub fn elf_plan(elf: &[u8]) {
    let Ok(plan) = vm::elf::plan(elf, 0x5555_5555_4000) else {
        return;
    };
    let mut last_end = 0;
    for run in &plan.runs {
        assert!(run.start % 4096 == 0 && run.end % 4096 == 0);
        assert!(run.start < run.end && run.start >= last_end);
        assert!(run.start >= USER_START && run.end <= USER_END);
        last_end = run.end;
    }
    for copy in &plan.copies {
        assert!(copy.file.end <= elf.len());
        let len = (copy.file.end - copy.file.start) as u64;
        // Every byte lands in a mapped run (a copy may span several).
        let (mut at, end) = (copy.addr, copy.addr + len);
        while at < end {
            let run = plan.runs.iter().find(|r| r.start <= at && at < r.end);
            at = run.expect("a copy outside the mapped runs").end;
        }
    }
}
