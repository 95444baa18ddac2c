//! `cargo run`: boot pageos in QEMU and return what its init returned.
//!
//! The steps are plain: pack the user programs into a cpio initrd, write the
//! kernel command line to a file QEMU hands the guest through `fw_cfg`, build
//! a BIOS or UEFI disk image with `bootloader`, run QEMU, and turn the status
//! the kernel reported into our own exit status (DESIGN §1).

mod cpio;
mod disks;
mod qemu;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Boot pageos in QEMU. Exit status: init's exit status; 128+N when init was
/// killed by signal N; 101 on a kernel panic; 124 on timeout.
#[derive(Parser, Debug)]
#[command(name = "pageos", version)]
pub struct Options {
    /// Run this static x86_64 ELF as init (it is added to the initrd).
    #[arg(long, value_name = "FILE")]
    exec: Option<PathBuf>,
    /// Add a host file to the ramfs (default PATH: /FILE's name).
    #[arg(long = "file", value_name = "FILE[:PATH]")]
    files: Vec<String>,
    /// Boot through UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// Guest RAM, in QEMU's syntax (512M, 4G).
    #[arg(long, default_value = "512M")]
    memory: String,
    /// CPUs: QEMU's -smp N, with multi-threaded TCG when N > 1. Default 2
    /// (1 with --icount).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
    cpus: Option<u32>,
    /// The kernel logs every page fault: address, access, VMA, resolution, cycles.
    #[arg(long)]
    trace_faults: bool,
    /// Count instructions instead of time (QEMU's `-icount shift=0,sleep=off`):
    /// the guest's clocks and TSC advance one tick per instruction executed,
    /// so a benchmark reads the same on a loaded host. One CPU only.
    #[arg(long, conflicts_with = "cpus")]
    icount: bool,
    /// Kill QEMU after SECS seconds (exit status 124). Default 120, none with --gdb.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Start QEMU paused, waiting for gdb on :1234.
    #[arg(long)]
    gdb: bool,
    /// Connect the terminal to the serial console both ways (a shell can
    /// be typed into; ^C goes to the guest). Without it stdin is not read
    /// and programs read end of file. No timeout unless --timeout.
    #[arg(long)]
    interactive: bool,
    /// Attach a fresh swap disk of SIZE (virtio-blk) with Linux's swap
    /// header (the mkswap layout); the kernel swaps to it.
    #[arg(long, value_name = "SIZE")]
    swap: Option<String>,
    /// Attach FILE as a further virtio-blk disk (raw); repeatable.
    #[arg(long = "disk", value_name = "FILE")]
    disks: Vec<PathBuf>,
    /// An extra kernel command-line switch (no-aslr, selftest, ...); repeatable.
    #[arg(long = "kernel-arg", value_name = "SWITCH")]
    kernel_args: Vec<String>,
    /// Arguments for init (argv[1..]).
    #[arg(last = true)]
    args: Vec<String>,
}

impl Options {
    /// The CPUs to boot: as asked, else 2 (the threads a program makes run
    /// at once, as on any machine now), or 1 under --icount, which QEMU
    /// counts on one CPU only.
    pub fn cpus(&self) -> u32 {
        self.cpus.unwrap_or(if self.icount { 1 } else { 2 })
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    match qemu::boot(&options) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("pageos: {error}");
            ExitCode::from(2)
        }
    }
}
