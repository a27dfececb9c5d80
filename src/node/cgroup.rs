//! From a pod and a container ID to the container's cgroup, as the kubelet lays the tree out
//! below `--cgroup-root`, and the probe's own measurement opened on it.
//!
//! ```text
//! cgroupfs driver  kubepods/burstable/pod<uid>/<id>            containerd, cri-dockerd
//!                  kubepods/besteffort/pod<uid>/crio-<id>      CRI-O
//!                  kubepods/pod<uid>/<id>                      Guaranteed
//! systemd driver   kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/
//!                      cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
//!                  kubepods.slice/kubepods-pod<uid_>.slice/...  Guaranteed
//! ```
//! (`<uid_>`: the UID with `_` for `-`, systemd's escape.) CRI-O's `crio-conmon-<id>.scope`,
//! its monitor's sibling scope, is never taken: the names are built, not searched for.
//! The same layout holds in v1's memory hierarchy and in v2.
//!
//! The limit rule: the container cgroup's limit, then the pod cgroup's, nothing above. The
//! kubepods cgroups carry the node's allocatable memory, which is not this pod's limit, so
//! the probe's ancestor walk is bounded at the pod cgroup (`Location::mount_len`) and v1's
//! `hierarchical_memory_limit`, which sees every ancestor, is ignored
//! (`Location::hierarchical`). With neither limit the sample's limit source is the host
//! (MemTotal): the container has no limit and is never evicted.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kubemem::error::Error;
use kubemem::locate::{self, Location};
use kubemem::measure::{Sampler, Usage};

/// `--cgroup-root DIR`: DIR/memory when it holds a v1 memory hierarchy (a v1 host's
/// /sys/fs/cgroup), else DIR.
pub fn memory_root(dir: &Path) -> PathBuf {
    let memory = dir.join("memory");
    let v1 = ["memory.usage_in_bytes", "kubepods", "kubepods.slice"]
        .iter()
        .any(|f| memory.join(f).exists());
    if v1 {
        memory
    } else {
        dir.to_path_buf()
    }
}

/// The container runtime, from the scheme of `status.containerStatuses[].containerID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    /// Another scheme: every runtime's names are tried.
    Other,
}

/// `containerd://<id>` -> (Containerd, `<id>`). `None` for an ID without a scheme or with
/// something other than hex digits and letters in the ID (it becomes a path component).
pub fn parse_id(container_id: &str) -> Option<(Runtime, &str)> {
    let (scheme, id) = container_id.split_once("://")?;
    let runtime = match scheme {
        "containerd" => Runtime::Containerd,
        "cri-o" => Runtime::Crio,
        "docker" => Runtime::Docker,
        _ => Runtime::Other,
    };
    let ok = !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric());
    ok.then_some((runtime, id))
}

/// The pod cgroup's possible directories (relative to the root), cgroupfs driver first.
/// An unknown QoS class (status not filled in yet) tries all three.
pub fn pod_dirs(qos: &str, uid: &str) -> Vec<PathBuf> {
    let classes: &[&str] = match qos {
        "Guaranteed" => &["guaranteed"],
        "Burstable" => &["burstable"],
        "BestEffort" => &["besteffort"],
        _ => &["guaranteed", "burstable", "besteffort"],
    };
    let uid_ = uid.replace('-', "_");
    let mut dirs = Vec::new();
    for class in classes {
        dirs.push(match *class {
            "guaranteed" => format!("kubepods/pod{uid}"),
            c => format!("kubepods/{c}/pod{uid}"),
        });
        dirs.push(match *class {
            "guaranteed" => format!("kubepods.slice/kubepods-pod{uid_}.slice"),
            c => format!("kubepods.slice/kubepods-{c}.slice/kubepods-{c}-pod{uid_}.slice"),
        });
    }
    dirs.into_iter().map(PathBuf::from).collect()
}

/// The container cgroup's possible names in its pod's directory.
pub fn container_names(runtime: Runtime, id: &str) -> Vec<String> {
    let names = |rs: &[Runtime]| -> Vec<String> {
        rs.iter()
            .flat_map(|r| match r {
                Runtime::Containerd => [id.to_owned(), format!("cri-containerd-{id}.scope")],
                Runtime::Crio => [format!("crio-{id}"), format!("crio-{id}.scope")],
                Runtime::Docker | Runtime::Other => [id.to_owned(), format!("docker-{id}.scope")],
            })
            .collect()
    };
    match runtime {
        Runtime::Other => names(&[Runtime::Containerd, Runtime::Crio, Runtime::Docker]),
        r => names(&[r]),
    }
}

/// A container's cgroup directory and its pod's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub pod: PathBuf,
    pub container: PathBuf,
}

/// Why no cgroup was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotFound {
    /// The container ID is not `<runtime>://<id>`.
    BadId(String),
    /// No pod cgroup: the pod is not (or no longer) on this node's tree.
    NoPod,
    /// The pod cgroup, without this container's (starting, or gone).
    NoContainer { pod: PathBuf },
}

impl NotFound {
    /// The error text of the line; the same text for the same condition.
    pub fn describe(&self, root: &Path, uid: &str, id: &str) -> String {
        match self {
            NotFound::BadId(id) => format!("container ID '{id}' is not <runtime>://<id>"),
            NotFound::NoPod => format!(
                "no cgroup for pod {uid} below {} (kubepods/.../pod{uid} or \
                 kubepods.slice/.../kubepods-...-pod{}.slice)",
                root.display(),
                uid.replace('-', "_")
            ),
            NotFound::NoContainer { pod } => {
                format!("no cgroup for container {id} in {}", pod.display())
            }
        }
    }
}

/// Finds the cgroup of container `container_id` of the pod `uid` of QoS class `qos` below
/// `root`, for either driver and any of the three runtimes.
pub fn find(root: &Path, qos: &str, uid: &str, container_id: &str) -> Result<Found, NotFound> {
    let (runtime, id) =
        parse_id(container_id).ok_or_else(|| NotFound::BadId(container_id.to_owned()))?;
    let names = container_names(runtime, id);
    let mut pod_found = None;
    for pod in pod_dirs(qos, uid) {
        let pod = root.join(pod);
        if !pod.is_dir() {
            continue;
        }
        if let Some(name) = names.iter().find(|n| pod.join(n).is_dir()) {
            let container = pod.join(name);
            return Ok(Found { pod, container });
        }
        pod_found.get_or_insert(pod);
    }
    Err(match pod_found {
        Some(pod) => NotFound::NoContainer { pod },
        None => NotFound::NoPod,
    })
}

/// The probe's measurement of a found container: its `Location` (the version from the files
/// there, as `--cgroup` finds it; the ancestor walk ending at the pod cgroup) and a `Sampler`
/// holding its files open.
/// An error is the text of [`describe`].
pub fn open(found: &Found) -> Result<(Location, Sampler), String> {
    let mut loc = Location::new();
    locate::given(found.container.as_os_str().as_bytes(), &mut loc)
        .map_err(|e| describe(&loc, e))?;
    loc.mount_len = found.pod.as_os_str().len();
    loc.hierarchical = false;
    // `root` is the prefix of /proc/meminfo: the node's (the agent shares no /proc of a pod).
    let sampler = Sampler::open(b"", &loc, Usage::WorkingSet).map_err(|e| describe(&loc, e))?;
    Ok((loc, sampler))
}

/// The text of a measurement error: the probe's reason and the file it is about.
pub fn describe(loc: &Location, e: Error) -> String {
    let reason = kubemem::report::fault_text(e.fault);
    let reason = String::from_utf8_lossy(reason.as_bytes());
    let reason = reason
        .strip_prefix("error=\"")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(&reason);
    let file = e.file.name();
    if e.file.is_proc() {
        return format!("{file}: {reason}");
    }
    let dir = loc
        .dir
        .as_bytes()
        .get(..usize::from(e.at))
        .unwrap_or_default();
    let sep = if file.is_empty() { "" } else { "/" };
    format!("{}{sep}{file}: {reason}", String::from_utf8_lossy(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubemem::measure::LimitSource;
    use std::fs;

    const UID: &str = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab";
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A fresh directory for one test, removed when dropped.
    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let d =
                std::env::temp_dir().join(format!("kubemem-node-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mkdir(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn container_ids() {
        assert_eq!(
            parse_id("containerd://ab12"),
            Some((Runtime::Containerd, "ab12"))
        );
        assert_eq!(parse_id("cri-o://ab12"), Some((Runtime::Crio, "ab12")));
        assert_eq!(parse_id("docker://ab12"), Some((Runtime::Docker, "ab12")));
        assert_eq!(parse_id("rkt://ab12"), Some((Runtime::Other, "ab12")));
        for bad in ["ab12", "containerd://", "containerd://../x", "docker://a/b"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    /// Every driver, runtime and QoS class, as the kubelet names them.
    #[test]
    fn finds_every_layout() {
        let u = UID.replace('-', "_");
        let cases: &[(&str, &str, String)] = &[
            ("Burstable", "containerd", format!("kubepods/burstable/pod{UID}/{ID}")),
            ("BestEffort", "containerd", format!("kubepods/besteffort/pod{UID}/{ID}")),
            ("Guaranteed", "containerd", format!("kubepods/pod{UID}/{ID}")),
            ("Burstable", "docker", format!("kubepods/burstable/pod{UID}/{ID}")),
            ("BestEffort", "cri-o", format!("kubepods/besteffort/pod{UID}/crio-{ID}")),
            ("Guaranteed", "cri-o", format!("kubepods/pod{UID}/crio-{ID}")),
            (
                "Burstable",
                "containerd",
                format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
                ),
            ),
            (
                "BestEffort",
                "cri-o",
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/crio-{ID}.scope"
                ),
            ),
            (
                "Guaranteed",
                "docker",
                format!("kubepods.slice/kubepods-pod{u}.slice/docker-{ID}.scope"),
            ),
            (
                "Guaranteed",
                "containerd",
                format!("kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{ID}.scope"),
            ),
        ];
        for (i, (qos, runtime, rel)) in cases.iter().enumerate() {
            for v1 in [false, true] {
                let dir = Dir::new(&format!("layout{i}{v1}"));
                // v1: the hierarchy is DIR/memory, and --cgroup-root DIR finds it.
                let root = match v1 {
                    true => mkdir(&dir.0, "memory"),
                    false => dir.0.clone(),
                };
                let container = mkdir(&root, rel);
                if *runtime == "cri-o" {
                    // conmon's scope sorts first and must never be taken.
                    let conmon = container.with_file_name(format!("crio-conmon-{ID}.scope"));
                    fs::create_dir_all(conmon).unwrap();
                }
                assert_eq!(memory_root(&dir.0), root);
                let id = format!("{runtime}://{ID}");
                let found = find(&memory_root(&dir.0), qos, UID, &id).unwrap();
                assert_eq!(found.container, container, "{qos} {runtime}");
                assert_eq!(&found.pod, container.parent().unwrap());
                // Without the QoS class (status not filled in yet) too.
                assert_eq!(find(&root, "", UID, &id).unwrap(), found);
                // Another class is another directory.
                let other = if *qos == "Burstable" {
                    "BestEffort"
                } else {
                    "Burstable"
                };
                assert_eq!(find(&root, other, UID, &id), Err(NotFound::NoPod));
            }
        }
    }

    #[test]
    fn what_is_not_found() {
        let dir = Dir::new("notfound");
        let id = format!("containerd://{ID}");
        assert_eq!(find(&dir.0, "Burstable", UID, &id), Err(NotFound::NoPod));
        let pod = mkdir(&dir.0, &format!("kubepods/burstable/pod{UID}"));
        // CRI-O's monitor scope alone is not the container.
        mkdir(&pod, &format!("crio-conmon-{ID}"));
        assert_eq!(
            find(&dir.0, "Burstable", UID, &format!("cri-o://{ID}")),
            Err(NotFound::NoContainer { pod: pod.clone() })
        );
        assert_eq!(
            find(&dir.0, "Burstable", UID, "nonsense"),
            Err(NotFound::BadId("nonsense".into()))
        );
        let e = NotFound::NoContainer { pod: pod.clone() }.describe(&dir.0, UID, &id);
        assert_eq!(
            e,
            format!("no cgroup for container {id} in {}", pod.display())
        );
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (f, text) in files {
            fs::write(dir.join(f), text).unwrap();
        }
    }

    /// (used, limit, source) of a container's first sample.
    fn measured(found: &Found) -> (u64, u64, LimitSource) {
        let (_, s) = open(found).unwrap();
        let s = s.sample(|_, _| true).unwrap();
        (s.used, s.limit, s.source)
    }

    const KUBEPODS_LIMIT: &str = "4096000\n";

    /// The limit is the container's, then the pod's, and never kubepods' (v2).
    #[test]
    fn limit_rule_v2() {
        let dir = Dir::new("limit-v2");
        let pod = mkdir(&dir.0, &format!("kubepods/burstable/pod{UID}"));
        let container = mkdir(&pod, ID);
        let found = Found {
            pod: pod.clone(),
            container: container.clone(),
        };
        write(&dir.0.join("kubepods"), &[("memory.max", KUBEPODS_LIMIT)]);
        write(
            &dir.0.join("kubepods/burstable"),
            &[("memory.max", KUBEPODS_LIMIT)],
        );
        let stat = "anon 1\ninactive_file 100\n";
        write(
            &pod,
            &[
                ("memory.current", "3000\n"),
                ("memory.max", "max\n"),
                ("memory.stat", stat),
            ],
        );
        write(
            &container,
            &[
                ("memory.current", "1000\n"),
                ("memory.max", "2000\n"),
                ("memory.stat", stat),
            ],
        );
        assert_eq!(measured(&found), (900, 2000, LimitSource::Cgroup));
        // No container limit: the pod's, measured on the pod's cgroup.
        write(&container, &[("memory.max", "max\n")]);
        write(&pod, &[("memory.max", "5000\n")]);
        assert_eq!(measured(&found), (2900, 5000, LimitSource::Ancestor));
        // Neither: no limit, although kubepods has one.
        write(&pod, &[("memory.max", "max\n")]);
        let (used, _, source) = measured(&found);
        assert_eq!((used, source), (900, LimitSource::Host));
        // The tighter of the two.
        write(&container, &[("memory.max", "6000\n")]);
        write(&pod, &[("memory.max", "5000\n")]);
        assert_eq!(measured(&found).2, LimitSource::Ancestor);
    }

    /// The same on v1, where `hierarchical_memory_limit` (kubepods' limit here) is ignored.
    #[test]
    fn limit_rule_v1() {
        let dir = Dir::new("limit-v1");
        let pod = mkdir(&dir.0, &format!("kubepods/pod{UID}"));
        let container = mkdir(&pod, ID);
        let found = Found {
            pod: pod.clone(),
            container: container.clone(),
        };
        let unlimited = "9223372036854771712\n";
        write(
            &dir.0.join("kubepods"),
            &[("memory.limit_in_bytes", KUBEPODS_LIMIT)],
        );
        let stat = |h: &str| format!("total_inactive_file 100\nhierarchical_memory_limit {h}\n");
        write(
            &pod,
            &[
                ("memory.usage_in_bytes", "3000\n"),
                ("memory.limit_in_bytes", unlimited),
                ("memory.stat", &stat(KUBEPODS_LIMIT.trim())),
            ],
        );
        write(
            &container,
            &[
                ("memory.usage_in_bytes", "1000\n"),
                ("memory.limit_in_bytes", "2000\n"),
                ("memory.stat", &stat("2000")),
            ],
        );
        assert_eq!(measured(&found), (900, 2000, LimitSource::Cgroup));
        write(
            &container,
            &[
                ("memory.limit_in_bytes", unlimited),
                ("memory.stat", &stat(KUBEPODS_LIMIT.trim())),
            ],
        );
        let (used, _, source) = measured(&found);
        assert_eq!((used, source), (900, LimitSource::Host));
        write(&pod, &[("memory.limit_in_bytes", "5000\n")]);
        assert_eq!(measured(&found), (2900, 5000, LimitSource::Ancestor));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = Dir::new("errors");
        let pod = mkdir(&dir.0, &format!("kubepods/pod{UID}"));
        let container = mkdir(&pod, ID);
        let found = Found {
            pod,
            container: container.clone(),
        };
        assert_eq!(
            open(&found).err().unwrap(),
            format!(
                "{}: not a memory cgroup (no memory.current, no memory.usage_in_bytes)",
                container.display()
            )
        );
        fs::write(container.join("memory.current"), "12x\n").unwrap();
        fs::write(container.join("memory.max"), "max\n").unwrap();
        let (loc, sampler) = open(&found).unwrap();
        let e = sampler.sample(|_, _| true).unwrap_err();
        assert_eq!(
            describe(&loc, e),
            format!(
                "{}/memory.current: unit suffix in value (expected bytes)",
                container.display()
            )
        );
    }
}
