//! The sampling thread: a plain std thread, so that reading cgroup files (blocking system
//! calls) never waits behind the async side's work, nor the async side behind a slow file.
//!
//! Every `--interval` it samples every watched container through the probe's `Sampler`,
//! opened once per container (one `pread` per file and sample, no `open`); between ticks
//! it sleeps in `poll` on the kernel wake-ups `kubemem run` uses (`kubemem::wakeup`: v1's
//! pressure level through `cgroup.event_control`, v2 `memory.events` and PSI; not v1's
//! usage thresholds, see `Thread::sample_container`), each of which brings that
//! container's next sample forward, and on a socket the async side writes to
//! when it sends a command. A crossing goes to the async side over a channel at once, so
//! the Eviction request leaves within the interval (plus the channel's microseconds) of the
//! sample that crossed.
//!
//! A threshold fires once and re-arms when usage falls below it; an evicted pod never fires
//! again. Conditions (no cgroup yet, an unreadable file) are one line per pod each, and the
//! thread retries on later ticks without repeating it.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kubemem::decide::{decide, per_mille, Level};
use kubemem::locate::Location;
use kubemem::measure::{LimitSource, Sample, Sampler};
use kubemem::parse::Threshold;
use kubemem::report::threshold_text;
use kubemem::wakeup::Wakeup;
use rustix::event::{PollFd, PollFlags};
use tokio::sync::mpsc::UnboundedSender;

use crate::cgroup;
use crate::log::Line;
use crate::metrics::{Gauge, State};
use crate::select::{Target, Thresholds};

/// What the async side asks of the thread.
#[derive(Debug)]
pub enum Cmd {
    /// Watch this pod (new, or its thresholds or containers changed).
    Pod(PodCmd),
    /// Stop watching this pod UID.
    Forget(String),
    /// This pod UID was evicted: keep measuring it, never fire again.
    Evicted(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCmd {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub qos: String,
    pub thresholds: Thresholds,
    pub targets: Vec<Target>,
}

/// A container crossed its failure threshold: evict its pod.
#[derive(Clone, Debug)]
pub struct Crossing {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub container: String,
    /// The verdict line in logfmt, the Event's message.
    pub message: String,
}

/// The async side's handle: commands, and a wake-up so they are acted on at once.
pub struct Handle {
    tx: mpsc::Sender<Cmd>,
    wake: UnixStream,
}

impl Handle {
    pub fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
        // Non-blocking: a full socket already holds a wake-up.
        let _ = (&self.wake).write(&[1]);
    }
}

/// Starts the thread.
pub fn spawn(
    root: PathBuf,
    interval: Duration,
    dry_run: bool,
    state: State,
    crossings: UnboundedSender<Crossing>,
) -> std::io::Result<Handle> {
    let (tx, rx) = mpsc::channel();
    let (wake, woken) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    let mut t = Thread {
        root,
        interval,
        dry_run,
        state,
        crossings,
        pods: BTreeMap::new(),
    };
    std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || t.run(rx, woken))?;
    Ok(Handle { tx, wake })
}

struct Thread {
    root: PathBuf,
    interval: Duration,
    dry_run: bool,
    state: State,
    crossings: UnboundedSender<Crossing>,
    /// By pod UID.
    pods: BTreeMap<String, Pod>,
}

struct Pod {
    cmd: PodCmd,
    evicted: bool,
    containers: BTreeMap<String, Container>,
    /// The conditions met since the pod was last watched (only the first was said).
    reported: HashSet<String>,
}

#[derive(Default)]
struct Container {
    id: Option<String>,
    open: Option<Box<Open>>,
    /// At or above the failure threshold at the last sample: fired, not re-armed yet.
    fired: bool,
    warned: bool,
    /// `event=no-limit` was logged for the current state.
    no_limit: bool,
}

struct Open {
    loc: Location,
    sampler: Sampler,
    /// The kernel wake-ups armed for it.
    wakeup: Option<Wakeup>,
}

/// A threshold nothing reaches: no warning annotated.
const NEVER: Threshold = Threshold::Bytes(u64::MAX);

impl Thread {
    fn run(&mut self, rx: mpsc::Receiver<Cmd>, woken: UnixStream) {
        let mut next = Instant::now();
        loop {
            self.state.lock().heartbeat = Some(Instant::now());
            let mut drain = [0u8; 64];
            while matches!((&woken).read(&mut drain), Ok(n) if n > 0) {}
            loop {
                match rx.try_recv() {
                    Ok(cmd) => self.command(cmd),
                    Err(mpsc::TryRecvError::Empty) => break,
                    // The async side is gone: the process is exiting.
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            if now >= next {
                let uids: Vec<String> = self.pods.keys().cloned().collect();
                for uid in uids {
                    self.sample_pod(&uid, None);
                }
                next += self.interval;
                if next <= now {
                    next = now + self.interval;
                }
            }
            let due = self.wait(&woken, next.saturating_duration_since(Instant::now()));
            for (uid, name) in due {
                self.sample_pod(&uid, Some(&name));
            }
        }
    }

    /// Sleeps in `poll` until `timeout`, a command or a kernel wake-up; returns the
    /// containers whose wake-up fired.
    fn wait(&mut self, woken: &UnixStream, timeout: Duration) -> Vec<(String, String)> {
        let mut who = Vec::new();
        let mut fds = vec![PollFd::new(woken, PollFlags::IN)];
        for (uid, pod) in &self.pods {
            for (name, c) in &pod.containers {
                let Some(w) = c.open.as_ref().and_then(|o| o.wakeup.as_ref()) else {
                    continue;
                };
                for slot in 0..2 {
                    if let Some(fd) = w.poll_fd(slot) {
                        fds.push(fd);
                        who.push((uid.clone(), name.clone(), slot));
                    }
                }
            }
        }
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        if rustix::event::poll(&mut fds, Some(&ts)).is_err() {
            return Vec::new();
        }
        let revents: Vec<PollFlags> = fds.iter().skip(1).map(PollFd::revents).collect();
        drop(fds);
        let mut due = Vec::new();
        for ((uid, name, slot), rev) in who.into_iter().zip(revents) {
            if rev.is_empty() {
                continue;
            }
            let wakeup = self
                .pods
                .get_mut(&uid)
                .and_then(|p| p.containers.get_mut(&name))
                .and_then(|c| c.open.as_mut())
                .and_then(|o| o.wakeup.as_mut());
            if wakeup.is_some_and(|w| w.fired(slot, rev))
                && !due.contains(&(uid.clone(), name.clone()))
            {
                due.push((uid, name));
            }
        }
        due
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Pod(cmd) => self.update(cmd),
            Cmd::Forget(uid) => {
                if let Some(pod) = self.pods.remove(&uid) {
                    let mut s = self.state.lock();
                    for name in pod.containers.keys() {
                        s.containers.remove(&key(&pod.cmd, name));
                    }
                    s.above.remove(&uid);
                }
            }
            Cmd::Evicted(uid) => {
                if let Some(pod) = self.pods.get_mut(&uid) {
                    pod.evicted = true;
                }
            }
        }
    }

    /// A new pod, or a change to one: changed thresholds re-arm and re-announce every
    /// container; a new container ID (a restart) is a new container.
    fn update(&mut self, cmd: PodCmd) {
        let uid = cmd.uid.clone();
        let pod = self.pods.entry(uid).or_insert_with(|| Pod {
            cmd: cmd.clone(),
            evicted: false,
            containers: BTreeMap::new(),
            reported: HashSet::new(),
        });
        let reset_all = pod.cmd.thresholds != cmd.thresholds || pod.cmd.qos != cmd.qos;
        let mut s = self.state.lock();
        pod.containers.retain(|name, _| {
            let keep = cmd.targets.iter().any(|t| &t.name == name);
            if !keep {
                s.containers.remove(&key(&pod.cmd, name));
            }
            keep
        });
        drop(s);
        for t in &cmd.targets {
            let c = pod.containers.entry(t.name.clone()).or_default();
            if reset_all || c.id != t.id {
                *c = Container {
                    id: t.id.clone(),
                    ..Container::default()
                };
            }
        }
        pod.cmd = cmd;
    }

    /// Samples one container of a pod, or all of them.
    fn sample_pod(&mut self, uid: &str, only: Option<&str>) {
        let Some(pod) = self.pods.get(uid) else {
            return;
        };
        let mut above = false;
        let names: Vec<String> = pod.containers.keys().cloned().collect();
        let cmd = pod.cmd.clone();
        for name in names {
            if only.is_some_and(|o| o != name) {
                // Not sampled now: its last state stands.
                let g = self.state.lock().containers.get(&key(&cmd, &name)).copied();
                let t = cmd.thresholds.failure;
                above |= g.is_some_and(|g| g.limit.is_some_and(|l| t.reached(g.used, l)));
                continue;
            }
            above |= self.sample_container(uid, &name);
        }
        self.state.lock().above.insert(uid.to_owned(), above);
    }

    /// Samples one container (opening its cgroup first if needed); true when it is at or
    /// above its failure threshold.
    fn sample_container(&mut self, uid: &str, name: &str) -> bool {
        let root = self.root.clone();
        let Some(pod) = self.pods.get_mut(uid) else {
            return false;
        };
        let Some(c) = pod.containers.get_mut(name) else {
            return false;
        };
        let k = key(&pod.cmd, name);
        let mut opened = false;
        if c.open.is_none() {
            // Not created yet: nothing to say, look again next tick.
            let Some(id) = c.id.clone() else { return false };
            let found = cgroup::find(&root, &pod.cmd.qos, &pod.cmd.uid, &id)
                .map_err(|nf| nf.describe(&root, &pod.cmd.uid, &id))
                .and_then(|f| cgroup::open(&f));
            match found {
                Ok((loc, sampler)) => {
                    c.open = Some(Box::new(Open {
                        loc,
                        sampler,
                        wakeup: None,
                    }));
                    opened = true;
                }
                Err(text) => {
                    report(pod, name, text);
                    return false;
                }
            }
        }
        let Some(open) = c.open.as_mut() else {
            return false;
        };
        let sample = match open.sampler.sample(|_, _| true) {
            Ok(s) => s,
            Err(e) => {
                // Unreadable or vanished: closed, found again next tick. A vanished cgroup
                // is said then, once, as not found, rather than also as a failed read.
                let text = cgroup::describe(&open.loc, e);
                let dir = std::ffi::OsStr::from_bytes(open.loc.dir.as_bytes());
                let vanished = !std::path::Path::new(dir).exists();
                c.open = None;
                self.state.lock().containers.remove(&k);
                if !vanished {
                    report(pod, name, text);
                }
                return false;
            }
        };
        let t = &pod.cmd.thresholds;
        let limited = sample.source != LimitSource::Host;
        if opened {
            pod.reported.clear();
            let mut line = Line::new("info", "watching")
                .pod(&pod.cmd.namespace, &pod.cmd.name)
                .str("container", name)
                .str("path", &String::from_utf8_lossy(open.loc.dir.as_bytes()));
            line = match limited {
                true => line
                    .num("limit", sample.limit)
                    .num("threshold", t.failure.bytes(sample.limit)),
                false => line.str("limit", "none").str("threshold", "none"),
            };
            line.str("failure", &text(t.failure))
                .str("limit_source", sample.source.name())
                .emit();
        }
        if opened {
            // No v1 memory thresholds (`levels` None): the kernel registers each with a
            // synchronize_rcu(), 20 ms measured here, and `kubemem run`'s ladder is 8 to 16
            // of them per cgroup: 100 containers would stall this thread for half a minute,
            // and again at every re-open. v1's pressure level and v2's memory.events and PSI
            // trigger cost no such wait; the interval bounds the reaction anyway.
            open.wakeup = Some(Wakeup::open(&open.loc, &open.sampler, None));
        }
        self.state.lock().containers.insert(
            k,
            Gauge {
                used: sample.used,
                limit: limited.then_some(sample.limit),
                threshold: limited.then(|| t.failure.bytes(sample.limit)),
            },
        );
        if !limited {
            if !c.no_limit {
                c.no_limit = true;
                Line::new("warning", "no-limit")
                    .pod(&pod.cmd.namespace, &pod.cmd.name)
                    .str("container", name)
                    .str(
                        "reason",
                        "no memory limit on the container or its pod: never evicted",
                    )
                    .emit();
            }
            c.fired = false;
            c.warned = false;
            return false;
        }
        c.no_limit = false;
        let level = decide(
            sample.used,
            sample.limit,
            t.warning.unwrap_or(NEVER),
            t.failure,
        );
        if level == Level::Warning && !c.warned {
            verdict(&pod.cmd, name, &sample, &open.loc, "warning", level).emit();
        }
        c.warned = level >= Level::Warning;
        if level == Level::Failure && !c.fired && !pod.evicted {
            let event = if self.dry_run { "dry-run" } else { "evict" };
            let line = verdict(&pod.cmd, name, &sample, &open.loc, event, level);
            let message = verdict_keys(
                Line::in_format(kubemem::Format::Logfmt, level.name(), event),
                &pod.cmd,
                name,
                &sample,
                &open.loc,
            )
            .text();
            line.emit();
            let _ = self.crossings.send(Crossing {
                uid: pod.cmd.uid.clone(),
                namespace: pod.cmd.namespace.clone(),
                name: pod.cmd.name.clone(),
                container: name.to_owned(),
                message,
            });
        }
        c.fired = level == Level::Failure;
        c.fired
    }
}

fn key(cmd: &PodCmd, container: &str) -> (String, String, String) {
    (
        cmd.namespace.clone(),
        cmd.name.clone(),
        container.to_owned(),
    )
}

/// One `event=error` line per pod until it is watched again. A cgroup on its way out goes
/// through several states between two samples (a file that reads ENODEV, a directory without
/// its files, no directory: seen on cgroup v2), and each would otherwise be a line of its own;
/// every condition is still remembered.
fn report(pod: &mut Pod, container: &str, text: String) {
    let first = pod.reported.is_empty();
    if pod.reported.insert(text.clone()) && first {
        Line::new("error", "error")
            .pod(&pod.cmd.namespace, &pod.cmd.name)
            .str("container", container)
            .str("error", &text)
            .emit();
    }
}

fn text(t: Threshold) -> String {
    String::from_utf8_lossy(threshold_text(t, &mut [0; 32])).into_owned()
}

/// The probe's verdict, as a line of the agent's.
fn verdict(
    cmd: &PodCmd,
    container: &str,
    s: &Sample,
    loc: &Location,
    event: &str,
    level: Level,
) -> Line {
    verdict_keys(Line::new(level.name(), event), cmd, container, s, loc)
}

/// The probe's verdict keys after the line's `level` and `event`: used, limit, percent, the
/// thresholds, usage, cgroup, limit_source, path.
fn verdict_keys(line: Line, cmd: &PodCmd, container: &str, s: &Sample, loc: &Location) -> Line {
    let t = &cmd.thresholds;
    let line = line
        .pod(&cmd.namespace, &cmd.name)
        .str("container", container)
        .num("used", s.used)
        .num("limit", s.limit)
        .tenths("percent", per_mille(s.used, s.limit));
    let line = match t.warning {
        Some(w) => line.str("warning", &text(w)),
        None => line,
    };
    line.str("failure", &text(t.failure))
        .str("usage", "working-set")
        .str("cgroup", loc.version.name())
        .str("limit_source", s.source.name())
        .str(
            "path",
            &String::from_utf8_lossy(loc.dir.as_bytes().get(..s.at).unwrap_or_default()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Thresholds;
    use std::fs;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    const UID: &str = "11111111-2222-3333-4444-555555555555";
    const ID: &str = "00000000000000000000000000000000000000000000000000000000000000aa";

    /// A v2 tree (plain files) with one Burstable pod of one container, and the thread.
    fn setup(name: &str) -> (PathBuf, Thread, UnboundedReceiver<Crossing>) {
        let root = std::env::temp_dir().join(format!(
            "kubemem-node-sampling-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join(format!("kubepods/burstable/pod{UID}/{ID}"));
        fs::create_dir_all(&dir).unwrap();
        set(&root, "memory.current", "100\n");
        set(&root, "memory.max", "1000\n");
        set(&root, "memory.stat", "inactive_file 0\n");
        let (tx, rx) = unbounded_channel();
        let mut t = Thread {
            root: root.clone(),
            interval: Duration::from_secs(1),
            dry_run: false,
            state: State::default(),
            crossings: tx,
            pods: BTreeMap::new(),
        };
        t.command(Cmd::Pod(PodCmd {
            uid: UID.into(),
            namespace: "ns".into(),
            name: "web-0".into(),
            qos: "Burstable".into(),
            thresholds: Thresholds {
                warning: None,
                failure: Threshold::Percent(50_00),
                container: None,
            },
            targets: vec![Target {
                name: "app".into(),
                id: Some(format!("containerd://{ID}")),
            }],
        }));
        (root, t, rx)
    }

    fn set(root: &std::path::Path, file: &str, text: &str) {
        let dir = root.join(format!("kubepods/burstable/pod{UID}/{ID}"));
        fs::write(dir.join(file), text).unwrap();
    }

    fn crossings(rx: &mut UnboundedReceiver<Crossing>) -> usize {
        std::iter::from_fn(|| rx.try_recv().ok()).count()
    }

    #[test]
    fn a_threshold_fires_once_and_rearms_below() {
        let (root, mut t, mut rx) = setup("fire");
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 0);
        assert_eq!(t.state.lock().above.get(UID), Some(&false));
        set(&root, "memory.current", "600\n");
        t.sample_pod(UID, None);
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 1, "fires once while above");
        assert_eq!(t.state.lock().above.get(UID), Some(&true));
        let gauge = t.state.lock().containers.values().next().copied();
        assert_eq!(
            gauge,
            Some(Gauge {
                used: 600,
                limit: Some(1000),
                threshold: Some(500)
            })
        );
        set(&root, "memory.current", "100\n");
        t.sample_pod(UID, None);
        set(&root, "memory.current", "700\n");
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 1, "re-armed below, fires again");
        // Evicted: measured, never fired again.
        t.command(Cmd::Evicted(UID.into()));
        set(&root, "memory.current", "100\n");
        t.sample_pod(UID, None);
        set(&root, "memory.current", "700\n");
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 0);
        // Forgotten: no gauges, no state.
        t.command(Cmd::Forget(UID.into()));
        assert!(t.state.lock().containers.is_empty());
        assert!(t.state.lock().above.is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_limit_never_fires_and_a_vanished_cgroup_is_found_again() {
        let (root, mut t, mut rx) = setup("nolimit");
        set(&root, "memory.max", "max\n");
        set(&root, "memory.current", "999999999\n");
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 0);
        let gauge = t.state.lock().containers.values().next().copied().unwrap();
        assert_eq!((gauge.limit, gauge.threshold), (None, None));
        // An unreadable file: closed and said once, however many ticks it lasts. (A plain
        // file stays readable when removed, as a removed cgroup's do not: the e2e check on
        // real cgroups covers that.)
        set(&root, "memory.current", "garbage\n");
        for _ in 0..3 {
            t.sample_pod(UID, None);
        }
        assert!(t.state.lock().containers.is_empty());
        assert_eq!(t.pods[UID].reported.len(), 1, "{:?}", t.pods[UID].reported);
        // Gone: another condition, said once; when it is back, watched again.
        let dir = root.join(format!("kubepods/burstable/pod{UID}/{ID}"));
        fs::remove_dir_all(&dir).unwrap();
        t.sample_pod(UID, None);
        t.sample_pod(UID, None);
        assert_eq!(t.pods[UID].reported.len(), 2, "{:?}", t.pods[UID].reported);
        fs::create_dir_all(&dir).unwrap();
        set(&root, "memory.current", "900\n");
        set(&root, "memory.max", "1000\n");
        t.sample_pod(UID, None);
        assert_eq!(crossings(&mut rx), 1);
        assert!(t.pods[UID].reported.is_empty());
        fs::remove_dir_all(root).unwrap();
    }
}
