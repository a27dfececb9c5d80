//! From a cgroup directory to one sample: the effective limit, which cgroup carries it, and
//! the memory that counts as used there.
//!
//! - limit = the tightest of our own limit, every visible ancestor's (up to the mount point)
//!   and, on v1, `hierarchical_memory_limit`, which is the only way to see a parent's limit
//!   when the mount root hides it; none, or one at or above MemTotal, means MemTotal.
//! - used = the working set of the cgroup carrying that limit, as cAdvisor, kubelet and
//!   `kubectl top` count it: usage minus inactive page cache (v2 `inactive_file`, v1
//!   `total_inactive_file`, which includes descendants), clamped at 0. Dividing our own
//!   usage by an ancestor's limit would understate the danger (.NET's bug #113193).

use crate::error::{Error, Fault, File};
use crate::locate::{proc_path, Location, Version};
use crate::parse::{parse_max, parse_memtotal, parse_stat, parse_u64, Stat};
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

/// Reads one sample of the cgroup at `loc`. `root` is the `--root` prefix. `needs_stat`
/// receives (raw usage, limit) and says whether the working set is needed; when it says no,
/// `memory.stat` is not read (unless v1 needs it for the limit).
pub fn measure(
    root: &[u8],
    loc: &Location,
    usage: Usage,
    needs_stat: impl Fn(u64, u64) -> bool,
) -> Result<Sample, Error> {
    let (usage_file, limit_file) = match loc.version {
        Version::V2 => (File::Current, File::Max),
        Version::V1 => (File::UsageInBytes, File::LimitInBytes),
    };
    let mut name = CPath::new();
    let mut value = Buf::<VALUE_BUF>::new();
    let mut stat_buf = Buf::<STAT_BUF>::new();

    let memtotal = {
        let mut buf = Buf::<MEMINFO_BUF>::new();
        let err = |fault| Error::proc(File::ProcMeminfo, fault);
        let text = read::read_file(proc_path(root, File::ProcMeminfo, &mut name)?, &mut buf)
            .map_err(err)?;
        parse_memtotal(text).map_err(|m| err(Fault::Malformed(m)))?
    };

    let own = loc.dir.len();
    let mut best = read_value(loc, limit_file, own, false, &mut name, &mut value)?
        .map(|l| (l, LimitSource::Cgroup, own));
    let tighter =
        |l: u64, best: Option<(u64, LimitSource, usize)>| best.is_none_or(|(b, _, _)| l < b);
    let mut at = own;
    while let Some(parent) = loc.dir.parent_len(at).filter(|&p| p >= loc.mount_len) {
        at = parent;
        if let Some(l) = read_value(loc, limit_file, at, true, &mut name, &mut value)? {
            if tighter(l, best) {
                best = Some((l, LimitSource::Ancestor, at));
            }
        }
    }

    // v1: `hierarchical_memory_limit` reveals ancestors above the mount root.
    let mut own_stat: Option<Stat> = None;
    if loc.version == Version::V1 {
        own_stat = read_stat(loc, own, &mut name, &mut stat_buf)?;
        if let Some(h) = own_stat.and_then(|s| s.hierarchical_memory_limit) {
            if tighter(h, best) {
                best = Some((h, LimitSource::Ancestor, own));
            }
        }
    }
    let (limit, source, at) = match best {
        Some(b) if b.0 < memtotal => b,
        _ => (memtotal, LimitSource::Host, own),
    };

    let raw = read_value(loc, usage_file, at, false, &mut name, &mut value)?.unwrap_or(0);
    if usage == Usage::Total || !needs_stat(raw, limit) {
        return Ok(Sample {
            used: raw,
            limit,
            source,
            at,
        });
    }
    let stat = match own_stat {
        Some(s) if at == own => Some(s),
        _ => read_stat(loc, at, &mut name, &mut stat_buf)?,
    };
    let inactive = stat.and_then(|s| match loc.version {
        Version::V2 => s.inactive_file,
        Version::V1 => s.total_inactive_file,
    });
    Ok(Sample {
        used: raw.saturating_sub(inactive.unwrap_or(0)),
        limit,
        source,
        at,
    })
}

/// Reads a single-value `file` in `loc.dir[..at]`; a missing file is `None` when `optional`.
fn read_value(
    loc: &Location,
    file: File,
    at: usize,
    optional: bool,
    name: &mut CPath,
    buf: &mut Buf<VALUE_BUF>,
) -> Result<Option<u64>, Error> {
    let err = |fault| Error {
        fault,
        file,
        at: at as u16,
    };
    let path = loc
        .dir
        .file(at, file.name(), name)
        .ok_or(err(Fault::PathTooLong))?;
    let text = match read::read_file(path, buf) {
        Err(Fault::Open(rustix::io::Errno::NOENT)) if optional => return Ok(None),
        r => r.map_err(err)?,
    };
    match file {
        File::Max => parse_max(text),
        _ => parse_u64(text).map(Some),
    }
    .map_err(|m| err(Fault::Malformed(m)))
}

/// Reads `memory.stat` in `loc.dir[..at]`; `None` if the file does not exist (then the working
/// set falls back to raw usage, as cAdvisor does).
fn read_stat(
    loc: &Location,
    at: usize,
    name: &mut CPath,
    buf: &mut Buf<STAT_BUF>,
) -> Result<Option<Stat>, Error> {
    let err = |fault| Error {
        fault,
        file: File::Stat,
        at: at as u16,
    };
    let path = loc
        .dir
        .file(at, File::Stat.name(), name)
        .ok_or(err(Fault::PathTooLong))?;
    let text = match read::read_file(path, buf) {
        Err(Fault::Open(rustix::io::Errno::NOENT)) => return Ok(None),
        r => r.map_err(err)?,
    };
    parse_stat(text).map(Some).map_err(|(key, m)| match key {
        Some(k) => err(Fault::Stat(k, m)),
        None => err(Fault::Malformed(m)),
    })
}
