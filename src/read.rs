//! Reading kernel files into fixed buffers with as few system calls as correctness allows.
//!
//! Every file the probe reads (cgroup files, `/proc/self/cgroup`, `/proc/meminfo`) is a
//! single-record seq_file: one `read` with a buffer larger than the content returns all of
//! it. So a read that returns a newline-terminated, not-full buffer ends the file; only
//! otherwise do we read again until 0 (a fixture without a final newline, a short read from
//! an odd filesystem). mountinfo is one record per mount and is streamed line by line.
//!
//! Files are opened `O_CLOEXEC` (a supervisor spawns children) and not closed explicitly on
//! the probe path: the descriptor is dropped, which closes it.

use core::ffi::CStr;

use memchr::memchr;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::Fault;

/// Opens `path` read-only.
pub fn open(path: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// `read(2)` retried on EINTR.
pub fn read_some(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(fd.as_fd(), &mut *buf) {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Reads a whole single-record file from an open descriptor into `buf`.
///
/// A file that fills `buf` is [`Fault::TooLarge`]: parsing a truncated prefix could turn
/// `12345678` into `1234`.
pub fn read_fd(fd: impl AsFd, buf: &mut [u8]) -> Result<&[u8], Fault> {
    let mut len = 0;
    loop {
        let n = read_some(fd.as_fd(), &mut buf[len..]).map_err(Fault::Read)?;
        len += n;
        if len == buf.len() {
            return Err(Fault::TooLarge);
        }
        if n == 0 || buf[len - 1] == b'\n' {
            return Ok(&buf[..len]);
        }
    }
}

/// Opens `path` and reads it whole into `buf` (see [`read_fd`]).
pub fn read_file<'b>(path: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8], Fault> {
    let fd = open(path).map_err(Fault::Open)?;
    read_fd(&fd, buf)
}

/// Opens `path` and calls `each` with every line (without its `\n`), reading through `buf`.
/// A line longer than `buf` is [`Fault::TooLarge`]. Stops at the first error `each` returns.
pub fn for_each_line(
    path: &CStr,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let fd = open(path).map_err(Fault::Open)?;
    let (mut start, mut end) = (0, 0);
    loop {
        if end == buf.len() {
            if start == 0 {
                return Err(Fault::TooLarge);
            }
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = read_some(&fd, &mut buf[end..]).map_err(Fault::Read)?;
        if n == 0 {
            return match &buf[start..end] {
                [] => Ok(()),
                last => each(last),
            };
        }
        end += n;
        while let Some(i) = memchr(b'\n', &buf[start..end]) {
            each(&buf[start..start + i])?;
            start += i + 1;
        }
    }
}
