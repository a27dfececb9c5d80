//! Finding our memory cgroup directory: `/proc/self/cgroup` says which cgroup, mountinfo says
//! where its hierarchy is mounted. Never assumes `/sys/fs/cgroup`.
//!
//! Rules (cAdvisor, OpenJDK, automemlimit and their bug trackers agree on these):
//! - a v1 `memory` hierarchy (line and mount) wins over `0::`: on hybrid hosts the unified
//!   mount has no memory controller;
//! - dir = mount point + (cgroup path minus mount root), compared component-wise, after octal
//!   unescaping; a root or path with `..` never matches;
//! - the first usable mount wins, except that a later mount at the same mount point hides it
//!   (stacked mounts in nested containers).

use core::ffi::CStr;

use crate::error::{Error, Fault, File};
use memchr::{memchr, memmem, memrchr};

use crate::parse::{has_option, parse_mount, parse_proc_cgroup, strip_root, unescape, ProcCgroup};
use crate::path::{self, CPath, PathBuf, PATH_MAX};
use crate::read;
use crate::sys::{Buf, Scratch};

/// Which cgroup version the measured hierarchy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub const fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// Our cgroup directory and how far up its visible ancestors go.
#[derive(Clone)]
pub struct Location {
    pub version: Version,
    /// The cgroup directory, including the `--root` prefix.
    pub dir: PathBuf,
    /// The length of the mount point's path inside `dir`: ancestors are the prefixes of `dir`
    /// ending at a `/` and at least this long.
    pub mount_len: usize,
    /// v1: whether `memory.stat`'s `hierarchical_memory_limit` counts. It is the tightest
    /// limit of every ancestor, also those above `mount_len`: the probe needs it (a mount
    /// root hides its parents); kubemem-node, whose `mount_len` ends the walk at the pod's
    /// cgroup on purpose, must not see kubepods' limit (the node's allocatable) through it.
    pub hierarchical: bool,
}

impl Location {
    pub const fn new() -> Location {
        Location {
            version: Version::V2,
            dir: PathBuf::new(),
            mount_len: 0,
            hierarchical: true,
        }
    }
}

impl Default for Location {
    fn default() -> Self {
        Self::new()
    }
}

/// One hierarchy's best mount so far.
#[derive(Clone)]
struct Candidate {
    found: bool,
    dir: PathBuf,
    mount_len: usize,
    /// `" " + mount point + " "` as mountinfo spells it (escaped): a later line can only hide
    /// this mount if it holds these bytes, so [`Selector::feed_lines`] searches for them.
    needle: Buf<PATH_MAX>,
}

impl Candidate {
    #[inline(always)]
    const fn new() -> Candidate {
        Candidate {
            found: false,
            dir: PathBuf::new(),
            mount_len: 0,
            needle: Buf::new(),
        }
    }

    /// Considers one mount for the cgroup `path`: a later mount at the same mount point hides
    /// the current candidate; a usable mount becomes the candidate if there is none.
    ///
    /// Mount points are compared as mountinfo spells them: the kernel escapes the same path
    /// the same way every time.
    fn consider(&mut self, mount_point: &[u8], usable: Option<&[u8]>) -> Result<(), Fault> {
        if self.found && self.mount_point() == mount_point {
            self.found = false;
        }
        let Some(rest) = usable else { return Ok(()) };
        if self.found {
            return Ok(());
        }
        self.needle.clear();
        [b" ", mount_point, b" "]
            .iter()
            .try_for_each(|part| self.needle.extend_from_slice(part))
            .map_err(|_| Fault::PathTooLong)?;
        self.dir.clear();
        if mount_point != b"/" {
            let unescaped = match memchr(b'\\', mount_point) {
                None => self.dir.append(mount_point),
                Some(_) => self.dir.extend(unescape(mount_point)),
            };
            unescaped.map_err(|_| Fault::PathTooLong)?;
        }
        self.mount_len = self.dir.len().max(1);
        self.dir.append(rest).map_err(|_| Fault::PathTooLong)?;
        if self.dir.is_empty() {
            self.dir.push(b'/').map_err(|_| Fault::PathTooLong)?;
        }
        self.found = true;
        Ok(())
    }

    fn mount_point(&self) -> &[u8] {
        let n = self.needle.as_bytes();
        n.get(1..n.len() - 1).unwrap_or_default()
    }

    /// Where the next line that could hide this candidate starts its match, if any.
    fn next_hider(&self, text: &[u8]) -> Option<usize> {
        if !self.found {
            return None;
        }
        memmem::find(text, self.needle.as_bytes())
    }
}

/// Picks the memory cgroup directory from mountinfo lines. Pure: the caller does the reading,
/// so this is fuzzed and tested on byte strings.
#[derive(Clone)]
pub struct Selector<'p> {
    paths: ProcCgroup<'p>,
    v1: Candidate,
    v2: Candidate,
}

impl<'p> Selector<'p> {
    // Inlined so that the candidates' buffers are built in place, not moved (16 KiB).
    #[inline(always)]
    pub fn new(paths: ProcCgroup<'p>) -> Self {
        Selector {
            paths,
            v1: Candidate::new(),
            v2: Candidate::new(),
        }
    }

    /// Feeds one mountinfo line (without its newline).
    pub fn feed(&mut self, line: &[u8]) -> Result<(), Fault> {
        let m = parse_mount(line).map_err(Fault::Malformed)?;
        let v1 = match self.paths.v1_memory {
            Some(p) if m.fstype == b"cgroup" && has_option(m.super_options, b"memory") => {
                strip_root(m.root, p)
            }
            _ => None,
        };
        let v2 = match self.paths.v2 {
            Some(p) if m.fstype == b"cgroup2" => strip_root(m.root, p),
            _ => None,
        };
        self.v1.consider(m.mount_point, v1)?;
        self.v2.consider(m.mount_point, v2)
    }

    /// Feeds a run of `\n`-separated lines, parsing only those that can change the choice:
    /// a cgroup mount (the line holds `" - cgroup"`, the separator and the type) or a mount at
    /// a candidate's mount point (the line holds `" <mount point> "`). A container has tens of
    /// mounts and one or two that matter, and a search over the whole run is a few SIMD
    /// passes where parsing every line costs two thirds of a probe's own instructions.
    ///
    /// Same choice as [`Selector::feed`] on every line whenever that succeeds; lines skipped
    /// here are not checked for well-formedness.
    pub fn feed_lines(&mut self, text: &[u8]) -> Result<(), Fault> {
        let cgroup = memmem::Finder::new(b" - cgroup");
        // The next match of each pattern at or after `pos` (`usize::MAX`: none), kept across
        // lines: a v1 host has a dozen cgroup lines in a row, and searching to the end again
        // after each one would cost more than the parsing saved.
        let mut next = [None::<usize>; 3];
        let mut pos = 0;
        while pos < text.len() {
            let rest = &text[pos..];
            let search = |k: usize| match k {
                0 => cgroup.find(rest),
                1 => self.v1.next_hider(rest),
                _ => self.v2.next_hider(rest),
            };
            for (k, at) in next.iter_mut().enumerate() {
                if at.is_none_or(|at| at < pos) {
                    *at = Some(search(k).map_or(usize::MAX, |i| pos + i));
                }
            }
            let hit = next.iter().flatten().copied().min().unwrap_or(usize::MAX);
            if hit == usize::MAX {
                return Ok(());
            }
            let start = memrchr(b'\n', &text[pos..hit]).map_or(pos, |i| pos + i + 1);
            let end = memchr(b'\n', &text[hit..]).map_or(text.len(), |i| hit + i);
            let found = (self.v1.found, self.v2.found);
            self.feed(&text[start..end])?;
            // A candidate that appeared or went away has a new needle, or none.
            if self.v1.found != found.0 {
                next[1] = None;
            }
            if self.v2.found != found.1 {
                next[2] = None;
            }
            pos = end + 1;
        }
        Ok(())
    }

    /// The chosen hierarchy: v1 memory if usable, else v2. Returns the directory (without any
    /// `--root` prefix) and the mount point's length in it.
    pub fn finish(&self) -> Option<(Version, &[u8], usize)> {
        [(Version::V1, &self.v1), (Version::V2, &self.v2)]
            .into_iter()
            .find(|(_, c)| c.found)
            .map(|(v, c)| (v, c.dir.as_bytes(), c.mount_len))
    }
}

/// Buffer for `/proc/self/cgroup`: about a dozen lines on v1 hosts, each an id, a controller
/// list and a path of up to a few hundred bytes; 8 KiB is several times a real file.
const PROC_CGROUP_BUF: usize = 8 << 10;
/// Streaming buffer for mountinfo: must hold the longest line (two escaped paths plus
/// options); real lines are under 512 bytes, a container has tens, a node thousands.
const MOUNTINFO_BUF: usize = 16 << 10;

/// Finds our own memory cgroup below `root` (the `--root` prefix, `b""` for `/`).
pub fn locate(root: &[u8], out: &mut Location) -> Result<(), Error> {
    // In static memory, not on the stack: see `Scratch`.
    static CG_BUF: Scratch<Buf<PROC_CGROUP_BUF>> = Scratch::new(Buf::new());
    static MI_BUF: Scratch<Buf<MOUNTINFO_BUF>> = Scratch::new(Buf::new());
    CG_BUF.with(|cg_buf| MI_BUF.with(|mi_buf| locate_in(root, out, cg_buf, mi_buf)))
}

fn locate_in(
    root: &[u8],
    out: &mut Location,
    cg_buf: &mut Buf<PROC_CGROUP_BUF>,
    mi_buf: &mut Buf<MOUNTINFO_BUF>,
) -> Result<(), Error> {
    let mut name = CPath::new();
    let text = read::read_file(proc_path(root, File::ProcSelfCgroup, &mut name)?, cg_buf)
        .map_err(|f| Error::proc(File::ProcSelfCgroup, f))?;
    let paths = parse_proc_cgroup(text)
        .map_err(|m| Error::proc(File::ProcSelfCgroup, Fault::Malformed(m)))?;
    if paths.v1_memory.is_none() && paths.v2.is_none() {
        return Err(Error::proc(File::ProcSelfCgroup, Fault::NoMemoryCgroup));
    }

    let mut selector = Selector::new(paths);
    read::for_each_block(
        proc_path(root, File::ProcSelfMountinfo, &mut name)?,
        mi_buf,
        |lines| selector.feed_lines(lines),
    )
    .map_err(|f| Error::proc(File::ProcSelfMountinfo, f))?;
    let (version, dir, mount_len) = selector
        .finish()
        .ok_or(Error::proc(File::ProcSelfMountinfo, Fault::NoMount))?;
    out.version = version;
    out.dir
        .set_joined(root, dir)
        .map_err(|_| Error::proc(File::ProcSelfMountinfo, Fault::PathTooLong))?;
    out.mount_len = root.len() + mount_len;
    Ok(())
}

/// `root` + the path of a `/proc` file, as a C string in `name`.
pub fn proc_path<'o>(root: &[u8], file: File, name: &'o mut CPath) -> Result<&'o CStr, Error> {
    path::cstr(&[root, file.name().as_bytes()], name).ok_or(Error::proc(file, Fault::PathTooLong))
}

/// Uses `dir` (from `--cgroup`) as the cgroup: v2 if it has `memory.current`, v1 if it has
/// `memory.usage_in_bytes`. Its ancestors are not walked: without mountinfo we do not know
/// where the hierarchy's mount point is.
pub fn given(dir: &[u8], out: &mut Location) -> Result<(), Error> {
    let dir = match dir {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        d => d,
    };
    out.dir.set_joined(dir, b"").map_err(|_| Error {
        fault: Fault::PathTooLong,
        file: File::CgroupDir,
        at: 0,
    })?;
    out.mount_len = out.dir.len();
    let mut name = CPath::new();
    let at = out.dir.len();
    let err = |fault| Error {
        fault,
        file: File::CgroupDir,
        at: at as u16,
    };
    for (version, file) in [
        (Version::V2, File::Current),
        (Version::V1, File::UsageInBytes),
    ] {
        let path = out
            .dir
            .file(at, file.name(), &mut name)
            .ok_or(err(Fault::PathTooLong))?;
        match read::open(path) {
            Ok(_) => {
                out.version = version;
                return Ok(());
            }
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => {
                return Err(Error {
                    fault: Fault::Open(e),
                    file,
                    at: at as u16,
                })
            }
        }
    }
    Err(err(Fault::NotACgroup))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_proc_cgroup;

    /// The choice of `feed_lines` over `mounts` (also split at every line boundary), checked
    /// against feeding each line to `feed`.
    fn choose(cgroup: &str, mounts: &str) -> Option<(Version, String, usize)> {
        let paths = parse_proc_cgroup(cgroup.as_bytes()).unwrap();
        let mut each = Selector::new(paths);
        for line in mounts.lines() {
            each.feed(line.as_bytes()).unwrap();
        }
        let want = each.finish().map(|(v, d, n)| (v, d.to_vec(), n));
        let cuts = mounts.match_indices('\n').map(|(i, _)| i + 1);
        for cut in [0].into_iter().chain(cuts) {
            let mut fast = Selector::new(paths);
            fast.feed_lines(&mounts.as_bytes()[..cut]).unwrap();
            fast.feed_lines(&mounts.as_bytes()[cut..]).unwrap();
            let got = fast.finish().map(|(v, d, n)| (v, d.to_vec(), n));
            assert_eq!(got, want, "split at {cut}");
        }
        want.map(|(v, d, n)| (v, String::from_utf8(d).unwrap(), n))
    }

    const ROOT: &str = "1 0 0:1 / / rw - overlay overlay rw\n";
    const CG2: &str = "2 1 0:2 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
    const TMPFS: &str = "3 1 0:3 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";

    #[test]
    fn cgroup2_mount_found_among_others() {
        let mounts = [ROOT, "5 1 0:5 / /proc rw - proc proc rw\n", CG2].concat();
        assert_eq!(
            choose("0::/\n", &mounts),
            Some((Version::V2, "/sys/fs/cgroup".into(), 14))
        );
    }

    #[test]
    fn a_later_mount_of_any_type_hides_the_candidate() {
        assert_eq!(choose("0::/\n", &[ROOT, CG2, TMPFS].concat()), None);
        let again = "4 3 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            choose("0::/\n", &[ROOT, CG2, TMPFS, again].concat()),
            Some((Version::V2, "/sys/fs/cgroup".into(), 14))
        );
    }

    #[test]
    fn a_mount_elsewhere_naming_the_mount_point_does_not_hide() {
        // Its root field is the candidate's mount point, its mount point is not.
        let bind = "6 1 0:2 /sys/fs/cgroup /mnt rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            choose("0::/\n", &[CG2, bind].concat()),
            Some((Version::V2, "/sys/fs/cgroup".into(), 14))
        );
    }

    #[test]
    fn escaped_mount_points_hide_and_are_unescaped() {
        let cg = "2 1 0:2 / /a\\040b ro - cgroup2 cgroup2 rw\n";
        assert_eq!(
            choose("0::/x\n", cg),
            Some((Version::V2, "/a b/x".into(), 4))
        );
        let over = "3 1 0:3 / /a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(choose("0::/x\n", &[cg, over].concat()), None);
    }

    #[test]
    fn v1_memory_wins_on_a_hybrid_host() {
        let mounts = [
            ROOT,
            "7 1 0:7 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "8 1 0:8 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
            "9 1 0:9 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        ]
        .concat();
        assert_eq!(
            choose("9:memory:/pod\n1:cpu:/pod\n0::/pod\n", &mounts),
            Some((Version::V1, "/sys/fs/cgroup/memory/pod".into(), 21))
        );
    }

    #[test]
    fn lines_that_cannot_matter_are_not_parsed() {
        let mut s = Selector::new(parse_proc_cgroup(b"0::/\n").unwrap());
        assert!(s.feed(b"not a mount line").is_err());
        s.feed_lines(b"not a mount line\n").unwrap();
        s.feed_lines(CG2.as_bytes()).unwrap();
        // A line at the candidate's mount point is parsed, and this one is malformed.
        assert!(s.feed_lines(b"2 1 0:2 / /sys/fs/cgroup rw\n").is_err());
    }
}
