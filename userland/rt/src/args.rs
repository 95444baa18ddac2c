//! argc, argv and envp from the System V initial stack.

/// The program's arguments and environment, as the kernel put them on the stack.
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

impl Args {
    /// # Safety
    /// `sp` must point at argc on a System V initial stack.
    pub unsafe fn from_initial_stack(sp: *const usize) -> Self {
        // SAFETY: the layout is argc, argv[argc], NULL, envp..., NULL.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *const *const u8;
            Args {
                argc,
                argv,
                envp: argv.add(argc + 1),
            }
        }
    }

    pub fn len(&self) -> usize {
        self.argc
    }

    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// argv[i] as a string ("" if not UTF-8 or out of range).
    pub fn get(&self, i: usize) -> &'static str {
        if i >= self.argc {
            return "";
        }
        // SAFETY: i < argc, and the kernel NUL-terminates each string.
        unsafe { cstr(*self.argv.add(i)) }
    }

    /// The environment strings, `NAME=value`.
    pub fn env(&self) -> impl Iterator<Item = &'static str> {
        let envp = self.envp;
        (0..).map_while(move |i| {
            // SAFETY: envp is NULL-terminated.
            let p = unsafe { *envp.add(i) };
            // SAFETY: each entry is a NUL-terminated string.
            (!p.is_null()).then(|| unsafe { cstr(p) })
        })
    }
}

/// # Safety
/// `p` must point at a NUL-terminated string that lives for the program's life.
unsafe fn cstr(p: *const u8) -> &'static str {
    // SAFETY: per the contract.
    let bytes = unsafe { core::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
    core::str::from_utf8(bytes).unwrap_or("")
}
