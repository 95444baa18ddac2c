//! libFuzzer on the ELF loader's parser (what is checked: `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|elf: &[u8]| checks::elf_plan(elf));
