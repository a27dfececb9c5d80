//! Pure parsers over byte slices: no I/O, no allocation, no panics on any input.
//!
//! Each parser is fuzzed (`fuzz/`) against a naive std implementation and replayed in
//! `cargo test`. The kernel formats they accept are described at each function.

use memchr::memchr;
use rustix::process::Signal;

use crate::error::{Malformed, StatKey};

/// Parses an unsigned decimal integer as the kernel writes it in a cgroup file: digits and an
/// optional single trailing `\n`, with blanks (spaces, tabs) around the digits allowed.
///
/// Blanks are accepted because other readers of these files accept them (a value padded to a
/// width, `720719872  ` then a newline, is still that number) and they cannot change its
/// meaning. Anything else the kernel would never write (a sign, a unit suffix, a carriage
/// return from a file edited on Windows, blanks inside the number, a second line, an empty
/// value) is an error, not a guess. A missing trailing newline is accepted (fixture files,
/// `echo -n`).
pub fn parse_u64(b: &[u8]) -> Result<u64, Malformed> {
    let digits = trim_blanks(match b.split_last() {
        Some((b'\n', rest)) => rest,
        _ => b,
    });
    if digits.is_empty() {
        return Err(Malformed::Empty);
    }
    if memchr(b'\r', b).is_some() {
        return Err(Malformed::CarriageReturn);
    }
    let mut value: u64 = 0;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                    .ok_or(Malformed::Overflow)?;
            }
            b'+' | b'-' if i == 0 => return Err(Malformed::Sign),
            b'a'..=b'z' | b'A'..=b'Z' if i > 0 && digits[..i].iter().all(u8::is_ascii_digit) => {
                return Err(Malformed::UnitSuffix)
            }
            b'\n' if i > 0 => return Err(Malformed::TrailingData),
            _ => return Err(Malformed::NotANumber),
        }
    }
    Ok(value)
}

/// Parses a v2 `memory.max`: `max` (no limit, `None`) or a byte count.
pub fn parse_max(b: &[u8]) -> Result<Option<u64>, Malformed> {
    let value = b.strip_suffix(b"\n").unwrap_or(b);
    match trim_blanks(value) {
        b"max" => Ok(None),
        _ => parse_u64(b).map(Some),
    }
}

/// `b` without the spaces and tabs at either end.
fn trim_blanks(mut b: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', rest)) = b.split_first() {
        b = rest;
    }
    while let Some((b' ' | b'\t', rest)) = b.split_last() {
        b = rest;
    }
    b
}

/// The `memory.stat` fields kubemem uses. `None` when the key is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// v2: page cache on the inactive LRU (hierarchical already).
    pub inactive_file: Option<u64>,
    /// v1: the same, summed over the cgroup and its descendants.
    pub total_inactive_file: Option<u64>,
    /// v1: the tightest `memory.limit_in_bytes` on the path to the root.
    pub hierarchical_memory_limit: Option<u64>,
}

/// Parses `memory.stat` (`key value` lines, either version) in one pass.
///
/// Keys are matched whole (`active_file` never matches `inactive_file`), position is never
/// relied on (the kernel adds keys in the middle), unknown keys are skipped, and the first
/// occurrence of a key wins. A wanted key with a malformed value is an error naming the key;
/// any line without a space is an error.
pub fn parse_stat(b: &[u8]) -> Result<Stat, (Option<StatKey>, Malformed)> {
    let mut stat = Stat::default();
    for line in lines(b) {
        let sp = memchr(b' ', line).ok_or((None, Malformed::StatLine))?;
        let (key, value) = (&line[..sp], &line[sp + 1..]);
        let (slot, which) = match key {
            b"inactive_file" => (&mut stat.inactive_file, StatKey::InactiveFile),
            b"total_inactive_file" => (&mut stat.total_inactive_file, StatKey::TotalInactiveFile),
            b"hierarchical_memory_limit" => (
                &mut stat.hierarchical_memory_limit,
                StatKey::HierarchicalMemoryLimit,
            ),
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(parse_u64(value).map_err(|m| (Some(which), m))?);
        }
    }
    Ok(stat)
}

/// The kernel's OOM history of a cgroup, from v2 `memory.events` or v1 `memory.oom_control`
/// (`key value` lines). A key the kernel does not have reads 0 (v1 `oom_kill` came in 4.13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomEvents {
    /// v2: times usage went above `memory.high` (and was throttled).
    pub high: u64,
    /// v2: times usage reached `memory.max`.
    pub max: u64,
    /// v2: times an allocation failed at the limit and the OOM killer was called.
    pub oom: u64,
    /// Processes the OOM killer killed (v2: in this cgroup and its descendants).
    pub oom_kill: u64,
    /// v1: 1 while the cgroup is out of memory with the OOM killer disabled.
    pub under_oom: u64,
}

/// Parses `memory.events` or `memory.oom_control`. Keys are matched whole and anywhere;
/// unknown keys (`low`, `oom_group_kill`, `oom_kill_disable`) are skipped.
pub fn parse_oom_events(b: &[u8]) -> Result<OomEvents, Malformed> {
    let mut e = OomEvents::default();
    for line in lines(b) {
        let sp = memchr(b' ', line).ok_or(Malformed::StatLine)?;
        let slot = match &line[..sp] {
            b"high" => &mut e.high,
            b"max" => &mut e.max,
            b"oom" => &mut e.oom,
            b"oom_kill" => &mut e.oom_kill,
            b"under_oom" => &mut e.under_oom,
            _ => continue,
        };
        *slot = parse_u64(&line[sp + 1..])?;
    }
    Ok(e)
}

/// The lines of `b`, without their `\n` (the last may have none).
fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = b;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line)
    })
}

/// Parses `MemTotal:` from `/proc/meminfo` and returns it in bytes.
pub fn parse_memtotal(b: &[u8]) -> Result<u64, Malformed> {
    for line in lines(b) {
        if let Some(v) = line.strip_prefix(b"MemTotal:") {
            let v = trim_start_spaces(v);
            let kb = v.strip_suffix(b" kB").ok_or(Malformed::NoMemTotal)?;
            return parse_u64(kb)?.checked_mul(1024).ok_or(Malformed::Overflow);
        }
    }
    Err(Malformed::NoMemTotal)
}

fn trim_start_spaces(mut b: &[u8]) -> &[u8] {
    while let Some((b' ', rest)) = b.split_first() {
        b = rest;
    }
    b
}

/// The memory hierarchies listed in `/proc/self/cgroup`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroup<'a> {
    /// The path of the v1 hierarchy whose controller list contains `memory`.
    pub v1_memory: Option<&'a [u8]>,
    /// The path of the unified (`0::`) hierarchy.
    pub v2: Option<&'a [u8]>,
}

/// Parses `/proc/self/cgroup` (`hierarchy-id:controller-list:path` lines).
///
/// Splits on the first two colons only: paths may contain `:` (containerd's systemd driver
/// writes `...slice:cri-containerd:<id>`). The controller list is compared name by name
/// (`cpu,cpuacct,memory` on hosts that co-mount controllers). The first matching line wins.
pub fn parse_proc_cgroup(b: &[u8]) -> Result<ProcCgroup<'_>, Malformed> {
    let mut out = ProcCgroup::default();
    for line in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let c1 = memchr(b':', line).ok_or(Malformed::CgroupLine)?;
        let (id, rest) = (&line[..c1], &line[c1 + 1..]);
        let c2 = memchr(b':', rest).ok_or(Malformed::CgroupLine)?;
        let (controllers, path) = (&rest[..c2], &rest[c2 + 1..]);
        if id.is_empty() || !id.iter().all(u8::is_ascii_digit) || path.first() != Some(&b'/') {
            return Err(Malformed::CgroupLine);
        }
        if id == b"0" {
            if controllers.is_empty() && out.v2.is_none() {
                out.v2 = Some(path);
            }
        } else if out.v1_memory.is_none()
            && controllers.split(|&c| c == b',').any(|c| c == b"memory")
        {
            out.v1_memory = Some(path);
        }
    }
    Ok(out)
}

/// The fields of one `/proc/self/mountinfo` line that kubemem needs. `root` and `mount_point`
/// are still octal-escaped as the kernel printed them; see [`unescape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mount<'a> {
    pub root: &'a [u8],
    pub mount_point: &'a [u8],
    pub fstype: &'a [u8],
    pub super_options: &'a [u8],
}

/// Parses one mountinfo line:
/// `id parent major:minor root mount-point options [optional fields...] - fstype source super-options`.
///
/// The optional fields are zero or more tokens ending at a lone `-` (parsers that assume a
/// fixed count broke on hosts without shared mounts). Super options are the rest of the line,
/// because some kernels print raw spaces there.
pub fn parse_mount(line: &[u8]) -> Result<Mount<'_>, Malformed> {
    let mut pos = 0;
    let mut next = || {
        let rest = line
            .get(pos..)
            .filter(|r| !r.is_empty())
            .ok_or(Malformed::MountinfoLine)?;
        let len = memchr(b' ', rest).unwrap_or(rest.len());
        pos += len + 1;
        Ok(&rest[..len])
    };
    let (_id, _parent, _dev) = (next()?, next()?, next()?);
    let (root, mount_point, _options) = (next()?, next()?, next()?);
    while next()? != b"-" {}
    let (fstype, _source) = (next()?, next()?);
    let super_options = line.get(pos..).unwrap_or_default();
    if root.first() != Some(&b'/') || mount_point.first() != Some(&b'/') {
        return Err(Malformed::MountinfoLine);
    }
    Ok(Mount {
        root,
        mount_point,
        fstype,
        super_options,
    })
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash) in a mountinfo path. A backslash not followed by three octal digits is kept.
pub fn unescape(b: &[u8]) -> Unescape<'_> {
    Unescape { rest: b }
}

/// Iterator returned by [`unescape`].
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    rest: &'a [u8],
}

impl Iterator for Unescape<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let (&c, rest) = self.rest.split_first()?;
        if c == b'\\' {
            if let Some(&[a, b, d]) = rest.get(..3).and_then(|s| <&[u8; 3]>::try_from(s).ok()) {
                if (b'0'..=b'3').contains(&a) && is_octal(b) && is_octal(d) {
                    self.rest = &rest[3..];
                    return Some(((a - b'0') << 6) | ((b - b'0') << 3) | (d - b'0'));
                }
            }
        }
        self.rest = rest;
        Some(c)
    }
}

fn is_octal(c: u8) -> bool {
    (b'0'..=b'7').contains(&c)
}

/// True when any `/`-separated component of `path` is `..`.
pub fn has_dotdot(path: &[u8]) -> bool {
    path.split(|&c| c == b'/').any(|c| c == b"..")
}

/// Where `path` (a cgroup path from `/proc/self/cgroup`) lies below a mount whose root is
/// `root` (escaped, from mountinfo): the remainder to append to the mount point, `""` when
/// the path is the root itself. `None` when the mount does not contain the path.
///
/// Component-wise: root `/a` contains `/a` and `/a/b`, not `/ab`. A root or path with a `..`
/// component never matches: it lies outside our cgroup namespace and nothing here can be
/// normalised safely.
pub fn strip_root<'p>(root: &[u8], path: &'p [u8]) -> Option<&'p [u8]> {
    if has_dotdot(root) || has_dotdot(path) {
        return None;
    }
    let mut n = 0;
    for c in unescape(root) {
        if path.get(n) != Some(&c) {
            return None;
        }
        n += 1;
    }
    let rest = &path[n..];
    if n == 1 {
        // Root `/`: everything is below it.
        return Some(if path == b"/" { b"" } else { path });
    }
    match rest.first() {
        None => Some(rest),
        Some(b'/') => Some(rest),
        Some(_) => None,
    }
}

/// True when the comma-separated `options` list holds `name` as a whole entry.
pub fn has_option(options: &[u8], name: &[u8]) -> bool {
    options.split(|&c| c == b',').any(|o| o == name)
}

/// A memory threshold from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// A percent of the effective limit, in hundredths of a percent (`92.5` is 9250).
    Percent(u32),
    /// An amount of memory in use, in bytes.
    Bytes(u64),
}

/// Why a number with a unit (a threshold, a duration) could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadNumber {
    NotANumber,
    /// A percent with more than two decimals, or a quantity with more than nine.
    TooPrecise,
    Above100,
    UnknownUnit,
    Overflow,
}

impl BadNumber {
    /// The reason; the caller names the units it accepts.
    pub const fn reason(self) -> &'static str {
        match self {
            BadNumber::NotANumber => "not a number",
            BadNumber::TooPrecise => "too many decimals",
            BadNumber::Above100 => "a percent above 100",
            BadNumber::UnknownUnit => "unknown unit",
            BadNumber::Overflow => "too large",
        }
    }
}

/// Parses a threshold: a percent (`85`, `85%`, `92.5`) or a Kubernetes quantity of bytes
/// (`900Mi`, `1.5Gi`, `512M`, `2G`; binary `Ki Mi Gi Ti`, decimal `k M G T`).
///
/// A bare number is a percent, as in the C kubemem. Quantities round up to a whole byte, as
/// Kubernetes does.
pub fn parse_threshold(b: &[u8]) -> Result<Threshold, BadNumber> {
    const UNITS: [(&[u8], u64); 8] = [
        (b"Ki", 1 << 10),
        (b"Mi", 1 << 20),
        (b"Gi", 1 << 30),
        (b"Ti", 1 << 40),
        (b"k", 1_000),
        (b"M", 1_000_000),
        (b"G", 1_000_000_000),
        (b"T", 1_000_000_000_000),
    ];
    if let Some(num) = b.strip_suffix(b"%") {
        return percent(num);
    }
    match split_unit(b) {
        (num, []) => percent(num),
        (num, unit) => scaled(num, unit, &UNITS).map(Threshold::Bytes),
    }
}

/// Parses a duration, a decimal number and a unit (`100ms`, `30s`, `1.5s`, `1m`, `2h`), into
/// milliseconds, rounded up to a whole one. The unit is required: a bare `30` could mean
/// seconds or milliseconds.
pub fn parse_duration(b: &[u8]) -> Result<u64, BadNumber> {
    const UNITS: [(&[u8], u64); 4] = [(b"ms", 1), (b"s", 1_000), (b"m", 60_000), (b"h", 3_600_000)];
    let (num, unit) = split_unit(b);
    scaled(num, unit, &UNITS)
}

/// `12.5Mi` -> (`12.5`, `Mi`): the unit starts at the first byte that is neither a digit nor
/// a point.
fn split_unit(b: &[u8]) -> (&[u8], &[u8]) {
    let split = b
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(b.len());
    b.split_at(split)
}

/// `num` (at most nine decimals) times the multiplier of `unit` in `units`, rounded up.
fn scaled(num: &[u8], unit: &[u8], units: &[(&[u8], u64)]) -> Result<u64, BadNumber> {
    let mult = units
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or(BadNumber::UnknownUnit)?
        .1;
    let (mantissa, scale) = decimal(num, 9)?;
    // mantissa < 10^20 and mult <= 10^12 fit u128 with room.
    let value = (u128::from(mantissa) * u128::from(mult)).div_ceil(10u128.pow(scale));
    u64::try_from(value).map_err(|_| BadNumber::Overflow)
}

fn percent(num: &[u8]) -> Result<Threshold, BadNumber> {
    let (mantissa, scale) = decimal(num, 2)?;
    match mantissa.checked_mul(10u64.pow(2 - scale)) {
        Some(h) if h <= 10_000 => Ok(Threshold::Percent(h as u32)),
        _ => Err(BadNumber::Above100),
    }
}

/// `12.345` -> (12345, 3). At least one digit before the point; at most `max_scale` after.
fn decimal(b: &[u8], max_scale: u32) -> Result<(u64, u32), BadNumber> {
    let (int, frac) = match memchr(b'.', b) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let frac = frac.unwrap_or_default();
    if int.is_empty() || (b.last() == Some(&b'.')) {
        return Err(BadNumber::NotANumber);
    }
    if frac.len() > max_scale as usize {
        return Err(BadNumber::TooPrecise);
    }
    let mut m: u64 = 0;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return Err(BadNumber::NotANumber);
        }
        m = m
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(c - b'0')))
            .ok_or(BadNumber::Overflow)?;
    }
    Ok((m, frac.len() as u32))
}

/// Signal names as `kill -l` prints them, for the command line and the log lines; the numbers
/// are the architecture's, through rustix.
const SIGNALS: [(&str, Signal); 31] = [
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABORT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("STKFLT", Signal::STKFLT),
    ("CHLD", Signal::CHILD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALARM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("PWR", Signal::POWER),
    ("SYS", Signal::SYS),
];

/// Parses a signal: a name with or without `SIG`, in any case (`TERM`, `SIGTERM`, `usr1`), or
/// its number (`15`). Real-time signals have no name and are not accepted.
pub fn parse_signal(b: &[u8]) -> Option<Signal> {
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        let n = parse_u64(b).ok()?;
        return Signal::from_named_raw(i32::try_from(n).ok()?);
    }
    let name = match b.get(..3) {
        Some(sig) if sig.eq_ignore_ascii_case(b"SIG") => &b[3..],
        _ => b,
    };
    SIGNALS
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, s)| s)
}

/// The name of a signal without `SIG` (`TERM`), as [`parse_signal`] reads it back.
pub fn signal_name(s: Signal) -> &'static str {
    SIGNALS
        .iter()
        .find(|&&(_, t)| t == s)
        .map_or("?", |&(n, _)| n)
}

#[cfg(test)]
mod tests;
