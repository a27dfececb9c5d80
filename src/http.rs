//! One HTTP/1.1 response, as `--evict` reads it: the status line, the headers that frame the
//! body, and the body itself. Pure: bytes in, a status code and a body out; no I/O, no
//! allocation, no panics on any input (fuzzed against a naive parser, `check::http_response`).
//!
//! [`check`] says whether all of the response has arrived, without changing the buffer;
//! [`Complete::body`] then removes a chunked coding in place.
//!
//! The request is sent with `Connection: close`, so the body ends where `Content-Length`
//! says, at the end of the chunked coding, or (with neither) where the connection ends
//! (RFC 9112 section 6.3). kube-apiserver (Go's net/http) sends `Content-Length` for a small
//! `Status` object and the chunked coding for a larger body.

use memchr::{memchr, memmem};

use crate::error::HttpFault;

/// A complete response, read from its buffer with [`Complete::body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complete {
    /// The status code, 200 to 599.
    pub code: u16,
    /// Where the body is in the buffer, chunked coding included.
    body: core::ops::Range<usize>,
    chunked: bool,
}

/// How the body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Checks the response at the start of `buf` and says where its body is. `eof`: the
/// connection has ended, nothing more will come.
///
/// [`HttpFault::Incomplete`] asks for more bytes (only when `!eof`); at the end of the
/// connection an unfinished response is [`HttpFault::Truncated`]. Bytes after a framed body
/// are ignored.
pub fn check(buf: &[u8], eof: bool) -> Result<Complete, HttpFault> {
    let unfinished = if eof {
        HttpFault::Truncated
    } else {
        HttpFault::Incomplete
    };
    let head_len = memmem::find(buf, b"\r\n\r\n").ok_or(unfinished)? + 4;
    let (code, framing) = head(&buf[..head_len - 2])?;
    let rest = buf.len() - head_len;
    let len = match framing {
        _ if matches!(code, 204 | 304) => 0,
        Framing::Length(n) if n <= rest => n,
        Framing::Length(_) => return Err(unfinished),
        Framing::Close if eof => rest,
        Framing::Close => return Err(unfinished),
        Framing::Chunked => {
            let body = &buf[head_len..];
            let mut at = 0;
            loop {
                match chunk(body, at)? {
                    None => return Err(unfinished),
                    Some((data, next)) if data.is_empty() => break next,
                    Some((_, next)) => at = next,
                }
            }
        }
    };
    Ok(Complete {
        code,
        body: head_len..head_len + len,
        chunked: framing == Framing::Chunked && len > 0,
    })
}

impl Complete {
    /// The body in `buf` (the buffer [`check`] was given), a chunked coding removed in place.
    pub fn body<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        let Some(body) = buf.get_mut(self.body.clone()) else {
            return &[];
        };
        if !self.chunked {
            return body;
        }
        // Data only moves towards the front, behind what is still to be read.
        let (mut at, mut len) = (0, 0);
        while let Ok(Some((data, next))) = chunk(body, at) {
            if data.is_empty() {
                break;
            }
            let n = data.len();
            body.copy_within(data, len);
            len += n;
            at = next;
        }
        &body[..len]
    }
}

/// Checks the response in `buf` and returns its status code and body (see [`check`]).
pub fn parse(buf: &mut [u8], eof: bool) -> Result<Response<'_>, HttpFault> {
    let complete = check(buf, eof)?;
    Ok(Response {
        code: complete.code,
        body: complete.body(buf),
    })
}

/// A response's status code and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub code: u16,
    /// Without any chunked coding.
    pub body: &'a [u8],
}

/// The status line and the headers (`head` ends with the last header's CRLF): the status code
/// and how the body is framed.
fn head(head: &[u8]) -> Result<(u16, Framing), HttpFault> {
    let line_end = memmem::find(head, b"\r\n").ok_or(HttpFault::StatusLine)?;
    let code = status_line(&head[..line_end]).ok_or(HttpFault::StatusLine)?;
    let mut length: Option<usize> = None;
    let mut chunked = None;
    let mut rest = &head[line_end + 2..];
    while let Some(end) = memmem::find(rest, b"\r\n") {
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let colon = memchr(b':', line).ok_or(HttpFault::Header)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || name.iter().any(|c| matches!(c, b' ' | b'\t')) {
            return Err(HttpFault::Header);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = decimal(value).ok_or(HttpFault::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpFault::ContentLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding listed decides: chunked, or the body runs to the end.
            let last = value.rsplit(|&c| c == b',').next().map_or(&b""[..], trim);
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = match (chunked, length) {
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) => Framing::Close,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::Close,
    };
    Ok((code, framing))
}

/// `HTTP/1.1 201 Created` -> 201. The reason phrase is optional; codes 200 to 599 only (an
/// informational 1xx is never sent to a request without `Expect`).
fn status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    if !minor.is_ascii_digit() || rest.len() < 3 || rest.get(3).is_some_and(|&c| c != b' ') {
        return None;
    }
    let code = decimal(&rest[..3])?;
    (200..600).contains(&code).then_some(code as u16)
}

/// A decimal number of at most 18 digits (no sign, no spaces).
fn decimal(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, c| n * 10 + usize::from(c - b'0')))
}

/// `value` without surrounding spaces and tabs.
fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The chunk at `at` of a chunked body (`size[;ext] CRLF data CRLF`): where its data is and
/// where the next one starts, or `None` when it has not all arrived. The last chunk (size 0)
/// has empty data, and it ends after the trailer fields and an empty line.
fn chunk(body: &[u8], at: usize) -> Result<Option<(core::ops::Range<usize>, usize)>, HttpFault> {
    let Some(end) = memmem::find(&body[at..], b"\r\n") else {
        return Ok(None);
    };
    let line = &body[at..at + end];
    let size = line.get(..memchr(b';', line).unwrap_or(line.len()));
    let size = size.and_then(hex).ok_or(HttpFault::Chunk)?;
    let start = at + end + 2;
    if size == 0 {
        return Ok(trailers_end(&body[start..])?.map(|n| (start..start, start + n)));
    }
    let data_end = match start.checked_add(size) {
        Some(e) if e + 2 <= body.len() => e,
        Some(_) => return Ok(None),
        None => return Err(HttpFault::Chunk),
    };
    if &body[data_end..data_end + 2] != b"\r\n" {
        return Err(HttpFault::Chunk);
    }
    Ok(Some((start..data_end, data_end + 2)))
}

/// The end of a chunked body's trailer section (lines until an empty one), or `None` when it
/// is not complete yet.
fn trailers_end(rest: &[u8]) -> Result<Option<usize>, HttpFault> {
    let mut at = 0;
    while let Some(end) = memmem::find(&rest[at..], b"\r\n") {
        if end == 0 {
            return Ok(Some(at + 2));
        }
        if memchr(b':', &rest[at..at + end]).is_none() {
            return Err(HttpFault::Chunk);
        }
        at += end + 2;
    }
    Ok(None)
}

/// A chunk size: hex digits, at most 15 of them.
fn hex(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 15 {
        return None;
    }
    b.iter().try_fold(0usize, |n, &c| {
        let d = (c as char).to_digit(16)?;
        Some(n * 16 + d as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &[u8], eof: bool) -> Result<(u16, Vec<u8>), HttpFault> {
        let mut buf = text.to_vec();
        parse(&mut buf, eof).map(|r| (r.code, r.body.to_vec()))
    }

    #[test]
    fn go_net_http_responses() {
        // What kube-apiserver (Go's net/http) sends: a Status with Content-Length.
        let status = b"HTTP/1.1 429 Too Many Requests\r\nAudit-Id: 5\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        assert_eq!(parsed(status, false), Ok((429, b"{}".to_vec())));
        assert_eq!(
            parsed(&status[..status.len() - 1], false),
            Err(HttpFault::Incomplete)
        );
        assert_eq!(
            parsed(&status[..status.len() - 1], true),
            Err(HttpFault::Truncated)
        );
        // Chunked, with an extension and a trailer.
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(parsed(chunked, false), Ok((201, b"{\"a\":1}".to_vec())));
        for cut in 1..chunked.len() {
            assert_eq!(
                parsed(&chunked[..cut], false),
                Err(HttpFault::Incomplete),
                "{cut}"
            );
        }
        // Neither: the body runs to the end of the connection.
        let close = b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\noops";
        assert_eq!(parsed(close, false), Err(HttpFault::Incomplete));
        assert_eq!(parsed(close, true), Ok((500, b"oops".to_vec())));
        // Transfer-Encoding wins over Content-Length; bytes after a framed body are ignored.
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTRANSFER-ENCODING: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nextra";
        assert_eq!(parsed(both, true), Ok((200, b"x".to_vec())));
        assert_eq!(
            parsed(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                false
            ),
            Ok((204, vec![]))
        );
    }

    #[test]
    fn malformed_responses_are_refused() {
        let rows: &[(&[u8], HttpFault)] = &[
            (b"HTTP/2 200 OK\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 20 OK\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 2000 OK\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 100 Continue\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 600 X\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 +20 X\r\n\r\n", HttpFault::StatusLine),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", HttpFault::Header),
            (b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", HttpFault::Header),
            (b"HTTP/1.1 200 OK\r\n: 1\r\n\r\n", HttpFault::Header),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                HttpFault::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
                HttpFault::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                HttpFault::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
                HttpFault::Chunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
                HttpFault::Chunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
                HttpFault::Chunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
                HttpFault::Chunk,
            ),
        ];
        for (text, want) in rows {
            assert_eq!(
                parsed(text, true),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
