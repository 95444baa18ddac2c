//! Building C programs for a test, and running a list of them in one boot
//! of each kernel (`userland/c/progrun.c` as init): what programs.rs and
//! mm_selftests.rs share.

use super::pageos;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where built programs are cached: target/tmp/programs.
pub fn build_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&dir).expect("cannot create the build directory");
    dir
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compile `inputs` with `cc` and `flags` into build_dir()/NAME, unless the
/// output is newer than every input and was made by the same command.
/// None when the compiler is missing (scripts/setup.sh installs gcc and
/// musl-tools, so CI always has them).
pub fn compile(name: &str, cc: &str, flags: &[&str], inputs: &[PathBuf]) -> Option<PathBuf> {
    let out = build_dir().join(name);
    let stamp = build_dir().join(format!("{name}.cmd"));
    let command = format!("{cc} {flags:?} {inputs:?}");
    let fresh = out.exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == command)
        && inputs.iter().all(|i| mtime(i) <= mtime(&out));
    if fresh {
        return Some(out);
    }
    // Into a file of this process and thread, then renamed over `out`:
    // tests of one binary run at once and may build the same program, and
    // a QEMU started on a half-written ELF found it ENOEXEC (threads.rs's
    // pthreads, proc.rs's hello were seen to fail so). rename is atomic.
    let partial = build_dir().join(format!(
        "{name}.partial-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let status = match Command::new(cc)
        .args(flags)
        .arg("-o")
        .arg(&partial)
        .args(inputs)
        .status()
    {
        Ok(status) => status,
        Err(e) => {
            eprintln!("SKIPPED: {cc} not available ({e}); run scripts/setup.sh");
            return None;
        }
    };
    assert!(status.success(), "{cc} failed building {name}");
    std::fs::rename(&partial, &out).expect("cannot move the built program in place");
    std::fs::write(&stamp, command).expect("cannot write the build stamp");
    Some(out)
}

/// The init that runs /etc/programs (userland/c/progrun.c).
pub fn progrun() -> Option<PathBuf> {
    let source = root().join("userland/c/progrun.c");
    compile("progrun", "musl-gcc", &["-static", "-O2"], &[source])
}

/// The path a script in scripts/ prints (busybox.sh, mm-selftests.sh);
/// None, with the reason, when it fails (no package source).
pub fn fetched(script: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg(root().join("scripts").join(script))
        .output()
        .expect("cannot run sh");
    if !out.status.success() {
        eprintln!(
            "SKIPPED: {script}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether a line is a kernel's own: pageos's `[kernel ...]`, Linux's
/// `[    1.234567] ...`.
pub fn kernel_line(line: &str) -> bool {
    line.starts_with("[kernel ")
        || line.strip_prefix('[').is_some_and(|rest| {
            let stamp = rest.split(']').next().unwrap_or("");
            stamp.contains('.') && stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

/// A C program of userland/c built with `musl-gcc -static -O2 -pthread`
/// (None when musl-gcc is missing, as `compile`).
pub fn pthread_program(name: &str) -> Option<PathBuf> {
    let source = root().join(format!("userland/c/{name}.c"));
    compile(name, "musl-gcc", &["-static", "-O2", "-pthread"], &[source])
}

/// The lines a test program prints from `BEGIN NAME` to `END NAME` (the
/// first may follow a console escape), kernel log lines (pageos's
/// `[kernel ...]`, Linux's `[    1.23]`) and carriage returns left out.
pub fn marked_lines(output: &str, name: &str) -> Vec<String> {
    let lines: Vec<String> = output
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !kernel_line(l))
        .collect();
    let (first, last) = (format!("BEGIN {name}"), format!("END {name}"));
    let begin = lines.iter().position(|l| l.ends_with(&first));
    let end = lines.iter().position(|l| *l == last);
    match (begin, end) {
        (Some(b), Some(e)) if b < e => {
            let mut out = lines[b..=e].to_vec();
            out[0] = first;
            out
        }
        _ => panic!("no BEGIN/END {name} in the output:\n{output}"),
    }
}

/// The programs' lines: from the first `$ ` command line to `progrun:
/// done`, kernel lines and serial carriage returns left out.
pub fn program_lines(output: &str) -> Vec<String> {
    let mut lines: Vec<String> = output
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !kernel_line(l))
        .collect();
    let start = lines
        .iter()
        .position(|l| l.contains("$ /"))
        .unwrap_or_else(|| panic!("no command in the output:\n{output}"));
    lines[start] = lines[start][lines[start].find("$ /").unwrap_or(0)..].to_string();
    let end = lines
        .iter()
        .position(|l| l == "progrun: done")
        .unwrap_or_else(|| panic!("progrun did not finish:\n{output}"));
    lines[start..=end].to_vec()
}

/// Boot pageos with `files` ((host, guest path); the first is init) and
/// return its output; the boot must end with status 0.
pub fn on_pageos(files: &[(PathBuf, String)], timeout: &str) -> String {
    let specs: Vec<String> = files
        .iter()
        .map(|(host, guest)| format!("{}:{guest}", host.display()))
        .collect();
    let mut args = vec!["--timeout", timeout, "--kernel-arg", "init=/init"];
    for spec in &specs {
        args.extend(["--file", spec.as_str()]);
    }
    let run = pageos(&args);
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
    run.stdout
}

/// The same files as the initramfs of Debian's Linux in the same QEMU
/// (scripts/linux-run.py); None when the kernel cannot be had.
pub fn on_linux(files: &[(PathBuf, String)]) -> Option<String> {
    let mut command = Command::new("python3");
    command.arg(root().join("scripts/linux-run.py"));
    for (host, guest) in &files[1..] {
        command
            .arg("--file")
            .arg(format!("{}:{guest}", host.display()));
    }
    let out = command
        .arg("--elf")
        .arg(&files[0].0)
        .output()
        .expect("cannot run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("SKIPPED") {
        eprintln!("{stderr}");
        return None;
    }
    assert!(out.status.success(), "linux-run.py failed:\n{stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Both boots at once (two QEMUs): pageos's output, and Linux's if it ran.
pub fn on_both(files: &[(PathBuf, String)], timeout: &str) -> (String, Option<String>) {
    let linux = std::thread::spawn({
        let files = files.to_vec();
        move || on_linux(&files)
    });
    let pageos = on_pageos(files, timeout);
    (pageos, linux.join().expect("the Linux run panicked"))
}
