//! swapon(2). pageos takes its swap device at boot (swap.rs, the first
//! disk with a swap header), so a program cannot add one; it gets Linux's
//! answers for what it names: the device in use is EBUSY (Linux's answer
//! for an area already enabled), a path that does not exist ENOENT, any
//! other file EINVAL (not a swap area: Linux refuses files on tmpfs too).

use super::fs::user_path;
use vm::errno::{Errno, SysResult};

/// SWAP_FLAG_PRIO_MASK | PREFER | DISCARD | DISCARD_ONCE | DISCARD_PAGES.
const SWAP_FLAGS_VALID: u64 = 0x7_ffff;

pub fn swapon(path: u64, flags: u64) -> SysResult {
    if flags & !SWAP_FLAGS_VALID != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    if crate::swap::device_path().as_deref() == Some(path.as_str()) {
        return Err(Errno::EBUSY);
    }
    crate::ramfs::lookup(&path)?;
    Err(Errno::EINVAL)
}
