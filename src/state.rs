//! `--state FILE`: the probe's samples from one run to the next.
//!
//! The probe keeps no process between runs, so its trend ([`crate::trend`]) lives in a small
//! fixed-size file, meant for a tmpfs (`/dev/shm`, a memory `emptyDir`): one `open`, one
//! `pread` and one `pwrite` of [`SIZE`] bytes per run, and one `stat` of the cgroup (to
//! know whose samples they are). The file is ours only if everything checks: the magic and
//! version, the checksum (a torn write, or two probes sharing a file), the same boot (the
//! wall-clock time of boot), the same cgroup (the inode of its `memory.stat`: a restarted
//! container keeps a memory `emptyDir` but gets a new cgroup), a clock that did not go back
//! and a last sample within the window. Anything else is started afresh: never an error.
//! Only a file that cannot be opened or written is one (the lead could never work).
//!
//! Layout, little-endian `u64`s: magic, boot time (ms of `CLOCK_REALTIME` at boot), cgroup
//! inode, last sample (ms of `CLOCK_BOOTTIME`), number of points, [`POINTS`] × (time, low),
//! FNV-1a (over words) of everything before it.

use core::ffi::CStr;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::trend::{Point, Trend, POINTS};

/// `kubemem` and the layout's version in the last byte.
const MAGIC: [u8; 8] = *b"kubemem\x01";
/// Magic, boot, cgroup, last, count.
const HEADER: usize = 5 * 8;
/// The file's size: 560 bytes.
pub const SIZE: usize = HEADER + POINTS * 16 + 8;
/// Two readings of the boot time within one boot differ by the time between reading the two
/// clocks and by NTP's slewing (at most 0.5 ms/s) over the window: far below a second. A
/// reboot takes longer than that.
const BOOT_SLACK_MS: u64 = 1000;

/// Whose samples these are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `CLOCK_REALTIME` at boot, in ms: `CLOCK_REALTIME - CLOCK_BOOTTIME`.
    pub boot: u64,
    /// The inode of the cgroup's `memory.stat`.
    pub cgroup: u64,
}

/// Now on `CLOCK_BOOTTIME` (which counts suspend, unlike the monotonic clock), and the
/// owner's boot time, in ms. Both clocks are read in the vDSO: no system call.
pub fn now() -> (u64, u64) {
    let boottime = crate::sys::clock_ms(crate::sys::BOOTTIME);
    (
        boottime,
        crate::sys::clock_ms(crate::sys::REALTIME).saturating_sub(boottime),
    )
}

/// The trend in `bytes` if it is `owner`'s, at most a window old at `now`, and whole.
pub fn decode(bytes: &[u8], owner: Owner, lead_ms: u64, now: u64) -> Option<Trend> {
    let bytes: &[u8; SIZE] = bytes.try_into().ok()?;
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    if bytes[..8] != MAGIC || word(SIZE / 8 - 1) != fnv1a(&bytes[..SIZE - 8]) {
        return None;
    }
    let (boot, cgroup, last, len) = (word(1), word(2), word(3), word(4));
    if boot.abs_diff(owner.boot) > BOOT_SLACK_MS || cgroup != owner.cgroup || last > now {
        return None;
    }
    let len = usize::try_from(len).ok().filter(|&n| n <= POINTS)?;
    let mut points = [Point::default(); POINTS];
    for (i, p) in points[..len].iter_mut().enumerate() {
        *p = Point {
            at: word(5 + 2 * i),
            low: word(6 + 2 * i),
        };
    }
    let trend = Trend::restore(lead_ms, last, &points[..len])?;
    // Stale: nothing of it would be in the window any more.
    (now - last <= trend.window()).then_some(trend)
}

/// The file's bytes for `trend`.
pub fn encode(trend: &Trend, owner: Owner, out: &mut [u8; SIZE]) {
    out.fill(0);
    let mut put = |i: usize, v: u64| out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    let points = trend.points();
    put(1, owner.boot);
    put(2, owner.cgroup);
    put(3, trend.last().unwrap_or(0));
    put(4, points.len() as u64);
    for (i, p) in points.iter().enumerate() {
        put(5 + 2 * i, p.at);
        put(6 + 2 * i, p.low);
    }
    out[..8].copy_from_slice(&MAGIC);
    seal(out);
}

/// Writes the checksum of the rest into the last word.
#[doc(hidden)]
pub fn seal(out: &mut [u8; SIZE]) {
    let sum = fnv1a(&out[..SIZE - 8]);
    out[SIZE - 8..].copy_from_slice(&sum.to_le_bytes());
}

/// FNV-1a over the 64-bit words (not bytes: a ninth of the instructions, twice per run):
/// enough to tell a torn or foreign file from ours, not meant against an adversary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0xcbf2_9ce4_8422_2325, |h, w| {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What went wrong with the state file itself (not its content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    Open(Errno),
    Read(Errno),
    Write(Errno),
}

/// One probe run's use of the state file: reads the trend (or starts afresh), adds the
/// sample `used` at `now`, writes it back. Returns the trend and the time since the previous
/// run (`None` after a fresh start).
pub fn track(
    path: &CStr,
    owner: Owner,
    lead_ms: u64,
    now: u64,
    used: u64,
) -> Result<(Trend, Option<u64>), Failed> {
    let fd = open(path).map_err(Failed::Open)?;
    let mut bytes = [0u8; SIZE];
    // One read: a regular file on tmpfs returns all that is there up to SIZE.
    let n = rustix::io::pread(&fd, &mut bytes, 0).map_err(Failed::Read)?;
    let mut trend = decode(&bytes[..n], owner, lead_ms, now).unwrap_or(Trend::new(lead_ms));
    let gap = trend.push(now, used);
    encode(&trend, owner, &mut bytes);
    let written = rustix::io::pwrite(&fd, &bytes, 0).map_err(Failed::Write)?;
    crate::sys::keep(fd);
    match written {
        SIZE => Ok((trend, gap)),
        _ => Err(Failed::Write(Errno::NOSPC)),
    }
}

/// Opens the state file for reading and writing, creating it (mode 0600), without
/// following a symbolic link at its end and without blocking (a FIFO put there fails at
/// once rather than hanging the probe).
fn open(path: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        path,
        OFlags::RDWR
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC
            | OFlags::NOCTTY,
        Mode::from_raw_mode(0o600),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        boot: 1_700_000_000_000,
        cgroup: 4242,
    };

    fn trend() -> Trend {
        let mut t = Trend::new(3000);
        for at in (10_000..=16_000).step_by(1000) {
            t.push(at, at * 1024);
        }
        t
    }

    fn bytes(t: &Trend, owner: Owner) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        encode(t, owner, &mut b);
        b
    }

    #[test]
    fn round_trip() {
        let t = trend();
        assert_eq!(decode(&bytes(&t, OWNER), OWNER, 3000, 17_000), Some(t));
        assert_eq!(SIZE, 560);
    }

    #[test]
    fn anything_not_ours_is_started_afresh() {
        let t = trend();
        let b = bytes(&t, OWNER);
        let d = |b: &[u8], owner, now| decode(b, owner, 3000, now);
        // Missing (empty), short, long.
        assert_eq!(d(&[], OWNER, 17_000), None);
        assert_eq!(d(&b[..SIZE - 1], OWNER, 17_000), None);
        // Corrupt: any bit of any byte.
        for i in 0..SIZE {
            let mut c = b;
            c[i] ^= 0x10;
            assert_eq!(d(&c, OWNER, 17_000), None, "byte {i}");
        }
        // Foreign: another cgroup, another boot; a boot time within the slack is ours.
        let other = Owner { cgroup: 1, ..OWNER };
        assert_eq!(d(&b, other, 17_000), None);
        let rebooted = Owner {
            boot: OWNER.boot + 30_000,
            ..OWNER
        };
        assert_eq!(d(&b, rebooted, 17_000), None);
        let slewed = Owner {
            boot: OWNER.boot - 3,
            ..OWNER
        };
        assert_eq!(d(&b, slewed, 17_000), Some(t));
        // The clock went back; stale (the window is 6 s).
        assert_eq!(d(&b, OWNER, 15_999), None);
        assert!(d(&b, OWNER, 22_000).is_some());
        assert_eq!(d(&b, OWNER, 22_001), None);
        // Another layout version, with a valid checksum.
        let mut v = b;
        v[7] = 2;
        seal(&mut v);
        assert_eq!(d(&v, OWNER, 17_000), None);
        // A point count beyond the array, with a valid checksum.
        let mut n = b;
        n[32..40].copy_from_slice(&(POINTS as u64 + 1).to_le_bytes());
        seal(&mut n);
        assert_eq!(d(&n, OWNER, 17_000), None);
    }

    #[test]
    fn track_creates_reads_and_rewrites_the_file() {
        let dir = std::env::temp_dir().join(format!("kubemem-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let (t, gap) = track(&c, OWNER, 3000, 1000, 5).unwrap();
        assert_eq!((t.points().len(), gap), (1, None));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
        let (t, gap) = track(&c, OWNER, 3000, 2000, 6).unwrap();
        assert_eq!((t.points().len(), gap), (2, Some(1000)));
        // Garbage in the file: afresh, and the file is ours again.
        std::fs::write(&path, b"not a state file").unwrap();
        let (t, gap) = track(&c, OWNER, 3000, 3000, 7).unwrap();
        assert_eq!((t.points().len(), gap), (1, None));
        // A directory in its place cannot be opened for writing.
        let d = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(
            track(&d, OWNER, 3000, 4000, 8),
            Err(Failed::Open(Errno::ISDIR))
        );
        crate::sys::close_kept();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
