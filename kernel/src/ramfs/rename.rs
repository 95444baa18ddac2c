//! rename(2) in the ramfs: moving a name between directories, with the
//! replacements and refusals Linux's tmpfs makes.

use super::{Inode, Kind, check_name, now};
use alloc::string::ToString;
use alloc::sync::Arc;
use vm::errno::Errno;

/// renameat2's flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;

/// rename: move `from_dir/from` to `to_dir/to`, replacing what is there as
/// rename(2) allows (a file by a file, a directory by an empty directory),
/// or refusing it (RENAME_NOREPLACE: EEXIST), or swapping the two
/// (RENAME_EXCHANGE). EXDEV across file systems; EINVAL for moving a
/// directory into itself. Renaming a name onto itself does nothing.
pub fn rename(
    from_dir: &Arc<Inode>,
    from: &str,
    to_dir: &Arc<Inode>,
    to: &str,
    flags: u32,
) -> Result<(), Errno> {
    check_name(to)?;
    if from_dir.dev != to_dir.dev {
        return Err(Errno::EXDEV);
    }
    let node = from_dir.child(from)?;
    let target = match to_dir.child(to) {
        Ok(t) => Some(t),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if node.is_dir() && is_within(to_dir, &node) {
        return Err(Errno::EINVAL);
    }
    if let Some(t) = &target {
        if Arc::ptr_eq(t, &node) {
            return Ok(());
        }
        if flags & RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        if flags & RENAME_EXCHANGE != 0 {
            if t.is_dir() && is_within(from_dir, t) {
                return Err(Errno::EINVAL);
            }
        } else {
            match (node.is_dir(), t.is_dir()) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) if !t.entries()?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            if t.mounted().is_some() {
                return Err(Errno::EBUSY);
            }
        }
    } else if flags & RENAME_EXCHANGE != 0 {
        return Err(Errno::ENOENT);
    }
    // Checks done: move the entries (one directory lock at a time).
    let put = |dir: &Arc<Inode>, name: &str, node: Arc<Inode>| {
        if node.is_dir() {
            *node.parent.lock() = Arc::downgrade(dir);
        }
        node.meta.lock().ctime = now();
        if let Kind::Dir(entries) = &dir.kind {
            entries.lock().insert(name.to_string(), node);
        }
        dir.modified();
    };
    if let Kind::Dir(entries) = &from_dir.kind {
        entries.lock().remove(from);
    }
    from_dir.modified();
    match target {
        Some(t) if flags & RENAME_EXCHANGE != 0 => {
            put(to_dir, to, node);
            put(from_dir, from, t);
        }
        Some(t) => {
            put(to_dir, to, node);
            t.unlinked();
        }
        None => put(to_dir, to, node),
    }
    Ok(())
}

/// Whether `dir` is `ancestor` or lies below it.
fn is_within(dir: &Arc<Inode>, ancestor: &Arc<Inode>) -> bool {
    let mut at = Some(dir.clone());
    while let Some(d) = at {
        if Arc::ptr_eq(&d, ancestor) {
            return true;
        }
        at = d.parent();
    }
    false
}
