//! A path in a fixed stack buffer, and the one place that turns it into a `&CStr`.

use core::ffi::CStr;

/// Linux's PATH_MAX, including the terminating NUL: no path the kernel accepts is longer, so
/// a path that does not fit could not be opened anyway.
pub const PATH_MAX: usize = 4096;

/// A byte path of at most `PATH_MAX - 1` bytes. Appends fail instead of truncating.
#[derive(Clone)]
pub struct PathBuf {
    buf: [u8; PATH_MAX],
    len: usize,
}

/// The path would not fit in PATH_MAX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

impl Default for PathBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PathBuf {
    pub const fn new() -> PathBuf {
        PathBuf {
            buf: [0; PATH_MAX],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn push(&mut self, c: u8) -> Result<(), TooLong> {
        // Keep one byte for the NUL that `file` adds.
        if self.len + 1 >= PATH_MAX {
            return Err(TooLong);
        }
        self.buf[self.len] = c;
        self.len += 1;
        Ok(())
    }

    pub fn extend(&mut self, bytes: impl IntoIterator<Item = u8>) -> Result<(), TooLong> {
        bytes.into_iter().try_for_each(|c| self.push(c))
    }

    /// Replaces the contents with `prefix` followed by `other`.
    pub fn set_joined(&mut self, prefix: &[u8], other: &[u8]) -> Result<(), TooLong> {
        self.clear();
        self.extend(prefix.iter().copied())?;
        self.extend(other.iter().copied())
    }

    /// The length of the parent directory of the first `at` bytes (the position of the last
    /// `/`), or `None` at a path without one.
    pub fn parent_len(&self, at: usize) -> Option<usize> {
        memchr::memrchr(b'/', &self.buf[..at.min(self.len)])
    }

    /// Writes `self[..at] + "/" + name + NUL` into `out` and returns it as a C string, ready
    /// for `open`. An empty `name` gives the directory itself.
    pub fn file<'o>(&self, at: usize, name: &str, out: &'o mut [u8; PATH_MAX]) -> Option<&'o CStr> {
        let sep: &[u8] = if name.is_empty() { b"" } else { b"/" };
        cstr(&[&self.buf[..at.min(self.len)], sep, name.as_bytes()], out)
    }
}

/// Concatenates `parts` and a NUL into `out` and returns it as a C string. `None` if the
/// result exceeds PATH_MAX or holds a NUL (no path the kernel produced can).
pub fn cstr<'o>(parts: &[&[u8]], out: &'o mut [u8; PATH_MAX]) -> Option<&'o CStr> {
    let mut n = 0;
    for part in parts {
        out.get_mut(n..n + part.len())?.copy_from_slice(part);
        n += part.len();
    }
    *out.get_mut(n)? = 0;
    CStr::from_bytes_with_nul(&out[..=n]).ok()
}
