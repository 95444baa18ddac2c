//! The line discipline: what a terminal does with the bytes typed at it
//! before a program reads them, and with the bytes a program writes.
//!
//! In canonical mode (ICANON, the default) input is edited a line at a
//! time: erase (VERASE, ^? or ^H) takes back a character, kill (VKILL,
//! ^U) the line, werase (^W) a word; newline or VEOF (^D) hands the line
//! to readers, and a VEOF at the start of a line reads as end of file. In
//! raw mode every byte is readable at once. With ISIG, VINTR (^C), VQUIT
//! (^\) and VSUSP (^Z) are not input but signals to the foreground process
//! group (the caller sends them: `Input::Signal`). ECHO sends typed bytes
//! back (control characters as `^X` with ECHOCTL); ICRNL turns the
//! carriage return a terminal sends for Enter into a newline; OPOST with
//! ONLCR turns a written newline into CR LF.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

// termios flags (Linux's values).
pub const ICRNL: u32 = 0o400;
pub const IGNCR: u32 = 0o200;
pub const INLCR: u32 = 0o100;
pub const IXON: u32 = 0o2000;
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
// c_cc indices.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VWERASE: usize = 14;
pub const NCCS: usize = 19;

/// The kernel's `struct termios` (TCGETS/TCSETS): 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Termios {
    /// Linux's defaults for a new terminal (tty_std_termios).
    pub const fn linux_default() -> Termios {
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            // B38400 | CS8 | CREAD | HUPCL
            cflag: 0o17 | 0o60 | 0o200 | 0o2000,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: [
                3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0,
                0,
            ],
        }
    }

    pub const SIZE: usize = 36;

    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        for (i, word) in [self.iflag, self.oflag, self.cflag, self.lflag]
            .into_iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        b[16] = self.line;
        b[17..].copy_from_slice(&self.cc);
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Termios {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..]);
        Termios {
            iflag: word(0),
            oflag: word(4),
            cflag: word(8),
            lflag: word(12),
            line: b[16],
            cc,
        }
    }

    fn canonical(&self) -> bool {
        self.lflag & ICANON != 0
    }
}

/// What a typed byte did beyond being queued or echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Queued,
    /// Send this signal to the foreground process group.
    Signal(i32),
}

/// Most bytes waiting to be read (Linux's N_TTY_BUF_SIZE): past it, typed
/// bytes are dropped.
const MAX_INPUT: usize = 4096;

/// The input side: the line being edited and what readers can take.
pub struct Discipline {
    pub termios: Termios,
    /// The line being edited (canonical mode).
    editing: Vec<u8>,
    /// Finished lines (canonical: each ends in its newline, or is what
    /// VEOF handed over, possibly empty) or raw bytes (one entry).
    ready: VecDeque<Vec<u8>>,
}

impl Discipline {
    pub const fn new() -> Discipline {
        Discipline {
            termios: Termios::linux_default(),
            editing: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    fn queued(&self) -> usize {
        self.editing.len() + self.ready.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether a read would return now (data, or a canonical end of file).
    pub fn readable(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Bytes a read could take now (FIONREAD).
    pub fn available(&self) -> usize {
        self.ready.iter().map(Vec::len).sum()
    }

    /// Throw away all input (^C without NOFLSH, TCSETSF, TCFLSH).
    pub fn flush_input(&mut self) {
        self.editing.clear();
        self.ready.clear();
    }

    /// New settings: leaving canonical mode makes the line being edited
    /// readable as it is.
    pub fn set_termios(&mut self, termios: Termios) {
        let was_canonical = self.termios.canonical();
        self.termios = termios;
        if was_canonical && !termios.canonical() && !self.editing.is_empty() {
            let line = core::mem::take(&mut self.editing);
            self.ready.push_back(line);
        }
    }

    /// One byte typed; what to echo is appended to `echo`.
    pub fn input(&mut self, byte: u8, echo: &mut Vec<u8>) -> Input {
        let t = self.termios;
        let mut c = byte;
        if c == b'\r' {
            if t.iflag & IGNCR != 0 {
                return Input::Queued;
            }
            if t.iflag & ICRNL != 0 {
                c = b'\n';
            }
        } else if c == b'\n' && t.iflag & INLCR != 0 {
            c = b'\r';
        }
        if t.lflag & ISIG != 0 {
            let signal = match c {
                _ if c == t.cc[VINTR] && c != 0 => Some(crate::signal::SIGINT),
                _ if c == t.cc[VQUIT] && c != 0 => Some(crate::signal::SIGQUIT),
                _ if c == t.cc[VSUSP] && c != 0 => Some(crate::signal::SIGTSTP),
                _ => None,
            };
            if let Some(signal) = signal {
                if t.lflag & NOFLSH == 0 {
                    self.flush_input();
                }
                if t.lflag & ECHO != 0 {
                    echo_char(c, t, echo);
                }
                return Input::Signal(signal);
            }
        }
        if self.queued() >= MAX_INPUT && c != b'\n' {
            return Input::Queued;
        }
        if !t.canonical() {
            if t.lflag & ECHO != 0 {
                echo_char(c, t, echo);
            }
            match self.ready.back_mut() {
                Some(bytes) => bytes.push(c),
                None => self.ready.push_back(alloc::vec![c]),
            }
            return Input::Queued;
        }
        match c {
            _ if c == t.cc[VERASE] || c == 0x08 => {
                if let Some(gone) = self.editing.pop() {
                    erase_echo(gone, t, echo);
                }
            }
            _ if c == t.cc[VWERASE] && t.lflag & IEXTEN != 0 => {
                while self.editing.last() == Some(&b' ') {
                    let gone = self.editing.pop().unwrap_or(b' ');
                    erase_echo(gone, t, echo);
                }
                while let Some(&last) = self.editing.last()
                    && last != b' '
                {
                    self.editing.pop();
                    erase_echo(last, t, echo);
                }
            }
            _ if c == t.cc[VKILL] => {
                while let Some(gone) = self.editing.pop() {
                    erase_echo(gone, t, echo);
                }
            }
            _ if c == t.cc[VEOF] => {
                let line = core::mem::take(&mut self.editing);
                self.ready.push_back(line);
            }
            _ if c == b'\n' || (c == t.cc[VEOL] && c != 0) => {
                if t.lflag & (ECHO | ECHONL) != 0 {
                    echo.push(b'\n');
                }
                let mut line = core::mem::take(&mut self.editing);
                line.push(c);
                self.ready.push_back(line);
            }
            _ => {
                if t.lflag & ECHO != 0 {
                    echo_char(c, t, echo);
                }
                self.editing.push(c);
            }
        }
        Input::Queued
    }

    /// Take up to `buf.len()` bytes: in canonical mode at most one line
    /// (what is left of it stays for the next read); 0 for an end of file.
    /// None when nothing is ready.
    pub fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        let canonical = self.termios.canonical();
        let mut done = 0;
        while done < buf.len() {
            let Some(front) = self.ready.front_mut() else {
                break;
            };
            let n = front.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&front[..n]);
            front.drain(..n);
            done += n;
            if front.is_empty() {
                self.ready.pop_front();
                if canonical {
                    return Some(done);
                }
            } else if canonical {
                return Some(done);
            }
        }
        (done > 0 || buf.is_empty()).then_some(done)
    }
}

/// Echo `c`: a control character as `^X` with ECHOCTL (but tab and
/// newline as themselves).
fn echo_char(c: u8, t: Termios, echo: &mut Vec<u8>) {
    if c < 0x20 && c != b'\t' && c != b'\n' && t.lflag & ECHOCTL != 0 {
        echo.extend([b'^', c + 0x40]);
    } else if c == 0x7f && t.lflag & ECHOCTL != 0 {
        echo.extend(b"^?");
    } else {
        echo.push(c);
    }
}

/// Take back the echo of `gone` on the screen (ECHOE: backspace, space,
/// backspace; two of them for a `^X`).
fn erase_echo(gone: u8, t: Termios, echo: &mut Vec<u8>) {
    if t.lflag & ECHO == 0 {
        return;
    }
    if t.lflag & ECHOE == 0 {
        echo_char(t.cc[VERASE], t, echo);
        return;
    }
    let width = if (gone < 0x20 && gone != b'\t') || gone == 0x7f {
        2
    } else {
        1
    };
    for _ in 0..width {
        echo.extend(b"\x08 \x08");
    }
}

/// Output processing: with OPOST and ONLCR, `\n` goes out as `\r\n`.
pub fn output(t: &Termios, data: &[u8], out: &mut Vec<u8>) {
    if t.oflag & OPOST == 0 || t.oflag & ONLCR == 0 {
        out.extend_from_slice(data);
        return;
    }
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
}
