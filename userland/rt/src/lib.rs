//! The pageos user runtime: program start-up, Linux x86_64 syscall wrappers,
//! `print!`, and the test-report helpers the test programs share.
//!
//! Programs built on it are ordinary static-PIE ELF files for the
//! `x86_64-unknown-none` target: they use only the Linux syscall ABI, so the
//! same binary runs on pageos and on Linux.

#![no_std]

pub mod args;
pub mod io;
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

// The kernel enters with rsp pointing at argc (16-byte aligned); calling
// rt_main with it keeps the usual alignment rule at the call.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call rt_main",
    "ud2",
);
