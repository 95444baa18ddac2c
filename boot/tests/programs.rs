//! Real programs nobody here wrote, unmodified, on pageos and on Linux in
//! the same QEMU, with the same output: Debian's busybox-static (glibc)
//! applets and shell scripts, `userland/c/sysapi.c` and `userland/c/pipes.c`
//! (pipes, poll, select, clone, job-control stops) built against musl and
//! against glibc,
//! Lua 5.4 built from the lua-src crate's sources and SQLite from the
//! libsqlite3-sys crate's amalgamation (both with musl-gcc -static).
//!
//! One boot of each kernel runs them all: `userland/c/progrun.c` is init
//! and runs the commands of `userland/real/programs.list`. The outputs are
//! compared after normalising only what must differ between two kernels:
//! memory sizes (`free`), kernel threads and pids (`ps`), file dates (`ls
//! -l`) and transfer speeds (`dd`). Built programs are cached under
//! target/tmp/programs, so a second run compiles nothing.

mod common;

use common::build::{build_dir, compile, fetched, on_both, program_lines, progrun, root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directories of the Lua and SQLite sources in cargo's registry,
/// fetched by `cargo fetch` as scripts/sources/Cargo.lock pins them.
fn sources() -> (PathBuf, PathBuf) {
    let manifest = root().join("scripts/sources/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let fetched = Command::new(&cargo)
        .args(["fetch", "--locked", "-q", "--manifest-path"])
        .arg(&manifest)
        .status()
        .expect("cannot run cargo fetch");
    assert!(fetched.success(), "cargo fetch of scripts/sources failed");
    let meta = Command::new(&cargo)
        .args(["metadata", "--offline", "--locked", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cannot run cargo metadata");
    let text = String::from_utf8_lossy(&meta.stdout);
    let package_dir = |name: &str| {
        text.split("\"manifest_path\":\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|p| p.contains(&format!("/{name}-")))
            .map(|p| {
                Path::new(p)
                    .parent()
                    .expect("a manifest has a directory")
                    .to_path_buf()
            })
            .unwrap_or_else(|| panic!("{name} is not in cargo metadata's output"))
    };
    (
        package_dir("lua-src").join("lua-5.4.7"),
        package_dir("libsqlite3-sys").join("sqlite3"),
    )
}

/// (host file, guest path) for everything the program list uses.
fn guest_files() -> Option<Vec<(PathBuf, String)>> {
    let c = root().join("userland/c");
    let real = root().join("userland/real");
    let musl = ["-static", "-O2"];
    let sysapi = [c.join("sysapi.c")];
    let progrun = progrun()?;
    let sysapi_musl = compile("sysapi-musl", "musl-gcc", &musl, &sysapi)?;
    let sysapi_glibc = compile("sysapi-glibc", "gcc", &musl, &sysapi)?;
    let pipes = [c.join("pipes.c")];
    let pipes_musl = compile("pipes-musl", "musl-gcc", &musl, &pipes)?;
    let pipes_glibc = compile("pipes-glibc", "gcc", &musl, &pipes)?;
    let (lua_dir, sqlite_dir) = sources();
    let lua_include = format!("-I{}", lua_dir.display());
    let mut lua_inputs: Vec<PathBuf> = std::fs::read_dir(&lua_dir)
        .expect("lua sources")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    lua_inputs.sort();
    lua_inputs.push(c.join("luarun.c"));
    let lua_flags = ["-static", "-O2", "-DLUA_USE_POSIX", &lua_include, "-lm"];
    let lua = compile("lua", "musl-gcc", &lua_flags, &lua_inputs)?;
    let sqlite_include = format!("-I{}", sqlite_dir.display());
    let sqlite_flags = [
        "-static",
        "-O1",
        "-DSQLITE_THREADSAFE=0",
        "-DSQLITE_OMIT_LOAD_EXTENSION",
        &sqlite_include,
    ];
    let sqlite_inputs = [c.join("sqlrun.c"), sqlite_dir.join("sqlite3.c")];
    let sqlite = compile("sqlite", "musl-gcc", &sqlite_flags, &sqlite_inputs)?;
    let mut files = vec![
        (progrun, "/init".to_string()),
        (real.join("programs.list"), "/etc/programs".into()),
        (real.join("words.txt"), "/data/words.txt".into()),
        (real.join("numbers.txt"), "/data/numbers.txt".into()),
        (sysapi_musl, "/bin/sysapi-musl".into()),
        (sysapi_glibc, "/bin/sysapi-glibc".into()),
        (pipes_musl, "/bin/pipes-musl".into()),
        (pipes_glibc, "/bin/pipes-glibc".into()),
        (fetched("busybox.sh")?, "/bin/busybox".into()),
        (lua, "/bin/lua".into()),
        (sqlite, "/bin/sqlite".into()),
    ];
    for script in ["binary_trees", "gc_stress", "strings"] {
        let path = root().join(format!("userland/lua/{script}.lua"));
        files.push((path, format!("/lua/{script}.lua")));
    }
    Some(files)
}

/// The programs' lines, from the first command to `progrun: done`, with
/// what must differ between kernels normalised (see the module comment).
fn normalise(output: &str) -> Vec<String> {
    let lines = program_lines(output);
    let digits = |l: &str| {
        let mut out = String::new();
        for c in l.chars() {
            if c.is_ascii_digit() {
                if !out.ends_with('N') {
                    out.push('N');
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let mut command = String::new();
    let mut out = Vec::new();
    for line in &lines {
        if let Some(c) = line.strip_prefix("$ ") {
            command = c.to_string();
            out.push(line.clone());
            continue;
        }
        let normalised = if command.ends_with("busybox free") {
            // Numbers of different widths shift the columns too.
            digits(line)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        } else if command.ends_with("busybox ps") {
            // Linux's kernel threads are [names]; pids differ.
            if line.trim_end().ends_with(']') {
                continue;
            }
            let pid_end = line.find(|c: char| c.is_ascii_digit()).map(|s| {
                s + line[s..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(line.len() - s)
            });
            match pid_end {
                Some(e) if line.trim_start().starts_with(|c: char| c.is_ascii_digit()) => {
                    format!("PID{}", &line[e..])
                }
                _ => line.clone(),
            }
        } else if command.contains("busybox ls -l") {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("total ") {
                "total N".into()
            } else if fields.len() >= 9 && line.starts_with(['-', 'd', 'l', 'c']) {
                let mut f = fields.clone();
                f.splice(5..8, ["DATE"]);
                f.join(" ")
            } else {
                line.clone()
            }
        } else if command.contains("busybox dd ") && line.contains(" copied, ") {
            line.split(" copied, ").next().unwrap_or("").to_string() + " copied, (time)"
        } else {
            line.clone()
        };
        out.push(normalised);
    }
    out
}

/// The lines of a section that pageos skipped (`?clone` ... `?end` of the
/// program list, when its kernel has no clone(2) yet) left out of Linux's.
fn without_skipped(linux: Vec<String>, pageos: &[String]) -> Vec<String> {
    if !pageos.iter().any(|l| l.contains("no clone(2): skipping")) {
        return linux;
    }
    eprintln!("NOTE: this kernel has no clone(2): the glibc sysapi build was not compared");
    let skipped = linux
        .iter()
        .position(|l| l == "$ /bin/sysapi-glibc")
        .expect("Linux ran the glibc build");
    let next = linux[skipped + 1..]
        .iter()
        .position(|l| l.starts_with("$ "))
        .map_or(linux.len(), |n| skipped + 1 + n);
    let mut out = linux[..skipped].to_vec();
    out.push("progrun: no clone(2): skipping to ?end".into());
    out.extend_from_slice(&linux[next..]);
    out
}

#[test]
fn real_programs_print_what_they_print_on_linux() {
    let Some(files) = guest_files() else {
        return;
    };
    let (pageos, linux) = on_both(&files, "900");
    let pageos = normalise(&pageos);
    // Every program ran to its end on pageos.
    for must in [
        "END sysapi",
        "reopened: 1500",
        "long lived tree of depth 10",
    ] {
        assert!(
            pageos.iter().any(|l| l.contains(must)),
            "no {must:?} in:\n{}",
            pageos.join("\n")
        );
    }
    let Some(linux) = linux else {
        return;
    };
    let linux = without_skipped(normalise(&linux), &pageos);
    // Both outputs stay for `diff` when they differ.
    for (name, lines) in [("linux.out", &linux), ("pageos.out", &pageos)] {
        let path = build_dir().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("cannot write the outputs");
    }
    let diff: Vec<String> = linux
        .iter()
        .zip(pageos.iter())
        .filter(|(l, p)| l != p)
        .map(|(l, p)| format!("linux:  {l}\npageos: {p}"))
        .collect();
    assert!(
        diff.is_empty() && linux.len() == pageos.len(),
        "{} lines differ ({} on Linux, {} on pageos; both in {}):\n{}",
        diff.len(),
        linux.len(),
        pageos.len(),
        build_dir().display(),
        diff.join("\n")
    );
}
