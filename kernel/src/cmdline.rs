//! The kernel command line, read from QEMU's fw_cfg device.
//!
//! The runner passes a file as `opt/pageos/cmdline`: one word per line,
//! `init=PATH`, switches, then `--` and init's arguments (so an argument may
//! contain spaces). fw_cfg is two I/O ports: write a 16-bit key to 0x510,
//! read bytes from 0x511. Key 0x19 is a directory of named files.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use x86_64::instructions::port::Port;

const SELECTOR: u16 = 0x510;
const DATA: u16 = 0x511;
const KEY_SIGNATURE: u16 = 0x0000;
const KEY_DIRECTORY: u16 = 0x0019;
const FILE_NAME: &[u8] = b"opt/pageos/cmdline";

#[derive(Debug, Default)]
pub struct Cmdline {
    pub init: String,
    pub args: Vec<String>,
    pub trace_faults: bool,
    pub no_aslr: bool,
    /// Test switch: panic right after boot (checks the 101 path).
    pub test_panic: bool,
    /// Run the kernel's self-tests instead of init.
    pub selftest: bool,
    /// Measure the swap disk's throughput instead of running init.
    pub diskbench: bool,
    /// /proc/PID/pagewalk may show kernel-half addresses.
    pub debug_pagewalk: bool,
    /// The runner connected a terminal to the serial port (`--interactive`).
    pub interactive: bool,
}

pub fn read() -> Cmdline {
    let text = fw_cfg_file(FILE_NAME).unwrap_or_default();
    parse(&String::from_utf8_lossy(&text))
}

fn parse(text: &str) -> Cmdline {
    let mut cmd = Cmdline {
        init: "/sbin/init".into(),
        ..Default::default()
    };
    let mut lines = text.lines();
    for word in lines.by_ref() {
        match word {
            "--" => break,
            "trace-faults" => cmd.trace_faults = true,
            "no-aslr" => cmd.no_aslr = true,
            "test-panic" => cmd.test_panic = true,
            "selftest" => cmd.selftest = true,
            "diskbench" => cmd.diskbench = true,
            "debug-pagewalk" => cmd.debug_pagewalk = true,
            "interactive" => cmd.interactive = true,
            "lab7" => crate::pmap::lab7::enable(),
            "" => {}
            w => match w.split_once('=') {
                Some(("init", path)) => cmd.init = path.to_string(),
                Some(("log", level)) => set_log_level(level),
                // Linux's syntax for a sysctl set at boot.
                Some(("sysctl.vm.max_map_count", n)) => match n.parse() {
                    Ok(n) => vm::space::set_max_map_count(n),
                    Err(_) => log::warn!("cmdline: bad max_map_count {n:?}"),
                },
                // vm.overcommit_memory and its ratio (commit.rs).
                Some(("sysctl.vm.overcommit_memory", n)) => {
                    if !n.parse().is_ok_and(crate::commit::set_mode) {
                        log::warn!("cmdline: bad overcommit_memory {n:?}");
                    }
                }
                // The superpage policy (vm/src/thp.rs): under the sysctl
                // spelling, and Linux's own boot switch.
                Some(("sysctl.vm.transparent_hugepage" | "transparent_hugepage", m)) => {
                    match vm::thp::Mode::parse(m) {
                        Some(mode) => vm::thp::set_mode(mode),
                        None => log::warn!("cmdline: bad transparent_hugepage {m:?}"),
                    }
                }
                Some(("sysctl.vm.overcommit_ratio", n)) => match n.parse() {
                    Ok(n) => crate::commit::set_ratio(n),
                    Err(_) => log::warn!("cmdline: bad overcommit_ratio {n:?}"),
                },
                _ => log::warn!("cmdline: unknown switch {w:?}"),
            },
        }
    }
    cmd.args = lines.map(str::to_string).collect();
    cmd
}

fn set_log_level(level: &str) {
    if let Ok(filter) = level.parse() {
        log::set_max_level(filter);
    }
}

fn fw_cfg_file(name: &[u8]) -> Option<Vec<u8>> {
    let mut cfg = FwCfg::new();
    cfg.select(KEY_SIGNATURE);
    if cfg.bytes::<4>() != *b"QEMU" {
        return None;
    }
    cfg.select(KEY_DIRECTORY);
    let count = u32::from_be_bytes(cfg.bytes());
    for _ in 0..count {
        let size = u32::from_be_bytes(cfg.bytes());
        let key = u16::from_be_bytes(cfg.bytes());
        let _reserved: [u8; 2] = cfg.bytes();
        let entry_name: [u8; 56] = cfg.bytes();
        let len = entry_name.iter().position(|&b| b == 0).unwrap_or(56);
        if &entry_name[..len] == name {
            cfg.select(key);
            return Some((0..size).map(|_| cfg.byte()).collect());
        }
    }
    None
}

struct FwCfg {
    selector: Port<u16>,
    data: Port<u8>,
}

impl FwCfg {
    fn new() -> Self {
        FwCfg {
            selector: Port::new(SELECTOR),
            data: Port::new(DATA),
        }
    }

    fn select(&mut self, key: u16) {
        // SAFETY: the fw_cfg selector port only changes which item the data port reads.
        unsafe { self.selector.write(key) };
    }

    fn byte(&mut self) -> u8 {
        // SAFETY: reading fw_cfg data has no side effect but advancing its cursor.
        unsafe { self.data.read() }
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.byte())
    }
}
