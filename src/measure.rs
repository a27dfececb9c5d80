//! From a cgroup directory to one sample: the effective limit, which cgroup carries it, and
//! the memory that counts as used there.
//!
//! - limit = the tightest of our own limit, every visible ancestor's (up to the mount point)
//!   and, on v1, `hierarchical_memory_limit`, which is the only way to see a parent's limit
//!   when the mount root hides it; none, or one at or above MemTotal, means MemTotal.
//!   kubemem-node bounds both for a pod: the walk ends at the pod cgroup (`mount_len`) and
//!   `hierarchical_memory_limit` is ignored (`Location::hierarchical`), since kubepods'
//!   limit is the node's allocatable, not the pod's.
//! - used = the working set of the cgroup carrying that limit, as cAdvisor, kubelet and
//!   `kubectl top` count it: usage minus inactive page cache (v2 `inactive_file`, v1
//!   `total_inactive_file`, which includes descendants), clamped at 0. Dividing our own
//!   usage by an ancestor's limit would understate the danger (.NET's bug #113193).
//!
//! Which cgroup carries the limit is resolved once ([`resolve`]). The probe then reads that
//! cgroup's usage and exits ([`measure`]); the supervisor keeps its files open in a
//! [`Sampler`] and re-reads them every interval. Both turn raw usage into a sample the same
//! way ([`finish`]).

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Fault, File};
use crate::locate::{proc_path, Location, Version};
use crate::parse::{
    parse_max, parse_memtotal, parse_oom_events, parse_stat, parse_u64, OomEvents, Stat,
};
use crate::path::CPath;
use crate::read;
use crate::sys::Buf;

/// What counts as used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// usage minus inactive file cache (the kubelet's working set).
    WorkingSet,
    /// Raw usage, page cache included (what the C kubemem measured).
    Total,
}

impl Usage {
    pub const fn name(self) -> &'static str {
        match self {
            Usage::WorkingSet => "working-set",
            Usage::Total => "total",
        }
    }
}

/// Where the effective limit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// Our own cgroup's limit.
    Cgroup,
    /// An ancestor's: a visible directory, or v1 `hierarchical_memory_limit`.
    Ancestor,
    /// No limit below the machine's memory: MemTotal.
    Host,
}

impl LimitSource {
    pub const fn name(self) -> &'static str {
        match self {
            LimitSource::Cgroup => "cgroup",
            LimitSource::Ancestor => "ancestor",
            LimitSource::Host => "host",
        }
    }
}

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub used: u64,
    pub limit: u64,
    pub source: LimitSource,
    /// The measured cgroup: `loc.dir[..at]` (our own directory or a visible ancestor).
    pub at: usize,
}

/// `memory.current` and friends: at most 20 digits and a newline; the slack lets a sign or a
/// CR be reported as such rather than as "too large".
const VALUE_BUF: usize = 32;
/// `memory.stat`: about 2 KiB on 6.x kernels (v1 with `total_*` rows is the largest); 8 KiB
/// leaves room for the keys future kernels add.
const STAT_BUF: usize = 8 << 10;
/// `/proc/meminfo`: about 1.5 KiB (some 55 lines of ~28 bytes).
const MEMINFO_BUF: usize = 8 << 10;

/// `memory.events` (6 short lines, about 80 bytes) or `memory.oom_control` (3 lines).
const EVENTS_BUF: usize = 512;

/// The file holding a cgroup version's OOM history.
const fn events_file(version: Version) -> File {
    match version {
        Version::V2 => File::Events,
        Version::V1 => File::OomControl,
    }
}

/// The kernel's OOM history of our own cgroup (`loc.dir`): v2 `memory.events` (which
/// counts the cgroup's descendants too), v1 `memory.oom_control` (the kills of tasks in
/// this cgroup). Informational: `None` when it cannot be read or parsed, never an error
/// that fails the probe (v1 kernels before 4.13 have no `oom_kill`; it reads 0).
pub fn oom_events(loc: &Location) -> Option<OomEvents> {
    let mut name = CPath::new();
    let mut buf = Buf::<EVENTS_BUF>::new();
    let path = loc
        .dir
        .file(loc.dir.len(), events_file(loc.version).name(), &mut name)?;
    parse_oom_events(read::read_file(path, &mut buf).ok()?).ok()
}

/// The cgroup carrying the effective limit, resolved once.
#[derive(Clone, Copy, Debug)]
struct Carrier {
    limit: u64,
    source: LimitSource,
    /// The carrying cgroup: `loc.dir[..at]`.
    at: usize,
    memtotal: u64,
    /// v1: our own `memory.stat`, read for `hierarchical_memory_limit`; the working set
    /// reuses it when `at` is our own cgroup.
    own_stat: Option<Stat>,
}

/// The usage and limit files of a cgroup version.
const fn files(version: Version) -> (File, File) {
    match version {
        Version::V2 => (File::Current, File::Max),
        Version::V1 => (File::UsageInBytes, File::LimitInBytes),
    }
}

/// Reads one sample of the cgroup at `loc`. `root` is the `--root` prefix. `needs_stat`
/// receives (raw usage, limit) and says whether the working set is needed; when it says no,
/// `memory.stat` is not read (unless v1 needs it for the limit).
pub fn measure(
    root: &[u8],
    loc: &Location,
    usage: Usage,
    needs_stat: impl Fn(u64, u64) -> bool,
) -> Result<Sample, Error> {
    let mut name = CPath::new();
    let mut value = Buf::<VALUE_BUF>::new();
    let c = resolve(root, loc, &mut name, &mut value)?;
    let usage_file = files(loc.version).0;
    let raw = read_value(loc, usage_file, c.at, false, &mut name, &mut value)?.unwrap_or(0);
    let raw = Sample {
        used: raw,
        limit: c.limit,
        source: c.source,
        at: c.at,
    };
    let own_stat = c.own_stat.filter(|_| c.at == loc.dir.len());
    finish(loc.version, usage, raw, needs_stat, || match own_stat {
        Some(s) => Ok(Some(s)),
        None => read_stat(loc, c.at, &mut name),
    })
}

/// Finds the effective limit and the cgroup carrying it: the tightest of our own limit,
/// every visible ancestor's and (v1) `hierarchical_memory_limit`; MemTotal when none is
/// below it. The buffers are the caller's, so that the probe's stack holds one set.
fn resolve(
    root: &[u8],
    loc: &Location,
    name: &mut CPath,
    value: &mut Buf<VALUE_BUF>,
) -> Result<Carrier, Error> {
    let limit_file = files(loc.version).1;
    let memtotal = {
        let mut buf = Buf::<MEMINFO_BUF>::new();
        let err = |fault| Error::proc(File::ProcMeminfo, fault);
        let text =
            read::read_file(proc_path(root, File::ProcMeminfo, name)?, &mut buf).map_err(err)?;
        parse_memtotal(text).map_err(|m| err(Fault::Malformed(m)))?
    };

    let own = loc.dir.len();
    let mut best = read_value(loc, limit_file, own, false, name, value)?
        .map(|l| (l, LimitSource::Cgroup, own));
    let tighter =
        |l: u64, best: Option<(u64, LimitSource, usize)>| best.is_none_or(|(b, _, _)| l < b);
    let mut at = own;
    while let Some(parent) = loc.dir.parent_len(at).filter(|&p| p >= loc.mount_len) {
        at = parent;
        if let Some(l) = read_value(loc, limit_file, at, true, name, value)? {
            if tighter(l, best) {
                best = Some((l, LimitSource::Ancestor, at));
            }
        }
    }

    // v1: `hierarchical_memory_limit` reveals ancestors above the mount root.
    let mut own_stat: Option<Stat> = None;
    if loc.version == Version::V1 {
        own_stat = read_stat(loc, own, name)?;
        let hierarchical = own_stat.and_then(|s| s.hierarchical_memory_limit);
        if let Some(h) = hierarchical.filter(|_| loc.hierarchical) {
            if tighter(h, best) {
                best = Some((h, LimitSource::Ancestor, own));
            }
        }
    }
    let (limit, source, at) = match best {
        Some(b) if b.0 < memtotal => b,
        _ => (memtotal, LimitSource::Host, own),
    };
    Ok(Carrier {
        limit,
        source,
        at,
        memtotal,
        own_stat,
    })
}

/// From raw usage (in `raw.used`) to the sample: the working set when `usage` asks for it
/// and `needs_stat` says it can matter, raw usage otherwise. `stat` reads `memory.stat`
/// (`None` when the file does not exist: raw usage, as cAdvisor does).
fn finish(
    version: Version,
    usage: Usage,
    raw: Sample,
    needs_stat: impl Fn(u64, u64) -> bool,
    stat: impl FnOnce() -> Result<Option<Stat>, Error>,
) -> Result<Sample, Error> {
    if usage == Usage::Total || !needs_stat(raw.used, raw.limit) {
        return Ok(raw);
    }
    let inactive = stat()?.and_then(|s| match version {
        Version::V2 => s.inactive_file,
        Version::V1 => s.total_inactive_file,
    });
    Ok(Sample {
        used: raw.used.saturating_sub(inactive.unwrap_or(0)),
        ..raw
    })
}

/// The cgroup files of the cgroup carrying the limit, held open and re-read from offset 0
/// on every sample: one `pread` per file, no `open`, no path building. The limit is re-read
/// too (an in-place pod resize changes it); which cgroup carries it is resolved once, when
/// the sampler is opened, as the probe resolves it.
pub struct Sampler {
    version: Version,
    usage: Usage,
    memtotal: u64,
    /// v1: `hierarchical_memory_limit` counts ([`Location::hierarchical`]).
    hierarchical: bool,
    /// The measured cgroup is `loc.dir[..at]`; our own is `loc.dir[..own]`.
    at: usize,
    own: usize,
    usage_fd: OwnedFd,
    /// `None` when the cgroup has no limit file (a v2 root).
    limit_fd: Option<OwnedFd>,
    /// `None` when the cgroup has no `memory.stat`.
    stat_fd: Option<OwnedFd>,
    /// Our own cgroup's OOM history (see [`oom_events`]); `None` when it cannot be opened.
    events_fd: Option<OwnedFd>,
}

impl Sampler {
    /// Resolves the cgroup carrying the limit below `loc` and opens its files.
    pub fn open(root: &[u8], loc: &Location, usage: Usage) -> Result<Sampler, Error> {
        let mut name = CPath::new();
        let mut value = Buf::<VALUE_BUF>::new();
        let c = resolve(root, loc, &mut name, &mut value)?;
        let (usage_file, limit_file) = files(loc.version);
        Ok(Sampler {
            version: loc.version,
            usage,
            memtotal: c.memtotal,
            hierarchical: loc.hierarchical,
            at: c.at,
            own: loc.dir.len(),
            usage_fd: open_in(loc, usage_file, c.at, &mut name)?,
            limit_fd: if_exists(open_in(loc, limit_file, c.at, &mut name))?,
            stat_fd: if_exists(open_in(loc, File::Stat, c.at, &mut name))?,
            events_fd: open_in(loc, events_file(loc.version), loc.dir.len(), &mut name).ok(),
        })
    }

    /// Reads one sample; `needs_stat` as for [`measure`]. Allocation-free.
    pub fn sample(&self, needs_stat: impl Fn(u64, u64) -> bool) -> Result<Sample, Error> {
        let mut value = Buf::<VALUE_BUF>::new();
        let mut stat_buf = Buf::<STAT_BUF>::new();
        let (usage_file, limit_file) = files(self.version);
        let here = match self.at == self.own {
            true => LimitSource::Cgroup,
            false => LimitSource::Ancestor,
        };
        let mut best = match &self.limit_fd {
            Some(fd) => decode_value(limit_file, self.at, read::reread(fd, &mut value))?,
            None => None,
        }
        .map(|l| (l, here));
        let stat = match self.version {
            Version::V1 => self.stat(&mut stat_buf)?,
            Version::V2 => None,
        };
        let hierarchical = stat.and_then(|s| s.hierarchical_memory_limit);
        if let Some(h) = hierarchical.filter(|_| self.hierarchical) {
            if best.is_none_or(|(b, _)| h < b) {
                best = Some((h, LimitSource::Ancestor));
            }
        }
        let (limit, source) = match best {
            Some(b) if b.0 < self.memtotal => b,
            _ => (self.memtotal, LimitSource::Host),
        };
        let raw = decode_value(
            usage_file,
            self.at,
            read::reread(&self.usage_fd, &mut value),
        )?;
        let raw = Sample {
            used: raw.unwrap_or(0),
            limit,
            source,
            at: self.at,
        };
        finish(self.version, self.usage, raw, needs_stat, || match stat {
            Some(s) => Ok(Some(s)),
            None => self.stat(&mut stat_buf),
        })
    }

    /// Our own cgroup's OOM history, re-read (`None` when it cannot be read).
    pub fn oom_events(&self) -> Option<OomEvents> {
        let mut buf = Buf::<EVENTS_BUF>::new();
        let text = read::reread(self.events_fd.as_ref()?, &mut buf).ok()?;
        parse_oom_events(text).ok()
    }

    /// The measured cgroup's usage file (v1 threshold notifications name it).
    pub fn usage_fd(&self) -> BorrowedFd<'_> {
        self.usage_fd.as_fd()
    }

    /// The measured cgroup: `loc.dir[..at]`.
    pub fn at(&self) -> usize {
        self.at
    }

    fn stat(&self, buf: &mut Buf<STAT_BUF>) -> Result<Option<Stat>, Error> {
        match &self.stat_fd {
            Some(fd) => decode_stat(self.at, read::reread(fd, buf)).map(Some),
            None => Ok(None),
        }
    }
}

/// Opens `file` in `loc.dir[..at]`.
fn open_in(loc: &Location, file: File, at: usize, name: &mut CPath) -> Result<OwnedFd, Error> {
    let err = in_cgroup(file, at);
    let path = loc
        .dir
        .file(at, file.name(), name)
        .ok_or(err(Fault::PathTooLong))?;
    read::open(path).map_err(|e| err(Fault::Open(e)))
}

/// `None` for a file that does not exist.
fn if_exists<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Err(e) if e.fault == Fault::Open(rustix::io::Errno::NOENT) => Ok(None),
        r => r.map(Some),
    }
}

/// Reads a single-value `file` in `loc.dir[..at]`; a missing file is `None` when `optional`.
/// The descriptor is left open, as [`read::read_file`] leaves it.
fn read_value(
    loc: &Location,
    file: File,
    at: usize,
    optional: bool,
    name: &mut CPath,
    buf: &mut Buf<VALUE_BUF>,
) -> Result<Option<u64>, Error> {
    let fd = match open_in(loc, file, at, name) {
        r if optional => if_exists(r)?,
        r => Some(r?),
    };
    match fd {
        Some(fd) => decode_value(file, at, read::read_kept(fd, buf)),
        None => Ok(None),
    }
}

/// Reads `memory.stat` in `loc.dir[..at]`; `None` if the file does not exist (then the working
/// set falls back to raw usage, as cAdvisor does).
///
/// Its buffer is its own and it is never inlined, so the 8 KiB are on the stack only while
/// `memory.stat` is read: in the caller's frame they were probed page by page (two page
/// faults) on every run, also on the healthy v2 path, which does not read the file.
#[inline(never)]
fn read_stat(loc: &Location, at: usize, name: &mut CPath) -> Result<Option<Stat>, Error> {
    let mut buf = Buf::<STAT_BUF>::new();
    match if_exists(open_in(loc, File::Stat, at, name))? {
        Some(fd) => decode_stat(at, read::read_kept(fd, &mut buf)).map(Some),
        None => Ok(None),
    }
}

/// The value of a single-value `file` read in `loc.dir[..at]` (`memory.max` may say `max`).
fn decode_value(file: File, at: usize, read: Result<&[u8], Fault>) -> Result<Option<u64>, Error> {
    let err = in_cgroup(file, at);
    match file {
        File::Max => parse_max(read.map_err(err)?),
        _ => parse_u64(read.map_err(err)?).map(Some),
    }
    .map_err(|m| err(Fault::Malformed(m)))
}

/// The fields of a `memory.stat` read in `loc.dir[..at]`.
fn decode_stat(at: usize, read: Result<&[u8], Fault>) -> Result<Stat, Error> {
    let err = in_cgroup(File::Stat, at);
    parse_stat(read.map_err(err)?).map_err(|(key, m)| match key {
        Some(k) => err(Fault::Stat(k, m)),
        None => err(Fault::Malformed(m)),
    })
}

/// Errors about `file` in `loc.dir[..at]`.
fn in_cgroup(file: File, at: usize) -> impl Fn(Fault) -> Error + Copy {
    move |fault| Error {
        fault,
        file,
        at: at as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locate::locate;
    use std::path::{Path, PathBuf};

    fn located(root: &Path) -> Result<Location, Error> {
        let mut loc = Location::new();
        locate(root.to_str().unwrap().as_bytes(), &mut loc).map(|()| loc)
    }

    fn sampled(root: &Path, loc: &Location, usage: Usage, stat: bool) -> Result<Sample, Error> {
        let root = root.to_str().unwrap().as_bytes();
        Sampler::open(root, loc, usage).and_then(|s| s.sample(|_, _| stat))
    }

    /// On every fixture tree, the supervisor's first sample is the probe's measurement, the
    /// errors included.
    #[test]
    fn a_sampler_measures_what_the_probe_measures() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut compared = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let root = entry.unwrap().path();
            let Ok(loc) = located(&root) else { continue };
            for usage in [Usage::WorkingSet, Usage::Total] {
                for stat in [false, true] {
                    let bytes = root.to_str().unwrap().as_bytes();
                    let probe = measure(bytes, &loc, usage, |_, _| stat);
                    let sample = sampled(&root, &loc, usage, stat);
                    assert_eq!(sample, probe, "{} {usage:?} {stat}", root.display());
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "only {compared} comparisons");
    }

    fn tree(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("kubemem-sampler-{}-{name}", std::process::id()));
        let cg = root.join("sys/fs/cgroup");
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(root.join("proc/self/cgroup"), "0::/\n").unwrap();
        std::fs::write(
            root.join("proc/self/mountinfo"),
            "2 1 0:2 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        std::fs::write(root.join("proc/meminfo"), "MemTotal: 16384000 kB\n").unwrap();
        std::fs::write(cg.join("memory.current"), "500\n").unwrap();
        std::fs::write(cg.join("memory.max"), "1000\n").unwrap();
        std::fs::write(cg.join("memory.stat"), "inactive_file 100\n").unwrap();
        root
    }

    /// Rewrites `file` in place (the sampler's descriptor keeps the same inode).
    fn set(root: &Path, file: &str, text: &str) {
        std::fs::write(root.join("sys/fs/cgroup").join(file), text).unwrap();
    }

    #[test]
    fn a_sampler_rereads_usage_limit_and_stat() {
        let root = tree("reread");
        let loc = located(&root).unwrap();
        let sampler =
            Sampler::open(root.to_str().unwrap().as_bytes(), &loc, Usage::WorkingSet).unwrap();
        let used_limit = |stat| {
            let s = sampler.sample(|_, _| stat).unwrap();
            (s.used, s.limit, s.source)
        };
        assert_eq!(used_limit(true), (400, 1000, LimitSource::Cgroup));
        assert_eq!(used_limit(false), (500, 1000, LimitSource::Cgroup));
        set(&root, "memory.current", "900\n");
        set(&root, "memory.stat", "inactive_file 50\n");
        assert_eq!(used_limit(true), (850, 1000, LimitSource::Cgroup));
        // An in-place resize, then the limit removed.
        set(&root, "memory.max", "2000\n");
        assert_eq!(used_limit(true), (850, 2000, LimitSource::Cgroup));
        set(&root, "memory.max", "max\n");
        let host = 16_384_000 * 1024;
        assert_eq!(used_limit(true), (850, host, LimitSource::Host));
        // A broken file is an error of this sample only.
        set(&root, "memory.current", "9\r\n");
        let e = sampler.sample(|_, _| true).unwrap_err();
        assert_eq!((e.file, e.at as usize), (File::Current, loc.dir.len()));
        set(&root, "memory.current", "1000\n");
        assert_eq!(used_limit(true), (950, host, LimitSource::Host));
        std::fs::remove_dir_all(root).unwrap();
    }
}
