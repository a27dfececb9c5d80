//! The only unsafe code in kubemem: calls into the C library for what rustix leaves to it.
#![allow(unsafe_code)]

use core::ffi::c_int;

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
