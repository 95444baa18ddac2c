//! What a process may use and what it used: resource limits (getrlimit,
//! setrlimit, prlimit64) and accounting (getrusage, times, /proc/PID/stat).
//!
//! Limits are inherited across fork and execve, as on Linux. Where each one
//! bites is where Linux checks it: RLIMIT_AS in mmap, brk and stack growth;
//! RLIMIT_DATA for private writable mappings and brk; RLIMIT_STACK for the
//! main stack's growth; RLIMIT_MEMLOCK for mlock and MAP_LOCKED (unless the
//! process is root: Linux's CAP_IPC_LOCK); RLIMIT_NOFILE for new
//! descriptors. The checks themselves are in `syscall/limits.rs`.

/// RLIM_INFINITY.
pub const INFINITY: u64 = u64::MAX;

pub const RLIMIT_DATA: usize = 2;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_CORE: usize = 4;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_AS: usize = 9;
pub const RLIMIT_NPROC: usize = 6;
pub const RLIMIT_SIGPENDING: usize = 11;
pub const RLIMIT_MSGQUEUE: usize = 12;
pub const RLIMIT_RTPRIO: usize = 14;
pub const RLIM_NLIMITS: usize = 16;
/// Linux's fs.nr_open: the most RLIMIT_NOFILE may be raised to.
pub const NR_OPEN: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

/// Linux's defaults for init (what `ulimit -a` shows at boot).
pub fn default_limits() -> [Rlimit; RLIM_NLIMITS] {
    let unlimited = Rlimit {
        cur: INFINITY,
        max: INFINITY,
    };
    let mut limits = [unlimited; RLIM_NLIMITS];
    limits[RLIMIT_STACK] = Rlimit {
        cur: 8 << 20,
        max: INFINITY,
    };
    limits[RLIMIT_CORE] = Rlimit {
        cur: 0,
        max: INFINITY,
    };
    limits[RLIMIT_NOFILE] = Rlimit {
        cur: 1024,
        max: 4096,
    };
    limits[RLIMIT_MEMLOCK] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    };
    limits[RLIMIT_NPROC] = Rlimit {
        cur: 1024,
        max: 1024,
    };
    limits[RLIMIT_SIGPENDING] = Rlimit {
        cur: 1024,
        max: 1024,
    };
    limits[RLIMIT_MSGQUEUE] = Rlimit {
        cur: 819_200,
        max: 819_200,
    };
    limits[RLIMIT_RTPRIO] = Rlimit { cur: 0, max: 0 };
    limits
}

/// Counters of one process (or, summed, of its waited-for children).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Timer ticks spent in user mode and in the kernel.
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Faults resolved without I/O, and with it (swap-ins: none yet).
    pub minflt: u64,
    pub majflt: u64,
    /// The largest resident set, in KiB.
    pub maxrss_kb: u64,
}

impl Usage {
    /// A reaped child's usage added to its parent's children total
    /// (maxrss: the largest of them, as Linux keeps it).
    pub fn add_child(&mut self, child: &Usage) {
        self.user_ticks += child.user_ticks;
        self.system_ticks += child.system_ticks;
        self.minflt += child.minflt;
        self.majflt += child.majflt;
        self.maxrss_kb = self.maxrss_kb.max(child.maxrss_kb);
    }
}

/// Everything of this module a process carries (`proc::Process::res`).
#[derive(Clone)]
pub struct Resources {
    pub limits: [Rlimit; RLIM_NLIMITS],
    pub usage: Usage,
    /// The totals of every child it waited for (and theirs).
    pub children: Usage,
    /// When the process was made, in ns since boot (/proc/PID/stat).
    pub start_ns: u64,
    /// argv as execve got it, each string NUL-terminated (/proc/PID/cmdline).
    pub cmdline: alloc::vec::Vec<u8>,
    /// The absolute path of the program (/proc/PID/exe).
    pub exe: alloc::string::String,
    /// The ids: real and effective user and group (all 0 unless set*id).
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// mlockall(MCL_FUTURE): later mappings are locked (true: on fault).
    pub lock_future: Option<bool>,
    /// The file it runs (ETXTBSY for writers while it does).
    pub image: Option<crate::ramfs::Executing>,
    /// personality(2)'s persona: inherited across fork and execve.
    pub personality: u32,
    /// The program's ELF is branded FreeBSD (EI_OSABI 9).
    pub bsd_brand: bool,
}

/// Linux's PER_BSD persona: the seeds' BSD rules (DESIGN §2).
const PER_BSD: u32 = 0x0006;

impl Resources {
    pub fn new(exe: &str, cmdline: alloc::vec::Vec<u8>) -> Resources {
        Resources {
            limits: default_limits(),
            usage: Usage::default(),
            children: Usage::default(),
            start_ns: crate::time::monotonic(),
            cmdline,
            exe: exe.into(),
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            lock_future: None,
            image: None,
            personality: 0,
            bsd_brand: false,
        }
    }

    /// A forked child's: the limits, ids and program; fresh counters.
    pub fn for_child(&self) -> Resources {
        Resources {
            usage: Usage::default(),
            children: Usage::default(),
            start_ns: crate::time::monotonic(),
            lock_future: None,
            ..self.clone()
        }
    }

    /// Whose rules mmap follows where Linux and the BSD seeds differ.
    pub fn rules(&self) -> vm::mmap::Rules {
        if self.bsd_brand || self.personality & 0xff == PER_BSD {
            vm::mmap::Rules::Bsd
        } else {
            vm::mmap::Rules::Linux
        }
    }

    pub fn limit(&self, which: usize) -> u64 {
        self.limits[which].cur
    }
}

/// argv as /proc/PID/cmdline shows it: each string followed by a NUL.
pub fn cmdline_of(argv: &[alloc::vec::Vec<u8>]) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::new();
    for arg in argv {
        out.extend_from_slice(arg);
        out.push(0);
    }
    out
}
