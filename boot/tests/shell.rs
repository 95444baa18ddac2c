//! `make shell` typed into: scripts/shell-session.py drives
//! scripts/shell.sh (busybox's sh as pageos's shell, the runner's
//! `--interactive`) through a pseudo-terminal, one boot, and checks what a
//! user would look at: the echo of typed characters, a command's output,
//! ^C ending the foreground job and the prompt coming back, ^Z stopping a
//! job and `fg` continuing it, a pipeline, ^D ending `cat`'s input,
//! /proc/self/maps, and `exit` powering off.

mod common;

use common::build::root;
use std::process::Command;

#[test]
fn a_typed_shell_session_echoes_interrupts_stops_and_exits() {
    if common::build::fetched("busybox.sh").is_none() {
        return;
    }
    let out = Command::new("python3")
        .arg(root().join("scripts/shell-session.py"))
        .env("PAGEOS_RUNNER", env!("CARGO_BIN_EXE_boot"))
        .output()
        .expect("cannot run python3");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the session failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!transcript.contains("frame leak"), "{transcript}");
}
