//! `swaptest DEVICE SIZE_KB`: the swap device as a program sees it, on
//! pageos (booted with `--swap`) and on Linux (`scripts/linux-run.py
//! --swap`), where the same binary first enables DEVICE with swapon(2)
//! since Linux, unlike pageos, does not take a swap disk by itself.
//!
//! It prints /proc/swaps between `BEGIN /proc/swaps` and `END /proc/swaps`
//! (the QEMU test compares the two kernels' text byte for byte), then
//! checks: one swap area, DEVICE, a partition of SIZE_KB (the disk less
//! its header page), priority -2, and /proc/meminfo's SwapTotal and
//! SwapFree agreeing with it.
#![no_std]
#![no_main]

use rt::sys::{self, EBUSY};
use rt::test::{Suite, Why, proc_number};
use rt::{Args, ensure, fail, print, println};

rt::main!(main);

const SWAPON: usize = 167;
const HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority";

fn main(args: Args) -> i32 {
    if args.len() != 3 {
        println!("usage: swaptest DEVICE SIZE_KB");
        return 2;
    }
    let (device, size) = (args.get(1), args.get(2));
    let Ok(size_kb) = size.parse::<u64>() else {
        println!("swaptest: {size:?} is not a size in kB");
        return 2;
    };
    let mut suite = Suite::new("swaptest");
    if suite.linux
        && let Err(e) = swapon(device)
    {
        println!("swaptest: swapon {device}: errno {}", e.0);
    }
    let mut text = [0u8; 1024];
    let len = read_swaps(&mut text);
    let swaps = core::str::from_utf8(&text[..len]).unwrap_or("");
    println!("BEGIN /proc/swaps");
    print!("{swaps}");
    println!("END /proc/swaps");
    suite.both("proc_swaps_has_linuxs_header", || {
        let first = swaps.lines().next().unwrap_or("");
        ensure!(first == HEADER, "first line {first:?}")
    });
    suite.both("proc_swaps_lists_the_device", || {
        let areas: usize = swaps.lines().skip(1).count();
        ensure!(areas == 1, "{areas} swap areas listed")?;
        let f = fields(swaps)?;
        ensure!(f[0] == device, "filename {:?}, want {device}", f[0])?;
        ensure!(f[1] == "partition", "type {:?}", f[1])?;
        ensure!(f[2] == size, "size {} kB, want {size_kb}", f[2])?;
        ensure!(f[4] == "-2", "priority {}", f[4])
    });
    suite.both("meminfo_swap_agrees_with_proc_swaps", || {
        let f = fields(swaps)?;
        let used: u64 = f[3]
            .parse()
            .map_err(|_| Why::new(format_args!("used {:?}", f[3])))?;
        let total = proc_number("/proc/meminfo\0", "SwapTotal")?;
        let free = proc_number("/proc/meminfo\0", "SwapFree")?;
        ensure!(total == size_kb, "SwapTotal {total} kB, want {size_kb}")?;
        ensure!(
            free == total - used,
            "SwapFree {free} kB with {used} kB of {total} used"
        )
    });
    suite.both("swapon_of_the_swap_device_is_ebusy", || {
        match swapon(device) {
            Err(e) if e == EBUSY => Ok(()),
            other => fail!("swapon {device} again: {other:?}, want EBUSY"),
        }
    });
    suite.finish()
}

/// swapon(DEVICE, 0): no priority, no discard.
fn swapon(device: &str) -> sys::Result<usize> {
    let mut path = [0u8; 64];
    let n = device.len().min(path.len() - 1);
    path[..n].copy_from_slice(&device.as_bytes()[..n]);
    sys::raw(SWAPON, [path.as_ptr() as usize, 0, 0, 0, 0, 0])
}

fn read_swaps(buf: &mut [u8]) -> usize {
    let Ok(fd) = sys::open("/proc/swaps\0", 0) else {
        return 0;
    };
    let n = sys::read(fd as i32, buf).unwrap_or(0);
    let _ = sys::close(fd);
    n
}

/// The fields of the first area's line: filename, type, size, used, priority.
fn fields(swaps: &str) -> Result<[&str; 5], Why> {
    let line = swaps
        .lines()
        .nth(1)
        .ok_or(Why::new(format_args!("no swap area")))?;
    let mut words = line.split_whitespace();
    let mut f = [""; 5];
    for slot in &mut f {
        *slot = words
            .next()
            .ok_or(Why::new(format_args!("short line {line:?}")))?;
    }
    Ok(f)
}
