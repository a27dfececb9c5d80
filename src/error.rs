//! The error type, the files it can name, and the exit codes.
//!
//! Everything here is `Copy` and allocation-free: an error travels up the probe path with `?`
//! and is rendered once, by `report`, from `&'static str` pieces. The file path is not stored
//! in the error; `report` rebuilds it from the [`File`] and the directory the error occurred
//! in (a prefix of the measured cgroup directory, see [`Error::at`]).

use rustix::io::Errno;

/// Process exit codes. kubelet only sees zero versus non-zero; the split is for people,
/// scripts and tests. Kept compatible with the C kubemem (4 = over the failure threshold,
/// 3 = bad arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Below the failure threshold (a warning may have been logged), or `--help`/`--version`.
    Ok = 0,
    /// `kubemem install` could not copy the binary.
    CannotInstall = 1,
    /// Memory could not be measured (and `--on-error fail`, the default).
    CannotMeasure = 2,
    /// The command line was wrong.
    Usage = 3,
    /// At or above the failure threshold.
    Failure = 4,
    /// `kubemem run` could not start CMD (no signalfd, no fork): nothing ran. As `env`
    /// and `timeout` say it.
    CannotStart = 125,
    /// `kubemem run`: CMD exists but cannot be executed (permission, not an executable), as
    /// shells say it.
    CannotExecute = 126,
    /// `kubemem run`: CMD was not found.
    NotFound = 127,
}

/// A file kubemem reads. Names are what is rendered in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
    ProcSelfCgroup,
    ProcSelfMountinfo,
    ProcMeminfo,
    /// v2 `memory.current`
    Current,
    /// v2 `memory.max`
    Max,
    /// v1 `memory.usage_in_bytes`
    UsageInBytes,
    /// v1 `memory.limit_in_bytes`
    LimitInBytes,
    /// `memory.stat` (both versions)
    Stat,
    /// v2 `memory.events`: the OOM history
    Events,
    /// v1 `memory.oom_control`: the OOM history
    OomControl,
    /// The `--cgroup` directory itself (neither version's files found).
    CgroupDir,
}

impl File {
    /// The name relative to the cgroup directory, or the absolute path (below `--root`) for
    /// the `/proc` files.
    pub const fn name(self) -> &'static str {
        match self {
            File::ProcSelfCgroup => "/proc/self/cgroup",
            File::ProcSelfMountinfo => "/proc/self/mountinfo",
            File::ProcMeminfo => "/proc/meminfo",
            File::Current => "memory.current",
            File::Max => "memory.max",
            File::UsageInBytes => "memory.usage_in_bytes",
            File::LimitInBytes => "memory.limit_in_bytes",
            File::Stat => "memory.stat",
            File::Events => "memory.events",
            File::OomControl => "memory.oom_control",
            File::CgroupDir => "",
        }
    }

    /// True for the files that live below `--root` rather than in a cgroup directory.
    pub const fn is_proc(self) -> bool {
        matches!(
            self,
            File::ProcSelfCgroup | File::ProcSelfMountinfo | File::ProcMeminfo
        )
    }
}

/// Why a value or a line could not be parsed. Produced by the pure parsers in `parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    CarriageReturn,
    Sign,
    UnitSuffix,
    NotANumber,
    Overflow,
    TrailingData,
    /// A `memory.stat` line without a space between key and value.
    StatLine,
    /// `/proc/meminfo` without a `MemTotal:` line in kB.
    NoMemTotal,
    /// A `/proc/self/mountinfo` line without the ` - ` separator or with too few fields.
    MountinfoLine,
    /// A `/proc/self/cgroup` line without two colons.
    CgroupLine,
}

impl Malformed {
    pub const fn reason(self) -> &'static str {
        match self {
            Malformed::Empty => "empty value",
            Malformed::CarriageReturn => "carriage return in value",
            Malformed::Sign => "sign in value (expected an unsigned integer)",
            Malformed::UnitSuffix => "unit suffix in value (expected bytes)",
            Malformed::NotANumber => "not a number",
            Malformed::Overflow => "value does not fit in 64 bits",
            Malformed::TrailingData => "data after the value",
            Malformed::StatLine => "line without a value",
            Malformed::NoMemTotal => "no MemTotal line in kB",
            Malformed::MountinfoLine => "malformed mount line",
            Malformed::CgroupLine => "malformed line (expected id:controllers:path)",
        }
    }
}

/// The `memory.stat` keys kubemem reads, so an error can name the bad one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKey {
    InactiveFile,
    TotalInactiveFile,
    HierarchicalMemoryLimit,
}

impl StatKey {
    pub const fn name(self) -> &'static str {
        match self {
            StatKey::InactiveFile => "inactive_file",
            StatKey::TotalInactiveFile => "total_inactive_file",
            StatKey::HierarchicalMemoryLimit => "hierarchical_memory_limit",
        }
    }
}

/// What went wrong with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Open(Errno),
    Read(Errno),
    /// The file did not fit the fixed buffer sized for it; never parse a truncated prefix.
    TooLarge,
    Malformed(Malformed),
    /// A malformed value for a `memory.stat` key.
    Stat(StatKey, Malformed),
    /// `/proc/self/cgroup` has neither a v1 `memory` line nor a `0::` line.
    NoMemoryCgroup,
    /// No cgroup mount in mountinfo reaches our cgroup (e.g. a cgroup namespace whose
    /// mount root is `/..`).
    NoMount,
    /// A path would exceed PATH_MAX.
    PathTooLong,
    /// `--cgroup DIR` holds neither v2 `memory.current` nor v1 `memory.usage_in_bytes`.
    NotACgroup,
}

/// A probe error: what went wrong, with which file, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub fault: Fault,
    pub file: File,
    /// For cgroup files: the length of the prefix of the measured directory path in which the
    /// file was read (ancestors are prefixes of it). Unused for `/proc` files.
    pub at: u16,
}

impl Error {
    pub const fn proc(file: File, fault: Fault) -> Error {
        Error { fault, file, at: 0 }
    }
}

/// A short name for the errno values a probe meets; anything else prints as its number.
/// (No `strerror`: glibc's is locale-dependent and allocates on some paths.)
pub fn errno_name(e: Errno) -> &'static str {
    match e {
        Errno::NOENT => "no such file or directory",
        Errno::ACCESS => "permission denied",
        Errno::PERM => "operation not permitted",
        Errno::NOTDIR => "not a directory",
        Errno::ISDIR => "is a directory",
        Errno::NAMETOOLONG => "file name too long",
        Errno::LOOP => "too many symbolic links",
        Errno::IO => "input/output error",
        Errno::INVAL => "invalid argument",
        Errno::NODEV => "no such device",
        Errno::NXIO => "no such device or address",
        Errno::MFILE => "too many open files",
        Errno::NFILE => "too many open files in system",
        Errno::NOMEM => "out of memory",
        Errno::ROFS => "read-only file system",
        Errno::NOSPC => "no space left on device",
        Errno::DQUOT => "disk quota exceeded",
        Errno::PIPE => "broken pipe",
        Errno::BADF => "bad file descriptor",
        Errno::AGAIN => "resource temporarily unavailable",
        Errno::FBIG => "file too large",
        Errno::STALE => "stale file handle",
        _ => "",
    }
}

/// Why an HTTP response could not be read (`http`, for `--evict`).
#[cfg(feature = "http")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFault {
    /// Not all of it has arrived yet: read more.
    Incomplete,
    /// The connection ended before the response did.
    Truncated,
    StatusLine,
    Header,
    ContentLength,
    Chunk,
}

#[cfg(feature = "http")]
impl HttpFault {
    pub const fn reason(self) -> &'static str {
        match self {
            HttpFault::Incomplete | HttpFault::Truncated => {
                "the connection ended in the middle of the response"
            }
            HttpFault::StatusLine => "malformed HTTP status line",
            HttpFault::Header => "malformed HTTP header",
            HttpFault::ContentLength => "malformed Content-Length",
            HttpFault::Chunk => "malformed chunked body",
        }
    }
}

/// A file of the pod's service account, which `--evict` reads (below `--root`).
#[cfg(feature = "evict")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaFile {
    Token,
    CaCrt,
    Namespace,
}

#[cfg(feature = "evict")]
impl SaFile {
    /// Its path, below `--root`.
    pub const fn path(self) -> &'static str {
        match self {
            SaFile::Token => "/var/run/secrets/kubernetes.io/serviceaccount/token",
            SaFile::CaCrt => "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
            SaFile::Namespace => "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        }
    }
}

/// The steps of the exchange with the API server, each bounded by `--evict-timeout`.
#[cfg(feature = "evict")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Connect,
    Handshake,
    Request,
    Response,
}

#[cfg(feature = "evict")]
impl Step {
    pub const fn name(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Handshake => "TLS handshake",
            Step::Request => "request",
            Step::Response => "response",
        }
    }
}

/// Why the server's TLS was refused.
#[cfg(feature = "evict")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    UnknownIssuer,
    NotValidForName,
    Expired,
    NotValidYet,
    BadSignature,
    /// Another certificate problem (encoding, purpose, an unsupported algorithm).
    Certificate,
    /// The server sent this alert (its TLS description number).
    Alert(u8),
    /// Nothing both sides support.
    Incompatible,
    /// Anything else in the handshake or the records.
    Protocol,
}

#[cfg(feature = "evict")]
impl Tls {
    pub const fn reason(self) -> &'static str {
        match self {
            Tls::UnknownIssuer => "TLS: the server's certificate is not signed by ca.crt",
            Tls::NotValidForName => "TLS: the server's certificate is not valid for its address",
            Tls::Expired => "TLS: the server's certificate has expired",
            Tls::NotValidYet => "TLS: the server's certificate is not valid yet",
            Tls::BadSignature => "TLS: bad signature on the server's certificate",
            Tls::Certificate => "TLS: the server's certificate is unusable",
            Tls::Alert(_) => "TLS: the server sent alert ",
            Tls::Incompatible => "TLS: no protocol version or cipher suite in common",
            Tls::Protocol => "TLS: protocol error",
        }
    }
}

/// Why `--evict` could not get an answer from the API server. Like [`Error`], it is `Copy`
/// and rendered from static pieces; it names an environment variable, a service-account file
/// or a step of the exchange rather than a cgroup file.
#[cfg(feature = "evict")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictError {
    /// `KUBERNETES_SERVICE_HOST` is not set.
    NoHost,
    /// `KUBERNETES_SERVICE_HOST` is not an IP address.
    HostNotIp,
    /// `KUBERNETES_SERVICE_PORT` is not set or not a port number.
    BadPort,
    /// Neither `POD_NAME` nor a hostname.
    NoPodName,
    /// The pod name (`POD_NAME` or the hostname) is not a Kubernetes object name.
    BadPodName,
    /// The namespace (`POD_NAMESPACE` or the file) is not a Kubernetes namespace name.
    BadNamespace,
    File(SaFile, Fault),
    /// The token has bytes an HTTP header cannot carry.
    TokenBytes,
    /// ca.crt holds no PEM certificate, or one that cannot be parsed.
    CaCert,
    /// A system call on the socket failed.
    Net(Step, Errno),
    /// `--evict-timeout` passed during this step.
    Timeout(Step),
    /// The server closed the connection during this step.
    Closed(Step),
    Tls(Tls),
    Http(HttpFault),
    /// The response does not fit kubemem's buffer for it.
    TooLarge,
}
