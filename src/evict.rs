//! `--evict` (cargo feature `evict`, the `kubemem-evict` binary): at the failure threshold,
//! ask the API server to evict this pod through the Eviction API, so that it is rescheduled
//! gracefully and its PodDisruptionBudget is respected. The probe exits 4 whatever the
//! answer: when the eviction is refused, the liveness restart is the fallback.
//!
//! In-cluster configuration only, as client-go reads it: `KUBERNETES_SERVICE_HOST` (an IP
//! address; kubemem resolves no names) and `KUBERNETES_SERVICE_PORT`; the service account's
//! `token` (read on every run: bound tokens rotate), `ca.crt` (TLS verification is never
//! off) and `namespace` (unless `POD_NAMESPACE` is set); the pod's name from `POD_NAME`, else
//! the hostname. `--root` applies to the files.
//!
//! One HTTP/1.1 request with `Connection: close` over rustls, on a non-blocking rustix
//! socket driven by `poll`: one deadline (`--evict-timeout`) bounds the connect, the TLS
//! handshake, the request and the response. No async runtime, no HTTP client: `http` reads
//! the response, `json` the `Status` in it.
//!
//! This path allocates (rustls does; so do the request and the response buffer here): it
//! runs once, at failure, after the probe's own work is done and its line written.

extern crate std;

use core::net::{IpAddr, SocketAddr};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use rustix::time::{ClockId, Timespec};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::decide::Level;
use crate::error::{errno_name, EvictError, Fault, HttpFault, Malformed, SaFile, Step, Tls};
use crate::http::{self, Response};
use crate::json::{self, Str};
use crate::path::{self, CPath};
use crate::report::{self, Line};
use crate::sys::Buf;
use crate::Config;

/// `--evict`'s settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `--evict-timeout`, in milliseconds; never 0.
    pub timeout_ms: u64,
}

impl Default for Options {
    /// 500 ms: half the exec probe's default `timeoutSeconds` of 1 s, so that the probe
    /// still exits (4) in time when the API server does not answer.
    fn default() -> Options {
        Options { timeout_ms: 500 }
    }
}

/// The largest response kubemem reads: a `Status` is well under 1 KiB.
const RESPONSE_MAX: usize = 16 * 1024;
/// A projected service-account token is a JWT of about 1 KiB.
const TOKEN_MAX: usize = 16 * 1024;
/// Room for a ca.crt bundle of a few dozen certificates.
const CA_MAX: usize = 64 * 1024;

/// Where the eviction goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    /// `host:port`, the IPv6 address in brackets: the Host header and the `server` key.
    pub authority: Vec<u8>,
    pub namespace: Vec<u8>,
    pub pod: Vec<u8>,
}

/// Evicts this pod: reads the in-cluster configuration, sends the request, logs one line
/// (where the failure line went: the logfile and standard output) and returns whether the
/// API server accepted the eviction.
pub fn evict(cfg: &Config<'_>, opts: &Options) -> bool {
    let deadline = after(now(), opts.timeout_ms);
    let target = target(cfg.root);
    let answer = target.as_ref().map_err(|e| *e).and_then(|t| {
        let token = token(cfg.root)?;
        let roots = roots(cfg.root)?;
        let mut buf = vec![0u8; RESPONSE_MAX];
        let r = exchange(t, roots, &request(t, &token), deadline, &mut buf)?;
        Ok(log_answer(cfg, t, r))
    });
    match answer {
        Ok(evicted) => evicted,
        Err(e) => {
            log_error(cfg, target.as_ref().ok(), e, opts);
            false
        }
    }
}

/// Reads the environment and the namespace file.
pub fn target(root: &[u8]) -> Result<Target, EvictError> {
    let host = var("KUBERNETES_SERVICE_HOST").ok_or(EvictError::NoHost)?;
    // client-go joins host and port itself; a bracketed literal is accepted too.
    let bare = host
        .strip_prefix(b"[")
        .and_then(|h| h.strip_suffix(b"]"))
        .unwrap_or(&host);
    let ip: IpAddr = core::str::from_utf8(bare)
        .ok()
        .and_then(|h| h.parse().ok())
        .ok_or(EvictError::HostNotIp)?;
    let port = var("KUBERNETES_SERVICE_PORT")
        .and_then(|p| crate::parse::parse_u64(&p).ok())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .ok_or(EvictError::BadPort)?;
    let mut authority = Vec::new();
    let v6 = ip.is_ipv6();
    for part in [
        &b"["[..v6.into()],
        bare,
        &b"]"[..v6.into()],
        b":",
        itoa::Buffer::new().format(port).as_bytes(),
    ] {
        authority.extend_from_slice(part);
    }
    let namespace = match var("POD_NAMESPACE") {
        Some(ns) => ns,
        None => {
            let mut buf = Buf::<256>::new();
            let text = read(root, SaFile::Namespace, &mut buf)?;
            trim(text).to_vec()
        }
    };
    if !is_name(&namespace, 63, false) {
        return Err(EvictError::BadNamespace);
    }
    let pod = match var("POD_NAME") {
        Some(name) => name,
        None => rustix::system::uname().nodename().to_bytes().to_vec(),
    };
    if pod.is_empty() {
        return Err(EvictError::NoPodName);
    }
    if !is_name(&pod, 253, true) {
        return Err(EvictError::BadPodName);
    }
    Ok(Target {
        ip,
        port,
        authority,
        namespace,
        pod,
    })
}

/// An environment variable's bytes, `None` when unset or empty.
fn var(name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    std::env::var_os(name)
        .map(OsStringExt::into_vec)
        .filter(|v| !v.is_empty())
}

/// A Kubernetes object name: lowercase letters, digits and `-` (and `.` in a DNS subdomain
/// such as a pod's name), starting and ending with a letter or digit. Such a name needs no
/// escaping in a URL path or a log line.
pub fn is_name(name: &[u8], max: usize, dots: bool) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    matches!((name.first(), name.last()), (Some(a), Some(z)) if alnum(a) && alnum(z))
        && name.len() <= max
        && name
            .iter()
            .all(|c| alnum(c) || *c == b'-' || (dots && *c == b'.'))
}

/// Reads a service-account file below `root` into `buf`.
fn read<'b, const N: usize>(
    root: &[u8],
    file: SaFile,
    buf: &'b mut Buf<N>,
) -> Result<&'b [u8], EvictError> {
    let mut name = CPath::new();
    let path = path::cstr(&[root, file.path().as_bytes()], &mut name)
        .ok_or(EvictError::File(file, Fault::PathTooLong))?;
    crate::read::read_file(path, buf).map_err(|f| EvictError::File(file, f))
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [c, rest @ ..] = b {
        match c.is_ascii_whitespace() {
            true => b = rest,
            false => break,
        }
    }
    while let [rest @ .., c] = b {
        match c.is_ascii_whitespace() {
            true => b = rest,
            false => break,
        }
    }
    b
}

/// The service-account token, read now (kubelet rotates bound tokens, about hourly),
/// without surrounding whitespace, as client-go reads it.
fn token(root: &[u8]) -> Result<Vec<u8>, EvictError> {
    let mut buf = Buf::<TOKEN_MAX>::new();
    let token = trim(read(root, SaFile::Token, &mut buf)?);
    if token.is_empty() {
        return Err(EvictError::File(
            SaFile::Token,
            Fault::Malformed(Malformed::Empty),
        ));
    }
    if !token.iter().all(|c| c.is_ascii_graphic()) {
        return Err(EvictError::TokenBytes);
    }
    Ok(token.to_vec())
}

/// The certificates of ca.crt, the only ones the server's may chain to.
fn roots(root: &[u8]) -> Result<RootCertStore, EvictError> {
    let mut buf = Buf::<CA_MAX>::new();
    let pem = read(root, SaFile::CaCrt, &mut buf)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|_| EvictError::CaCert)?;
        roots.add(cert).map_err(|_| EvictError::CaCert)?;
    }
    match roots.is_empty() {
        true => Err(EvictError::CaCert),
        false => Ok(roots),
    }
}

/// The eviction request, with its body.
pub fn request(t: &Target, token: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut put = |b: &[u8]| body.extend_from_slice(b);
    put(br#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":""#);
    json::escape(&t.pod, &mut put);
    put(br#"","namespace":""#);
    json::escape(&t.namespace, &mut put);
    put(br#""}}"#);
    let mut req = Vec::with_capacity(body.len() + token.len() + 400);
    for part in [
        &b"POST /api/v1/namespaces/"[..],
        &t.namespace,
        b"/pods/",
        &t.pod,
        b"/eviction HTTP/1.1\r\nHost: ",
        &t.authority,
        b"\r\nAuthorization: Bearer ",
        token,
        b"\r\nContent-Type: application/json\r\nAccept: application/json\r\nUser-Agent: kubemem/",
        env!("CARGO_PKG_VERSION").as_bytes(),
        b"\r\nContent-Length: ",
        itoa::Buffer::new().format(body.len()).as_bytes(),
        b"\r\nConnection: close\r\n\r\n",
        &body,
    ] {
        req.extend_from_slice(part);
    }
    req
}

/// Connects, shakes hands, sends `request` and reads the response into `buf`, all before
/// `deadline`.
fn exchange<'b>(
    t: &Target,
    roots: RootCertStore,
    request: &[u8],
    deadline: Timespec,
    buf: &'b mut [u8],
) -> Result<Response<'b>, EvictError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| EvictError::Tls(Tls::Incompatible))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // An IP address as the server name: no SNI, and the certificate must name the address.
    let mut tls = ClientConnection::new(Arc::new(config), ServerName::from(t.ip))
        .map_err(|e| EvictError::Tls(tls_fault(&e)))?;
    let mut sock = Sock::connect(SocketAddr::new(t.ip, t.port), deadline)?;

    sock.step = Step::Handshake;
    while tls.is_handshaking() {
        tls.complete_io(&mut sock).map_err(|e| sock.error(e))?;
    }
    sock.step = Step::Request;
    tls.writer().write_all(request).map_err(|e| sock.error(e))?;
    while tls.wants_write() {
        tls.write_tls(&mut sock).map_err(|e| sock.error(e))?;
    }
    sock.step = Step::Response;
    let mut stream = rustls::Stream::new(&mut tls, &mut sock);
    let mut len = 0;
    let complete = loop {
        if len == buf.len() {
            return Err(EvictError::TooLarge);
        }
        let n = match stream.read(&mut buf[len..]) {
            Ok(n) => n,
            // Closed without TLS close_notify: the framing tells whether all came.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(stream.sock.error(e)),
        };
        len += n;
        match http::check(&buf[..len], n == 0) {
            Err(HttpFault::Incomplete) => {}
            done => break done.map_err(EvictError::Http)?,
        }
    };
    Ok(Response {
        code: complete.code,
        body: complete.body(&mut buf[..len]),
    })
}

/// A non-blocking TCP socket whose reads and writes wait in `poll` until the deadline:
/// blocking I/O for rustls, with one time limit for the whole exchange.
struct Sock {
    fd: OwnedFd,
    deadline: Timespec,
    /// What the exchange is doing, for errors.
    step: Step,
}

impl Sock {
    fn connect(addr: SocketAddr, deadline: Timespec) -> Result<Sock, EvictError> {
        let net = |e| EvictError::Net(Step::Connect, e);
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None).map_err(net)?;
        let sock = Sock {
            fd,
            deadline,
            step: Step::Connect,
        };
        match rustix::net::connect(&sock.fd, &addr) {
            Ok(()) => {}
            Err(Errno::INPROGRESS | Errno::INTR) => {
                sock.wait(PollFlags::OUT).map_err(|e| sock.error(e))?;
                rustix::net::sockopt::socket_error(&sock.fd)
                    .map_err(net)?
                    .map_err(net)?;
            }
            Err(e) => return Err(net(e)),
        }
        Ok(sock)
    }

    /// Waits until the socket is ready for `flags`, or fails with `TimedOut` at the deadline.
    fn wait(&self, flags: PollFlags) -> io::Result<()> {
        let left = left(self.deadline).ok_or(io::ErrorKind::TimedOut)?;
        let mut fds = [PollFd::new(&self.fd, flags)];
        match rustix::event::poll(&mut fds, Some(&left)) {
            Ok(0) => Err(io::ErrorKind::TimedOut.into()),
            Ok(_) | Err(Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// What an I/O error during the current step means.
    fn error(&self, e: io::Error) -> EvictError {
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return EvictError::Tls(tls_fault(tls));
        }
        match e.raw_os_error() {
            Some(errno) => EvictError::Net(self.step, Errno::from_raw_os_error(errno)),
            None if e.kind() == io::ErrorKind::TimedOut => EvictError::Timeout(self.step),
            None => EvictError::Closed(self.step),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::net::recv(self.fd.as_fd(), &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => return Ok(n),
                Err(Errno::AGAIN) => self.wait(PollFlags::IN)?,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // NOSIGNAL: a peer that closed must not raise SIGPIPE, which would end kubemem.
            match rustix::net::send(&self.fd, buf, SendFlags::NOSIGNAL) {
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => self.wait(PollFlags::OUT)?,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tls_fault(e: &rustls::Error) -> Tls {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => Tls::UnknownIssuer,
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            Tls::NotValidForName
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => Tls::Expired,
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => Tls::NotValidYet,
        E::InvalidCertificate(C::BadSignature) => Tls::BadSignature,
        E::InvalidCertificate(_) | E::NoCertificatesPresented => Tls::Certificate,
        E::AlertReceived(alert) => Tls::Alert(u8::from(*alert)),
        E::PeerIncompatible(_) => Tls::Incompatible,
        _ => Tls::Protocol,
    }
}

fn now() -> Timespec {
    rustix::time::clock_gettime(ClockId::Monotonic)
}

fn nanos(t: Timespec) -> i128 {
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// A non-negative count of nanoseconds as a `Timespec` (saturating: a `--evict-timeout` of
/// centuries stays in the future).
fn timespec(ns: i128) -> Timespec {
    Timespec {
        tv_sec: (ns / 1_000_000_000).min(i64::MAX.into()) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

fn after(t: Timespec, ms: u64) -> Timespec {
    timespec(nanos(t) + i128::from(ms) * 1_000_000)
}

/// The time left until `deadline`, `None` once it has passed.
fn left(deadline: Timespec) -> Option<Timespec> {
    let ns = nanos(deadline) - nanos(now());
    (ns > 0).then(|| timespec(ns))
}

/// The line's first keys: `level`, `action=evict`, and the HTTP status when there is one.
fn start(cfg: &Config<'_>, level: &[u8], code: Option<u16>) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", level);
    line.word("action", b"evict");
    if let Some(code) = code {
        line.num("status", code.into());
    }
    line
}

fn names(line: &mut Line, t: &Target) {
    // Checked by `is_name`: nothing to escape.
    line.word("namespace", &t.namespace);
    line.word("pod", &t.pod);
}

fn emit(cfg: &Config<'_>, mut line: Line) {
    line.finish();
    report::emit(cfg, &line, Level::Failure);
}

/// Logs the API server's answer; true when the pod is being evicted.
fn log_answer(cfg: &Config<'_>, t: &Target, r: Response<'_>) -> bool {
    let evicted = matches!(r.code, 200 | 201);
    let level: &[u8] = if evicted { b"info" } else { b"error" };
    let mut line = start(cfg, level, Some(r.code));
    names(&mut line, t);
    if !evicted {
        // A Status object, or plain text from something in between.
        let status = json::status(r.body).ok();
        let message = match status {
            Some(s) => s.message.map_or(&b""[..], |m| m.0),
            None => trim(r.body),
        };
        if let Some(reason) = status.and_then(|s| s.reason) {
            line.text("reason", reason.bytes(), 40);
        }
        let rbac = memchr::memmem::find(message, b"cannot create resource").is_some();
        let (what, rule) = refusal(r.code, rbac);
        let ns = if rule.is_empty() {
            &b""[..]
        } else {
            &t.namespace
        };
        line.text("error", what.iter().chain(rule).chain(ns).copied(), 200);
        match status {
            Some(_) if !message.is_empty() => line.text("message", Str(message).bytes(), 220),
            None if !message.is_empty() => line.text("message", message.iter().copied(), 220),
            _ => {}
        }
        if let Some(cause) = status.and_then(|s| s.cause) {
            line.text("cause", cause.bytes(), 200);
        }
    }
    emit(cfg, line);
    evicted
}

/// What a status other than 200/201 means, and for a refusal by RBAC the rule it needs (the
/// namespace follows).
fn refusal(code: u16, rbac: bool) -> (&'static [u8], &'static [u8]) {
    match code {
        429 => (
            b"eviction refused for now (the liveness restart follows)",
            b"",
        ),
        403 if rbac => (
            b"forbidden: the service account needs a Role rule",
            b" allowing create on pods/eviction in namespace ",
        ),
        403 => (b"forbidden", b""),
        401 => (b"unauthorized: the API server refused the token", b""),
        404 => (b"no such pod (POD_NAME from metadata.name?)", b""),
        500..=599 => (b"API server error", b""),
        _ => (b"unexpected answer", b""),
    }
}

/// Logs why there is no answer.
fn log_error(cfg: &Config<'_>, t: Option<&Target>, e: EvictError, opts: &Options) {
    let mut line = start(cfg, b"error", None);
    if let Some(t) = t {
        names(&mut line, t);
        if matches!(
            e,
            EvictError::Net(..)
                | EvictError::Timeout(_)
                | EvictError::Closed(_)
                | EvictError::Tls(_)
                | EvictError::Http(_)
                | EvictError::TooLarge
        ) {
            line.word("server", &t.authority);
        }
    }
    let file = match e {
        EvictError::File(file, _) => Some(file),
        EvictError::TokenBytes => Some(SaFile::Token),
        EvictError::CaCert => Some(SaFile::CaCrt),
        _ => None,
    };
    if let Some(file) = file {
        let mut name = CPath::new();
        let path = path::cstr(&[cfg.root, file.path().as_bytes()], &mut name);
        line.path("file", path.map_or(&b""[..], |p| p.to_bytes()));
    }
    if let EvictError::File(_, fault) = e {
        report::fault_reason(&mut line, fault);
        return emit(cfg, line);
    }
    let mut num = itoa::Buffer::new();
    let (a, b, c): (&[u8], &[u8], &[u8]) = match e {
        EvictError::NoHost => (
            b"KUBERNETES_SERVICE_HOST is not set (not in a pod?)",
            b"",
            b"",
        ),
        EvictError::HostNotIp => (
            b"KUBERNETES_SERVICE_HOST is not an IP address",
            b" (kubemem resolves no names)",
            b"",
        ),
        EvictError::BadPort => (b"KUBERNETES_SERVICE_PORT is not a port number", b"", b""),
        EvictError::NoPodName => (b"no pod name: no POD_NAME and no hostname", b"", b""),
        EvictError::BadPodName => (b"the pod name (POD_NAME or the hostname)", NOT_A_NAME, b""),
        EvictError::BadNamespace => (b"the namespace", NOT_A_NAME, b""),
        EvictError::TokenBytes => (b"bytes an HTTP header cannot carry", b"", b""),
        EvictError::CaCert => (
            b"no PEM certificate, or one that cannot be parsed",
            b"",
            b"",
        ),
        EvictError::Net(step, errno) => (step.name().as_bytes(), b": ", net_errno(errno)),
        EvictError::Timeout(step) => (
            b"no answer within --evict-timeout (",
            num.format(opts.timeout_ms).as_bytes(),
            match step {
                Step::Connect => b"ms), in the connect",
                Step::Handshake => b"ms), in the TLS handshake",
                Step::Request => b"ms), sending the request",
                Step::Response => b"ms), waiting for the response",
            },
        ),
        EvictError::Closed(step) => (
            b"the server closed the connection during the ",
            step.name().as_bytes(),
            b"",
        ),
        EvictError::Tls(Tls::Alert(n)) => (
            Tls::Alert(n).reason().as_bytes(),
            num.format(n).as_bytes(),
            b"",
        ),
        EvictError::Tls(tls) => (tls.reason().as_bytes(), b"", b""),
        EvictError::Http(fault) => (fault.reason().as_bytes(), b"", b""),
        EvictError::TooLarge => (b"response larger than 16 KiB", b"", b""),
        // Written above, with the fault's own reason.
        EvictError::File(..) => (b"", b"", b""),
    };
    line.text("error", a.iter().chain(b).chain(c).copied(), 300);
    emit(cfg, line);
}

const NOT_A_NAME: &[u8] = b" is not a Kubernetes name (lowercase letters, digits, '-', '.')";

/// Names for the errors a connection meets, beyond the file ones the probe names.
fn net_errno(e: Errno) -> &'static [u8] {
    match e {
        Errno::CONNREFUSED => b"connection refused",
        Errno::CONNRESET => b"connection reset by peer",
        Errno::NETUNREACH => b"network unreachable",
        Errno::HOSTUNREACH => b"no route to host",
        Errno::TIMEDOUT => b"connection timed out",
        Errno::ADDRNOTAVAIL => b"address not available",
        Errno::AFNOSUPPORT => b"address family not supported (no IPv6?)",
        _ => match errno_name(e) {
            "" => b"system error",
            name => name.as_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: &str, port: u16) -> Target {
        let ip: IpAddr = ip.parse().unwrap();
        let authority = match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        Target {
            ip,
            port,
            authority: authority.into_bytes(),
            namespace: b"default".to_vec(),
            pod: b"web-0".to_vec(),
        }
    }

    #[test]
    fn the_request_is_what_client_go_sends() {
        let req = request(&target("10.96.0.1", 443), b"eyJh.b.c");
        let req = String::from_utf8(req).unwrap();
        let body = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-0","namespace":"default"}}"#;
        assert_eq!(
            req,
            format!(
                "POST /api/v1/namespaces/default/pods/web-0/eviction HTTP/1.1\r\n\
                 Host: 10.96.0.1:443\r\n\
                 Authorization: Bearer eyJh.b.c\r\n\
                 Content-Type: application/json\r\n\
                 Accept: application/json\r\n\
                 User-Agent: kubemem/{}\r\n\
                 Content-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                env!("CARGO_PKG_VERSION"),
                body.len()
            )
        );
        let v6 = request(&target("fd00::1", 6443), b"t");
        assert!(String::from_utf8(v6)
            .unwrap()
            .contains("\r\nHost: [fd00::1]:6443\r\n"));
    }

    #[test]
    fn names_are_kubernetes_names() {
        for ok in ["web-0", "a", "web.example-1", "0a"] {
            assert!(is_name(ok.as_bytes(), 253, true), "{ok}");
        }
        for bad in ["", "-a", "a-", "Web", "a/b", "a b", "a_b", "a\"b", ".a"] {
            assert!(!is_name(bad.as_bytes(), 253, true), "{bad:?}");
        }
        assert!(!is_name(b"a.b", 63, false));
        assert!(!is_name(&[b'a'; 64], 63, false));
    }

    #[test]
    fn deadlines() {
        let t = Timespec {
            tv_sec: 5,
            tv_nsec: 900_000_000,
        };
        assert_eq!(
            after(t, 250),
            Timespec {
                tv_sec: 6,
                tv_nsec: 150_000_000
            }
        );
        assert_eq!(left(t), None);
        assert!(left(after(now(), 10_000)).is_some());
    }
}
