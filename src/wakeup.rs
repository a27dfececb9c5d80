//! Kernel wake-ups between samples, where the kernel offers one. The supervisor samples every
//! interval anyway; a wake-up only brings the next sample forward. None of them reports the
//! working set, so a sample always decides.
//!
//! - v1: one eventfd, registered through `cgroup.event_control` for two kinds of events.
//!   Memory thresholds on the usage file: at each threshold's byte value and on a ladder of
//!   rungs from it up to the limit. Usage counts page cache, so when it crosses a threshold
//!   the working set may still be below it; the rungs above bring further samples while
//!   usage keeps growing, so the working set's crossing is seen within one rung (an eighth
//!   of the way from the threshold to the limit). And `memory.pressure_level` at `low`:
//!   reclaim in the cgroup, which is what happens at the limit once page cache fills it
//!   (usage then stays put while the working set grows, and crosses nothing).
//! - v2 has no thresholds. `memory.events`, which the kernel notifies (POLLPRI) when its
//!   `high`, `max` and `oom` counters change: usage reached `memory.high` or the limit and
//!   the kernel reclaimed (one notification per 20 ms at most, the kernel's rate limit).
//!   And, when `memory.pressure` can be written, a PSI trigger (`some 150000 1000000`:
//!   tasks stalled on memory for 150 ms within a second; since Linux 6.4 a process without
//!   CAP_SYS_RESOURCE may create triggers whose window is a multiple of 2 s only, before
//!   none at all: then the same stall within 2 s). Below the limit and without stalls
//!   nothing wakes the supervisor on v2: the interval does. Nor does anything in time when
//!   usage reaches the limit with nothing left to reclaim: the OOM killer acts within the
//!   same allocation.
//!
//! Containers usually mount the cgroup file system read-only: the v1 registrations and the
//! PSI trigger fail, and `memory.events` (v2) or sampling alone remains. Control files are
//! written only on a cgroup file system, never on the plain files of a `--root` tree.

use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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

/// v1: rungs per threshold, the threshold itself included.
const RUNGS: u64 = 8;

/// What wakes the supervisor besides its interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// v1 thresholds and pressure level: the eventfd becomes readable.
    EventControl,
    /// v2 PSI trigger: POLLPRI.
    Pressure,
    /// v2 `memory.events` changed: POLLPRI, re-armed by reading the file.
    Events,
}

/// The memory levels that v1 notifications are registered for, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Levels {
    /// The warning and failure thresholds.
    pub thresholds: [u64; 2],
    /// The limit they are a part of.
    pub limit: u64,
}

/// The kernel wake-ups armed: at most two (v2: the PSI trigger and `memory.events`).
pub struct Wakeup {
    armed: [Option<(Kind, OwnedFd)>; 2],
}

impl Wakeup {
    /// Sets up every wake-up the kernel permits for the cgroup the sampler measures.
    /// `levels` are needed for v1 thresholds (none when memory could not be read).
    pub fn open(loc: &Location, sampler: &Sampler, levels: Option<Levels>) -> Wakeup {
        let armed = match loc.version {
            Version::V1 => [
                event_control(loc, sampler, levels).map(|fd| (Kind::EventControl, fd)),
                None,
            ],
            Version::V2 => [
                pressure(loc, sampler).map(|fd| (Kind::Pressure, fd)),
                events(loc, sampler).map(|fd| (Kind::Events, fd)),
            ],
        };
        Wakeup { armed }
    }

    /// The files that wake us, for the start line; `none` when only the interval does.
    pub fn name(&self) -> &'static str {
        let kind = |i: usize| self.armed[i].as_ref().map(|(k, _)| *k);
        match (kind(0), kind(1)) {
            (Some(Kind::EventControl), _) => "cgroup.event_control",
            (Some(Kind::Pressure), Some(Kind::Events)) => "memory.pressure,memory.events",
            (Some(Kind::Pressure), _) => "memory.pressure",
            (_, Some(Kind::Events)) => "memory.events",
            _ => "none",
        }
    }

    /// The descriptor of slot `i` (0 or 1) to poll, with the events that mean "sample now".
    pub fn poll_fd(&self, i: usize) -> Option<PollFd<'_>> {
        self.armed[i]
            .as_ref()
            .map(|(kind, fd)| PollFd::new(fd, wanted(*kind)))
    }

    /// Handles what `poll` reported for slot `i`; true when a sample is due. Re-arms the
    /// wake-up, or drops it when the kernel reports it broken, so that it cannot make every
    /// `poll` return at once.
    pub fn fired(&mut self, i: usize, revents: PollFlags) -> bool {
        let Some((kind, fd)) = &self.armed[i] else {
            return false;
        };
        let broken = revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL);
        let (due, keep) = match kind {
            // The counter is reset by reading it; the kernel adds to it at the next event.
            Kind::EventControl if revents.contains(PollFlags::IN) => {
                let _ = rustix::io::read(fd, &mut [0u8; 8]);
                (true, true)
            }
            // kernfs reports a change as PRI with ERR until the file is read again; a file
            // that cannot be read any more would report it forever.
            Kind::Events if revents.contains(PollFlags::PRI) => (
                true,
                read::reread(fd, &mut Buf::<EVENTS_BUF>::new()).is_ok(),
            ),
            // A trigger that fired reports PRI alone and the poll re-arms it; PRI with ERR
            // means there is no trigger (PSI disabled).
            Kind::Pressure => (revents.contains(PollFlags::PRI) && !broken, !broken),
            _ => (false, !broken),
        };
        if !keep {
            self.armed[i] = None;
        }
        due
    }
}

/// `memory.events`: six short lines.
const EVENTS_BUF: usize = 512;

const fn wanted(kind: Kind) -> PollFlags {
    match kind {
        Kind::EventControl => PollFlags::IN,
        Kind::Pressure | Kind::Events => PollFlags::PRI,
    }
}

/// Opens `name` in the measured cgroup, only if it is on a cgroup file system of `version`.
fn open_control(loc: &Location, sampler: &Sampler, name: &str, flags: OFlags) -> Option<OwnedFd> {
    let mut path = CPath::new();
    let path = loc.dir.file(sampler.at(), name, &mut path)?;
    let fd = rustix::fs::open(
        path,
        flags | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
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

/// v1: an eventfd notified when usage crosses a threshold or a rung above it, and on
/// reclaim (pressure level `low`). Armed when at least one registration succeeds.
fn event_control(loc: &Location, sampler: &Sampler, levels: Option<Levels>) -> Option<OwnedFd> {
    use rustix::event::{eventfd, EventfdFlags};
    let control = open_control(loc, sampler, "cgroup.event_control", OFlags::WRONLY)?;
    let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
    let usage = sampler.usage_fd();
    let mut armed = false;
    for bytes in levels.iter().flat_map(rungs) {
        armed |= register(&control, &efd, usage, Arg::Number(bytes)).is_ok();
    }
    // The kernel holds its own reference to the file it watches.
    if let Some(level) = open_control(loc, sampler, "memory.pressure_level", OFlags::RDONLY) {
        armed |= register(&control, &efd, level.as_fd(), Arg::Text(b"low")).is_ok();
    }
    armed.then_some(efd)
}

/// The usage values to be notified at: each threshold below the limit, and `RUNGS - 1`
/// evenly spaced values between it and the limit.
fn rungs(levels: &Levels) -> impl Iterator<Item = u64> + '_ {
    levels
        .thresholds
        .iter()
        .filter(|&&t| t < levels.limit)
        .flat_map(move |&t| (0..RUNGS).map(move |k| t + (levels.limit - t) / RUNGS * k))
}

/// The argument of a `cgroup.event_control` line.
enum Arg<'a> {
    Number(u64),
    Text(&'a [u8]),
}

/// Writes "<eventfd> <watched fd> <argument>" to `cgroup.event_control`: three short
/// words, well under 64 bytes.
fn register(
    control: &OwnedFd,
    efd: &OwnedFd,
    watched: BorrowedFd<'_>,
    arg: Arg<'_>,
) -> Result<(), Errno> {
    let mut line = Buf::<64>::new();
    let mut itoa = itoa::Buffer::new();
    for fd in [efd.as_raw_fd(), watched.as_raw_fd()] {
        line.extend_from_slice(itoa.format(fd).as_bytes())
            .map_err(|_| Errno::NAMETOOLONG)?;
        line.push(b' ').map_err(|_| Errno::NAMETOOLONG)?;
    }
    let arg = match arg {
        Arg::Number(n) => itoa.format(n).as_bytes(),
        Arg::Text(t) => t,
    };
    line.extend_from_slice(arg)
        .map_err(|_| Errno::NAMETOOLONG)?;
    write_control(control, line.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_climb_from_each_threshold_to_the_limit() {
        let levels = Levels {
            thresholds: [800, 900],
            limit: 1000,
        };
        let r: Vec<u64> = rungs(&levels).collect();
        assert_eq!(
            r,
            [800, 825, 850, 875, 900, 925, 950, 975, 900, 912, 924, 936, 948, 960, 972, 984]
        );
        // A threshold at or above the limit (an amount larger than it) needs no rungs.
        let levels = Levels {
            thresholds: [1000, 2000],
            limit: 1000,
        };
        assert_eq!(rungs(&levels).count(), 0);
    }
}
