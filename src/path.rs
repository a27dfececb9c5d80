//! A path in a fixed stack buffer, and the one place that turns it into a `&CStr`.

use core::ffi::CStr;

use crate::sys::Buf;

/// Linux's PATH_MAX, including the terminating NUL: no path the kernel accepts is longer, so
/// a path that does not fit could not be opened anyway.
pub const PATH_MAX: usize = 4096;

/// Scratch space for one NUL-terminated path handed to `open`.
pub type CPath = Buf<PATH_MAX>;

/// A byte path of at most `PATH_MAX - 1` bytes. Appends fail instead of truncating.
#[derive(Clone, Default)]
pub struct PathBuf {
    buf: Buf<PATH_MAX>,
}

/// The path would not fit in PATH_MAX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

impl PathBuf {
    pub const fn new() -> PathBuf {
        PathBuf { buf: Buf::new() }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_bytes()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn push(&mut self, c: u8) -> Result<(), TooLong> {
        self.append(&[c])
    }

    /// Appends all of `bytes` or, when the result would not leave room for the NUL that
    /// [`PathBuf::file`] adds, nothing.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        if self.len() + bytes.len() >= PATH_MAX {
            return Err(TooLong);
        }
        self.buf.extend_from_slice(bytes).map_err(|_| TooLong)
    }

    pub fn extend(&mut self, bytes: impl IntoIterator<Item = u8>) -> Result<(), TooLong> {
        bytes.into_iter().try_for_each(|c| self.push(c))
    }

    /// Replaces the contents with `prefix` followed by `other`.
    pub fn set_joined(&mut self, prefix: &[u8], other: &[u8]) -> Result<(), TooLong> {
        self.clear();
        self.append(prefix)?;
        self.append(other)
    }

    /// The length of the parent directory of the first `at` bytes (the position of the last
    /// `/`), or `None` at a path without one.
    pub fn parent_len(&self, at: usize) -> Option<usize> {
        memchr::memrchr(b'/', &self.as_bytes()[..at.min(self.len())])
    }

    /// Writes `self[..at] + "/" + name + NUL` into `out` and returns it as a C string, ready
    /// for `open`. An empty `name` gives the directory itself.
    pub fn file<'o>(&self, at: usize, name: &str, out: &'o mut CPath) -> Option<&'o CStr> {
        let sep: &[u8] = if name.is_empty() { b"" } else { b"/" };
        cstr(
            &[&self.as_bytes()[..at.min(self.len())], sep, name.as_bytes()],
            out,
        )
    }
}

/// Concatenates `parts` and a NUL into `out` and returns it as a C string. `None` if the
/// result exceeds PATH_MAX or holds a NUL (no path the kernel produced can).
pub fn cstr<'o>(parts: &[&[u8]], out: &'o mut CPath) -> Option<&'o CStr> {
    out.clear();
    for part in parts {
        out.extend_from_slice(part).ok()?;
    }
    out.push(0).ok()?;
    CStr::from_bytes_with_nul(out.as_bytes()).ok()
}
