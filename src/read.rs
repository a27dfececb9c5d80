//! Reading kernel files into fixed buffers with as few system calls as correctness allows.
//!
//! Every file the probe reads (cgroup files, `/proc/self/cgroup`, `/proc/meminfo`) is a
//! single-record seq_file: one `read` with a buffer larger than the content returns all of
//! it. So a read that returns a newline-terminated, not-full buffer ends the file; only
//! otherwise do we read again until 0 (a fixture without a final newline, a short read from
//! an odd filesystem). mountinfo is one record per mount and is streamed in runs of lines.
//!
//! Buffers are [`Buf`]s: nothing is zeroed, only what `read` wrote is looked at.
//!
//! Files are opened `O_CLOEXEC` (a supervisor spawns children) and left open: exit closes
//! them all, which saves a `close` per file on a path that runs every few seconds in every
//! pod. They are kept in a small table, not forgotten: a caller that runs the probe many
//! times in one process (benchmarks, tests) calls [`crate::sys::close_kept`] between runs,
//! and one that never does leaks at most [`crate::sys::KEPT`] descriptors, since files past
//! that are closed at once.

use core::ffi::CStr;
use memchr::memrchr;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};

use crate::error::Fault;
use crate::sys::{keep, Buf};

/// Opens `path` read-only and without blocking. On the kernel's files `O_NONBLOCK` changes
/// nothing; a FIFO put in place of one would otherwise block the open until a writer came,
/// and a hung probe is a failed probe. With it, such a FIFO reads as empty (no writer) or
/// `EAGAIN` (a writer with nothing written): an error line naming the file, at once.
pub fn open(path: &CStr) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// How [`create`] treats what is already in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Add to the end (the logfile).
    Append,
    /// Replace the content (the termination log, `install`'s copy).
    Replace,
}

/// Opens `path` for writing, creating it with `mode`, without blocking: a FIFO without a
/// reader (`/proc/1/fd/1` is one in many runtimes) fails with `ENXIO` at once, where a
/// blocking open would wait for a reader forever. The flag stays set, so a pipe whose
/// reader stopped reading fails a write with `EAGAIN` once full: a line lost, not the probe.
pub fn create(path: &CStr, how: Write, mode: u32) -> Result<OwnedFd, rustix::io::Errno> {
    let how = match how {
        Write::Append => OFlags::APPEND,
        Write::Replace => OFlags::TRUNC,
    };
    rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | how | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::from_raw_mode(mode),
    )
}

/// Reads a whole single-record file from an open descriptor into `buf` (emptied first).
///
/// A file that fills `buf` is [`Fault::TooLarge`]: parsing a truncated prefix could turn
/// `12345678` into `1234`.
pub fn read_fd<const N: usize>(fd: impl AsFd, buf: &mut Buf<N>) -> Result<&[u8], Fault> {
    read_whole(fd, buf, false)
}

/// Reads a whole single-record file again from its start, as [`read_fd`] does, with
/// `pread` at offset 0: the supervisor keeps its cgroup files open and re-reads each one
/// with a single system call per sample (a seq_file regenerates its record at offset 0).
pub fn reread<const N: usize>(fd: impl AsFd, buf: &mut Buf<N>) -> Result<&[u8], Fault> {
    read_whole(fd, buf, true)
}

fn read_whole<const N: usize>(
    fd: impl AsFd,
    buf: &mut Buf<N>,
    from_start: bool,
) -> Result<&[u8], Fault> {
    buf.clear();
    loop {
        let at = from_start.then_some(buf.len() as u64);
        let n = buf.read_from(fd.as_fd(), at).map_err(Fault::Read)?;
        if buf.is_full() {
            return Err(Fault::TooLarge);
        }
        if n == 0 || buf.as_bytes().last() == Some(&b'\n') {
            return Ok(buf.as_bytes());
        }
    }
}

/// Opens `path` and reads it whole into `buf` (see [`read_fd`]), leaving the file open.
pub fn read_file<'b, const N: usize>(path: &CStr, buf: &'b mut Buf<N>) -> Result<&'b [u8], Fault> {
    read_kept(open(path).map_err(Fault::Open)?, buf)
}

/// Reads the file `fd` whole into `buf` (see [`read_fd`]) and leaves it open for exit to
/// close (see the module docs).
pub fn read_kept<const N: usize>(fd: OwnedFd, buf: &mut Buf<N>) -> Result<&[u8], Fault> {
    let text = read_fd(&fd, buf);
    keep(fd);
    text
}

/// Opens `path` and calls `each` with runs of whole lines (each run ends with `\n`, except
/// the file's last line when it has none), reading through `buf`: one call per `read`
/// rather than per line, so the caller can search a run at once. A line longer than `buf`
/// is [`Fault::TooLarge`]. Stops at the first error `each` returns. Leaves the file open, as
/// [`read_file`] does.
pub fn for_each_block<const N: usize>(
    path: &CStr,
    buf: &mut Buf<N>,
    mut each: impl FnMut(&[u8]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let fd = open(path).map_err(Fault::Open)?;
    let r = read_blocks(fd.as_fd(), buf, &mut each);
    keep(fd);
    r
}

/// Opens `path` and calls `each` with what each `read` returns, through `buf`, until the end
/// of the file: for a parser that keeps its own state between pieces (the annotations file),
/// so that neither the file nor one of its lines has to fit `buf`. Stops at the first error
/// `each` returns. Leaves the file open, as [`read_file`] does.
pub fn for_each_chunk<const N: usize, E: From<Fault>>(
    path: &CStr,
    buf: &mut Buf<N>,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let fd = open(path).map_err(Fault::Open)?;
    let r = loop {
        buf.clear();
        match buf.read_from(fd.as_fd(), None) {
            Err(e) => break Err(Fault::Read(e).into()),
            Ok(0) => break Ok(()),
            Ok(_) => {
                if let Err(e) = each(buf.as_bytes()) {
                    break Err(e);
                }
            }
        }
    };
    keep(fd);
    r
}

fn read_blocks<const N: usize>(
    fd: rustix::fd::BorrowedFd<'_>,
    buf: &mut Buf<N>,
    each: &mut impl FnMut(&[u8]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    buf.clear();
    loop {
        if buf.is_full() {
            return Err(Fault::TooLarge);
        }
        if buf.read_from(fd, None).map_err(Fault::Read)? == 0 {
            return match buf.as_bytes() {
                [] => Ok(()),
                last => each(last),
            };
        }
        if let Some(i) = memrchr(b'\n', buf.as_bytes()) {
            each(&buf.as_bytes()[..=i])?;
            buf.consume(i + 1);
        }
    }
}
