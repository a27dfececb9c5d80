//! The only unsafe code in kubemem: the command line as the C `main` receives it, calls into
//! the C library for what rustix leaves to it in a program that links one (signal
//! dispositions, the signal mask, signalfd, fork and execvp), a stack buffer that is not zeroed before use, and the descriptors left open for
//! exit.
//!
//! kubemem is single-threaded (it starts at the C `main` and spawns no thread), which the
//! signal mask and fork below rely on.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, CStr};
use core::mem::MaybeUninit;
use core::ptr;

use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

/// The command line `main` received, without the program name (what lexopt's
/// `Parser::from_args` takes, once `main` has made each an `OsStr`: this crate is `no_std`).
///
/// std's `args_os()` is no substitute in a `#![no_main]` program: only glibc hands argv to
/// std before a C `main` (through `.init_array`); musl does not, and there std sees an
/// empty command line. A musl kubemem that read `args_os()` ignored every argument.
///
/// Only for `main`'s own `argc` and `argv`, its one caller: a safe function so that the
/// unsafe code stays in this file, at the cost of clippy's rule that a function taking a raw
/// pointer it dereferences be `unsafe`.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn args(argc: c_int, argv: *const *const c_char) -> impl Iterator<Item = &'static [u8]> {
    let n = usize::try_from(argc).unwrap_or(0);
    let ptrs: &'static [*const c_char] = if argv.is_null() {
        &[]
    } else {
        // SAFETY: the C start-up code passes `argc` valid pointers in `argv` (and a null
        // after them), in memory that lives, unchanged by kubemem, until the process exits.
        unsafe { core::slice::from_raw_parts(argv, n) }
    };
    ptrs.iter().skip(1).map(|&arg| {
        // SAFETY: each of those pointers is a NUL-terminated string that lives as long as
        // the process (see above).
        unsafe { CStr::from_ptr(arg) }.to_bytes()
    })
}

/// Ignores SIGPIPE, so that writing to a closed pipe (a logfile at `/proc/1/fd/1` whose
/// reader is gone) returns EPIPE instead of killing the probe, which would turn a logging
/// problem into a failed probe. Called only when a line is about to be written, to keep the
/// healthy path free of the system call. Rust's std runtime would do this before `main`, but
/// kubemem starts at the C `main` (see `main.rs`).
pub fn ignore_sigpipe() {
    // SAFETY: `signal` with SIG_IGN installs no handler code; it only changes the disposition
    // of SIGPIPE for this process, which nothing else in kubemem relies on.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Restores the default disposition of `sig`: in the supervisor for SIGCHLD (inherited as
/// ignored, children would be reaped by the kernel and CMD's status lost), in CMD before
/// exec for SIGPIPE (which the supervisor ignores).
pub fn default_disposition(sig: Signal) {
    // SAFETY: SIG_DFL installs no handler code; it only changes the disposition of `sig`.
    unsafe {
        libc::signal(sig.as_raw(), libc::SIG_DFL);
    }
}

fn errno() -> Errno {
    // SAFETY: `__errno_location` returns this thread's errno, valid to read at any time.
    Errno::from_raw_os_error(unsafe { *libc::__errno_location() })
}

/// Every signal the kernel has, as its own 64-bit signal set (bit N-1 for signal N).
const ALL_SIGNALS: u64 = u64::MAX;

/// `rt_sigprocmask(how, set)` as the kernel has it, on a 64-bit set.
///
/// Why not the C library's `sigprocmask`: glibc's and musl's leave out the real-time signals
/// they keep for their own threads (glibc 32 and 33, musl 32 to 34), and `sigaddset` refuses
/// them. Those would stay unblocked with their default action, so `kill -34` would end a
/// kubemem that is not PID 1 and orphan CMD. kubemem starts no thread, so none of them is
/// the C library's to keep.
fn set_signal_mask(how: c_int, set: u64) -> Result<(), Errno> {
    // SAFETY: `set` is a valid 8-byte kernel sigset for the duration of the call; the old
    // mask is not asked for (null). Single-threaded, so the process's mask is this thread's.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            ptr::null_mut::<u64>(),
            core::mem::size_of::<u64>(),
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(errno()),
    }
}

/// Blocks every signal and returns a signalfd that receives them (non-blocking,
/// close-on-exec): the supervisor waits for signals and for its next sample in one `poll`,
/// and no handler ever runs (tini's and catatonit's way). With every signal blocked, none
/// ends kubemem, PID 1 or not: a blocked signal waits in the signalfd whatever its default
/// action. KILL and STOP cannot be blocked (the kernel leaves them out of the mask), and the
/// synchronous faults of a real bug (SEGV, BUS, ILL, FPE from kubemem's own code) are
/// delivered by the kernel even when blocked, with their default action: a crash stays a
/// crash. Blocked signals are also delivered to PID 1, which the kernel otherwise spares
/// from every signal it has no handler for.
pub fn block_all_signals() -> Result<OwnedFd, Errno> {
    set_signal_mask(libc::SIG_BLOCK, ALL_SIGNALS)?;
    let set = ALL_SIGNALS;
    // SAFETY: -1 asks for a new descriptor; `set` is a valid 8-byte kernel sigset.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &set as *const u64,
            core::mem::size_of::<u64>(),
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as c_int) })
}

/// Sends signal number `signo` (any, real-time ones included) to process `pid`, or to
/// process group `-pid` when `pid` is negative, as kill(2) does.
pub fn kill(pid: c_int, signo: c_int) -> Result<(), Errno> {
    // SAFETY: kill(2) takes any numbers; a bad one is an error, not undefined behaviour.
    match unsafe { libc::kill(pid, signo) } {
        0 => Ok(()),
        _ => Err(errno()),
    }
}

/// A clock in milliseconds, through the C library's `clock_gettime`, which reads it in the
/// vDSO without a system call. rustix's own looks the vDSO up through the auxiliary vector,
/// which costs the probe a `prctl(PR_GET_AUXV)` per run (measured under strace).
pub fn clock_ms(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; a clock the kernel does not know is an
    // error return (the zero time stays), not undefined behaviour.
    unsafe { libc::clock_gettime(clock, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(t.tv_nsec as u64 / 1_000_000)
}

/// `CLOCK_BOOTTIME` and `CLOCK_REALTIME`, for [`clock_ms`].
pub const BOOTTIME: libc::clockid_t = libc::CLOCK_BOOTTIME;
pub const REALTIME: libc::clockid_t = libc::CLOCK_REALTIME;

/// The size of the kernel's `struct signalfd_siginfo`, one per signal read.
const SIGINFO: usize = 128;

/// How many signals [`read_signals`] returns at most per call.
pub const SIGNAL_BATCH: usize = 16;

/// Reads the signals waiting in a non-blocking signalfd, at most [`SIGNAL_BATCH`], oldest
/// first, into `out`; returns how many (0: none is waiting). Each instance of a real-time
/// signal is its own entry, as the kernel queues them.
pub fn read_signals(fd: BorrowedFd<'_>, out: &mut [c_int; SIGNAL_BATCH]) -> Result<usize, Errno> {
    let mut buf = Buf::<{ SIGNAL_BATCH * SIGINFO }>::new();
    match buf.read_from(fd, None) {
        Err(Errno::AGAIN) => Ok(0),
        Err(e) => Err(e),
        Ok(_) => {
            let infos = buf.as_bytes().chunks_exact(SIGINFO);
            let n = infos.len();
            for (o, info) in out.iter_mut().zip(infos) {
                // `ssi_signo`, a u32, comes first.
                *o = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as c_int;
            }
            Ok(n)
        }
    }
}

/// A command line for `execvp`: pointers to NUL-terminated strings, then a null pointer.
pub struct Argv<'a> {
    /// Invariant: ends with the only null pointer; every other one points into a `CStr`
    /// borrowed for `'a`.
    ptrs: &'a [*const c_char],
    /// `argv[0]`, for error messages (empty without one).
    program: &'a [u8],
}

impl<'a> Argv<'a> {
    /// Points `ptrs` at `args` and closes it with a null. `ptrs` needs one more slot than
    /// `args`; arguments that do not fit are left out.
    pub fn new<S: AsRef<CStr>>(args: &'a [S], ptrs: &'a mut [*const c_char]) -> Argv<'a> {
        let n = args.len().min(ptrs.len().saturating_sub(1));
        for (p, a) in ptrs.iter_mut().zip(&args[..n]) {
            *p = a.as_ref().as_ptr();
        }
        let program = args[..n]
            .first()
            .map_or(&b""[..], |a| a.as_ref().to_bytes());
        match ptrs.get_mut(n) {
            Some(end) => {
                *end = ptr::null();
                Argv {
                    ptrs: &ptrs[..=n],
                    program,
                }
            }
            None => Argv { ptrs: &[], program },
        }
    }

    /// The program: `argv[0]`.
    pub fn program(&self) -> &'a [u8] {
        self.program
    }
}

/// Starts `argv` as a child, as a shell starts a job: the child leads a new process group
/// (so that signals can reach CMD's own children too), takes the terminal's foreground
/// when standard input is one (as tini does), gets an empty signal mask and a default
/// SIGPIPE, and runs `argv[0]` found through PATH. If that fails, the child calls
/// `exec_failed` with the reason and exits with the code it returns; `exec_failed` runs in
/// the forked child, so it may only make system calls and use the stack (no allocation).
pub fn spawn(argv: &Argv<'_>, exec_failed: impl FnOnce(Errno) -> u8) -> Result<Pid, Errno> {
    if argv.ptrs.len() < 2 {
        return Err(Errno::INVAL);
    }
    // SAFETY: kubemem is single-threaded, so the child is a consistent copy; it only makes
    // system calls and fills stack buffers before it execs or `_exit`s.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => exec(argv, exec_failed),
        -1 => Err(errno()),
        pid => {
            let pid = Pid::from_raw(pid).ok_or(Errno::INVAL)?;
            // Also here, so that no signal can be sent to the group before it exists; the
            // child may have exec'd already (EACCES), which is fine.
            let _ = rustix::process::setpgid(Some(pid), Some(pid));
            Ok(pid)
        }
    }
}

/// The child's side of [`spawn`].
fn exec(argv: &Argv<'_>, exec_failed: impl FnOnce(Errno) -> u8) -> ! {
    let _ = rustix::process::setpgid(None, None);
    let stdin = rustix::stdio::stdin();
    if rustix::termios::isatty(stdin) {
        // SIGTTOU is still blocked (inherited), so a background group may take the terminal.
        let _ = rustix::termios::tcsetpgrp(stdin, rustix::process::getpid());
    }
    default_disposition(Signal::PIPE);
    let _ = set_signal_mask(libc::SIG_SETMASK, 0);
    // SAFETY: `argv.ptrs` is null-terminated and each other pointer is a live C string
    // (the invariant of `Argv`); `execvp` returns only on failure.
    unsafe { libc::execvp(argv.ptrs[0], argv.ptrs.as_ptr()) };
    let code = exec_failed(errno());
    // SAFETY: `_exit` ends the child at once, without the parent's atexit handlers.
    unsafe { libc::_exit(code.into()) }
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

/// A value in static memory, lent to one caller at a time: where the probe keeps its large,
/// mostly unused read buffers (`locate`'s 8 and 16 KiB) instead of on the stack.
///
/// Why: a stack frame larger than a page is probed page by page on entry (Rust's stack
/// probes write to each page of it), so each page of a 16 KiB buffer was faulted in when
/// `read(2)` filled 3 KB of it. The probe's stack frames (`main`'s 18 KiB and `locate`'s
/// 45 KiB) cost 15 of its page faults. In static memory (`.bss`, zero-filled on demand) only
/// the pages that are written are faulted in.
///
/// A borrower that finds the value lent waits for it, so a function must not call itself
/// (or another user of the same `Scratch`) while it holds one: each `Scratch` is private to
/// one function that calls no other user of it. kubemem is single-threaded, so it never
/// waits; the test harness's threads may, briefly.
///
/// `repr(C)` with the flag first (and [`Buf`]'s length before its bytes): the words a
/// borrower writes sit beside the first bytes that `read(2)` fills, on one page, not at the
/// far end of the buffer on another. (Page-aligning it too measured one fault worse: the
/// padding pushed other static data onto a page of its own.)
#[repr(C)]
pub struct Scratch<T> {
    lent: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which hands out one `&mut T` at a time
// (the `lent` flag, taken with Acquire and given back with Release, orders the accesses of
// successive borrowers, on any thread); so sharing a `Scratch` shares a `T` between threads
// by moving access to it, which `T: Send` allows.
unsafe impl<T: Send> Sync for Scratch<T> {}

impl<T> Scratch<T> {
    pub const fn new(value: T) -> Self {
        Scratch {
            lent: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with the value, once no one else has it.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        while self
            .lent
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        /// Gives the value back when `f` returns or unwinds.
        struct GiveBack<'a>(&'a AtomicBool);
        impl Drop for GiveBack<'_> {
            fn drop(&mut self) {
                self.0.store(false, Release);
            }
        }
        let _give_back = GiveBack(&self.lent);
        // SAFETY: this caller set `lent` from false to true, so no other `&mut T` exists
        // until `_give_back` clears it after `f`, which cannot keep the borrow (it ends
        // with the closure).
        f(unsafe { &mut *self.value.get() })
    }
}

/// The binary's global allocator: the first `N` bytes handed out go to static memory, one
/// after the other, and are never reused; everything after them, and every reallocation of
/// them to a larger size, goes to `F` (the C library's `malloc`).
///
/// Why: kubemem allocates only while parsing its arguments (lexopt: an `OsString` per
/// argument, a `Vec` of them, a `String` per long option: a few hundred bytes), and musl's
/// `malloc` sets up its heap for them with 4 system calls (`brk` twice, two `mmap`s) and
/// gives a page back at exit (`munmap`), each system call and each new page a cost on every
/// probe run. In static memory (`.bss`) the same allocations cost no system call and at
/// most one page fault. A longer command line (`kubemem run -- CMD ARGS...`) or the TLS of
/// `--evict` spills over to `F` unchanged.
#[repr(C)]
pub struct Arena<const N: usize, F> {
    /// Bytes of `bytes` handed out so far (alignment padding included).
    next: AtomicUsize,
    fallback: F,
    bytes: UnsafeCell<[MaybeUninit<u8>; N]>,
}

// SAFETY: the arena's bytes are only reached through the pointers `alloc` hands out, and
// the atomic `next` gives each byte to at most one allocation, whatever the thread.
unsafe impl<const N: usize, F: Sync> Sync for Arena<N, F> {}

impl<const N: usize, F> Arena<N, F> {
    pub const fn new(fallback: F) -> Self {
        Arena {
            next: AtomicUsize::new(0),
            fallback,
            bytes: UnsafeCell::new([MaybeUninit::uninit(); N]),
        }
    }

    fn base(&self) -> *mut u8 {
        self.bytes.get().cast::<u8>()
    }

    /// Whether `ptr` was handed out by the arena rather than by the fallback.
    fn owns(&self, ptr: *mut u8) -> bool {
        let base = self.base() as usize;
        (base..base + N).contains(&(ptr as usize))
    }

    /// `layout`'s bytes from the arena, or null when they do not fit in what is left.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut next = self.next.load(Relaxed);
        loop {
            // Padding up to the alignment, from the address itself: the arena's own
            // alignment is 1.
            let pad = (base as usize).wrapping_add(next).wrapping_neg() & (layout.align() - 1);
            let Some(end) = next
                .checked_add(pad)
                .and_then(|start| start.checked_add(layout.size()))
                .filter(|&end| end <= N)
            else {
                return ptr::null_mut();
            };
            match self.next.compare_exchange_weak(next, end, Relaxed, Relaxed) {
                // The bytes `next + pad .. end` are this allocation's alone: `next` only grows.
                Ok(_) => return base.wrapping_add(next + pad),
                Err(now) => next = now,
            }
        }
    }
}

// SAFETY: `alloc` returns either null, a fallback allocation, or `layout.size()` bytes of
// the arena aligned to `layout.align()` (the padding is computed from the address) that no
// other allocation overlaps (`bump`); `dealloc` and `realloc` give to the fallback exactly
// the pointers it handed out (`owns` tells them apart, the arena and the fallback's memory
// being disjoint), and never free arena bytes, so no arena byte is handed out twice.
unsafe impl<const N: usize, F: GlobalAlloc> GlobalAlloc for Arena<N, F> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            // SAFETY: `layout` is the caller's, passed on as `GlobalAlloc::alloc` requires.
            p if p.is_null() => unsafe { self.fallback.alloc(layout) },
            p => p,
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not an arena pointer, so the fallback allocated it with `layout`.
            unsafe { self.fallback.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: the fallback allocated `ptr` with `layout`; the caller's guarantees
            // about `new_size` are passed on.
            return unsafe { self.fallback.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees that `new_size`, rounded up to `layout.align()`,
        // does not overflow, so this layout is valid.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`: a non-zero size (the caller's guarantee for `realloc`).
        let to = unsafe { self.alloc(new) };
        if !to.is_null() {
            // SAFETY: `ptr` holds `layout.size()` bytes and `to` at least `new_size`, both
            // valid, and they do not overlap (`to` is a new allocation).
            unsafe { ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size)) };
        }
        to
    }
}

/// A fixed-capacity byte buffer whose unused tail stays uninitialised.
///
/// Why: kubemem's stack buffers (PATH_MAX paths, 8-16 KiB read buffers, about 50 KiB in all)
/// were zeroed on every run: 25k instructions, a third of a healthy probe, and stack pages
/// touched that nothing reads. Only what `read(2)` or an append wrote is ever looked at.
#[derive(Clone)]
#[repr(C)]
pub struct Buf<const N: usize> {
    /// Invariant: `bytes[..len]` is initialised. Every method that raises `len` writes those
    /// bytes first; nothing else changes `len` upwards.
    len: usize,
    bytes: [MaybeUninit<u8>; N],
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
    /// of file or when the buffer is full. With `at`, a `pread(2)` at that file offset
    /// instead, leaving the descriptor's own offset alone (a supervisor re-reads its files
    /// from 0 every sample without a `lseek`).
    pub fn read_from(&mut self, fd: BorrowedFd<'_>, at: Option<u64>) -> Result<usize, Errno> {
        loop {
            let tail = &mut self.bytes[self.len..];
            let read = match at {
                None => rustix::io::read(fd, tail),
                Some(offset) => rustix::io::pread(fd, tail, offset),
            };
            match read {
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
    fn arena_hands_out_aligned_disjoint_bytes_then_spills_to_the_fallback() {
        use super::Arena;
        use std::alloc::{GlobalAlloc, Layout, System};
        let arena = Arena::<64, System>::new(System);
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        // SAFETY (test): every pointer is freed with the layout it was allocated with.
        unsafe {
            let a = arena.alloc(l(3, 1));
            let b = arena.alloc(l(8, 8));
            assert!(arena.owns(a) && arena.owns(b));
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            a.copy_from_nonoverlapping(b"abc".as_ptr(), 3);
            // Growing an arena allocation copies it; what does not fit goes to `System`.
            let big = arena.realloc(a, l(3, 1), 100);
            assert!(!big.is_null() && !arena.owns(big));
            assert_eq!(std::slice::from_raw_parts(big, 3), b"abc");
            let c = arena.alloc(l(1, 1));
            assert!(arena.owns(c));
            let spilled = arena.alloc(l(64, 1));
            assert!(!spilled.is_null() && !arena.owns(spilled));
            arena.dealloc(spilled, l(64, 1));
            arena.dealloc(big, l(100, 1));
            arena.dealloc(b, l(8, 8));
            arena.dealloc(c, l(1, 1));
        }
    }

    #[test]
    fn scratch_lends_its_value_to_one_thread_at_a_time() {
        use super::Scratch;
        static S: Scratch<(u64, u64)> = Scratch::new((0, 0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        S.with(|v| {
                            // Torn updates would show as v.0 != v.1.
                            v.0 += 1;
                            std::hint::black_box(&mut *v);
                            v.1 += 1;
                        });
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(S.with(|v| *v), (4000, 4000));
    }

    #[test]
    fn buf_reads_into_its_free_tail() {
        use std::io::Write;
        use std::os::fd::AsFd;
        let (r, mut w) = std::os::unix::net::UnixStream::pair().unwrap();
        w.write_all(b"hello").unwrap();
        let mut b = Buf::<4>::new();
        b.push(b'>').unwrap();
        assert_eq!(b.read_from(r.as_fd(), None), Ok(3));
        assert_eq!(b.as_bytes(), b">hel");
        assert_eq!(b.read_from(r.as_fd(), None), Ok(0));
    }

    #[test]
    fn buf_preads_at_an_offset_without_moving_the_file_offset() {
        use std::os::fd::AsFd;
        let path = std::env::temp_dir().join(format!("kubemem-pread-{}", std::process::id()));
        std::fs::write(&path, b"12345").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let mut b = Buf::<8>::new();
        assert_eq!(b.read_from(f.as_fd(), Some(3)), Ok(2));
        assert_eq!(b.read_from(f.as_fd(), Some(0)), Ok(5));
        assert_eq!(b.as_bytes(), b"4512345");
        b.clear();
        assert_eq!(b.read_from(f.as_fd(), None), Ok(5));
        assert_eq!(b.as_bytes(), b"12345");
        std::fs::remove_file(path).unwrap();
    }
}
