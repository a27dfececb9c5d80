//! The only unsafe code in kubemem: calls into the C library for what rustix leaves to it,
//! a stack buffer that is not zeroed before use, and the descriptors left open for exit.
#![allow(unsafe_code)]

use core::ffi::c_int;
use core::mem::MaybeUninit;

use core::sync::atomic::{AtomicI32, Ordering::Relaxed};

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::Errno;

const SIGPIPE: c_int = 13;
/// glibc's `SIG_IGN` is `((__sighandler_t) 1)`.
const SIG_IGN: usize = 1;

extern "C" {
    /// glibc's `signal(3)`; the handler is pointer-sized, passed here as `usize`.
    fn signal(signum: c_int, handler: usize) -> usize;
}

/// Ignores SIGPIPE, so that writing to a closed pipe (a logfile at `/proc/1/fd/1` whose
/// reader is gone) returns EPIPE instead of killing the probe, which would turn a logging
/// problem into a failed probe. Called only when a line is about to be written, to keep the
/// healthy path free of the system call. Rust's std runtime would do this before `main`, but
/// kubemem starts at the C `main` (see `main.rs`).
pub fn ignore_sigpipe() {
    // SAFETY: `signal` with SIG_IGN installs no handler code; it only changes the disposition
    // of SIGPIPE for this process, which nothing else in kubemem relies on. SIGPIPE (13) and
    // SIG_IGN (1) are the values of glibc and musl on every Linux architecture.
    unsafe {
        signal(SIGPIPE, SIG_IGN);
    }
}

/// How many descriptors stay open for exit to close (see `read`): a probe run opens at most
/// 5 files plus 2 per visible ancestor.
pub const KEPT: usize = 16;
/// The kept descriptors, taken out of their `OwnedFd`s; -1 is a free slot.
static KEPT_FDS: [AtomicI32; KEPT] = [const { AtomicI32::new(-1) }; KEPT];

/// Leaves `fd` open in a free slot of the table, or closes it when the table is full.
pub fn keep(fd: OwnedFd) {
    let raw = fd.as_raw_fd();
    if KEPT_FDS
        .iter()
        .any(|slot| slot.compare_exchange(-1, raw, Relaxed, Relaxed).is_ok())
    {
        let _ = fd.into_raw_fd();
    }
}

/// Closes every kept descriptor.
pub fn close_kept() {
    for slot in &KEPT_FDS {
        let raw = slot.swap(-1, Relaxed);
        if raw >= 0 {
            // SAFETY: only `keep` stores into the table, a descriptor it took out of an
            // `OwnedFd` with `into_raw_fd`; the swap emptied the slot, so this is the one
            // owner, and it closes the descriptor once.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
}

/// A fixed-capacity byte buffer whose unused tail stays uninitialised.
///
/// Why: kubemem's stack buffers (PATH_MAX paths, 8-16 KiB read buffers, about 50 KiB in all)
/// were zeroed on every run: 25k instructions, a third of a healthy probe, and stack pages
/// touched that nothing reads. Only what `read(2)` or an append wrote is ever looked at.
#[derive(Clone)]
pub struct Buf<const N: usize> {
    bytes: [MaybeUninit<u8>; N],
    /// Invariant: `bytes[..len]` is initialised. Every method that raises `len` writes those
    /// bytes first; nothing else changes `len` upwards.
    len: usize,
}

/// An append would go past the buffer's capacity (nothing was appended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Buf {
            bytes: [MaybeUninit::uninit(); N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `bytes[..len]` is initialised (the invariant on `len`), `len <= N`, and
        // `MaybeUninit<u8>` has the size and alignment of `u8`.
        unsafe { core::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }

    pub const fn len(&self) -> usize {
        self.len
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub const fn is_full(&self) -> bool {
        self.len == N
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends all of `s`, or nothing when it does not fit.
    pub fn extend_from_slice(&mut self, s: &[u8]) -> Result<(), Full> {
        let end = self.len.checked_add(s.len()).ok_or(Full)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(Full)?;
        for (d, &c) in dst.iter_mut().zip(s) {
            d.write(c);
        }
        self.len = end;
        Ok(())
    }

    pub fn push(&mut self, c: u8) -> Result<(), Full> {
        self.bytes.get_mut(self.len).ok_or(Full)?.write(c);
        self.len += 1;
        Ok(())
    }

    /// One `read(2)` (retried on EINTR) into the free tail; returns the bytes read, 0 at end
    /// of file or when the buffer is full.
    pub fn read_from(&mut self, fd: BorrowedFd<'_>) -> Result<usize, Errno> {
        loop {
            match rustix::io::read(fd, &mut self.bytes[self.len..]) {
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
                Ok((read, _)) => {
                    self.len += read.len();
                    return Ok(read.len());
                }
            }
        }
    }

    /// Drops the first `n` bytes (at most `len`), moving the rest to the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.bytes.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::{Buf, Full};

    #[test]
    fn buf_appends_whole_or_nothing_and_consumes_from_the_front() {
        let mut b = Buf::<8>::new();
        assert!(b.is_empty());
        b.extend_from_slice(b"abc").unwrap();
        b.push(b'd').unwrap();
        assert_eq!(b.as_bytes(), b"abcd");
        assert_eq!(b.extend_from_slice(b"efghi"), Err(Full));
        assert_eq!(b.as_bytes(), b"abcd");
        b.extend_from_slice(b"efgh").unwrap();
        assert!(b.is_full());
        assert_eq!(b.push(b'x'), Err(Full));
        b.consume(3);
        assert_eq!(b.as_bytes(), b"defgh");
        b.consume(10);
        assert!(b.is_empty());
    }

    #[test]
    fn buf_reads_into_its_free_tail() {
        use std::io::Write;
        use std::os::fd::AsFd;
        let (r, mut w) = std::os::unix::net::UnixStream::pair().unwrap();
        w.write_all(b"hello").unwrap();
        let mut b = Buf::<4>::new();
        b.push(b'>').unwrap();
        assert_eq!(b.read_from(r.as_fd()), Ok(3));
        assert_eq!(b.as_bytes(), b">hel");
        assert_eq!(b.read_from(r.as_fd()), Ok(0));
    }
}
