//! memfd_create and the seal commands of fcntl (F_ADD_SEALS, F_GET_SEALS).
//!
//! A memfd is a ramfs regular file that no directory holds: its bytes
//! live in its `vm_object` (the page cache), so read(), write() and every
//! mapping of it share them, MAP_PRIVATE mappings copy on write, and the
//! pages go back when the last descriptor and the last mapping are gone.
//! Its name is only a label: /proc/PID/maps shows `/memfd:NAME (deleted)`
//! for its mappings, as Linux does, and that is all it is used for. The
//! seal rules themselves are `ramfs/seals.rs`.

use crate::fd::{FileKind, O_PATH, O_RDWR, OpenFile};
use crate::ramfs::{self, F_ALL_SEALS, Inode};
use crate::{proc, usercopy};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;
use vm::errno::{Errno, SysResult};
use vm::mmap::{Prot, Sharing};
use vm::vm_object::{ObjectRef, WeakObject};
use vm::vma::Backing;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
/// The flags Linux 6.1 knows (MFD_NOEXEC_SEAL and MFD_EXEC came with 6.3).
const MFD_ALL_FLAGS: u32 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB;
/// With MFD_HUGETLB, bits 26..32 may name the huge page size (MFD_HUGE_2MB...).
const MFD_HUGE_SIZES: u32 = 0x3f << 26;
/// Linux's MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" prefix.
const NAME_MAX_LEN: usize = ramfs::NAME_MAX - "memfd:".len();

pub const F_ADD_SEALS: u64 = 1033;
pub const F_GET_SEALS: u64 = 1034;

/// memfd_create(name, flags): a new anonymous file, open for reading and
/// writing, at the lowest free descriptor. EINVAL for an unknown flag,
/// huge page size bits without MFD_HUGETLB, or a name longer than 249
/// bytes; EFAULT for a name pointer that cannot be read; ENOSYS for
/// MFD_HUGETLB (what Linux built without hugetlbfs says: pageos has no
/// hugetlbfs).
pub fn memfd_create(name: u64, flags: u64) -> SysResult {
    // Linux takes the flags as an unsigned int: the upper half is ignored.
    let flags = flags as u32;
    let known = if flags & MFD_HUGETLB != 0 {
        MFD_ALL_FLAGS | MFD_HUGE_SIZES
    } else {
        MFD_ALL_FLAGS
    };
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let too_long = |e| match e {
        Errno::ENAMETOOLONG => Errno::EINVAL,
        e => e,
    };
    let name = proc::with_current(|p| usercopy::read_cstr(&mut *p.space(), name, NAME_MAX_LEN))
        .map_err(too_long)?;
    if flags & MFD_HUGETLB != 0 {
        return Err(Errno::ENOSYS);
    }
    // S_IRWXUGO, as Linux's shmem_file_setup.
    let inode = ramfs::create_unlinked(0o777, flags & MFD_ALLOW_SEALING != 0);
    let name = String::from_utf8_lossy(&name).into_owned();
    remember(&inode, name)?;
    let file = OpenFile::new(FileKind::Inode(inode), O_RDWR);
    proc::with_current(|p| p.files.install(file, flags & MFD_CLOEXEC != 0))
}

/// fcntl's F_ADD_SEALS and F_GET_SEALS, in Linux's order of checks:
/// EBADF for an O_PATH descriptor; for F_ADD_SEALS, EPERM when it is not
/// open for writing, EINVAL for an unknown seal; EINVAL when it is not a
/// regular file (a pipe, a directory, the console). A regular file not
/// made by memfd_create(MFD_ALLOW_SEALING) carries F_SEAL_SEAL: adding to
/// it is EPERM, as for a file on Linux's tmpfs.
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    let file = proc::with_current(|p| p.files.get(fd))?;
    let (inode, flags, writable) = {
        let file = file.lock();
        let inode = match &file.kind {
            FileKind::Inode(inode) if inode.object().is_some() => Some(inode.clone()),
            _ => None,
        };
        (inode, file.flags, file.writable())
    };
    if flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if cmd == F_GET_SEALS {
        return inode.map(|i| i.seals() as usize).ok_or(Errno::EINVAL);
    }
    let seals = arg as u32;
    if !writable {
        return Err(Errno::EPERM);
    }
    if seals & !F_ALL_SEALS != 0 {
        return Err(Errno::EINVAL);
    }
    let inode = inode.ok_or(Errno::EINVAL)?;
    let object = inode.object().ok_or(Errno::EINVAL)?.clone();
    inode.add_seals(seals, || mapped_writable(&object))?;
    Ok(0)
}

/// Whether any address space maps `object` shared with the right to write
/// (its max_prot has WRITE, even if its protection now lacks it: mprotect
/// could give it back). Only the spaces the object lists as mappers can.
fn mapped_writable(object: &ObjectRef) -> bool {
    object.mappers().into_iter().any(|id| {
        proc::with_space(id, |space| {
            space.vmas().any(|v| {
                v.sharing == Sharing::Shared
                    && v.max_prot.contains(Prot::WRITE)
                    && matches!(&v.backing, Backing::Object { object: o, .. } if o.same(object))
            })
        }) == Some(true)
    })
}

/// A memfd's object and the name maps shows for it.
struct Named {
    object: WeakObject,
    dev: u64,
    ino: u64,
    name: String,
}

/// Every memfd whose object lives: they are in no directory, so this is
/// where /proc/PID/maps finds their names. An entry goes when its object
/// has gone (checked at the next memfd_create).
static MEMFDS: Mutex<Vec<Named>> = Mutex::new(Vec::new());

fn remember(inode: &Arc<Inode>, name: String) -> Result<(), Errno> {
    let object = inode.object().ok_or(Errno::EINVAL)?.downgrade();
    let mut all = MEMFDS.lock();
    all.retain(|n| n.object.alive());
    all.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    all.push(Named {
        object,
        dev: inode.dev,
        ino: inode.ino,
        name,
    });
    Ok(())
}

/// What /proc/PID/maps shows for a mapping of `object` if it is a memfd's:
/// (st_dev, inode number, `/memfd:NAME (deleted)`).
pub fn maps_name(object: &ObjectRef) -> Option<(u64, u64, String)> {
    let all = MEMFDS.lock();
    let n = all.iter().find(|n| n.object.is(object))?;
    Some((n.dev, n.ino, alloc::format!("/memfd:{} (deleted)", n.name)))
}
