//! The alternate signal stack (sigaltstack): a region the process names
//! where handlers installed with SA_ONSTACK run, so that a handler can
//! still run when the fault it handles is a stack overflow.
//!
//! Linux's rules: a stack smaller than MINSIGSTKSZ is ENOMEM, flags other
//! than SS_DISABLE (and SS_AUTODISARM) are EINVAL, and a process that is
//! running on its alternate stack cannot change it (EPERM). The old
//! setting reads back with SS_ONSTACK while on it, SS_DISABLE when none.

use vm::errno::Errno;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
/// Linux's SS_AUTODISARM: disarm while a handler runs on it.
const SS_AUTODISARM: u32 = 1 << 31;
/// Linux x86_64's MINSIGSTKSZ.
const MINSIGSTKSZ: u64 = 2048;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    /// [base, base + size), or None when disabled.
    pub stack: Option<(u64, u64)>,
    pub autodisarm: bool,
}

impl AltStack {
    /// Whether `rsp` lies on the alternate stack.
    pub fn on(&self, rsp: u64) -> bool {
        self.stack
            .is_some_and(|(base, size)| rsp > base && rsp - base <= size)
    }

    /// `stack_t` as sigaltstack's `old` reports it, for a process at `rsp`:
    /// ss_sp, ss_flags (with padding), ss_size.
    pub fn to_bytes(self, rsp: u64) -> [u8; 24] {
        let (base, size) = self.stack.unwrap_or((0, 0));
        let mut flags = match self.stack {
            None => SS_DISABLE,
            Some(_) if self.on(rsp) => SS_ONSTACK,
            Some(_) => 0,
        };
        if self.autodisarm {
            flags |= SS_AUTODISARM;
        }
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&base.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&size.to_le_bytes());
        b
    }

    /// The setting a `stack_t` asks for, by the rules above (`rsp`: where
    /// the caller runs now).
    pub fn replaced_by(&self, b: &[u8; 24], rsp: u64) -> Result<AltStack, Errno> {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let flags = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        if self.on(rsp) {
            return Err(Errno::EPERM);
        }
        let autodisarm = flags & SS_AUTODISARM != 0;
        match flags & !SS_AUTODISARM {
            SS_DISABLE => Ok(AltStack::default()),
            0 | SS_ONSTACK => {
                let (base, size) = (word(0), word(16));
                if size < MINSIGSTKSZ {
                    return Err(Errno::ENOMEM);
                }
                base.checked_add(size).ok_or(Errno::EINVAL)?;
                Ok(AltStack {
                    stack: Some((base, size)),
                    autodisarm,
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Where a handler's frame goes below: the top of the alternate stack
    /// for an SA_ONSTACK handler when the process is not already on it,
    /// else the interrupted stack pointer itself.
    pub fn frame_top(&self, rsp: u64, on_stack: bool) -> u64 {
        match self.stack {
            Some((base, size)) if on_stack && !self.on(rsp) => base + size,
            _ => rsp,
        }
    }
}
