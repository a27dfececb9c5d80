//! HTTP/1.1 as Go's net/http serves it to kube-apiserver's handlers: keep-alive, a body by
//! Content-Length or chunked (Go switches to chunked past its 2 KiB buffer), `Expect:
//! 100-continue`, and a plain 400 for a request it cannot parse.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::util::{http_date, now, percent_decode, uuid};

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Go's DefaultMaxHeaderBytes, and apiserver's MaxRequestBodyBytes (3 MiB).
const MAX_HEAD: usize = 1 << 20;
pub const MAX_BODY: usize = 3 << 20;
/// Go's bufferBeforeChunkingSize: a longer body without Content-Length goes chunked.
const CHUNKING: usize = 2048;

pub struct Conn {
    pub stream: Box<dyn Stream>,
    /// The socket under the stream, to close it abruptly (`drop`).
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub close: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query as url.ParseQuery reads it: pairs in order, malformed ones dropped.
    pub fn params(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((percent_decode(k)?, percent_decode(v)?))
            })
            .collect()
    }

    /// The first value, as the parameter codec takes it.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every value of a repeated parameter (dryRun).
    pub fn param_all(&self, name: &str) -> Vec<String> {
        self.params()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }
}

/// Why a request could not be read: the connection is answered (when it can be) and closed.
pub enum Bad {
    /// EOF or a reset between requests: nothing to answer.
    Gone,
    /// Malformed: Go answers a plain-text 400 (or 431/413) and closes.
    Answer(u16, &'static str),
}

impl From<io::Error> for Bad {
    fn from(_: io::Error) -> Bad {
        Bad::Gone
    }
}

impl Conn {
    pub fn new(stream: Box<dyn Stream>, tcp: TcpStream) -> Conn {
        Conn {
            stream,
            tcp,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) -> Result<(), Bad> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(Bad::Gone);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self, limit: usize) -> Result<String, Bad> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > limit {
                return Err(Bad::Answer(431, "Request Header Fields Too Large"));
            }
            self.fill()?;
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, Bad> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next request, its body read; `Err(Bad::Gone)` when the client went away.
    pub fn read_request(&mut self) -> Result<Request, Bad> {
        let bad = Bad::Answer(400, "Bad Request");
        // Go tolerates empty lines before a request line.
        let mut request_line = self.line(MAX_HEAD)?;
        while request_line.is_empty() {
            request_line = self.line(MAX_HEAD)?;
        }
        let parts: Vec<&str> = request_line.split(' ').collect();
        let [method, target, version] = parts[..] else {
            return Err(bad);
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.is_empty() {
            return Err(bad);
        }
        let close_by_default = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(Bad::Answer(505, "HTTP Version Not Supported")),
        };
        if !target.starts_with('/') {
            return Err(bad);
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = Vec::new();
        let mut size = request_line.len();
        loop {
            let line = self.line(MAX_HEAD.saturating_sub(size))?;
            size += line.len() + 2;
            if line.is_empty() {
                break;
            }
            let Some((n, v)) = line.split_once(':') else {
                return Err(bad);
            };
            if n.is_empty() || n.contains(' ') {
                return Err(bad);
            }
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut req = Request {
            method: method.to_string(),
            path: percent_decode_path(path).ok_or(Bad::Answer(400, "Bad Request"))?,
            query: query.to_string(),
            headers,
            body: Vec::new(),
            close: close_by_default,
        };
        match req.header("connection").map(str::to_ascii_lowercase) {
            Some(c) if c.contains("close") => req.close = true,
            Some(c) if c.contains("keep-alive") => req.close = false,
            _ => {}
        }
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let length = match req.header("content-length") {
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| Bad::Answer(400, "Bad Request"))?,
            ),
            None => None,
        };
        if length.is_some_and(|l| l > MAX_BODY) {
            return Err(Bad::Answer(413, "Request Entity Too Large"));
        }
        let has_body = chunked || length.is_some_and(|l| l > 0);
        if has_body
            && req
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.stream.flush()?;
        }
        if chunked {
            loop {
                let size_line = self.line(1024)?;
                let hex = size_line.split(';').next().unwrap_or("").trim();
                let n =
                    usize::from_str_radix(hex, 16).map_err(|_| Bad::Answer(400, "Bad Request"))?;
                if n == 0 {
                    // trailers, up to the empty line
                    while !self.line(MAX_HEAD)?.is_empty() {}
                    break;
                }
                if req.body.len() + n > MAX_BODY {
                    return Err(Bad::Answer(413, "Request Entity Too Large"));
                }
                let data = self.take(n + 2)?;
                req.body.extend_from_slice(&data[..n]);
            }
        } else if let Some(n) = length {
            req.body = self.take(n)?;
        }
        Ok(req)
    }

    /// Go's answer to an unreadable request, then the connection closes.
    pub fn write_bad(&mut self, code: u16, text: &str) {
        let body = format!("{code} {text}");
        let _ = write!(
            self.stream,
            "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}"
        );
        let _ = self.stream.flush();
    }

    /// Closes the socket without ending the response (no last chunk, no TLS close_notify):
    /// what a client sees when the server dies or a load balancer cuts the stream.
    pub fn cut(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// The request path unescaped as net/url does for URL.Path.
fn percent_decode_path(p: &str) -> Option<String> {
    if p.contains('+') {
        // '+' is literal in a path
        let parts: Option<Vec<String>> = p.split('+').map(percent_decode).collect();
        return parts.map(|v| v.join("+"));
    }
    percent_decode(p)
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

pub struct Response {
    pub code: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(code: u16, body: String) -> Response {
        Response {
            code,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn text(code: u16, body: String) -> Response {
        Response {
            code,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The headers every kube-apiserver response has (audit, API priority and fairness, Date).
pub fn head(code: u16, content_type: &str, extra: &[(String, String)]) -> String {
    let mut h = format!(
        "HTTP/1.1 {code} {}\r\nAudit-Id: {}\r\nCache-Control: no-cache, private\r\nContent-Type: {content_type}\r\nDate: {}\r\n\
         X-Kubernetes-Pf-Flowschema-Uid: 1f5e9a2c-3c1b-4c55-9b2e-6d1f0e3a7b10\r\n\
         X-Kubernetes-Pf-Prioritylevel-Uid: 7c2d4e6f-8a9b-4c1d-9e2f-3a4b5c6d7e8f\r\n",
        reason_phrase(code),
        uuid(),
        http_date(now())
    );
    for (n, v) in extra {
        h += &format!("{n}: {v}\r\n");
    }
    h
}

/// Writes a whole response; `exact` (the control API) always sends Content-Length.
pub fn write_response(conn: &mut Conn, r: &Response, close: bool, exact: bool) -> io::Result<()> {
    let mut out = head(r.code, r.content_type, &r.headers).into_bytes();
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if r.body.len() <= CHUNKING || exact {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", r.body.len()).as_bytes());
        out.extend_from_slice(&r.body);
    } else {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for piece in r.body.chunks(CHUNKING) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    }
    conn.stream.write_all(&out)?;
    conn.stream.flush()
}

/// One chunk of a streamed (watch) response, flushed.
pub fn write_chunk(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    conn.stream.write_all(&out)?;
    conn.stream.flush()
}
