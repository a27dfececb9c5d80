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
pub mod supervise;
pub mod sys;
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
    // verdict is already "ok", and memory.stat is only worth reading for a line.
    let needs_stat = |raw: u64, limit: u64| {
        cfg.verbose || cfg.warning.reached(raw, limit) || cfg.failure.reached(raw, limit)
    };
    match located.and_then(|()| measure::measure(cfg.root, &loc, cfg.usage, needs_stat)) {
        Ok(sample) => {
            let level = decide::decide(sample.used, sample.limit, cfg.warning, cfg.failure);
            if level != Level::Ok || cfg.verbose {
                let line = report::verdict(cfg, &loc, &sample, level);
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

/// Memory cannot be measured: the error line, and per `--on-error` exit 2 (the line also
/// going to the termination log) or 0. Shared by the probe and `kubemem run`'s start.
pub(crate) fn cannot_measure(cfg: &Config<'_>, loc: &locate::Location, e: error::Error) -> Exit {
    let line = report::error(cfg, loc, e);
    report::emit_error(cfg, &line);
    match cfg.on_error {
        OnError::Fail => {
            report::terminate(cfg, &line);
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
