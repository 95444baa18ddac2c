//! `vmwalk [ADDR...]`: print the page-table walk for each address (hex) in
//! this program's own address space, level by level, as the MMU does it:
//! the index into each table, the entry's raw value and flags, and the
//! physical address it ends at. The kernel does the walk
//! (/proc/self/pagewalk/ADDR); this command asks for it.
//!
//! Without arguments it shows a page being born: a fresh mapping has no
//! walk beyond the tables that already exist, and after one store it
//! ends in a frame.
//!
//! `cargo run -- --kernel-arg init=/bin/vmwalk` (add `-- ADDR...` to walk
//! addresses of your choice: this program's stack is near 0x7fffffffe000).
#![no_std]
#![no_main]

use rt::sys::{self, ANON, RW, poke};
use rt::{Args, println};

rt::main!(main);

fn main(args: Args) -> i32 {
    if args.len() > 1 {
        let mut status = 0;
        for i in 1..args.len() {
            let text = args.get(i);
            match usize::from_str_radix(text.trim_start_matches("0x"), 16) {
                Ok(addr) => walk(addr),
                Err(_) => {
                    println!("vmwalk: {text:?} is not a hex address");
                    status = 2;
                }
            }
        }
        return status;
    }
    let Ok(page) = sys::mmap(0, 4096, RW, ANON, -1, 0) else {
        println!("vmwalk: mmap failed");
        return 1;
    };
    println!("A page just mapped: the VMA exists, the translation does not.");
    walk(page);
    poke(page, 1);
    println!("\nAfter one store: the fault handler filled in the last level.");
    walk(page);
    let local = 0u8;
    println!("\nThis program's stack:");
    walk(core::ptr::addr_of!(local) as usize);
    println!("\nIts code (note: no W, no NX):");
    walk(main as *const () as usize);
    0
}

/// Print /proc/self/pagewalk/ADDR.
fn walk(addr: usize) {
    let mut path = [0u8; 48];
    let prefix = b"/proc/self/pagewalk/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    for shift in (0..16).rev() {
        path[len] = b"0123456789abcdef"[(addr >> (shift * 4)) & 0xf];
        len += 1;
    }
    // path[len] is the terminating NUL.
    let Ok(path) = core::str::from_utf8(&path[..=len]) else {
        return;
    };
    let Ok(fd) = sys::open(path, 0) else {
        println!("vmwalk: no walk for {addr:#x}");
        return;
    };
    let mut buf = [0u8; 1024];
    let n = sys::read(fd as i32, &mut buf).unwrap_or(0);
    let _ = sys::close(fd);
    for line in core::str::from_utf8(&buf[..n]).unwrap_or("").lines() {
        println!("  {line}");
    }
}
