#![no_std]
#![no_main]
rt::main!(main);
fn main(_: rt::Args) -> i32 {
    0
}
