//! /proc/PID/{status, stat, statm, cmdline, comm}: one process's state,
//! memory sizes and counters, in Linux's formats.

use super::PidFile;
use super::maps::{self, Sizes};
use crate::proc::{self, Pid, Process, State};

/// What the process's threads say (proc::thread_summary).
struct Threads {
    letter: char,
    word: &'static str,
    count: usize,
    mask: u64,
    /// The CPU its first thread last ran on (stat's `processor`).
    cpu: usize,
}
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use vm::errno::Errno;

pub fn text(pid: Pid, file: PidFile) -> Result<String, Errno> {
    let (letter, word, count, mask, cpu) = proc::thread_summary(pid).ok_or(Errno::ENOENT)?;
    let threads = Threads {
        letter,
        word,
        count,
        mask,
        cpu,
    };
    proc::with_process(pid, |p| match file {
        PidFile::Cmdline => String::from_utf8_lossy(&p.res.cmdline).into_owned(),
        PidFile::Comm => format!("{}\n", comm(p)),
        PidFile::Status => status(p, &threads),
        PidFile::Stat => stat(p, &threads),
        PidFile::Statm => {
            let s = sizes(p);
            let pages = |kb: u64| kb / 4;
            format!(
                "{} {} {} {} 0 {} 0\n",
                pages(s.vm_size),
                pages(s.rss_anon + s.rss_file + s.rss_shmem),
                pages(s.rss_file + s.rss_shmem),
                pages(s.vm_exe),
                pages(s.vm_data + s.vm_stk)
            )
        }
        _ => String::new(),
    })
    .map_err(|_| Errno::ENOENT)
}

/// The name Linux keeps (TASK_COMM_LEN: 15 bytes and a NUL).
pub fn comm(p: &Process) -> &str {
    let name = p.name.as_str();
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A write to /proc/PID/comm renames the process (prctl PR_SET_NAME's effect).
pub fn set_comm(pid: Pid, data: &[u8]) -> Result<usize, Errno> {
    let name = String::from_utf8_lossy(data);
    let name = name.trim_end_matches('\n');
    proc::with_process(pid, |p| p.name = name.into()).map_err(|_| Errno::ESRCH)?;
    Ok(data.len())
}

fn sizes(p: &mut Process) -> Sizes {
    p.space_if_any()
        .map(|mut s| maps::sizes(&mut s))
        .unwrap_or_default()
}

fn status(p: &mut Process, threads: &Threads) -> String {
    let s = sizes(p);
    let (c, word) = (threads.letter, threads.word);
    let r = &p.res;
    let mut out = String::new();
    let _ = write!(
        out,
        "Name:\t{}\nUmask:\t0022\nState:\t{c} ({word})\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\n\
         PPid:\t{}\nTracerPid:\t0\nUid:\t{uid}\t{euid}\t{euid}\t{euid}\n\
         Gid:\t{gid}\t{egid}\t{egid}\t{egid}\nFDSize:\t64\nGroups:\t\nNStgid:\t{pid}\n\
         NSpid:\t{pid}\nNSpgid:\t{pid}\nNSsid:\t{pid}\n",
        comm(p),
        p.parent,
        pid = p.pid,
        uid = r.uid,
        euid = r.euid,
        gid = r.gid,
        egid = r.egid,
    );
    for (name, kb) in [
        ("VmPeak", s.vm_size),
        ("VmSize", s.vm_size),
        ("VmLck", s.vm_lck),
        ("VmPin", 0),
        ("VmHWM", s.hwm),
        ("VmRSS", s.rss_anon + s.rss_file + s.rss_shmem),
        ("RssAnon", s.rss_anon),
        ("RssFile", s.rss_file),
        ("RssShmem", s.rss_shmem),
        ("VmData", s.vm_data),
        ("VmStk", s.vm_stk),
        ("VmExe", s.vm_exe),
        ("VmLib", 0),
        ("VmPTE", 0),
        ("VmSwap", 0),
        ("HugetlbPages", 0),
    ] {
        let _ = writeln!(out, "{name}:\t{kb:>8} kB");
    }
    let _ = write!(
        out,
        "CoreDumping:\t0\nTHP_enabled:\t1\nThreads:\t{}\nSigQ:\t0/31556\n\
         SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t{:016x}\n\
         SigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n\
         CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
         CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n\
         Seccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\n\
         SpeculationIndirectBranch:\tconditional enabled\nCpus_allowed:\t1\n\
         Cpus_allowed_list:\t0\nMems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\n\
         voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        threads.count, threads.mask
    );
    out
}

/// Timer ticks in USER_HZ (100 per second, as Linux reports them).
fn clock_ticks(ticks: u64) -> u64 {
    ticks * 100 / u64::from(crate::arch::timer::HZ)
}

/// The 52 fields of Linux's /proc/PID/stat.
fn stat(p: &mut Process, threads: &Threads) -> String {
    let s = sizes(p);
    let c = threads.letter;
    let (brk_start, _) = p.space_if_any().map_or((0, 0), |s| s.brk_range());
    let r = &p.res;
    let (u, k) = (&r.usage, &r.children);
    let start = r.start_ns / 10_000_000;
    let rss = (s.rss_anon + s.rss_file + s.rss_shmem) / 4;
    let exit = match p.state {
        State::Zombie(status) => status,
        _ => 0,
    };
    format!(
        "{pid} ({}) {c} {} {} {} 0 -1 4194560 {} {} {} {} {} {} {} {} 20 0 {} 0 {start} {} {rss} \
         18446744073709551615 0 0 0 0 0 0 {} 0 0 0 0 0 17 {} 0 0 0 0 0 0 0 {brk_start} 0 0 0 0 \
         {exit}\n",
        comm(p),
        p.parent,
        p.pgid,
        p.sid,
        u.minflt,
        k.minflt,
        u.majflt,
        k.majflt,
        clock_ticks(u.user_ticks),
        clock_ticks(u.system_ticks),
        clock_ticks(k.user_ticks),
        clock_ticks(k.system_ticks),
        threads.count,
        s.vm_size * 1024,
        threads.mask,
        threads.cpu,
        pid = p.pid,
    )
}
