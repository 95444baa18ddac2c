//! Building the boot image and running QEMU.
//!
//! The kernel reports its final status on QEMU's `debugcon` port (0xe9),
//! which we capture in a file: a line `status N`. It then leaves through the
//! `isa-debug-exit` device (port 0xf4). That device alone cannot carry the
//! status, because QEMU exits with `(value << 1) | 1` and only 8 bits survive,
//! so serial (our stdout) stays free for the programs' own output.

use crate::{Options, cpio, disks};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU's exit status when the kernel wrote `QEMU_EXIT_REPORTED` (0x10) to
/// isa-debug-exit: `(0x10 << 1) | 1`.
const QEMU_STATUS_REPORTED: i32 = 33;
const STATUS_PANIC: u8 = 101;
const STATUS_TIMEOUT: u8 = 124;
const DEFAULT_TIMEOUT: u64 = 120;

/// Boot the kernel as `options` say and return the exit status of DESIGN §1.
pub fn boot(options: &Options) -> Result<u8, String> {
    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let (initrd, init_path) = initrd(options)?;
    let initrd_file = work.path().join("initrd.cpio");
    write(&initrd_file, &initrd)?;
    let cmdline_file = work.path().join("cmdline");
    write(&cmdline_file, cmdline(options, &init_path).as_bytes())?;
    let image = work.path().join("pageos.img");
    disk_image(
        options.uefi,
        &loaded_kernel(work.path()),
        &initrd_file,
        &image,
    )?;
    let status_file = work.path().join("status");
    let disk_files = disks::prepare(options.swap.as_deref(), &options.disks, work.path())?;

    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-m", &options.memory])
        // SMEP and SMAP are not in TCG's default CPU model; NX and syscall are.
        .args(["-cpu", "qemu64,+smep,+smap"])
        .args(["-display", "none", "-monitor", "none"])
        .arg("-no-reboot")
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-debugcon", &format!("file:{}", status_file.display())])
        .args(["-global", "isa-debugcon.iobase=0xe9"])
        .arg("-fw_cfg")
        .arg(format!(
            "name=opt/pageos/cmdline,file={}",
            cmdline_file.display()
        ))
        .arg("-drive")
        .arg(format!("format=raw,file={}", image.display()))
        .args(disks::qemu_args(&disk_files));
    if options.interactive {
        // QEMU's stdio puts a terminal in raw mode; signal=off passes ^C
        // to the guest instead of ending QEMU.
        qemu.args(["-chardev", "stdio,id=console,signal=off"])
            .args(["-serial", "chardev:console"]);
    } else {
        qemu.args(["-serial", "stdio"]).stdin(Stdio::null());
    }
    if options.cpus() > 1 {
        // One host thread per vCPU (DESIGN §1), so the CPUs really run at once.
        qemu.args(["-smp", &options.cpus().to_string()])
            .args(["-accel", "tcg,thread=multi"]);
    }
    if options.icount {
        // Virtual time = instructions executed; an idle guest jumps to its
        // next timer instead of waiting (sleep=off).
        qemu.args(["-icount", "shift=0,sleep=off"]);
    }
    if options.uefi {
        qemu.arg("-bios").arg(ovmf()?);
    }
    if options.gdb {
        qemu.args(["-s", "-S"]);
        let script = gdb_script()?;
        eprintln!(
            "pageos: QEMU is waiting for gdb on :1234: gdb -x {} (see `make gdb`)",
            script.display()
        );
    }
    let timeout = options.timeout.or(if options.gdb || options.interactive {
        None
    } else {
        Some(DEFAULT_TIMEOUT)
    });

    let mut child = qemu.spawn().map_err(|e| {
        format!(
            "cannot start qemu-system-x86_64 ({e}); install it: apt-get install qemu-system-x86"
        )
    })?;
    let started = Instant::now();
    let exit = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if timeout.is_some_and(|secs| started.elapsed() >= Duration::from_secs(secs)) {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "pageos: timeout after {}s, QEMU killed",
                timeout.unwrap_or(0)
            );
            return Ok(STATUS_TIMEOUT);
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    let report = std::fs::read_to_string(&status_file).unwrap_or_default();
    match (exit.code(), reported_status(&report)) {
        (Some(QEMU_STATUS_REPORTED), Some(status)) => Ok(status),
        (code, _) => {
            // A triple fault resets the machine, and -no-reboot turns the
            // reset into a plain QEMU exit: the kernel died without a word.
            eprintln!("pageos: QEMU exited ({code:?}) without a status from the kernel");
            Ok(STATUS_PANIC)
        }
    }
}

/// The last `status N` line the kernel wrote to debugcon.
fn reported_status(report: &str) -> Option<u8> {
    report
        .lines()
        .filter_map(|line| line.strip_prefix("status "))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
}

/// The user programs (userland/programs), built for x86_64-unknown-none by
/// cargo as artifact dependencies. A new program is added here and in its
/// Cargo.toml.
const PROGRAMS: &[(&str, &str)] = &[
    ("init", env!("CARGO_BIN_FILE_PROGRAMS_init")),
    ("probe", env!("CARGO_BIN_FILE_PROGRAMS_probe")),
    ("vmtest", env!("CARGO_BIN_FILE_PROGRAMS_vmtest")),
    ("vmbench", env!("CARGO_BIN_FILE_PROGRAMS_vmbench")),
    ("filetest", env!("CARGO_BIN_FILE_PROGRAMS_filetest")),
    ("proctest", env!("CARGO_BIN_FILE_PROGRAMS_proctest")),
    ("labtest", env!("CARGO_BIN_FILE_PROGRAMS_labtest")),
    ("remaptest", env!("CARGO_BIN_FILE_PROGRAMS_remaptest")),
    ("thptest", env!("CARGO_BIN_FILE_PROGRAMS_thptest")),
    ("memfdtest", env!("CARGO_BIN_FILE_PROGRAMS_memfdtest")),
    ("vmwalk", env!("CARGO_BIN_FILE_PROGRAMS_vmwalk")),
    ("fuzz", env!("CARGO_BIN_FILE_PROGRAMS_fuzz")),
    ("chaos", env!("CARGO_BIN_FILE_PROGRAMS_chaos")),
    ("stress", env!("CARGO_BIN_FILE_PROGRAMS_stress")),
    ("isotest", env!("CARGO_BIN_FILE_PROGRAMS_isotest")),
    ("timetest", env!("CARGO_BIN_FILE_PROGRAMS_timetest")),
    ("swaptest", env!("CARGO_BIN_FILE_PROGRAMS_swaptest")),
    ("pressuretest", env!("CARGO_BIN_FILE_PROGRAMS_pressuretest")),
];

/// The initrd: every user program under /bin, init at /sbin/init, the
/// `--exec` program and `--file`s where asked. Returns it with init's path.
fn initrd(options: &Options) -> Result<(Vec<u8>, String), String> {
    let mut archive = cpio::Archive::default();
    let mut dirs = vec!["bin".to_string(), "sbin".to_string()];
    archive.dir("bin");
    archive.dir("sbin");
    for (name, path) in PROGRAMS {
        let data = read(Path::new(path))?;
        if *name == "init" {
            archive.file("sbin/init", &data);
        } else {
            archive.file(&format!("bin/{name}"), &data);
        }
    }
    let mut init = "/sbin/init".to_string();
    if let Some(exec) = &options.exec {
        init = format!("/{}", file_name(exec)?);
        archive.file(&init[1..], &read(exec)?);
    }
    for spec in &options.files {
        let (host, guest) = match spec.split_once(':') {
            Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
            None => (
                PathBuf::from(spec),
                format!("/{}", file_name(Path::new(spec))?),
            ),
        };
        let guest = guest.trim_start_matches('/').to_string();
        // Parent directories first: the kernel creates nothing implicitly.
        let mut prefix = String::new();
        for part in guest
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            prefix = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}/{part}")
            };
            if !dirs.contains(&prefix) {
                archive.dir(&prefix);
                dirs.push(prefix.clone());
            }
        }
        archive.file(&guest, &read(&host)?);
    }
    Ok((archive.finish(), init))
}

/// The kernel command line, one word per line so arguments may hold spaces:
/// `init=PATH`, switches, then `--` and init's arguments.
fn cmdline(options: &Options, init: &str) -> String {
    let mut lines = vec![format!("init={init}")];
    if options.trace_faults {
        lines.push("trace-faults".into());
    }
    if options.interactive {
        lines.push("interactive".into());
    }
    lines.extend(options.kernel_args.iter().cloned());
    lines.push("--".into());
    lines.extend(options.args.iter().cloned());
    lines.join("\n") + "\n"
}

/// The kernel ELF the bootloader loads: a copy without the debug info
/// (`objcopy --strip-debug`; 17 MB become about 1.2 MB), which nothing in
/// the guest reads and which the BIOS stage would otherwise read from the
/// disk image sector by sector under TCG at every boot. gdb reads the full
/// ELF (`gdb_script`). Without objcopy, the full ELF is loaded.
fn loaded_kernel(work: &Path) -> PathBuf {
    let kernel = PathBuf::from(env!("CARGO_BIN_FILE_KERNEL_kernel"));
    let stripped = work.join("kernel");
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&kernel)
        .arg(&stripped)
        .stderr(Stdio::null())
        .status();
    if status.is_ok_and(|s| s.success()) {
        stripped
    } else {
        kernel
    }
}

fn disk_image(uefi: bool, kernel: &Path, initrd: &Path, out: &Path) -> Result<(), String> {
    // The bootloader's own log would mix into the programs' output on serial.
    let mut config = bootloader::BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    let result = if uefi {
        let mut boot = bootloader::UefiBoot::new(kernel);
        boot.set_ramdisk(initrd).set_boot_config(&config);
        boot.create_disk_image(out)
    } else {
        let mut boot = bootloader::BiosBoot::new(kernel);
        boot.set_ramdisk(initrd).set_boot_config(&config);
        boot.create_disk_image(out)
    };
    result.map_err(|e| format!("building the disk image: {e:#}"))
}

/// Where `--gdb` writes the script that `make gdb` hands to gdb.
pub const GDB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pageos.gdb");

/// The kernel is a position-independent ELF linked at 0; the bootloader
/// loads it at `kernel_base` (kernel/src/main.rs), so its symbols go there.
const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// Write the gdb script: the kernel's symbols at their load address, the
/// connection to QEMU's stub, and a hardware breakpoint on `kmain` (a
/// software one would be overwritten when the bootloader loads the kernel).
fn gdb_script() -> Result<PathBuf, String> {
    let kernel = Path::new(env!("CARGO_BIN_FILE_KERNEL_kernel"));
    let text = format!(
        "# Written by `cargo run -- --gdb` (boot/src/qemu.rs).\n\
         set pagination off\n\
         symbol-file -o {KERNEL_BASE:#x} {}\n\
         target remote :1234\n\
         hbreak kmain\n\
         continue\n",
        kernel.display()
    );
    let path = PathBuf::from(GDB_SCRIPT);
    write(&path, text.as_bytes())?;
    Ok(path)
}

/// Debian's `ovmf` package puts the UEFI firmware under /usr/share/OVMF.
fn ovmf() -> Result<PathBuf, String> {
    ["OVMF_CODE.fd", "OVMF_CODE_4M.fd"]
        .iter()
        .map(|name| Path::new("/usr/share/OVMF").join(name))
        .find(|path| path.exists())
        .ok_or_else(|| {
            "no UEFI firmware under /usr/share/OVMF; install it: apt-get install ovmf".into()
        })
}

fn file_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{}: not a file name", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
}
