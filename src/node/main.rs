//! `kubemem-node`: the node agent, run as a DaemonSet (cargo feature `node`). It watches the
//! annotated pods of its own node and evicts a pod whose container's working set crosses its
//! threshold. Unlike the probe it allocates and runs async (kube-rs on tokio): it is a binary
//! crate of its own, so the `no_std` library stays as it is and only lends it the probe's
//! measurement (`kubemem::measure`).
//!
//! Two sides and two channels:
//! - the async side (one tokio thread): the pod watcher (one list+watch of this node's pods;
//!   kube-rs re-lists after 410 Gone and backs off on errors), the evictions and Events, the
//!   metrics server, the signals;
//! - the sampling thread (`sampling`): the cgroups.
//!
//! Pods go to the sampling thread as commands; crossings come back over a channel and start
//! an eviction at once.

mod args;
mod cgroup;
mod evict;
mod log;
mod metrics;
mod sampling;
mod select;

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::args::{Options, Parsed};
use crate::log::Line;
use crate::metrics::State;
use crate::sampling::{Cmd, Crossing, PodCmd};
use crate::select::Selection;

fn main() -> ExitCode {
    let parsed = args::parse(lexopt::Parser::from_env(), std::env::var_os("NODE_NAME"));
    let opts = match parsed {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("kubemem-node {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "kubemem-node: {} (see kubemem-node --help)",
                String::from_utf8_lossy(&e.0)
            );
            return ExitCode::from(3);
        }
    };
    log::set_format(opts.format);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&format!("cannot start the async runtime: {e}"), 1),
    };
    rt.block_on(run(opts))
}

/// One error line and the exit code.
fn fatal(error: &str, code: u8) -> ExitCode {
    Line::new("error", "error").str("error", error).emit();
    ExitCode::from(code)
}

async fn run(opts: Options) -> ExitCode {
    let config = match kube::Config::infer().await {
        Ok(config) => config,
        Err(e) => {
            let e = log::chain(&e);
            return fatal(&format!("no Kubernetes client configuration: {e}"), 1);
        }
    };
    // Evictions and Events without kube-rs's own retries of 429, 503 and 504: a refusal is
    // said and retried here, at this agent's pace and only while the container is above.
    let mut once = config.clone();
    once.default_retry = false;
    let (client, evict_client) = match (Client::try_from(config), Client::try_from(once)) {
        (Ok(c), Ok(e)) => (c, e),
        (Err(e), _) | (_, Err(e)) => return fatal(&format!("no usable Kubernetes client: {e}"), 1),
    };
    let root = cgroup::memory_root(&opts.cgroup_root);
    let interval = Duration::from_millis(opts.interval_ms);
    let state = State::default();
    let (crossings_tx, mut crossings) = mpsc::unbounded_channel();
    let sampler = match sampling::spawn(
        root.clone(),
        interval,
        opts.dry_run,
        state.clone(),
        crossings_tx,
    ) {
        Ok(h) => h,
        Err(e) => return fatal(&format!("cannot start the sampling thread: {e}"), 1),
    };
    if let Some(addr) = &opts.metrics_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                // The sampling thread goes round at least every interval.
                let stale = interval * 3 + Duration::from_secs(5);
                tokio::spawn(metrics::serve(l, state.clone(), stale));
            }
            Err(e) => return fatal(&format!("--metrics-addr {addr}: cannot listen: {e}"), 1),
        }
    }
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return fatal("cannot handle SIGTERM and SIGINT", 1);
    };
    let line = Line::new("info", "started")
        .str("node", &opts.node)
        .str("cgroup_root", &root.to_string_lossy())
        .str("interval", &format!("{}ms", opts.interval_ms));
    let line = match &opts.lead {
        Some(l) => line.str("lead", &l.text),
        None => line,
    };
    line.str("dry_run", if opts.dry_run { "true" } else { "false" })
        .str("metrics_addr", opts.metrics_addr.as_deref().unwrap_or(""))
        .emit();

    let pods_api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", opts.node));
    let new_watch = || {
        watcher(pods_api.clone(), config.clone())
            .default_backoff()
            .boxed()
    };
    let mut watch = new_watch();
    let mut agent = Agent {
        sampler,
        lead: opts.lead.clone(),
        state: state.clone(),
        pods: HashMap::new(),
        relist: None,
        listed_once: false,
        last_error: None,
        in_flight: HashSet::new(),
        evicted: HashSet::new(),
        gone: HashSet::new(),
    };
    let (done_tx, mut done) = mpsc::unbounded_channel::<(String, evict::Outcome)>();
    loop {
        tokio::select! {
            ev = watch.next() => match ev {
                Some(Ok(ev)) => agent.event(ev),
                Some(Err(e)) => {
                    // A watch started from a compacted resourceVersion answers 410 Gone, and
                    // kube-rs's watcher would retry that same version: start over with a
                    // fresh list instead.
                    let gone = matches!(&e, watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 410);
                    agent.watch_error(&log::chain(&e));
                    if gone {
                        watch = new_watch();
                    }
                }
                None => watch = new_watch(),
            },
            Some(c) = crossings.recv() => {
                let client = evict_client.clone();
                let node = opts.node.clone();
                if opts.dry_run {
                    tokio::spawn(evict::dry_run(client, node, state.clone(), c));
                } else if agent.may_evict(&c) {
                    let done_tx = done_tx.clone();
                    let state = state.clone();
                    tokio::spawn(async move {
                        let uid = c.uid.clone();
                        let outcome = evict::evict(client, node, state, c).await;
                        let _ = done_tx.send((uid, outcome));
                    });
                }
            }
            Some((uid, outcome)) = done.recv() => agent.evicted(uid, outcome),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    Line::new("info", "stopped").str("reason", "signal").emit();
    ExitCode::SUCCESS
}

/// The async side's view of the pods.
struct Agent {
    sampler: sampling::Handle,
    /// `--lead`: for the pods without `kubemem.io/lead`.
    lead: Option<select::Lead>,
    state: State,
    /// Pods the agent knows (watched or reported), by UID: namespace/name and the error
    /// reported for it, if any.
    pods: HashMap<String, Known>,
    /// During a list: the UIDs it has delivered so far.
    relist: Option<HashSet<String>>,
    listed_once: bool,
    /// The last watch error, the reason of the next re-list.
    last_error: Option<String>,
    in_flight: HashSet<String>,
    evicted: HashSet<String>,
    /// Answered 404 to an eviction: not watched again, whatever a stale event says.
    gone: HashSet<String>,
}

struct Known {
    /// The error line said for this pod (bad annotation, no such container).
    reported: Option<String>,
}

impl Agent {
    fn event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Init => {
                if self.listed_once {
                    let mut s = self.state.lock();
                    s.watch_restarts += 1;
                    drop(s);
                    let reason = self.last_error.take().unwrap_or_else(|| "re-list".into());
                    Line::new("warning", "watch-restart")
                        .str("reason", &reason)
                        .emit();
                }
                self.relist = Some(HashSet::new());
            }
            Event::InitApply(pod) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    self.relist.get_or_insert_with(HashSet::new).insert(uid);
                }
                self.apply(&pod);
            }
            Event::InitDone => {
                // Pods that were deleted while the watch was down are not in the new list.
                if let Some(seen) = self.relist.take() {
                    let stale: Vec<String> = self
                        .pods
                        .keys()
                        .filter(|u| !seen.contains(*u))
                        .cloned()
                        .collect();
                    for uid in stale {
                        self.forget(&uid);
                    }
                }
                self.listed_once = true;
                self.state.lock().listed = true;
            }
            Event::Apply(pod) => self.apply(&pod),
            Event::Delete(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    self.forget(uid);
                    self.gone.remove(uid);
                    self.evicted.remove(uid);
                }
            }
        }
    }

    fn watch_error(&mut self, error: &str) {
        Line::new("warning", "watch-error")
            .str("error", error)
            .emit();
        self.last_error = Some(error.to_owned());
    }

    fn apply(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let Some(view) = select::view(pod) else {
            // Not opted in (any more), being deleted, or finished.
            self.forget(&uid);
            return;
        };
        if uid.is_empty() || self.gone.contains(&uid) {
            return;
        }
        let problem = match (&view.selection, &view.targets) {
            (Selection::Bad(e), _) => Some(format!("not watched: {e}")),
            (_, Err(e)) => Some(format!("not watched: {e}")),
            _ => None,
        };
        let known = self
            .pods
            .entry(uid.clone())
            .or_insert(Known { reported: None });
        match (problem, &view.selection, view.targets) {
            (Some(problem), _, _) => {
                if known.reported.as_deref() != Some(&problem) {
                    Line::new("error", "error")
                        .pod(&view.namespace, &view.name)
                        .str("error", &problem)
                        .emit();
                    known.reported = Some(problem);
                }
                self.sampler.send(Cmd::Forget(uid));
            }
            (None, Selection::Watched(t), Ok(targets)) => {
                known.reported = None;
                self.sampler.send(Cmd::Pod(PodCmd {
                    uid,
                    namespace: view.namespace,
                    name: view.name,
                    qos: view.qos,
                    thresholds: t.clone().or_lead(self.lead.as_ref()),
                    targets,
                }));
            }
            _ => {}
        }
    }

    fn forget(&mut self, uid: &str) {
        if self.pods.remove(uid).is_some() {
            self.sampler.send(Cmd::Forget(uid.to_owned()));
        }
    }

    /// One eviction in flight per pod, none for an evicted or forgotten pod.
    fn may_evict(&mut self, c: &Crossing) -> bool {
        self.pods.contains_key(&c.uid)
            && !self.evicted.contains(&c.uid)
            && self.in_flight.insert(c.uid.clone())
    }

    fn evicted(&mut self, uid: String, outcome: evict::Outcome) {
        self.in_flight.remove(&uid);
        match outcome {
            evict::Outcome::Evicted => {
                self.sampler.send(Cmd::Evicted(uid.clone()));
                self.evicted.insert(uid);
            }
            evict::Outcome::Gone => {
                self.forget(&uid);
                self.gone.insert(uid);
            }
            evict::Outcome::Forbidden | evict::Outcome::GaveUp => {}
        }
    }
}
