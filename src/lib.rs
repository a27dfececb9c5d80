//! kubemem: a memory guard for containers.
//!
//! The probe reads the container's own cgroup (v1, v2 or hybrid), computes the working set
//! the way kubelet and `kubectl top` do, compares it with the effective limit, prints one
//! line and exits with a code an exec livenessProbe understands.
//!
//! The data flows through one module per step:
//! `args` (command line, the only allocation) -> `locate` (which cgroup, where mounted) ->
//! `read` (kernel files into fixed buffers) -> `parse` (pure byte parsers) -> `measure`
//! (limit and working set) -> `decide` (the level) -> `report` (one line) -> [`Exit`].
//!
//! Exit codes: 0 below the failure threshold (warnings are logged), 4 at or above it, 2 memory
//! cannot be measured (0 with `--on-error pass`), 3 usage error.
//!
//! The library is `no_std` outside tests: nothing after argument parsing can allocate or
//! format through `core::fmt` without the compiler noticing. Only `args` uses std (lexopt
//! needs it), and `evict`, in the build with the `evict` feature (`kubemem-evict`): at the
//! failure threshold it asks the API server to evict the pod, after the probe's own work,
//! through rustls, which allocates.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod annotations;
pub mod args;
pub mod check;
pub mod decide;
pub mod error;
#[cfg(feature = "evict")]
pub mod evict;
#[cfg(feature = "http")]
pub mod http;
pub mod install;
#[cfg(feature = "http")]
pub mod json;
pub mod locate;
pub mod measure;
pub mod parse;
pub mod path;
pub mod read;
pub mod report;
pub mod state;
pub mod supervise;
pub mod sys;
pub mod trend;
pub mod wakeup;

use core::ffi::CStr;

use rustix::fd::BorrowedFd;

pub use crate::decide::Level;
pub use crate::error::Exit;
pub use crate::measure::Usage;
pub use crate::parse::Threshold;

/// Output format of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Logfmt,
    Json,
}

/// What to do when memory cannot be measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Exit 2: the probe fails.
    Fail,
    /// Exit 0 after printing the error: a broken node does not restart healthy pods.
    Pass,
}

/// `--lead DURATION`: its milliseconds, and the text as given (lines print it as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lead<'a> {
    pub ms: u64,
    pub text: &'a [u8],
}

/// Everything one probe run needs. Borrowed from the parsed arguments, so building it
/// allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    pub warning: Threshold,
    pub failure: Threshold,
    pub logfile: Option<&'a CStr>,
    pub usage: Usage,
    /// `--cgroup`: measure this directory instead of finding our own.
    pub cgroup: Option<&'a [u8]>,
    /// `--root`, without a trailing `/` (empty for `/`).
    pub root: &'a [u8],
    pub format: Format,
    pub on_error: OnError,
    pub verbose: bool,
    /// `--annotations`: a downward API annotations file whose thresholds override the flags.
    pub annotations: Option<&'a CStr>,
    /// `--termination-log`: where the line of a failed probe also goes.
    pub termination_log: Option<&'a CStr>,
    /// `--lead`: act when the limit is this close at the working set's recent rate.
    pub lead: Option<Lead<'a>>,
    /// `--state`: the probe's samples between runs (see [`state`]).
    pub state: Option<&'a CStr>,
    /// Where verdict lines go (standard output in the binary).
    pub out: BorrowedFd<'a>,
    /// Where error lines go (standard error in the binary).
    pub err: BorrowedFd<'a>,
}

/// Runs the probe once: locate, measure, decide, report. Allocation-free. When the probe
/// fails (exit 4, or 2 and 3 before a verdict), its line also goes to the termination log.
pub fn run(cfg: &Config<'_>) -> Exit {
    let cfg = &match annotated(cfg) {
        Ok(cfg) => cfg,
        Err(exit) => return exit,
    };
    let mut loc = locate::Location::new();
    let located = match cfg.cgroup {
        Some(dir) => locate::given(dir, &mut loc),
        None => locate::locate(cfg.root, &mut loc),
    };
    // Raw usage is an upper bound of the working set: when it is below both thresholds the
    // verdict is already "ok", and memory.stat is only worth reading for a line. The trend
    // (--state) needs the working set of every run.
    let needs_stat = |raw: u64, limit: u64| {
        cfg.verbose
            || cfg.state.is_some()
            || cfg.warning.reached(raw, limit)
            || cfg.failure.reached(raw, limit)
    };
    match located.and_then(|()| measure::measure(cfg.root, &loc, cfg.usage, needs_stat)) {
        Ok(sample) => {
            let mut level = decide::decide(sample.used, sample.limit, cfg.warning, cfg.failure);
            let eta = match cfg.state {
                None => None,
                Some(path) => match tracked(cfg, path, &loc, &sample) {
                    Ok((eta, due)) => {
                        if due {
                            level = Level::Failure;
                        }
                        eta
                    }
                    Err(exit) => return exit,
                },
            };
            if level != Level::Ok || cfg.verbose {
                let outlook = report::Outlook {
                    eta_ms: eta,
                    oom_kills: measure::oom_events(&loc).map_or(0, |e| e.oom_kill),
                };
                let line = report::verdict(cfg, &loc, &sample, level, &outlook);
                report::emit(cfg, &line, level);
                if level == Level::Failure {
                    report::terminate(cfg, &line);
                }
            }
            match level {
                Level::Failure => Exit::Failure,
                Level::Ok | Level::Warning => Exit::Ok,
            }
        }
        Err(e) => cannot_measure(cfg, &loc, e),
    }
}

/// The probe's trend through its state file: the time left (ms) at the recent rate, and
/// whether the lead says to fail now: the limit is within the lead, or would be by the next
/// run (as far off as the last one was). A state file that cannot be opened or written is an
/// error line and `--on-error`'s exit (the lead could never act); what is in it never is.
#[cold]
#[inline(never)]
fn tracked(
    cfg: &Config<'_>,
    path: &CStr,
    loc: &locate::Location,
    sample: &measure::Sample,
) -> Result<(Option<u64>, bool), Exit> {
    let fail = |e| Err(cannot_track(cfg, path, e));
    let (now, boot) = state::now();
    let mut name = path::CPath::new();
    let cgroup = loc
        .dir
        .file(loc.dir.len(), error::File::Stat.name(), &mut name)
        .map(|p| rustix::fs::stat(p).map(|st| st.st_ino));
    let cgroup = match cgroup {
        Some(Ok(ino)) => ino,
        // Measured a moment ago; gone now: the same as an unknown cgroup.
        _ => 0,
    };
    let owner = state::Owner { boot, cgroup };
    let lead_ms = cfg.lead.map_or(0, |l| l.ms);
    match state::track(path, owner, lead_ms, now, sample.used) {
        Ok((trend, gap)) => {
            let eta = trend.eta(sample.used, sample.limit);
            let due = cfg
                .lead
                .is_some_and(|l| trend::due(eta, l.ms, gap.unwrap_or(0)));
            Ok((eta, due))
        }
        Err(e) => fail(e),
    }
}

fn cannot_track(cfg: &Config<'_>, path: &CStr, e: state::Failed) -> Exit {
    on_error(cfg, &report::state_error(cfg, path, e))
}

/// Memory cannot be measured: the error line, and per `--on-error` exit 2 (the line also
/// going to the termination log) or 0. Shared by the probe and `kubemem run`'s start.
pub(crate) fn cannot_measure(cfg: &Config<'_>, loc: &locate::Location, e: error::Error) -> Exit {
    on_error(cfg, &report::error(cfg, loc, e))
}

/// The error `line`, and `--on-error`'s exit.
fn on_error(cfg: &Config<'_>, line: &report::Line) -> Exit {
    report::emit_error(cfg, line);
    match cfg.on_error {
        OnError::Fail => {
            report::terminate(cfg, line);
            Exit::CannotMeasure
        }
        OnError::Pass => Exit::Ok,
    }
}

/// `cfg` with the thresholds of its `--annotations` file, which override the flags' (no
/// system call without one). A file that cannot be read or has a malformed line is a usage
/// error, reported as one line naming the file and the line, also to the termination log:
/// the probe fails, and its pod should say why.
pub fn annotated<'a>(cfg: &Config<'a>) -> Result<Config<'a>, Exit> {
    match cfg.annotations {
        None => Ok(*cfg),
        Some(path) => read_annotations(cfg, path),
    }
}

/// The work of [`annotated`], out of line and marked cold so that the compiler places it
/// away from the probe's path: the pages a run without `--annotations` touches stay the same.
#[cold]
#[inline(never)]
fn read_annotations<'a>(cfg: &Config<'a>, path: &CStr) -> Result<Config<'a>, Exit> {
    match annotations::read(path) {
        Ok(a) => Ok(Config {
            warning: a.warning.unwrap_or(cfg.warning),
            failure: a.failure.unwrap_or(cfg.failure),
            ..*cfg
        }),
        Err(e) => {
            let line = report::annotations_error(cfg, path, e);
            report::emit_error(cfg, &line);
            report::terminate(cfg, &line);
            Err(Exit::Usage)
        }
    }
}
