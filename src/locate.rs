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
use crate::parse::{has_option, parse_mount, parse_proc_cgroup, strip_root, unescape, ProcCgroup};
use crate::path::{self, PathBuf, PATH_MAX};
use crate::read;

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
}

impl Location {
    pub const fn new() -> Location {
        Location {
            version: Version::V2,
            dir: PathBuf::new(),
            mount_len: 0,
        }
    }
}

impl Default for Location {
    fn default() -> Self {
        Self::new()
    }
}

/// One hierarchy's best mount so far.
#[derive(Clone, Default)]
struct Candidate {
    found: bool,
    dir: PathBuf,
    mount_len: usize,
}

impl Candidate {
    /// Considers one mount for the cgroup `path`: a later mount at the same mount point hides
    /// the current candidate; a usable mount becomes the candidate if there is none.
    fn consider(&mut self, mount_point: &[u8], usable: Option<&[u8]>) -> Result<(), Fault> {
        if self.found
            && unescape(mount_point).eq(self.dir.as_bytes()[..self.mount_len].iter().copied())
        {
            self.found = false;
        }
        let Some(rest) = usable else { return Ok(()) };
        if self.found {
            return Ok(());
        }
        self.dir.clear();
        if mount_point != b"/" {
            self.dir
                .extend(unescape(mount_point))
                .map_err(|_| Fault::PathTooLong)?;
        }
        self.mount_len = self.dir.len().max(1);
        self.dir
            .extend(rest.iter().copied())
            .map_err(|_| Fault::PathTooLong)?;
        if self.dir.is_empty() {
            self.dir.push(b'/').map_err(|_| Fault::PathTooLong)?;
        }
        self.found = true;
        Ok(())
    }
}

/// Picks the memory cgroup directory from mountinfo lines, fed one at a time. Pure: the
/// caller does the reading, so this is fuzzed and tested on byte strings.
#[derive(Clone)]
pub struct Selector<'p> {
    paths: ProcCgroup<'p>,
    v1: Candidate,
    v2: Candidate,
}

impl<'p> Selector<'p> {
    pub fn new(paths: ProcCgroup<'p>) -> Self {
        Selector {
            paths,
            v1: Candidate::default(),
            v2: Candidate::default(),
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
    let mut name = [0u8; PATH_MAX];

    let mut cg_buf = [0u8; PROC_CGROUP_BUF];
    let text = read::read_file(
        proc_path(root, File::ProcSelfCgroup, &mut name)?,
        &mut cg_buf,
    )
    .map_err(|f| Error::proc(File::ProcSelfCgroup, f))?;
    let paths = parse_proc_cgroup(text)
        .map_err(|m| Error::proc(File::ProcSelfCgroup, Fault::Malformed(m)))?;
    if paths.v1_memory.is_none() && paths.v2.is_none() {
        return Err(Error::proc(File::ProcSelfCgroup, Fault::NoMemoryCgroup));
    }

    let mut selector = Selector::new(paths);
    let mut mi_buf = [0u8; MOUNTINFO_BUF];
    read::for_each_line(
        proc_path(root, File::ProcSelfMountinfo, &mut name)?,
        &mut mi_buf,
        |line| selector.feed(line),
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
pub fn proc_path<'o>(
    root: &[u8],
    file: File,
    name: &'o mut [u8; PATH_MAX],
) -> Result<&'o CStr, Error> {
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
    let mut name = [0u8; PATH_MAX];
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
