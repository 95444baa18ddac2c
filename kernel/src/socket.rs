//! Pipes and socketpair(AF_UNIX, SOCK_STREAM or SOCK_SEQPACKET): byte
//! streams between processes, with Linux's semantics for read, write,
//! shutdown and close.
//!
//! A `Channel` is one direction: a buffer, and whether its writing and its
//! reading side are gone. A pipe is one channel between a read end and a
//! write end; a socketpair is two, crossed, so each end reads one and
//! writes the other. A SEQPACKET channel also keeps its messages'
//! boundaries.
//!
//! A read waits for data and returns end of file once the other end can no
//! longer write (closed, or shut down for writing); a write to a channel
//! whose reading side is gone is EPIPE, with SIGPIPE. A waiting reader or
//! writer sleeps on the channel's wait queue (kernel/src/sleep.rs), which
//! every change to the channel wakes; a signal interrupts it (EINTR).

use crate::proc;
use crate::signal::{self, SigInfo};
use crate::sleep::{self, WaitQueue};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use spin::Mutex;
use vm::errno::Errno;

const SIGPIPE: i32 = 13;
/// How many bytes one direction holds before a writer waits.
pub const CAPACITY: usize = 64 * 1024;
/// Pipe writes up to this size are atomic: never interleaved with
/// another writer's, so a writer waits for room for all of it.
pub const PIPE_BUF: usize = 4096;

// poll(2) events (Linux's values).
pub const POLLIN: u16 = 0x1;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;

#[derive(Default)]
struct Buffer {
    data: VecDeque<u8>,
    /// SEQPACKET: the length of each message in `data`, oldest first.
    messages: VecDeque<usize>,
    /// The writing end is closed or shut down for writing.
    writer_gone: bool,
    /// The reading end is closed or shut down for reading.
    reader_gone: bool,
}

#[derive(Default)]
struct Channel {
    buffer: Mutex<Buffer>,
    /// Readers and writers waiting for it to change (and poll's callers).
    changed: WaitQueue,
}

impl Channel {
    /// Change the buffer and wake whoever waits for it.
    fn update<R>(&self, f: impl FnOnce(&mut Buffer) -> R) -> R {
        let r = f(&mut self.buffer.lock());
        self.changed.wake_all();
        r
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    SeqPacket,
    /// A pipe's end: it reads or writes its one channel (its descriptor's
    /// access mode says which), the other is a closed stand-in.
    Pipe,
}

pub struct End {
    rx: Arc<Channel>,
    tx: Arc<Channel>,
    pub kind: Kind,
}

/// A connected pair (`seqpacket`: of SOCK_SEQPACKET ends).
pub fn pair(seqpacket: bool) -> (End, End) {
    let kind = if seqpacket {
        Kind::SeqPacket
    } else {
        Kind::Stream
    };
    let a = Arc::new(Channel::default());
    let b = Arc::new(Channel::default());
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
            kind,
        },
        End { rx: b, tx: a, kind },
    )
}

/// A pipe: (read end, write end).
pub fn pipe() -> (End, End) {
    let channel = Arc::new(Channel::default());
    let closed = || {
        let c = Channel::default();
        let mut b = c.buffer.lock();
        (b.reader_gone, b.writer_gone) = (true, true);
        drop(b);
        Arc::new(c)
    };
    (
        End {
            rx: channel.clone(),
            tx: closed(),
            kind: Kind::Pipe,
        },
        End {
            rx: closed(),
            tx: channel,
            kind: Kind::Pipe,
        },
    )
}

impl End {
    fn seqpacket(&self) -> bool {
        self.kind == Kind::SeqPacket
    }

    /// Bytes into `buf`: what is there (waiting for some unless
    /// `nonblock`: EAGAIN), 0 at end of stream.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let mut take = || {
            let mut b = self.rx.buffer.lock();
            if self.seqpacket()
                && let Some(len) = b.messages.pop_front()
            {
                // One message per read; what does not fit is dropped.
                let n = buf.len().min(len);
                for (slot, byte) in buf.iter_mut().zip(b.data.drain(..len)) {
                    *slot = byte;
                }
                return Some(n);
            }
            if !self.seqpacket() && (!b.data.is_empty() || buf.is_empty()) {
                let n = buf.len().min(b.data.len());
                for (slot, byte) in buf.iter_mut().zip(b.data.drain(..n)) {
                    *slot = byte;
                }
                return Some(n);
            }
            (b.writer_gone || b.reader_gone).then_some(0)
        };
        let got = if nonblock {
            take()
        } else {
            sleep::wait_for(&[&self.rx.changed], None, take)?
        };
        let n = got.ok_or(Errno::EAGAIN)?;
        // Room was made: writers may go on.
        self.rx.changed.wake_all();
        Ok(n)
    }

    /// Queue `data` for the peer: all of it, waiting for room as needed
    /// (or as much as fits when `nonblock`; EAGAIN if nothing does). A
    /// SEQPACKET end sends it as one message, whole (EMSGSIZE past the
    /// capacity); a pipe write of at most PIPE_BUF bytes goes in whole.
    pub fn write(&self, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if self.seqpacket() && data.len() > CAPACITY {
            return Err(Errno::EMSGSIZE);
        }
        let whole = self.seqpacket() || self.kind == Kind::Pipe && data.len() <= PIPE_BUF;
        let mut done = 0;
        loop {
            // Ok(true): all sent; Ok(false): no room; Err: the reader is gone.
            let mut step = || {
                self.tx.update(|b| {
                    if b.reader_gone || b.writer_gone {
                        return Err(());
                    }
                    let room = CAPACITY - b.data.len();
                    if whole {
                        if room < data.len() {
                            return Ok(false);
                        }
                        b.data.extend(data);
                        if self.seqpacket() {
                            b.messages.push_back(data.len());
                        }
                        done = data.len();
                    } else {
                        let n = room.min(data.len() - done);
                        b.data.extend(&data[done..done + n]);
                        done += n;
                    }
                    Ok(done == data.len())
                })
            };
            match step() {
                Err(()) => return broken_pipe(done),
                Ok(true) => return Ok(done),
                Ok(false) if nonblock => {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                Ok(false) => {}
            }
            let room = || {
                let b = self.tx.buffer.lock();
                let need = if whole { data.len() } else { 1 };
                (b.reader_gone || CAPACITY - b.data.len() >= need).then_some(())
            };
            if let Err(e) = sleep::wait_for(&[&self.tx.changed], None, room) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }

    /// shutdown(how): SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2).
    pub fn shutdown(&self, how: u64) -> Result<(), Errno> {
        match how {
            0 => self.rx.update(|b| b.reader_gone = true),
            1 => self.tx.update(|b| b.writer_gone = true),
            2 => {
                self.rx.update(|b| b.reader_gone = true);
                self.tx.update(|b| b.writer_gone = true);
            }
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// poll's events for this end: POLLIN (data, or end of stream),
    /// POLLHUP (the writer is gone), POLLOUT (room), POLLERR (the reader
    /// is gone). `reads`/`writes`: which sides its descriptor may use.
    pub fn poll(&self, reads: bool, writes: bool) -> u16 {
        let pipe = self.kind == Kind::Pipe;
        let mut events = 0;
        if reads {
            let b = self.rx.buffer.lock();
            // A socket whose peer is gone reads end of file: readable. A
            // pipe without writers says only POLLHUP (Linux's pipe_poll).
            if !b.data.is_empty() || b.writer_gone && !pipe {
                events |= POLLIN;
            }
            if b.writer_gone {
                events |= POLLHUP;
            }
        }
        if writes {
            let b = self.tx.buffer.lock();
            let room = CAPACITY - b.data.len() >= PIPE_BUF;
            if b.reader_gone {
                events |= POLLERR;
            }
            if room && (pipe || !b.reader_gone) {
                events |= POLLOUT;
            }
        }
        events
    }

    /// The wait queues poll sleeps on for this end.
    pub fn queues(&self) -> [&WaitQueue; 2] {
        [&self.rx.changed, &self.tx.changed]
    }

    /// Bytes waiting to be read (FIONREAD).
    pub fn available(&self) -> usize {
        self.rx.buffer.lock().data.len()
    }
}

/// A write with no reader: SIGPIPE, and EPIPE unless some bytes went.
fn broken_pipe(done: usize) -> Result<usize, Errno> {
    if done > 0 {
        return Ok(done);
    }
    let info = SigInfo {
        signo: SIGPIPE,
        code: signal::SI_USER,
        pid: proc::current_pid(),
        ..SigInfo::default()
    };
    // SIGPIPE goes to the thread that wrote (Linux's send_sig to current).
    proc::with_current_thread(|_, t| t.sig.pending.post(info));
    Err(Errno::EPIPE)
}

/// Closing an end closes both directions at it.
impl Drop for End {
    fn drop(&mut self) {
        self.rx.update(|b| b.reader_gone = true);
        self.tx.update(|b| b.writer_gone = true);
    }
}
