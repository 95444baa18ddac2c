//! The ELF loader's parser on arbitrary files: it never panics (execve of
//! a file any user can write must not take the kernel down), and a plan it
//! accepts stays in the user half and inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm::space::{USER_END, USER_START};

fuzz_target!(|elf: &[u8]| {
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
});
