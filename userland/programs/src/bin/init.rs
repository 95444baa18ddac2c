//! /sbin/init: the first user program. For now it greets and exits; it
//! becomes the guided tour of demand paging as the VM subsystem lands.
#![no_std]
#![no_main]

use rt::{Args, println};

rt::main!(main);

fn main(args: Args) -> i32 {
    println!(
        "Hello from user mode: this is pageos's init (pid {}).",
        rt::sys::getpid()
    );
    for i in 1..args.len() {
        println!("  argv[{i}] = {}", args.get(i));
    }
    0
}
