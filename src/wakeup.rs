//! Kernel wake-ups between samples, where the kernel offers one. The supervisor samples every
//! interval anyway; a wake-up only brings the next sample forward.
//!
//! - v1: memory threshold notifications, an eventfd registered through
//!   `cgroup.event_control` on the usage file at the thresholds' byte values. Usage counts
//!   page cache, so crossing one only says that the working set may have: a sample decides.
//! - v2: a PSI trigger on `memory.pressure` (`some 150000 1000000`: tasks stalled on memory
//!   for 150 ms within a second), when the file can be written; else `memory.events`, which
//!   the kernel notifies (POLLPRI) when its `high`, `max` and `oom` counters change. Since
//!   Linux 6.4 a process without CAP_SYS_RESOURCE may create triggers whose window is a
//!   multiple of 2 s only (before, none at all): then the same stall within 2 s.
//!
//! Containers usually mount the cgroup file system read-only: the writes fail and
//! `memory.events` (v2) or sampling alone remains. Control files are written only on a
//! cgroup file system, never on the plain files of a `--root` tree.

use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::locate::{Location, Version};
use crate::measure::Sampler;
use crate::path::CPath;
use crate::read;
use crate::sys::Buf;

/// `statfs` magic numbers of the cgroup file systems (linux/magic.h).
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The PSI triggers tried in turn, NUL-terminated (the kernel replaces the last byte
/// written with a NUL): the second is the one an unprivileged process may create.
const PSI_TRIGGERS: [&[u8]; 2] = [b"some 150000 1000000\0", b"some 150000 2000000\0"];

/// What wakes the supervisor besides its interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// v1 threshold notifications: the eventfd becomes readable.
    Threshold,
    /// v2 PSI trigger: POLLPRI.
    Pressure,
    /// v2 `memory.events` changed: POLLPRI, re-armed by reading the file.
    Events,
}

/// A kernel wake-up, or none.
pub struct Wakeup {
    armed: Option<(Kind, OwnedFd)>,
}

impl Wakeup {
    /// Sets up the best wake-up the kernel permits for the cgroup the sampler measures.
    /// `thresholds` are the byte values at which a v1 notification is wanted.
    pub fn open(loc: &Location, sampler: &Sampler, thresholds: &[u64]) -> Wakeup {
        let armed = match loc.version {
            Version::V1 => {
                threshold_events(loc, sampler, thresholds).map(|fd| (Kind::Threshold, fd))
            }
            Version::V2 => pressure(loc, sampler)
                .map(|fd| (Kind::Pressure, fd))
                .or_else(|| events(loc, sampler).map(|fd| (Kind::Events, fd))),
        };
        Wakeup { armed }
    }

    /// The file that wakes us, for the start line; `none` when only the interval does.
    pub fn name(&self) -> &'static str {
        match &self.armed {
            None => "none",
            Some((Kind::Threshold, _)) => "cgroup.event_control",
            Some((Kind::Pressure, _)) => "memory.pressure",
            Some((Kind::Events, _)) => "memory.events",
        }
    }

    /// The descriptor to poll, with the events that mean "sample now".
    pub fn poll_fd(&self) -> Option<PollFd<'_>> {
        self.armed
            .as_ref()
            .map(|(kind, fd)| PollFd::new(fd, wanted(*kind)))
    }

    /// Handles what `poll` reported; true when a sample is due. Re-arms the wake-up, or
    /// drops it when the kernel reports it broken without an event, so that it cannot make
    /// every `poll` return at once.
    pub fn fired(&mut self, revents: PollFlags) -> bool {
        let Some((kind, fd)) = &self.armed else {
            return false;
        };
        if revents.intersects(wanted(*kind)) {
            match kind {
                // The counter is reset by reading it; the kernel writes it again at the
                // next crossing.
                Kind::Threshold => {
                    let _ = rustix::io::read(fd, &mut [0u8; 8]);
                }
                // kernfs reports a change until the file is read again.
                Kind::Events => {
                    let _ = read::reread(fd, &mut Buf::<EVENTS_BUF>::new());
                }
                // A PSI trigger fires once per window, re-armed by the poll itself.
                Kind::Pressure => {}
            }
            return true;
        }
        if revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) {
            self.armed = None;
        }
        false
    }
}

/// `memory.events`: six short lines.
const EVENTS_BUF: usize = 512;

const fn wanted(kind: Kind) -> PollFlags {
    match kind {
        Kind::Threshold => PollFlags::IN,
        Kind::Pressure | Kind::Events => PollFlags::PRI,
    }
}

/// Opens `name` in the measured cgroup, only if it is on a cgroup file system of `version`.
fn open_control(loc: &Location, sampler: &Sampler, name: &str, flags: OFlags) -> Option<OwnedFd> {
    let mut path = CPath::new();
    let path = loc.dir.file(sampler.at(), name, &mut path)?;
    let fd = rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .ok()?;
    let magic = match loc.version {
        Version::V1 => CGROUP_SUPER_MAGIC,
        Version::V2 => CGROUP2_SUPER_MAGIC,
    };
    let fs = rustix::fs::fstatfs(&fd).ok()?;
    (fs.f_type as u64 == magic).then_some(fd)
}

/// v1: an eventfd notified when usage crosses any of `thresholds`.
fn threshold_events(loc: &Location, sampler: &Sampler, thresholds: &[u64]) -> Option<OwnedFd> {
    use rustix::event::{eventfd, EventfdFlags};
    if thresholds.is_empty() {
        return None;
    }
    let control = open_control(loc, sampler, "cgroup.event_control", OFlags::WRONLY)?;
    let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
    let fds = [efd.as_raw_fd(), sampler.usage_fd().as_raw_fd()];
    for &bytes in thresholds {
        // "<eventfd> <usage_in_bytes fd> <threshold>": three numbers, well under 64 bytes.
        let mut line = Buf::<64>::new();
        for fd in fds {
            line.extend_from_slice(itoa::Buffer::new().format(fd).as_bytes())
                .ok()?;
            line.push(b' ').ok()?;
        }
        line.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes())
            .ok()?;
        write_control(&control, line.as_bytes()).ok()?;
    }
    Some(efd)
}

/// v2: a PSI trigger on `memory.pressure`.
fn pressure(loc: &Location, sampler: &Sampler) -> Option<OwnedFd> {
    let fd = open_control(
        loc,
        sampler,
        "memory.pressure",
        OFlags::RDWR | OFlags::NONBLOCK,
    )?;
    PSI_TRIGGERS
        .iter()
        .any(|t| write_control(&fd, t).is_ok())
        .then_some(fd)
}

/// v2: `memory.events`, read once so that only later changes are reported.
fn events(loc: &Location, sampler: &Sampler) -> Option<OwnedFd> {
    let fd = open_control(loc, sampler, "memory.events", OFlags::RDONLY)?;
    read::reread(&fd, &mut Buf::<EVENTS_BUF>::new()).ok()?;
    Some(fd)
}

/// One write of a whole control line: the kernel parses each write on its own.
fn write_control(fd: &OwnedFd, line: &[u8]) -> Result<(), Errno> {
    match rustix::io::write(fd.as_fd(), line)? {
        n if n == line.len() => Ok(()),
        _ => Err(Errno::IO),
    }
}
