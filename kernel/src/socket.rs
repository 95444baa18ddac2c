//! socketpair(AF_UNIX, SOCK_STREAM or SOCK_SEQPACKET): two connected ends,
//! each a byte stream (or, SEQPACKET, a sequence of messages whose
//! boundaries reads keep) to the other, with Linux's semantics for read,
//! write, shutdown and close:
//! a read waits for data and returns end of file once the other end can no
//! longer write (closed, or shut down for writing); a write to an end whose
//! peer can no longer read is EPIPE, with SIGPIPE.
//!
//! A waiting reader or writer yields the CPU until the other side moves
//! (and a signal interrupts it: EINTR).

use crate::proc;
use crate::signal::{self, SigInfo};

const SIGPIPE: i32 = 13;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use spin::Mutex;
use vm::errno::Errno;

/// How many bytes one direction holds before a writer waits.
pub const CAPACITY: usize = 64 * 1024;

#[derive(Default)]
struct Channel {
    data: VecDeque<u8>,
    /// SEQPACKET: the length of each message in `data`, oldest first.
    messages: VecDeque<usize>,
    /// The writing end is closed or shut down for writing.
    writer_gone: bool,
    /// The reading end is closed or shut down for reading.
    reader_gone: bool,
}

pub struct End {
    rx: Arc<Mutex<Channel>>,
    tx: Arc<Mutex<Channel>>,
    pub seqpacket: bool,
}

/// A connected pair (`seqpacket`: of SOCK_SEQPACKET ends).
pub fn pair(seqpacket: bool) -> (End, End) {
    let a = Arc::new(Mutex::new(Channel::default()));
    let b = Arc::new(Mutex::new(Channel::default()));
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
            seqpacket,
        },
        End {
            rx: b,
            tx: a,
            seqpacket,
        },
    )
}

/// Wait for the other side: EINTR if a signal is pending.
fn wait() -> Result<(), Errno> {
    if proc::with_current(|p| p.signals.interrupts()) {
        return Err(Errno::EINTR);
    }
    proc::yield_now();
    Ok(())
}

impl End {
    /// Bytes into `buf`: what is there (waiting for some unless
    /// `nonblock`: EAGAIN), 0 at end of stream.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        loop {
            {
                let mut ch = self.rx.lock();
                if self.seqpacket
                    && let Some(len) = ch.messages.pop_front()
                {
                    // One message per read; what does not fit is dropped.
                    let n = buf.len().min(len);
                    for (slot, byte) in buf.iter_mut().zip(ch.data.drain(..len)) {
                        *slot = byte;
                    }
                    return Ok(n);
                }
                if !self.seqpacket && (!ch.data.is_empty() || buf.is_empty()) {
                    let n = buf.len().min(ch.data.len());
                    for (slot, byte) in buf.iter_mut().zip(ch.data.drain(..n)) {
                        *slot = byte;
                    }
                    return Ok(n);
                }
                if ch.writer_gone || ch.reader_gone {
                    return Ok(0);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            wait()?;
        }
    }

    /// Queue `data` for the peer: all of it, waiting for room as needed
    /// (or as much as fits when `nonblock`; EAGAIN if nothing does). A
    /// SEQPACKET end sends it as one message, whole (EMSGSIZE past the
    /// capacity).
    pub fn write(&self, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if self.seqpacket && data.len() > CAPACITY {
            return Err(Errno::EMSGSIZE);
        }
        let mut done = 0;
        loop {
            {
                let mut ch = self.tx.lock();
                if ch.reader_gone || ch.writer_gone {
                    drop(ch);
                    return broken_pipe(done);
                }
                let room = CAPACITY - ch.data.len();
                if self.seqpacket {
                    if room >= data.len() {
                        ch.data.extend(data);
                        ch.messages.push_back(data.len());
                        return Ok(data.len());
                    }
                } else {
                    let n = room.min(data.len() - done);
                    ch.data.extend(&data[done..done + n]);
                    done += n;
                }
            }
            if done == data.len() {
                return Ok(done);
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            if let Err(e) = wait() {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }

    /// shutdown(how): SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2).
    pub fn shutdown(&self, how: u64) -> Result<(), Errno> {
        match how {
            0 => self.rx.lock().reader_gone = true,
            1 => self.tx.lock().writer_gone = true,
            2 => {
                self.rx.lock().reader_gone = true;
                self.tx.lock().writer_gone = true;
            }
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
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
    proc::with_current(|p| p.signals.post(info));
    Err(Errno::EPIPE)
}

/// Closing an end closes both directions at it.
impl Drop for End {
    fn drop(&mut self) {
        self.rx.lock().reader_gone = true;
        self.tx.lock().writer_gone = true;
    }
}
