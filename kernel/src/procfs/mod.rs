//! /proc: files synthesized from the kernel's state, in Linux's formats, so
//! the same program reads the same fields on pageos and on Linux.
//!
//! The tree (a `Node` names each entry; `vfs.rs` walks it like any
//! directory once /proc is mounted):
//!
//! ```text
//! /proc/meminfo vmstat swaps uptime loadavg cpuinfo version stat filesystems  system.rs
//! /proc/mounts -> self/mounts, /proc/self -> PID
//! /proc/sys/vm/{overcommit_memory,overcommit_ratio,max_map_count,mmap_min_addr}  system.rs
//! /proc/PID/{status,stat,statm,cmdline,comm,mounts}, exe cwd root  pid.rs
//! /proc/PID/{maps,smaps}                                            maps.rs
//! /proc/PID/{pagemap,mem}                                           pagemap.rs
//! /proc/PID/pagewalk/ADDR (pageos's own: the page-table walk)      pagewalk.rs
//! ```
//!
//! A text file is a snapshot taken when it is opened (Linux generates it at
//! the first read: the same thing for a reader that opens, reads, closes).
//! pagemap and mem are read in place, at the offset asked: they are as
//! large as the address space.

mod maps;
mod pagemap;
mod pagewalk;
mod pid;
mod system;

pub use pagewalk::{allow_kernel_walks, kind, perms};

use crate::proc::{self, Pid};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use vm::errno::Errno;

/// The files of /proc itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Meminfo,
    Vmstat,
    Uptime,
    Loadavg,
    Cpuinfo,
    Version,
    Stat,
    Filesystems,
    Swaps,
}

const GLOBALS: [(&str, Global); 9] = [
    ("cpuinfo", Global::Cpuinfo),
    ("filesystems", Global::Filesystems),
    ("loadavg", Global::Loadavg),
    ("meminfo", Global::Meminfo),
    ("stat", Global::Stat),
    ("swaps", Global::Swaps),
    ("uptime", Global::Uptime),
    ("version", Global::Version),
    ("vmstat", Global::Vmstat),
];

/// /proc/sys/vm's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sysctl {
    MaxMapCount,
    MmapMinAddr,
    OvercommitMemory,
    OvercommitRatio,
}

const SYSCTLS: [(&str, Sysctl); 4] = [
    ("max_map_count", Sysctl::MaxMapCount),
    ("mmap_min_addr", Sysctl::MmapMinAddr),
    ("overcommit_memory", Sysctl::OvercommitMemory),
    ("overcommit_ratio", Sysctl::OvercommitRatio),
];

/// The files of a process's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFile {
    Cmdline,
    Comm,
    Maps,
    Mem,
    Mounts,
    Pagemap,
    Smaps,
    Stat,
    Statm,
    Status,
}

const PID_FILES: [(&str, PidFile); 10] = [
    ("cmdline", PidFile::Cmdline),
    ("comm", PidFile::Comm),
    ("maps", PidFile::Maps),
    ("mem", PidFile::Mem),
    ("mounts", PidFile::Mounts),
    ("pagemap", PidFile::Pagemap),
    ("smaps", PidFile::Smaps),
    ("stat", PidFile::Stat),
    ("statm", PidFile::Statm),
    ("status", PidFile::Status),
];

/// A process's symbolic links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidLink {
    Cwd,
    Exe,
    Root,
}

const PID_LINKS: [(&str, PidLink); 3] = [
    ("cwd", PidLink::Cwd),
    ("exe", PidLink::Exe),
    ("root", PidLink::Root),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Root,
    SysDir,
    SysVmDir,
    /// /proc/self and /proc/mounts.
    SelfLink,
    MountsLink,
    Global(Global),
    Sysctl(Sysctl),
    PidDir(Pid),
    PidFile(Pid, PidFile),
    PidLink(Pid, PidLink),
    PagewalkDir(Pid),
    Pagewalk(Pid, u64),
}

fn find<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

fn live(pid: Pid) -> Result<Pid, Errno> {
    proc::with_process(pid, |_| pid).map_err(|_| Errno::ENOENT)
}

impl Node {
    pub fn root() -> Node {
        Node::Root
    }

    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            Node::Root | Node::SysDir | Node::SysVmDir | Node::PidDir(_) | Node::PagewalkDir(_)
        )
    }

    /// The entry `name` of this directory (ENOENT; ENOTDIR for a file).
    pub fn child(&self, name: &str) -> Result<Node, Errno> {
        let found = match *self {
            Node::Root => match name {
                "self" => Some(Node::SelfLink),
                "mounts" => Some(Node::MountsLink),
                "sys" => Some(Node::SysDir),
                _ => match name.parse::<Pid>() {
                    Ok(pid) if name == pid.to_string() => Some(Node::PidDir(live(pid)?)),
                    _ => find(&GLOBALS, name).map(Node::Global),
                },
            },
            Node::SysDir => (name == "vm").then_some(Node::SysVmDir),
            Node::SysVmDir => find(&SYSCTLS, name).map(Node::Sysctl),
            Node::PidDir(pid) => match name {
                "pagewalk" => Some(Node::PagewalkDir(pid)),
                _ => find(&PID_FILES, name)
                    .map(|f| Node::PidFile(pid, f))
                    .or_else(|| find(&PID_LINKS, name).map(|l| Node::PidLink(pid, l))),
            },
            Node::PagewalkDir(pid) => pagewalk::parse_hex(name).map(|a| Node::Pagewalk(pid, a)),
            _ => return Err(Errno::ENOTDIR),
        };
        found.ok_or(Errno::ENOENT)
    }

    /// The directory holding this one (None for /proc itself).
    pub fn parent(&self) -> Option<Node> {
        match *self {
            Node::Root => None,
            Node::SysVmDir => Some(Node::SysDir),
            Node::PagewalkDir(pid) | Node::PidFile(pid, _) | Node::PidLink(pid, _) => {
                Some(Node::PidDir(pid))
            }
            _ => Some(Node::Root),
        }
    }

    /// A directory's entries (without `.` and `..`).
    pub fn entries(&self) -> Vec<(String, Node)> {
        let named = |table: &[(&str, Node)]| {
            table
                .iter()
                .map(|(n, node)| (n.to_string(), *node))
                .collect::<Vec<_>>()
        };
        match *self {
            Node::Root => {
                let mut out: Vec<(String, Node)> = GLOBALS
                    .iter()
                    .map(|&(n, g)| (n.to_string(), Node::Global(g)))
                    .collect();
                out.extend(named(&[
                    ("mounts", Node::MountsLink),
                    ("self", Node::SelfLink),
                    ("sys", Node::SysDir),
                ]));
                out.extend(
                    proc::pids()
                        .into_iter()
                        .map(|pid| (pid.to_string(), Node::PidDir(pid))),
                );
                out
            }
            Node::SysDir => named(&[("vm", Node::SysVmDir)]),
            Node::SysVmDir => SYSCTLS
                .iter()
                .map(|&(n, s)| (n.to_string(), Node::Sysctl(s)))
                .collect(),
            Node::PidDir(pid) => {
                let mut out: Vec<(String, Node)> = PID_FILES
                    .iter()
                    .map(|&(n, f)| (n.to_string(), Node::PidFile(pid, f)))
                    .collect();
                out.extend(
                    PID_LINKS
                        .iter()
                        .map(|&(n, l)| (n.to_string(), Node::PidLink(pid, l))),
                );
                out.push(("pagewalk".into(), Node::PagewalkDir(pid)));
                out
            }
            _ => Vec::new(),
        }
    }

    /// Where a symbolic link points.
    pub fn link_target(&self) -> Option<String> {
        match *self {
            Node::SelfLink => Some(format!("{}", proc::current_pid())),
            Node::MountsLink => Some("self/mounts".into()),
            Node::PidLink(pid, link) => proc::with_process(pid, |p| match link {
                PidLink::Exe => p.res.exe.clone(),
                PidLink::Cwd | PidLink::Root => "/".into(),
            })
            .ok(),
            _ => None,
        }
    }

    /// The permission bits `stat` shows (Linux's for each kind of entry).
    pub fn mode(&self) -> u32 {
        match self {
            n if n.is_dir() => 0o555,
            Node::SelfLink | Node::MountsLink | Node::PidLink(..) => 0o777,
            Node::PidFile(_, PidFile::Mem) => 0o600,
            Node::PidFile(_, PidFile::Pagemap) => 0o400,
            Node::PidFile(_, PidFile::Comm) => 0o644,
            Node::Sysctl(s) if writable_sysctl(*s) => 0o644,
            _ => 0o444,
        }
    }

    /// An inode number that stays the same for the same entry.
    pub fn ino(&self) -> u64 {
        let (pid, what) = match *self {
            Node::Root => (0, 1),
            Node::SysDir => (0, 2),
            Node::SysVmDir => (0, 3),
            Node::SelfLink => (0, 4),
            Node::MountsLink => (0, 5),
            Node::Global(g) => (0, 16 + g as u64),
            Node::Sysctl(s) => (0, 32 + s as u64),
            Node::PidDir(pid) => (pid, 1),
            Node::PidFile(pid, f) => (pid, 16 + f as u64),
            Node::PidLink(pid, l) => (pid, 48 + l as u64),
            Node::PagewalkDir(pid) => (pid, 2),
            Node::Pagewalk(pid, addr) => (pid, 64 + (addr >> 12 & 0xffff)),
        };
        (u64::from(pid) << 16 | what) + 0x1000
    }
}

fn writable_sysctl(s: Sysctl) -> bool {
    matches!(
        s,
        Sysctl::MaxMapCount | Sysctl::OvercommitMemory | Sysctl::OvercommitRatio
    )
}

/// An open /proc file.
pub struct Open {
    pub node: Node,
    /// A text file's contents, taken at open.
    text: Option<Vec<u8>>,
}

impl Open {
    /// Open `node`: EISDIR-free (directories are read with getdents),
    /// EACCES for writing a file that takes no writes.
    pub fn new(node: Node, write: bool) -> Result<Open, Errno> {
        let writable = match node {
            Node::PidFile(_, PidFile::Mem | PidFile::Comm) => true,
            Node::Sysctl(s) => writable_sysctl(s),
            _ => false,
        };
        if write && !writable {
            return Err(Errno::EACCES);
        }
        let text = match node {
            Node::PidFile(_, PidFile::Mem | PidFile::Pagemap) => None,
            Node::Global(g) => Some(system::global(g)),
            Node::Sysctl(s) => Some(system::sysctl(s)),
            Node::PidFile(pid, f) => Some(pid_text(pid, f)?),
            Node::Pagewalk(pid, addr) => Some(pagewalk::pagewalk(pid, addr)?),
            _ => None,
        };
        Ok(Open {
            node,
            text: text.map(String::into_bytes),
        })
    }

    /// Read at `offset` into `buf`: bytes copied, 0 at the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match (&self.text, self.node) {
            (Some(text), _) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                let n = buf.len().min(text.len() - start);
                buf[..n].copy_from_slice(&text[start..start + n]);
                Ok(n)
            }
            (None, Node::PidFile(pid, PidFile::Pagemap)) => pagemap::read(pid, offset, buf),
            (None, Node::PidFile(pid, PidFile::Mem)) => pagemap::read_mem(pid, offset, buf),
            _ => Err(Errno::EISDIR),
        }
    }

    /// Write `data` at `offset` (mem, comm, the writable sysctls).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        match self.node {
            Node::PidFile(pid, PidFile::Mem) => pagemap::write_mem(pid, offset, data),
            Node::PidFile(pid, PidFile::Comm) => pid::set_comm(pid, data),
            Node::Sysctl(s) => system::set_sysctl(s, data),
            _ => Err(Errno::EBADF),
        }
    }

    /// Whether reads and writes start at the file offset (all do; mem and
    /// pagemap are addressed by it).
    pub fn size(&self) -> u64 {
        self.text.as_ref().map_or(0, |t| t.len() as u64)
    }
}

fn pid_text(pid: Pid, file: PidFile) -> Result<String, Errno> {
    match file {
        PidFile::Maps => maps::maps(pid),
        PidFile::Smaps => maps::smaps(pid),
        PidFile::Mounts => Ok(system::mounts()),
        _ => pid::text(pid, file),
    }
}
