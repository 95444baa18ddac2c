//! `make gdb`: the runner's `--gdb` starts QEMU paused and writes a gdb
//! script that loads the kernel's symbols where the bootloader puts them.
//! gdb, driven in batch mode, must stop in `kmain` (its first line may be
//! inlined code: the backtrace shows `kmain` a frame up) and see its source.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn gdb_stops_in_kmain_with_symbols() {
    let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pageos.gdb"));
    let _ = std::fs::remove_file(script);
    let mut runner = Command::new(env!("CARGO_BIN_EXE_boot"))
        .args(["--gdb", "--timeout", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cannot start the runner");
    let started = Instant::now();
    while !script.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let gdb = Command::new("gdb")
        .arg("-batch")
        .arg("-x")
        .arg(script)
        .args(["-ex", "bt 3", "-ex", "kill"])
        .output()
        .expect("gdb is not installed (scripts/setup.sh installs it)");
    let _ = runner.kill();
    let _ = runner.wait();
    let out = String::from_utf8_lossy(&gdb.stdout);
    assert!(
        out.contains("kernel::kmain") && out.contains("kernel/src/main.rs"),
        "gdb did not stop in kmain:\n{out}\n{}",
        String::from_utf8_lossy(&gdb.stderr)
    );
}
