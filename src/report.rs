//! The one line kubemem prints: built in a stack buffer from static pieces and itoa, written
//! with one write loop. Nothing here allocates or uses `core::fmt`.
//!
//! kubelet copies an exec probe's output into the pod event `Liveness probe failed: <output>`
//! and merges events that differ only in their message, so the line is short, stable, one
//! line, and carries no timestamp or pid.

use core::ffi::{c_int, CStr};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

use crate::annotations;
use crate::decide::{per_mille, Level};
use crate::error::{errno_name, Error, Fault};
use crate::locate::Location;
use crate::measure::Sample;
use crate::parse::{signal_name, Threshold};
use crate::path::{self, CPath};
use crate::read;
use crate::{Config, Format};

/// Every line, newline included, stays below this: short enough for an event message and
/// for `kubectl describe`, long enough for all keys and a long cgroup path (which is cut
/// from the front, keeping the distinctive end, when it does not fit).
pub const LINE_MAX: usize = 400;

/// A line being built. Pushes past the capacity are dropped, never a panic; callers budget
/// so that does not happen.
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    json: bool,
    keys: usize,
}

impl Line {
    pub fn new(format: Format) -> Line {
        let mut line = Line {
            buf: [0; LINE_MAX],
            len: 0,
            json: format == Format::Json,
            keys: 0,
        };
        if line.json {
            line.push(b"{");
        }
        line
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: &[u8]) {
        let n = b.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }

    fn key(&mut self, key: &str) {
        match (self.json, self.keys) {
            (false, 0) => {}
            (false, _) => self.push(b" "),
            (true, 0) => self.push(b"\""),
            (true, _) => self.push(b",\""),
        }
        self.push(key.as_bytes());
        self.push(if self.json { b"\":" } else { b"=" });
        self.keys += 1;
    }

    /// A string value that needs no escaping (our own names, reasons).
    pub(crate) fn word(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        let quote = self.json || value.contains(&b' ');
        if quote {
            self.push(b"\"");
        }
        self.push(value);
        if quote {
            self.push(b"\"");
        }
    }

    pub(crate) fn num(&mut self, key: &str, value: u128) {
        self.key(key);
        self.push(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A number in tenths, printed with one decimal (`950` -> `95.0`).
    fn tenths(&mut self, key: &str, value: u128) {
        self.key(key);
        self.push(itoa::Buffer::new().format(value / 10).as_bytes());
        self.push(b".");
        self.push(itoa::Buffer::new().format(value % 10).as_bytes());
    }

    fn threshold(&mut self, key: &str, t: Threshold) {
        let mut buf = [0u8; 32];
        let text = threshold_text(t, &mut buf);
        self.word(key, text);
    }

    /// A path, escaped for the format, cut from the front with `...` if the rest of the line
    /// would not fit.
    pub(crate) fn path(&mut self, key: &str, path: &[u8]) {
        self.key(key);
        // Room left: the closing quote, `}` for JSON, and the newline.
        let room = LINE_MAX.saturating_sub(self.len + 4);
        let json = self.json;
        let cost = |c: &u8| escaped_len(*c, json);
        let mut cut = 0;
        if path.iter().map(cost).sum::<usize>() > room.saturating_sub(1) {
            let mut total = 3; // "..."
            cut = path.len();
            while cut > 0 && total + cost(&path[cut - 1]) <= room.saturating_sub(1) {
                cut -= 1;
                total += cost(&path[cut]);
            }
            // Do not start inside a UTF-8 sequence.
            while path.get(cut).is_some_and(|c| (0x80..0xc0).contains(c)) {
                cut += 1;
            }
        }
        let shown = &path[cut..];
        let quote = json
            || shown
                .iter()
                .any(|&c| escaped_len(c, false) > 1 || matches!(c, b' ' | b'='));
        if quote {
            self.push(b"\"");
        }
        if cut > 0 {
            self.push(b"...");
        }
        if json {
            for chunk in shown.utf8_chunks() {
                for c in chunk.valid().bytes() {
                    self.escaped(c, true);
                }
                if !chunk.invalid().is_empty() {
                    self.push(b"\\ufffd");
                }
            }
        } else {
            for &c in shown {
                self.escaped(c, false);
            }
        }
        if quote {
            self.push(b"\"");
        }
    }

    /// A quoted text from elsewhere (a server's message): escaped for the format, at most
    /// `max` bytes of it, and never past the room the line has left; a cut text ends with
    /// `...`. Invalid UTF-8 becomes U+FFFD, so that the line stays valid in both formats.
    #[cfg(feature = "evict")]
    pub(crate) fn text(&mut self, key: &str, value: impl IntoIterator<Item = u8>, max: usize) {
        let mut raw = [0u8; LINE_MAX];
        let mut n = 0;
        let mut value = value.into_iter();
        for (slot, c) in raw.iter_mut().zip(&mut value) {
            *slot = c;
            n += 1;
        }
        let mut cut = value.next().is_some();
        self.key(key);
        self.push(b"\"");
        // Room for `..."`, `}` and the newline.
        let end = (self.len + max).min(LINE_MAX - 6);
        let json = self.json;
        'out: for chunk in raw[..n].utf8_chunks() {
            let mut utf8 = [0u8; 4];
            let invalid = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
            for c in chunk.valid().chars().chain(invalid) {
                let bytes = c.encode_utf8(&mut utf8).as_bytes();
                if self.len + bytes.iter().map(|&b| escaped_len(b, json)).sum::<usize>() > end {
                    cut = true;
                    break 'out;
                }
                for &b in bytes {
                    self.escaped(b, json);
                }
            }
        }
        if cut {
            self.push(b"...");
        }
        self.push(b"\"");
    }

    fn escaped(&mut self, c: u8, json: bool) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match c {
            b'"' => self.push(b"\\\""),
            b'\\' => self.push(b"\\\\"),
            b'\n' => self.push(b"\\n"),
            b'\t' => self.push(b"\\t"),
            b'\r' => self.push(b"\\r"),
            0..=0x1f | 0x7f if json => self.push(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]),
            0..=0x1f | 0x7f => {
                self.push(&[b'\\', b'x', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]])
            }
            _ => self.push(&[c]),
        }
    }

    pub(crate) fn finish(&mut self) {
        if self.json {
            self.push(b"}");
        }
        self.len = self.len.min(LINE_MAX - 1);
        self.push(b"\n");
    }
}

/// Upper bound of the escaped length of one path byte (JSON may turn a non-ASCII byte into
/// `\ufffd`).
fn escaped_len(c: u8, json: bool) -> usize {
    match c {
        b'"' | b'\\' | b'\n' | b'\t' | b'\r' => 2,
        0..=0x1f | 0x7f if json => 6,
        0..=0x1f | 0x7f => 4,
        0x80.. if json => 6,
        _ => 1,
    }
}

/// `85%`, `92.5%`, `92.25%`, or a byte count.
pub fn threshold_text(t: Threshold, buf: &mut [u8; 32]) -> &[u8] {
    let mut n = 0;
    let mut put = |b: &[u8]| {
        buf[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    match t {
        Threshold::Percent(h) => {
            put(itoa::Buffer::new().format(h / 100).as_bytes());
            match h % 100 {
                0 => {}
                f if f % 10 == 0 => {
                    put(b".");
                    put(itoa::Buffer::new().format(f / 10).as_bytes());
                }
                f => {
                    put(if f < 10 { b".0" } else { b"." });
                    put(itoa::Buffer::new().format(f).as_bytes());
                }
            }
            put(b"%");
        }
        Threshold::Bytes(b) => put(itoa::Buffer::new().format(b).as_bytes()),
    }
    &buf[..n]
}

/// What a line says besides the sample: the time left and the kernel's OOM history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outlook {
    /// Milliseconds to the limit at the recent rate of growth (`eta`, in seconds), when the
    /// working set grows.
    pub eta_ms: Option<u64>,
    /// Processes the OOM killer killed in the cgroup (`oom_kills`, when above 0).
    pub oom_kills: u64,
}

/// The verdict line for one sample.
pub fn verdict(cfg: &Config<'_>, loc: &Location, s: &Sample, level: Level, o: &Outlook) -> Line {
    verdict_with(cfg, loc, s, level, o, |_| {})
}

/// The verdict line with more keys, added by `more` just before `path` (the one value that
/// is cut to fit, so it comes last).
fn verdict_with(
    cfg: &Config<'_>,
    loc: &Location,
    s: &Sample,
    level: Level,
    o: &Outlook,
    more: impl FnOnce(&mut Line),
) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", level.name().as_bytes());
    line.num("used", s.used.into());
    line.num("limit", s.limit.into());
    line.tenths("percent", per_mille(s.used, s.limit));
    line.threshold("warning", cfg.warning);
    line.threshold("failure", cfg.failure);
    line.word("usage", cfg.usage.name().as_bytes());
    line.word("cgroup", loc.version.name().as_bytes());
    line.word("limit_source", s.source.name().as_bytes());
    if let Some(eta) = o.eta_ms {
        // Tenths of a second, rounded down like `percent`: a printed 3.0 has 3 s or less.
        line.tenths("eta", u128::from(eta / 100));
    }
    if let Some(lead) = cfg.lead {
        line.word("lead", lead.text);
    }
    if o.oom_kills > 0 {
        line.num("oom_kills", o.oom_kills.into());
    }
    more(&mut line);
    line.path("path", &loc.dir.as_bytes()[..s.at]);
    line.finish();
    line
}

/// What `kubemem run` did about a sample: the `action` key of its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Logged only (a warning without `--warning-signal`).
    Log,
    /// Sent this signal to CMD.
    Signal(Signal),
    /// SIGKILL, the grace period after `--signal`.
    Kill,
    /// Usage fell back below a threshold that had fired, which may now fire again.
    Rearm,
}

impl Action {
    pub const fn name(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Signal(_) => "signal",
            Action::Kill => "kill",
            Action::Rearm => "rearm",
        }
    }

    /// The signal sent, if any.
    pub const fn signal(self) -> Option<Signal> {
        match self {
            Action::Signal(s) => Some(s),
            Action::Kill => Some(Signal::KILL),
            Action::Log | Action::Rearm => None,
        }
    }
}

/// A line of `kubemem run` about a sample: the verdict's keys, then `action` and, when CMD
/// was signalled, `signal` and `pid` (CMD's; its process group got it when CMD leads one).
pub fn action(
    cfg: &Config<'_>,
    loc: &Location,
    s: &Sample,
    level: Level,
    o: &Outlook,
    action: Action,
    pid: Pid,
) -> Line {
    verdict_with(cfg, loc, s, level, o, |line| {
        line.word("action", action.name().as_bytes());
        if let Some(sig) = action.signal() {
            target(line, sig.as_raw(), pid);
        }
    })
}

fn target(line: &mut Line, signo: c_int, pid: Pid) {
    match Signal::from_named_raw(signo).map(signal_name) {
        Some(name) if name != "?" => line.word("signal", name.as_bytes()),
        _ => line.num("signal", signo.unsigned_abs().into()),
    }
    line.num("pid", pid.as_raw_nonzero().get() as u128);
}

/// `kubemem run` saw the OOM killer kill a process while CMD lives: the verdict's keys of
/// the sample, `oom_kills` and `event=oom-kill`.
pub fn oom_kill(cfg: &Config<'_>, loc: &Location, s: &Sample, level: Level, o: &Outlook) -> Line {
    verdict_with(cfg, loc, s, level, o, |line| {
        line.word("event", b"oom-kill")
    })
}

/// `kubemem run` started CMD: `level=info action=start pid=<CMD> wakeup=<what else than
/// the interval wakes the sampler>`.
pub fn started(cfg: &Config<'_>, pid: Pid, wakeup: &str) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", b"info");
    line.word("action", b"start");
    line.num("pid", pid.as_raw_nonzero().get() as u128);
    line.word("wakeup", wakeup.as_bytes());
    line.finish();
    line
}

/// An error of `kubemem run` that is not about a file: `level=error action=<what>`, the
/// signal and pid when sending one failed, and the reason.
pub fn run_error(cfg: &Config<'_>, action: &str, sent: Option<(c_int, Pid)>, errno: Errno) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", b"error");
    line.word("action", action.as_bytes());
    if let Some((sig, pid)) = sent {
        target(&mut line, sig, pid);
    }
    errno_value(&mut line, b"", errno);
    line.finish();
    line
}

/// CMD could not be executed (written by the child before it exits 126 or 127):
/// `level=error command=<CMD> error="cannot execute: <reason>"`.
pub fn exec_error(cfg: &Config<'_>, command: &[u8], errno: Errno) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", b"error");
    line.path("command", command);
    errno_value(&mut line, b"cannot execute: ", errno);
    line.finish();
    line
}

/// The error line: `level=error file=<path> error="<reason>"`.
pub fn error(cfg: &Config<'_>, loc: &Location, e: Error) -> Line {
    let mut name = CPath::new();
    let file: &[u8] = if e.file.is_proc() {
        path::cstr(&[cfg.root, e.file.name().as_bytes()], &mut name).map_or(b"", CStr::to_bytes)
    } else {
        loc.dir
            .file(e.at.into(), e.file.name(), &mut name)
            .map_or(b"", CStr::to_bytes)
    };
    let mut line = Line::new(cfg.format);
    line.word("level", b"error");
    line.path("file", file);
    reason(&mut line, e.fault);
    line.finish();
    line
}

/// The state file cannot be used: `level=error file=<path> error="cannot open: EACCES"`.
pub fn state_error(cfg: &Config<'_>, path: &CStr, e: crate::state::Failed) -> Line {
    use crate::state::Failed;
    let mut line = Line::new(cfg.format);
    line.word("level", b"error");
    line.path("file", path.to_bytes());
    match e {
        Failed::Open(errno) => errno_value(&mut line, b"cannot open: ", errno),
        Failed::Read(errno) => errno_value(&mut line, b"cannot read: ", errno),
        Failed::Write(errno) => errno_value(&mut line, b"cannot write: ", errno),
    }
    line.finish();
    line
}

/// The error line of an `--annotations` file: `level=error file=<path> line=<n>
/// error="<key>: <reason>"` for a malformed line, without `line` when the file cannot be
/// read.
pub fn annotations_error(cfg: &Config<'_>, path: &CStr, e: annotations::Error) -> Line {
    let mut line = Line::new(cfg.format);
    line.word("level", b"error");
    line.path("file", path.to_bytes());
    match e {
        annotations::Error::File(fault) => reason(&mut line, fault),
        annotations::Error::Malformed(m) => {
            line.num("line", m.line.into());
            line.key("error");
            line.push(b"\"");
            if let Some(key) = m.bad.key() {
                line.push(key.name().as_bytes());
                line.push(b": ");
            }
            line.push(m.bad.reason().as_bytes());
            line.push(b"\"");
        }
    }
    line.finish();
    line
}

/// `error="<reason>"` for a fault of a file outside the cgroup directory.
#[cfg(feature = "evict")]
pub(crate) fn fault_reason(line: &mut Line, fault: Fault) {
    reason(line, fault);
}

/// The reason for `fault`, as the probe words it: a logfmt line holding only
/// `error="<reason>"`, for kubemem-node, which builds its own lines.
#[cfg(feature = "node")]
pub fn fault_text(fault: Fault) -> Line {
    let mut line = Line::new(Format::Logfmt);
    reason(&mut line, fault);
    line
}

fn reason(line: &mut Line, fault: Fault) {
    line.key("error");
    line.push(b"\"");
    match fault {
        Fault::Open(errno) => errno_reason(line, b"cannot open: ", errno),
        Fault::Read(errno) => errno_reason(line, b"cannot read: ", errno),
        Fault::TooLarge => line.push(b"larger than kubemem's buffer for it"),
        Fault::Malformed(m) => line.push(m.reason().as_bytes()),
        Fault::Stat(key, m) => {
            line.push(key.name().as_bytes());
            line.push(b": ");
            line.push(m.reason().as_bytes());
        }
        Fault::NoMemoryCgroup => line.push(b"no v1 memory line and no cgroup2 0:: line"),
        Fault::NoMount => line.push(
            b"no cgroup mount reaches our cgroup (a cgroup namespace without its own mount?)",
        ),
        Fault::PathTooLong => line.push(b"path too long"),
        Fault::NotACgroup => {
            line.push(b"not a memory cgroup (no memory.current, no memory.usage_in_bytes)")
        }
    }
    line.push(b"\"");
}

/// `error="<what><reason>"`.
fn errno_value(line: &mut Line, what: &[u8], errno: Errno) {
    line.key("error");
    line.push(b"\"");
    errno_reason(line, what, errno);
    line.push(b"\"");
}

fn errno_reason(line: &mut Line, what: &[u8], errno: Errno) {
    line.push(what);
    match errno_name(errno) {
        "" => {
            line.push(b"errno ");
            line.push(itoa::Buffer::new().format(errno.raw_os_error()).as_bytes());
        }
        name => line.push(name.as_bytes()),
    }
}

/// Writes all of `bytes`, advancing past short writes and retrying EINTR.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends a verdict line where it belongs: to the logfile (or standard output without one),
/// and at failure also to standard output, so kubelet's event shows it. A logfile that
/// cannot be opened or written is reported on stderr and changes nothing else.
///
/// The logfile is opened by [`read::create`], which never blocks: a FIFO without a reader
/// is an `ENXIO` error line, a full pipe an `EAGAIN` one, never a hung probe.
pub fn emit(cfg: &Config<'_>, line: &Line, level: Level) {
    crate::sys::ignore_sigpipe();
    let Some(path) = cfg.logfile else {
        let _ = write_all(cfg.out, line.as_bytes());
        return;
    };
    let logged = match read::create(path, read::Write::Append, 0o644) {
        Err(e) => Err((b"cannot open log file: ".as_slice(), e, None)),
        Ok(fd) => match write_all(fd.as_fd(), line.as_bytes()) {
            Err(e) => Err((b"cannot write log file: ".as_slice(), e, Some(fd))),
            Ok(()) => Ok(fd),
        },
    };
    let fd = match logged {
        Ok(fd) => Some(fd),
        Err((what, errno, fd)) => {
            let err = file_error(cfg.format, path.to_bytes(), what, errno);
            let _ = write_all(cfg.err, err.as_bytes());
            fd
        }
    };
    if level == Level::Failure && !fd.is_some_and(|fd| same_file(fd.as_fd(), cfg.out)) {
        let _ = write_all(cfg.out, line.as_bytes());
    }
}

/// `level=error file=<path> error="<what><reason>"`: a file kubemem writes (the logfile, the
/// termination log, `install`'s copy) could not be opened or written.
pub fn file_error(format: Format, path: &[u8], what: &[u8], errno: Errno) -> Line {
    let mut line = Line::new(format);
    line.word("level", b"error");
    line.path("file", path);
    errno_value(&mut line, what, errno);
    line.finish();
    line
}

/// Writes `line` to `--termination-log`, if given: the line that says why the probe failed
/// (or why `kubemem run` signalled CMD), which kubelet shows as the message of the restarted
/// container's last state. It replaces the file (`O_TRUNC`: the newest reason, not a
/// history) and leaves out the newline, since the file holds one message, not a log; it is
/// under [`LINE_MAX`], far below kubelet's 4096 bytes. A file that cannot be written is
/// reported on stderr and changes nothing else, as with the logfile.
#[cold]
pub fn terminate(cfg: &Config<'_>, line: &Line) {
    let Some(path) = cfg.termination_log else {
        return;
    };
    crate::sys::ignore_sigpipe();
    let text = line.as_bytes();
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let failed = match read::create(path, read::Write::Replace, 0o644) {
        Err(e) => Some((b"cannot open termination log: ".as_slice(), e)),
        Ok(fd) => write_all(fd.as_fd(), text)
            .err()
            .map(|e| (b"cannot write termination log: ".as_slice(), e)),
    };
    if let Some((what, errno)) = failed {
        let err = file_error(cfg.format, path.to_bytes(), what, errno);
        let _ = write_all(cfg.err, err.as_bytes());
    }
}

/// True when both descriptors are the same open file (`--logfile /dev/stdout`), so the
/// failure line is not printed twice.
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Writes an error line to standard error.
pub fn emit_error(cfg: &Config<'_>, line: &Line) {
    crate::sys::ignore_sigpipe();
    let _ = write_all(cfg.err, line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_line(format: Format, path: &[u8]) -> Line {
        let mut line = Line::new(format);
        line.word("level", b"ok");
        line.path("path", path);
        line.finish();
        line
    }

    #[test]
    fn thresholds_print_as_given() {
        let mut buf = [0u8; 32];
        assert_eq!(threshold_text(Threshold::Percent(85_00), &mut buf), b"85%");
        assert_eq!(
            threshold_text(Threshold::Percent(92_50), &mut buf),
            b"92.5%"
        );
        assert_eq!(
            threshold_text(Threshold::Percent(92_05), &mut buf),
            b"92.05%"
        );
        assert_eq!(
            threshold_text(Threshold::Percent(92_25), &mut buf),
            b"92.25%"
        );
        assert_eq!(threshold_text(Threshold::Percent(0), &mut buf), b"0%");
        assert_eq!(
            threshold_text(Threshold::Bytes(u64::MAX), &mut buf),
            b"18446744073709551615"
        );
    }

    #[test]
    fn paths_are_quoted_and_escaped() {
        assert_eq!(
            path_line(Format::Logfmt, b"/sys/fs/cgroup").as_bytes(),
            b"level=ok path=/sys/fs/cgroup\n"
        );
        assert_eq!(
            path_line(Format::Logfmt, b"/a b").as_bytes(),
            b"level=ok path=\"/a b\"\n"
        );
        assert_eq!(
            path_line(Format::Logfmt, b"/a\"b\n").as_bytes(),
            b"level=ok path=\"/a\\\"b\\n\"\n"
        );
        assert_eq!(
            path_line(Format::Json, b"/a\\b").as_bytes(),
            b"{\"level\":\"ok\",\"path\":\"/a\\\\b\"}\n"
        );
        assert_eq!(
            path_line(Format::Json, b"/\x01\xff\xc3\xa9").as_bytes(),
            "{\"level\":\"ok\",\"path\":\"/\\u0001\\ufffdé\"}\n".as_bytes()
        );
    }

    #[test]
    fn long_paths_are_cut_from_the_front_and_lines_stay_short() {
        for format in [Format::Logfmt, Format::Json] {
            for c in [b'a', b' ', b'\x01', 0xff, b'"'] {
                let mut long = [c; 2000];
                long[0] = b'/';
                long[1999] = b'Z';
                let line = path_line(format, &long);
                let b = line.as_bytes();
                assert!(b.len() < LINE_MAX, "{}", b.len());
                assert_eq!(b.last(), Some(&b'\n'));
                let tail: &[u8] = if format == Format::Json {
                    b"Z\"}\n"
                } else {
                    b"Z\"\n"
                };
                assert!(
                    b.ends_with(tail) || b.ends_with(b"Z\n"),
                    "{:?}",
                    core::str::from_utf8(b)
                );
                assert!(b.windows(3).any(|w| w == b"..."));
            }
        }
    }
}
