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
//! again. Each container's working set also feeds its `kubemem::trend::Trend` (the time left
//! at the recent rate: `eta=`), and with a lead (`kubemem.io/lead`, `--lead`) a container
//! fires when the limit is due within the lead, as in `kubemem run --lead`: whichever comes
//! first, the threshold or the lead. A rise of the kernel's OOM-kill count of a container's
//! cgroup is an `event=oom-kill` line. Conditions (no cgroup yet, an unreadable file) are one line per pod each, and the
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
use kubemem::report::{threshold_text, Outlook};
use kubemem::trend::{self, Trend};
use kubemem::wakeup::Wakeup;
use rustix::event::{PollFd, PollFlags};
use tokio::sync::mpsc::UnboundedSender;

use crate::cgroup;
use crate::log::Line;
use crate::metrics::{Gauge, State};
use crate::select::{Lead, Target, Thresholds};

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
        epoch: Instant::now(),
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
    /// The trends' clock: milliseconds since this (monotonic).
    epoch: Instant,
}

struct Pod {
    cmd: PodCmd,
    evicted: bool,
    containers: BTreeMap<String, Container>,
    /// The conditions met since the pod was last watched (only the first was said).
    reported: HashSet<String>,
}

struct Container {
    id: Option<String>,
    open: Option<Box<Open>>,
    /// At or above the failure threshold, or due by the lead, at the last sample: fired,
    /// not re-armed yet.
    fired: bool,
    warned: bool,
    /// `event=no-limit` was logged for the current state.
    no_limit: bool,
    /// The working set's recent samples, for the lead and `eta`. Boxed: 560 bytes inline
    /// would make every pod's one-container BTreeMap leaf (11 slots) 6 KiB.
    trend: Box<Trend>,
    /// The lead said to evict at the last sample.
    due: bool,
    /// The cgroup's OOM-kill count at the last sample; `None` before the first read (the
    /// kills before the agent watched are history: said as `oom_kills=`, not as a line).
    oom_kills: Option<u64>,
}

impl Container {
    fn new(id: Option<String>, lead: Option<&Lead>) -> Container {
        Container {
            id,
            open: None,
            fired: false,
            warned: false,
            no_limit: false,
            trend: Box::new(Trend::new(lead.map_or(0, |l| l.ms))),
            due: false,
            oom_kills: None,
        }
    }
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
                    self.sample_pod(&uid, None, self.ms());
                }
                next += self.interval;
                if next <= now {
                    next = now + self.interval;
                }
            }
            let due = self.wait(&woken, next.saturating_duration_since(Instant::now()));
            for (uid, name) in due {
                self.sample_pod(&uid, Some(&name), self.ms());
            }
        }
    }

    /// The trends' time: milliseconds of the monotonic clock.
    fn ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
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
        let lead = cmd.thresholds.lead.as_ref();
        for t in &cmd.targets {
            let c = pod
                .containers
                .entry(t.name.clone())
                .or_insert_with(|| Container::new(t.id.clone(), lead));
            if reset_all || c.id != t.id {
                *c = Container::new(t.id.clone(), lead);
            }
        }
        pod.cmd = cmd;
    }

    /// Samples one container of a pod, or all of them, at `now` (the trends' milliseconds).
    fn sample_pod(&mut self, uid: &str, only: Option<&str>, now: u64) {
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
                let pod = self.pods.get(uid);
                above |= pod
                    .and_then(|p| p.containers.get(&name))
                    .is_some_and(|c| c.due);
                continue;
            }
            above |= self.sample_container(uid, &name, now);
        }
        self.state.lock().above.insert(uid.to_owned(), above);
    }

    /// Samples one container (opening its cgroup first if needed); true when it is at or
    /// above its failure threshold.
    fn sample_container(&mut self, uid: &str, name: &str, now: u64) -> bool {
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
                c.due = false;
                self.state.lock().containers.remove(&k);
                if !vanished {
                    report(pod, name, text);
                }
                return false;
            }
        };
        let t = &pod.cmd.thresholds;
        let limited = sample.source != LimitSource::Host;
        // The working set of every sample (the sampler reads memory.stat every time).
        c.trend.push(now, sample.used);
        let kills = open.sampler.oom_events().map(|e| e.oom_kill);
        let outlook = Outlook {
            // Time to the host's memory means nothing for a container without a limit.
            eta_ms: limited
                .then(|| c.trend.eta(sample.used, sample.limit))
                .flatten(),
            oom_kills: kills.or(c.oom_kills).unwrap_or(0),
        };
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
                oom_kills: kills,
            },
        );
        if let (Some(now), Some(before)) = (kills, c.oom_kills) {
            if now > before {
                // A process of the container was killed and the container lives on (a
                // worker, a child): `kubemem run`'s line, once per rise.
                let level = decide(
                    sample.used,
                    sample.limit,
                    t.warning.unwrap_or(NEVER),
                    t.failure,
                )
                .max(Level::Warning);
                verdict(
                    &pod.cmd, name, &sample, &open.loc, "oom-kill", level, &outlook,
                )
                .emit();
            }
        }
        if kills.is_some() {
            c.oom_kills = kills;
        }
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
            c.due = false;
            return false;
        }
        c.no_limit = false;
        let mut level = decide(
            sample.used,
            sample.limit,
            t.warning.unwrap_or(NEVER),
            t.failure,
        );
        // The next sample is an interval away (sooner only on a kernel wake-up).
        let interval = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        c.due = (t.lead.as_ref()).is_some_and(|l| trend::due(outlook.eta_ms, l.ms, interval));
        if c.due {
            level = Level::Failure;
        }
        if level == Level::Warning && !c.warned {
            verdict(
                &pod.cmd, name, &sample, &open.loc, "warning", level, &outlook,
            )
            .emit();
        }
        c.warned = level >= Level::Warning;
        if level == Level::Failure && !c.fired && !pod.evicted {
            let event = if self.dry_run { "dry-run" } else { "evict" };
            let line = verdict(&pod.cmd, name, &sample, &open.loc, event, level, &outlook);
            let message = verdict_keys(
                Line::in_format(kubemem::Format::Logfmt, level.name(), event),
                &pod.cmd,
                name,
                &sample,
                &open.loc,
                &outlook,
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
    o: &Outlook,
) -> Line {
    verdict_keys(Line::new(level.name(), event), cmd, container, s, loc, o)
}

/// The probe's verdict keys after the line's `level` and `event`: used, limit, percent, the
/// thresholds, usage, cgroup, limit_source, eta, lead, oom_kills, path (`eta` when the
/// working set grows, `lead` when one applies, `oom_kills` when above 0: the probe's keys
/// and formats).
fn verdict_keys(
    line: Line,
    cmd: &PodCmd,
    container: &str,
    s: &Sample,
    loc: &Location,
    o: &Outlook,
) -> Line {
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
    let mut line = line
        .str("failure", &text(t.failure))
        .str("usage", "working-set")
        .str("cgroup", loc.version.name())
        .str("limit_source", s.source.name());
    if let Some(eta) = o.eta_ms {
        // Tenths of a second, rounded down like `percent`: a printed 3.0 has 3 s or less.
        line = line.tenths("eta", u128::from(eta / 100));
    }
    if let Some(lead) = &t.lead {
        line = line.str("lead", &lead.text);
    }
    if o.oom_kills > 0 {
        line = line.num("oom_kills", o.oom_kills);
    }
    line.str(
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
            epoch: Instant::now(),
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
                lead: None,
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
        t.sample_pod(UID, None, 0);
        assert_eq!(crossings(&mut rx), 0);
        assert_eq!(t.state.lock().above.get(UID), Some(&false));
        set(&root, "memory.current", "600\n");
        t.sample_pod(UID, None, 0);
        t.sample_pod(UID, None, 0);
        assert_eq!(crossings(&mut rx), 1, "fires once while above");
        assert_eq!(t.state.lock().above.get(UID), Some(&true));
        let gauge = t.state.lock().containers.values().next().copied();
        assert_eq!(
            gauge,
            Some(Gauge {
                used: 600,
                limit: Some(1000),
                threshold: Some(500),
                oom_kills: None,
            })
        );
        set(&root, "memory.current", "100\n");
        t.sample_pod(UID, None, 0);
        set(&root, "memory.current", "700\n");
        t.sample_pod(UID, None, 0);
        assert_eq!(crossings(&mut rx), 1, "re-armed below, fires again");
        // Evicted: measured, never fired again.
        t.command(Cmd::Evicted(UID.into()));
        set(&root, "memory.current", "100\n");
        t.sample_pod(UID, None, 0);
        set(&root, "memory.current", "700\n");
        t.sample_pod(UID, None, 0);
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
        t.sample_pod(UID, None, 0);
        assert_eq!(crossings(&mut rx), 0);
        let gauge = t.state.lock().containers.values().next().copied().unwrap();
        assert_eq!((gauge.limit, gauge.threshold), (None, None));
        // An unreadable file: closed and said once, however many ticks it lasts. (A plain
        // file stays readable when removed, as a removed cgroup's do not: the e2e check on
        // real cgroups covers that.)
        set(&root, "memory.current", "garbage\n");
        for _ in 0..3 {
            t.sample_pod(UID, None, 0);
        }
        assert!(t.state.lock().containers.is_empty());
        assert_eq!(t.pods[UID].reported.len(), 1, "{:?}", t.pods[UID].reported);
        // Gone: another condition, said once; when it is back, watched again.
        let dir = root.join(format!("kubepods/burstable/pod{UID}/{ID}"));
        fs::remove_dir_all(&dir).unwrap();
        t.sample_pod(UID, None, 0);
        t.sample_pod(UID, None, 0);
        assert_eq!(t.pods[UID].reported.len(), 2, "{:?}", t.pods[UID].reported);
        fs::create_dir_all(&dir).unwrap();
        set(&root, "memory.current", "900\n");
        set(&root, "memory.max", "1000\n");
        t.sample_pod(UID, None, 0);
        assert_eq!(crossings(&mut rx), 1);
        assert!(t.pods[UID].reported.is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    const MIB: u64 = 1 << 20;

    /// The pod of `setup` with a limit of 256 MiB, `failure` and `lead`, re-announced.
    fn with(t: &mut Thread, root: &std::path::Path, failure: u32, lead: Option<(u64, &str)>) {
        set(root, "memory.max", &format!("{}\n", 256 * MIB));
        let mut cmd = t.pods[UID].cmd.clone();
        cmd.thresholds.failure = Threshold::Percent(failure * 100);
        cmd.thresholds.lead = lead.map(|(ms, text)| Lead {
            ms,
            text: text.into(),
        });
        t.command(Cmd::Pod(cmd));
    }

    /// Feeds `used(ms)` every 100 ms (the interval is 1 s: the lead also counts one) until a
    /// crossing, for at most `until` ms; returns when, with the crossing.
    fn run(
        t: &mut Thread,
        root: &std::path::Path,
        rx: &mut UnboundedReceiver<Crossing>,
        until: u64,
        used: impl Fn(u64) -> u64,
    ) -> Option<(u64, Crossing)> {
        (0..=until).step_by(100).find_map(|at| {
            set(root, "memory.current", &format!("{}\n", used(at)));
            t.sample_pod(UID, None, at);
            rx.try_recv().ok().map(|c| (at, c))
        })
    }

    /// `key=value` of a logfmt message.
    fn value<'a>(message: &'a str, key: &str) -> Option<&'a str> {
        message
            .split(' ')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn the_lead_evicts_before_the_threshold_with_the_lead_left() {
        let (root, mut t, mut rx) = setup("lead");
        with(&mut t, &root, 99, Some((3000, "3s")));
        // 32 MiB/s into 256 MiB: full at 8 s.
        let leak = |at: u64| MIB + 32 * MIB * at / 1000;
        let (at, c) = run(&mut t, &root, &mut rx, 10_000, leak).expect("no crossing");
        // The lead and the wait for the next sample (1.25 intervals): due at 4.9 s at the
        // latest, and not before the trend has its 3.6 s of samples.
        assert!((3600..=4900).contains(&at), "crossed at {at} ms");
        let eta: f64 = value(&c.message, "eta").expect(&c.message).parse().unwrap();
        assert!(eta > 0.0 && eta <= 4.25, "{}", c.message);
        assert_eq!(value(&c.message, "lead"), Some("3s"), "{}", c.message);
        assert_eq!(value(&c.message, "level"), Some("failure"));
        assert_eq!(value(&c.message, "event"), Some("evict"));
        let percent: f64 = value(&c.message, "percent").unwrap().parse().unwrap();
        assert!(percent < 99.0, "{}", c.message);
        assert_eq!(t.state.lock().above.get(UID), Some(&true));
        // Once, while it stays due.
        assert!(run(&mut t, &root, &mut rx, 500, |a| leak(at + 100 + a)).is_none());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_threshold_stays_a_floor_and_a_flat_line_never_fires_by_the_lead() {
        let (root, mut t, mut rx) = setup("floor");
        // A lead of an hour, flat at 94% of a 95% threshold for 20 s: never.
        with(&mut t, &root, 95, Some((3_600_000, "1h")));
        let flat = |at: u64| 256 * MIB / 100 * 94 + (at * 7919 % 13) * 4096;
        assert!(run(&mut t, &root, &mut rx, 20_000, flat).is_none());
        // The threshold fires at once, lead or not.
        let (at, c) = run(&mut t, &root, &mut rx, 1000, |_| 256 * MIB / 100 * 96).unwrap();
        assert_eq!(at, 0);
        assert_eq!(value(&c.message, "lead"), Some("1h"));
        assert_eq!(value(&c.message, "eta"), None, "{}", c.message);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn without_a_lead_the_line_still_says_eta_and_no_lead() {
        let (root, mut t, mut rx) = setup("eta");
        with(&mut t, &root, 50, None);
        let leak = |at: u64| MIB + 16 * MIB * at / 1000;
        let (at, c) = run(&mut t, &root, &mut rx, 10_000, leak).unwrap();
        // At 50% (128 MiB: 7.9 s), the threshold's crossing, 8 s from the limit.
        assert_eq!(at, 8000);
        let eta: f64 = value(&c.message, "eta").expect(&c.message).parse().unwrap();
        assert!((7.0..=8.0).contains(&eta), "{}", c.message);
        assert_eq!(value(&c.message, "lead"), None);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn oom_kills_are_counted_and_said() {
        let (root, mut t, mut rx) = setup("oom");
        set(
            &root,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        t.sample_pod(UID, None, 0);
        let gauge = |t: &Thread| t.state.lock().containers.values().next().unwrap().oom_kills;
        assert_eq!(gauge(&t), Some(1));
        assert_eq!(t.pods[UID].containers["app"].oom_kills, Some(1));
        set(
            &root,
            "memory.events",
            "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n",
        );
        set(&root, "memory.current", "600\n");
        t.sample_pod(UID, None, 100);
        assert_eq!(gauge(&t), Some(2));
        let c = rx.try_recv().unwrap();
        assert_eq!(value(&c.message, "oom_kills"), Some("2"), "{}", c.message);
        // Unreadable now: the last count stands in the lines, the gauge is left out.
        set(&root, "memory.events", "garbage");
        t.sample_pod(UID, None, 200);
        assert_eq!(gauge(&t), None);
        assert_eq!(t.pods[UID].containers["app"].oom_kills, Some(2));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_changed_lead_starts_the_trend_afresh() {
        let (root, mut t, _rx) = setup("relead");
        with(&mut t, &root, 99, Some((3000, "3s")));
        for at in (0..2000).step_by(100) {
            set(&root, "memory.current", &format!("{}\n", MIB + at * MIB));
            t.sample_pod(UID, None, at);
        }
        assert!(!t.pods[UID].containers["app"].trend.points().is_empty());
        with(&mut t, &root, 99, Some((20_000, "20s")));
        let trend = *t.pods[UID].containers["app"].trend;
        assert!(trend.points().is_empty());
        assert_eq!(trend.window(), 20_000);
        fs::remove_dir_all(root).unwrap();
    }
}
