//! libFuzzer on the mmap argument validators (what is checked: `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|args: [u64; 6]| checks::mmap_validate(args));
