//! `kubemem install DEST`: copies the running binary to DEST. The kubemem image is `scratch`
//! (no shell, no `cp`), so an initContainer of that image copies kubemem into a volume it
//! shares with the application with kubemem itself, as Tekton's and Argo's images do.

use core::ffi::CStr;

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::Mode;
use rustix::io::Errno;

use crate::error::Exit;
use crate::read;
use crate::report::{file_error, write_all};
use crate::sys::Buf;
use crate::Format;

/// The running binary, whatever path it was started by.
const SELF: &CStr = c"/proc/self/exe";

/// Copies this binary to `dest` (created or replaced, mode 0755). Exit 0, or 1 with one error
/// line on `err` naming the file that failed.
///
/// Out of line and cold, so that the probe's code and stack frame do not grow by it.
#[cold]
#[inline(never)]
pub fn install(dest: &CStr, err: BorrowedFd<'_>) -> Exit {
    match copy(dest) {
        Ok(()) => Exit::Ok,
        Err((file, what, errno)) => {
            crate::sys::ignore_sigpipe();
            let line = file_error(Format::Logfmt, file.to_bytes(), what, errno);
            let _ = write_all(err, line.as_bytes());
            Exit::CannotInstall
        }
    }
}

type Failed<'a> = (&'a CStr, &'static [u8], Errno);

fn copy(dest: &CStr) -> Result<(), Failed<'_>> {
    let src = read::open(SELF).map_err(|e| (SELF, b"cannot open: ".as_slice(), e))?;
    let mode = Mode::from_raw_mode(0o755);
    let out = read::create(dest, read::Write::Replace, mode.bits())
        .map_err(|e| (dest, b"cannot open: ".as_slice(), e))?;
    // A DEST that existed keeps its mode through O_TRUNC; the copy must be executable.
    rustix::fs::fchmod(&out, mode).map_err(|e| (dest, b"cannot chmod: ".as_slice(), e))?;
    // 64 KiB at a time: 7 reads for the 450 KB binary.
    let mut buf = Buf::<65536>::new();
    loop {
        buf.clear();
        match buf.read_from(src.as_fd(), None) {
            Ok(0) => return Ok(()),
            Ok(_) => write_all(out.as_fd(), buf.as_bytes())
                .map_err(|e| (dest, b"cannot write: ".as_slice(), e))?,
            Err(e) => return Err((SELF, b"cannot read: ", e)),
        }
    }
}
