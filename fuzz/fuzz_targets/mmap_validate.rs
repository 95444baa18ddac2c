//! The mmap argument validator on arbitrary arguments: it never panics, and
//! what it accepts is a request the address space can carry out as asked
//! (whole pages, a power-of-two alignment, a fixed range in the user half).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm::mmap::{self, Placement};
use vm::space::{USER_END, USER_START};

fuzz_target!(|args: [u64; 6]| {
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
});
