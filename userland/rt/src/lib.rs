//! The pageos user runtime: program start-up, Linux x86_64 syscall wrappers,
//! `print!`, and the test-report helpers the test programs share.
//!
//! Programs built on it are ordinary static-PIE ELF files for the
//! `x86_64-unknown-none` target: they use only the Linux syscall ABI, so the
//! same binary runs on pageos and on Linux.

#![no_std]

pub mod args;
pub mod io;
pub mod rng;
pub mod sys;
pub mod test;

pub use args::Args;

/// Declare the program's entry: `rt::main!(main);` with `fn main(args: Args) -> i32`.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn rt_main(sp: *const usize) -> ! {
            // SAFETY: `sp` is the initial stack the kernel laid out (System V ABI).
            let args = unsafe { $crate::Args::from_initial_stack(sp) };
            let status: i32 = $main(args);
            $crate::sys::exit(status)
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::eprintln!("panic: {info}");
            // The status abort() gives on Linux (128 + SIGABRT).
            $crate::sys::exit(134)
        }
    };
}

// The kernel enters with rsp pointing at argc (16-byte aligned). A
// static-PIE program relocates itself before running any Rust code that
// could use a pointer stored in data (Linux applies no relocations to a
// static program; musl's rcrt1.o does the same). Then rt_main gets the
// initial stack pointer, with the usual alignment rule at the call.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov r12, rsp",
    "and rsp, -16",
    "lea rdi, [rip + __ehdr_start]",
    "lea rsi, [rip + _DYNAMIC]",
    "call {relocate}",
    "mov rdi, r12",
    "call rt_main",
    "ud2",
    relocate = sym relocate,
);

const DT_NULL: u64 = 0;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const R_X86_64_RELATIVE: u64 = 8;

/// Apply the R_X86_64_RELATIVE relocations of the program loaded at `base`.
/// Runs before relocation, so it touches no static data: only the dynamic
/// section and the relocation table, through raw pointers.
unsafe extern "C" fn relocate(base: usize, dynamic: *const u64) {
    let (mut rela, mut size) = (0u64, 0u64);
    let mut entry = dynamic;
    // SAFETY: the linker ends _DYNAMIC with a DT_NULL entry; each entry is
    // two u64s (tag, value).
    unsafe {
        while *entry != DT_NULL {
            match *entry {
                DT_RELA => rela = *entry.add(1),
                DT_RELASZ => size = *entry.add(1),
                _ => {}
            }
            entry = entry.add(2);
        }
    }
    let table = (base as u64).wrapping_add(rela) as *const [u64; 3];
    for i in 0..(size / 24) as usize {
        // SAFETY: DT_RELA/DT_RELASZ describe an array of Elf64_Rela inside
        // the loaded image; each RELATIVE target is a word of its data.
        unsafe {
            let [offset, info, addend] = *table.add(i);
            if info & 0xffff_ffff == R_X86_64_RELATIVE {
                let target = (base as u64).wrapping_add(offset) as *mut u64;
                *target = (base as u64).wrapping_add(addend);
            }
        }
    }
}
