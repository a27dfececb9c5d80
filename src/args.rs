//! The command line. The one module that uses std and allocates: lexopt collects argv into
//! `OsString`s, and the parsed [`Args`] own their paths (and [`RunArgs`] the command that
//! `kubemem run` starts). Everything after [`Args::config`] borrows from them and allocates
//! nothing.
//!
//! Values are parsed from their bytes with kubemem's own parsers (no `FromStr`, no boxed
//! errors), and errors are messages assembled from static pieces.

extern crate std;

use std::ffi::{c_char, CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::vec;
use std::vec::Vec;

use lexopt::{Arg, Parser};
use rustix::fd::BorrowedFd;
use rustix::process::Signal;

use crate::parse::{parse_duration, parse_signal, parse_threshold, BadNumber, Threshold};
use crate::supervise::Options;
use crate::sys::Argv;
use crate::{Config, Format, OnError, Usage};

/// `--evict`'s lines of the help, in the build that has it.
#[cfg(feature = "evict")]
macro_rules! evict_help {
    () => {
        "      --evict                  at the failure threshold, also ask the API server to
                               evict this pod (policy/v1 Eviction: graceful, and
                               PodDisruptionBudgets respected); exit 4 all the same
      --evict-timeout <DURATION>
                               time for the whole exchange with the API server
                               (default 500ms)
"
    };
}
#[cfg(not(feature = "evict"))]
macro_rules! evict_help {
    () => {
        ""
    };
}

pub const HELP: &str = concat!(
    "\
kubemem: a memory guard for containers, as an exec liveness probe.

Reads this process's own memory cgroup (v1, v2 or hybrid), compares the working set
(usage minus inactive page cache, as kubelet and `kubectl top` count it) with the
effective limit, and exits non-zero before the OOM killer would strike.

Usage: kubemem [OPTIONS]
       kubemem run [OPTIONS] [RUN OPTIONS] [--] CMD [ARGS...]
       kubemem install DEST

`kubemem run` starts CMD and stays its parent, as PID 1 or as a child subreaper:
it reaps zombies, forwards every signal but CHLD to CMD's process group, and
when CMD exits, sends TERM to what is left of that group, waits for it (at most
--grace, then KILL) and exits with CMD's status (128+N when signal N killed
it). Its own lines go to standard error (or --logfile). It samples memory every
--interval: at the warning threshold it logs once (and sends --warning-signal),
at the failure threshold it logs and sends --signal, then SIGKILL after --grace.
A threshold fires again only after usage fell below it.

`kubemem install DEST` copies this binary to DEST (mode 0755), for an
initContainer that puts it in a volume shared with the application.

Options:
  -w, --warning <THRESHOLD>    log a warning at or above this (default 75)
  -f, --failure <THRESHOLD>    exit 4 at or above this (default 90)
  -l, --logfile <PATH>         append log lines to PATH, creating it
                               (default: standard output); at failure the line
                               also goes to standard output
      --usage <working-set|total>
                               what counts as used (default working-set)
      --cgroup <DIR>           measure this cgroup directory instead of our own
                               (its ancestors are not searched for tighter limits)
      --root <DIR>             read /proc/self/cgroup, /proc/self/mountinfo,
                               /proc/meminfo and every mount point below DIR
      --log-format <logfmt|json>
                               (default logfmt)
      --on-error <fail|pass>   exit 2 (default) or 0 when memory cannot be measured
      --annotations <FILE>     read the pod's annotations from a downward API file:
                               kubemem.io/warning and kubemem.io/failure (THRESHOLD)
                               override -w and -f; pre-oom-killer's
                               pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold
                               (a percent) is the failure threshold when
                               kubemem.io/failure is absent. Exit 3 when the file
                               cannot be read or a line is malformed
      --termination-log <PATH> when the probe fails, also write its line to PATH,
                               replacing what was there (Kubernetes shows it as the
                               restarted container's last state: /dev/termination-log);
                               run: when it sends --signal and SIGKILL
      --lead <DURATION>        also fail (run: send --signal) when the working set,
                               at its recent rate of growth, would reach the limit
                               within DURATION (the shutdown the application needs);
                               the failure threshold still applies. The probe needs
                               --state
      --state <FILE>           the probe's samples between runs: a small file on a
                               tmpfs (/dev/shm, a memory emptyDir), created if
                               missing; one per probe. Lines then say eta=<seconds>
                               while the working set grows
  -v, --verbose                log a line on every run, also when healthy (run:
                               also when usage falls back below a threshold)
",
    evict_help!(),
    "  -h, --help                   print this help
  -V, --version                print the version

Run options:
      --signal <SIG>           send to CMD at the failure threshold (default TERM)
      --warning-signal <SIG>   send to CMD at the warning threshold (default none)
            --grace <DURATION>       SIGKILL CMD this long after --signal, and what CMD left
                               of its group this long after CMD exited (default 30s)
      --interval <DURATION>    sample memory this often (default 100ms)

SIG is a name (TERM, SIGUSR1) or a number. DURATION is a number with a unit:
100ms, 1.5s, 1m, 1h.

THRESHOLD is a percent of the effective limit (85, 85%, 92.5) or an amount in
use with a Kubernetes unit (900Mi, 1.5Gi, 512M, 2G; Ki Mi Gi Ti, k M G T).

Exit codes:
  0  below the failure threshold (warnings are logged)
  2  memory cannot be measured (0 with --on-error pass); the error goes to stderr
  3  usage error, or an --annotations file that cannot be read or is malformed
  4  at or above the failure threshold
kubemem run exits with CMD's status, or before starting CMD with 2 (memory
cannot be measured; with --on-error pass CMD runs unguarded), 3 (usage), 125
(kubemem could not start CMD), 126 (CMD cannot be executed), 127 (not found).
kubemem install exits 0, or 1 with an error line.
"
);

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub warning: Threshold,
    pub failure: Threshold,
    pub logfile: Option<CString>,
    pub usage: Usage,
    pub cgroup: Option<Vec<u8>>,
    pub root: Vec<u8>,
    pub format: Format,
    pub on_error: OnError,
    pub verbose: bool,
    pub annotations: Option<CString>,
    pub termination_log: Option<CString>,
    /// `--lead`: milliseconds, and the value as given.
    pub lead: Option<(u64, Vec<u8>)>,
    /// `--state` (the probe only).
    pub state: Option<CString>,
    /// `--evict`: evict the pod at the failure threshold (probe only).
    #[cfg(feature = "evict")]
    pub evict: Option<crate::evict::Options>,
}

/// `kubemem run`'s own options and the command it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunArgs {
    /// Sent to CMD at the failure threshold.
    pub signal: Signal,
    /// Sent to CMD at the warning threshold.
    pub warning_signal: Option<Signal>,
    /// How long CMD has to exit after `signal` before SIGKILL, in milliseconds.
    pub grace_ms: u64,
    /// Time between samples, in milliseconds; never 0.
    pub interval_ms: u64,
    /// CMD and its arguments; never empty.
    pub command: Vec<CString>,
    /// Room for the pointers `execvp` takes, filled by [`RunArgs::options`].
    argv: Vec<*const c_char>,
}

impl RunArgs {
    /// The supervisor's options, borrowing from `self`. Allocates the pointer array of
    /// CMD's arguments: the last allocation, before the spawn.
    pub fn options(&mut self) -> Options<'_> {
        self.argv = vec![core::ptr::null(); self.command.len() + 1];
        Options {
            signal: self.signal,
            warning_signal: self.warning_signal,
            grace_ms: self.grace_ms,
            interval_ms: self.interval_ms,
            argv: Argv::new(&self.command, &mut self.argv),
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// One probe run.
    Probe(Args),
    /// `kubemem run`: supervise a command.
    Run(Args, RunArgs),
    /// `kubemem install DEST`: copy the binary to DEST.
    Install(CString),
    Help,
    Version,
}

/// A usage error: the message, without the `kubemem: ` prefix or newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub Vec<u8>);

impl UsageError {
    fn new(parts: &[&[u8]]) -> UsageError {
        UsageError(parts.concat())
    }
}

impl Args {
    /// The run configuration, borrowing from `self`.
    pub fn config<'a>(&'a self, out: BorrowedFd<'a>, err: BorrowedFd<'a>) -> Config<'a> {
        Config {
            warning: self.warning,
            failure: self.failure,
            logfile: self.logfile.as_deref(),
            usage: self.usage,
            cgroup: self.cgroup.as_deref(),
            root: &self.root,
            format: self.format,
            on_error: self.on_error,
            verbose: self.verbose,
            annotations: self.annotations.as_deref(),
            termination_log: self.termination_log.as_deref(),
            lead: self
                .lead
                .as_ref()
                .map(|(ms, text)| crate::Lead { ms: *ms, text }),
            state: self.state.as_deref(),
            out,
            err,
        }
    }
}

/// Parses the command line: `Parser::from_args` over `main`'s argv in the binary (see
/// `sys::args`), over literals in tests.
pub fn parse(mut p: Parser) -> Result<Parsed, UsageError> {
    let mut args = Args {
        warning: Threshold::Percent(75_00),
        failure: Threshold::Percent(90_00),
        logfile: None,
        usage: Usage::WorkingSet,
        cgroup: None,
        root: Vec::new(),
        format: Format::Logfmt,
        on_error: OnError::Fail,
        verbose: false,
        annotations: None,
        termination_log: None,
        lead: None,
        state: None,
        #[cfg(feature = "evict")]
        evict: None,
    };
    #[cfg(feature = "evict")]
    let mut evict_timeout: Option<u64> = None;
    let mut run: Option<RunArgs> = None;
    // A subcommand is the first argument as given: lexopt swallows a `--`, after which
    // `kubemem -- run` would otherwise look like `kubemem run`.
    let mut first = p
        .raw_args()
        .is_ok_and(|raw| raw.peek().is_some_and(|a| a == "run" || a == "install"));
    while let Some(arg) = p.next().map_err(lexopt_error)? {
        let is_first = core::mem::take(&mut first);
        match arg {
            Arg::Short('w') | Arg::Long("warning") => {
                args.warning = number("--warning", value(&mut p)?, parse_threshold, &THRESHOLD)?
            }
            Arg::Short('f') | Arg::Long("failure") => {
                args.failure = number("--failure", value(&mut p)?, parse_threshold, &THRESHOLD)?
            }
            Arg::Short('l') | Arg::Long("logfile") => {
                args.logfile = Some(c_path("--logfile", value(&mut p)?)?)
            }
            Arg::Long("annotations") => {
                args.annotations = Some(c_path("--annotations", value(&mut p)?)?)
            }
            Arg::Long("termination-log") => {
                args.termination_log = Some(c_path("--termination-log", value(&mut p)?)?)
            }
            Arg::Long("lead") => {
                let text = value(&mut p)?;
                let ms = number("--lead", text.clone(), parse_duration, &DURATION)?;
                if ms == 0 {
                    return Err(UsageError::new(&[b"--lead: must be above 0"]));
                }
                args.lead = Some((ms, text.into_vec()));
            }
            Arg::Long("state") => args.state = Some(c_path("--state", value(&mut p)?)?),
            Arg::Long("usage") => {
                args.usage = choice(
                    "--usage",
                    value(&mut p)?,
                    &[
                        (b"working-set", Usage::WorkingSet),
                        (b"total", Usage::Total),
                    ],
                )?
            }
            Arg::Long("cgroup") => args.cgroup = Some(path("--cgroup", value(&mut p)?)?),
            Arg::Long("root") => {
                let mut root = path("--root", value(&mut p)?)?;
                while root.last() == Some(&b'/') {
                    root.pop();
                }
                args.root = root;
            }
            Arg::Long("log-format") => {
                args.format = choice(
                    "--log-format",
                    value(&mut p)?,
                    &[(b"logfmt", Format::Logfmt), (b"json", Format::Json)],
                )?
            }
            Arg::Long("on-error") => {
                args.on_error = choice(
                    "--on-error",
                    value(&mut p)?,
                    &[(b"fail", OnError::Fail), (b"pass", OnError::Pass)],
                )?
            }
            Arg::Long("signal") => {
                run_only(&mut run, "--signal")?.signal = signal("--signal", value(&mut p)?)?
            }
            Arg::Long("warning-signal") => {
                let sig = signal("--warning-signal", value(&mut p)?)?;
                run_only(&mut run, "--warning-signal")?.warning_signal = Some(sig)
            }
            Arg::Long("grace") => {
                let ms = number("--grace", value(&mut p)?, parse_duration, &DURATION)?;
                run_only(&mut run, "--grace")?.grace_ms = ms
            }
            Arg::Long("interval") => {
                let ms = number("--interval", value(&mut p)?, parse_duration, &DURATION)?;
                run_only(&mut run, "--interval")?.interval_ms = match ms {
                    0 => return Err(UsageError::new(&[b"--interval: must be above 0"])),
                    ms => ms,
                }
            }
            Arg::Value(v) if is_first && v == "run" => {
                run = Some(RunArgs {
                    signal: Signal::TERM,
                    warning_signal: None,
                    grace_ms: 30_000,
                    interval_ms: 100,
                    command: Vec::new(),
                    argv: Vec::new(),
                })
            }
            // DEST and nothing else: the copy takes no options.
            Arg::Value(v) if is_first && v == "install" => {
                let dest = p
                    .value()
                    .map_err(|_| UsageError::new(&[b"install: expected DEST"]))?;
                let dest = c_path("install", dest)?;
                // Raw, so that a trailing `--` (which lexopt would swallow) is refused too.
                if p.raw_args().map_err(lexopt_error)?.peek().is_some() {
                    return Err(UsageError::new(&[b"install: expected DEST only"]));
                }
                return Ok(Parsed::Install(dest));
            }
            // The command: it and everything after it are CMD's, options included.
            Arg::Value(v) if run.is_some() => {
                let rest = p.raw_args().map_err(lexopt_error)?;
                let command = core::iter::once(v).chain(rest).map(|a| {
                    CString::new(a.into_vec())
                        .map_err(|_| UsageError::new(&[b"run: NUL in an argument of CMD"]))
                });
                if let Some(r) = &mut run {
                    r.command = command.collect::<Result<_, _>>()?;
                }
            }
            #[cfg(feature = "evict")]
            Arg::Long("evict") => args.evict = Some(crate::evict::Options::default()),
            #[cfg(feature = "evict")]
            Arg::Long("evict-timeout") => {
                let ms = number("--evict-timeout", value(&mut p)?, parse_duration, &DURATION)?;
                evict_timeout = match ms {
                    0 => return Err(UsageError::new(&[b"--evict-timeout: must be above 0"])),
                    ms => Some(ms),
                }
            }
            Arg::Short('v') | Arg::Long("verbose") => args.verbose = true,
            Arg::Short('h') | Arg::Long("help") => return Ok(Parsed::Help),
            Arg::Short('V') | Arg::Long("version") => return Ok(Parsed::Version),
            Arg::Short(c) => {
                let mut buf = [0u8; 4];
                return Err(UsageError::new(&[
                    b"unknown option -",
                    c.encode_utf8(&mut buf).as_bytes(),
                ]));
            }
            Arg::Long(name) => {
                return Err(UsageError::new(&[b"unknown option --", name.as_bytes()]))
            }
            Arg::Value(v) => {
                return Err(UsageError::new(&[
                    b"unexpected argument '",
                    v.as_bytes(),
                    b"'",
                ]))
            }
        }
    }
    #[cfg(feature = "evict")]
    evict_options(&mut args, evict_timeout, run.is_some())?;
    match (&run, &args.lead, &args.state) {
        (Some(_), _, Some(_)) => {
            return Err(UsageError::new(&[
                b"--state is an option of the probe (kubemem run keeps its samples in memory)",
            ]))
        }
        (None, Some(_), None) => {
            return Err(UsageError::new(&[
                b"--lead needs --state FILE: the probe keeps its samples there between runs",
            ]))
        }
        _ => {}
    }
    match (args.warning, args.failure) {
        (Threshold::Percent(w), Threshold::Percent(f)) if w > f => {}
        (Threshold::Bytes(w), Threshold::Bytes(f)) if w > f => {}
        _ => {
            return match run {
                None => Ok(Parsed::Probe(args)),
                Some(r) if r.command.is_empty() => Err(UsageError::new(&[
                    b"run: no command (kubemem run [OPTIONS] -- CMD [ARGS...])",
                ])),
                Some(r) => Ok(Parsed::Run(args, r)),
            }
        }
    }
    let (mut w, mut f) = ([0u8; 32], [0u8; 32]);
    Err(UsageError::new(&[
        b"--warning ",
        crate::report::threshold_text(args.warning, &mut w),
        b" is above --failure ",
        crate::report::threshold_text(args.failure, &mut f),
    ]))
}

/// Checks `--evict` against the rest: a timeout needs it, `kubemem run` does not take it.
#[cfg(feature = "evict")]
fn evict_options(args: &mut Args, timeout: Option<u64>, run: bool) -> Result<(), UsageError> {
    match (&mut args.evict, timeout) {
        (Some(_), _) if run => Err(UsageError::new(&[
            b"--evict is an option of the probe, not of kubemem run",
        ])),
        (Some(opts), Some(ms)) => {
            opts.timeout_ms = ms;
            Ok(())
        }
        (None, Some(_)) => Err(UsageError::new(&[b"--evict-timeout needs --evict"])),
        _ => Ok(()),
    }
}

/// `kubemem run`'s options, or an error naming `flag` when the subcommand is not `run`.
fn run_only<'r>(run: &'r mut Option<RunArgs>, flag: &str) -> Result<&'r mut RunArgs, UsageError> {
    run.as_mut()
        .ok_or_else(|| UsageError::new(&[flag.as_bytes(), b" is an option of kubemem run"]))
}

/// The value of the option just parsed. `pub`, as are [`duration`], [`choice`] and
/// [`lexopt_error`], for kubemem-node's command line: the same messages for the same mistakes.
pub fn value(p: &mut Parser) -> Result<OsString, UsageError> {
    p.value().map_err(lexopt_error)
}

/// A kind of number with a unit, as usage errors name it.
struct Kind {
    what: &'static [u8],
    units: &'static [u8],
    expected: &'static [u8],
}

const THRESHOLD: Kind = Kind {
    what: b"threshold",
    units: b"Ki Mi Gi Ti or k M G T",
    expected: b"a percent like 85 or 92.5%, or a quantity like 900Mi",
};

/// Durations parse to milliseconds.
const DURATION: Kind = Kind {
    what: b"duration",
    units: b"ms s m h",
    expected: b"a duration like 100ms, 1.5s or 1m",
};

/// `v` through `parse`; an error reads `--warning: invalid threshold 'abc': unknown unit
/// (use ...) (expected ...)`.
fn number<T>(
    flag: &str,
    v: OsString,
    parse: fn(&[u8]) -> Result<T, BadNumber>,
    kind: &Kind,
) -> Result<T, UsageError> {
    parse(v.as_bytes()).map_err(|e| {
        let use_units: [&[u8]; 3] = match e {
            BadNumber::UnknownUnit => [b" (use ", kind.units, b")"],
            _ => [b""; 3],
        };
        UsageError::new(&[
            flag.as_bytes(),
            b": invalid ",
            kind.what,
            b" '",
            v.as_bytes(),
            b"': ",
            e.reason().as_bytes(),
            &use_units.concat(),
            b" (expected ",
            kind.expected,
            b")",
        ])
    })
}

/// `flag`'s value as a DURATION, in milliseconds.
pub fn duration(flag: &str, v: OsString) -> Result<u64, UsageError> {
    number(flag, v, parse_duration, &DURATION)
}

fn signal(flag: &str, v: OsString) -> Result<Signal, UsageError> {
    parse_signal(v.as_bytes()).ok_or_else(|| {
        UsageError::new(&[
            flag.as_bytes(),
            b": unknown signal '",
            v.as_bytes(),
            b"' (expected a name like TERM, SIGUSR1 or a number)",
        ])
    })
}

fn path(flag: &str, v: OsString) -> Result<Vec<u8>, UsageError> {
    match v.as_bytes() {
        [] => Err(UsageError::new(&[flag.as_bytes(), b": empty path"])),
        b => Ok(b.to_vec()),
    }
}

/// A path for `open`: not empty, no NUL.
fn c_path(flag: &str, v: OsString) -> Result<CString, UsageError> {
    CString::new(path(flag, v)?).map_err(|_| UsageError::new(&[flag.as_bytes(), b": NUL in path"]))
}

/// One of `options`, by name.
pub fn choice<T: Copy>(flag: &str, v: OsString, options: &[(&[u8], T)]) -> Result<T, UsageError> {
    if let Some((_, t)) = options.iter().find(|(name, _)| *name == v.as_bytes()) {
        return Ok(*t);
    }
    let mut msg = [flag.as_bytes(), b": expected "].concat();
    for (i, (name, _)) in options.iter().enumerate() {
        msg.extend_from_slice(if i == 0 { b"" } else { b" or " });
        msg.extend_from_slice(name);
    }
    msg.extend_from_slice(b", got '");
    msg.extend_from_slice(v.as_bytes());
    msg.push(b'\'');
    Err(UsageError(msg))
}

/// lexopt's error as a usage error.
pub fn lexopt_error(e: lexopt::Error) -> UsageError {
    match e {
        lexopt::Error::MissingValue { option: Some(o) } => {
            UsageError::new(&[o.as_bytes(), b": missing value"])
        }
        lexopt::Error::MissingValue { option: None } => UsageError::new(&[b"missing value"]),
        lexopt::Error::UnexpectedOption(o) => UsageError::new(&[b"unknown option ", o.as_bytes()]),
        lexopt::Error::UnexpectedArgument(a) => {
            UsageError::new(&[b"unexpected argument '", a.as_bytes(), b"'"])
        }
        lexopt::Error::UnexpectedValue { option, value } => UsageError::new(&[
            option.as_bytes(),
            b" takes no value, got '",
            value.as_bytes(),
            b"'",
        ]),
        _ => UsageError::new(&[b"invalid arguments"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(Parser::from_args(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> Args {
        match parse_args(args) {
            Ok(Parsed::Probe(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn supervised(args: &[&str]) -> (Args, RunArgs) {
        match parse_args(args) {
            Ok(Parsed::Run(a, r)) => (a, r),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn command(r: &RunArgs) -> Vec<&str> {
        r.command.iter().map(|c| c.to_str().unwrap()).collect()
    }

    fn err(args: &[&str]) -> String {
        match parse_args(args) {
            Err(UsageError(m)) => String::from_utf8(m).unwrap(),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = run_args(&[]);
        assert_eq!(a.warning, Threshold::Percent(75_00));
        assert_eq!(a.failure, Threshold::Percent(90_00));
        assert_eq!(
            (a.usage, a.format, a.on_error, a.verbose),
            (Usage::WorkingSet, Format::Logfmt, OnError::Fail, false)
        );
        assert_eq!((a.logfile, a.cgroup, a.root), (None, None, vec![]));
        assert_eq!((a.annotations, a.termination_log), (None, None));
    }

    #[test]
    fn c_kubemem_flags_keep_working() {
        let a = run_args(&[
            "--warning",
            "85",
            "--failure",
            "95",
            "--logfile",
            "/proc/1/fd/1",
        ]);
        assert_eq!(a.warning, Threshold::Percent(85_00));
        assert_eq!(a.failure, Threshold::Percent(95_00));
        assert_eq!(a.logfile.as_deref(), Some(c"/proc/1/fd/1"));
        let b = run_args(&["-w", "85", "-f", "95", "-l", "/proc/1/fd/1"]);
        assert_eq!(a, b);
        assert_eq!(
            run_args(&["--warning=85", "--failure=95", "--logfile=/proc/1/fd/1"]),
            a
        );
    }

    #[test]
    fn all_flags() {
        let a = run_args(&[
            "-w",
            "900Mi",
            "-f",
            "1.5Gi",
            "--usage",
            "total",
            "--cgroup",
            "/x",
            "--root",
            "/host/",
            "--log-format",
            "json",
            "--on-error",
            "pass",
            "-v",
            "--annotations",
            "/etc/podinfo/annotations",
            "--termination-log=/dev/termination-log",
        ]);
        assert_eq!(
            (a.annotations.as_deref(), a.termination_log.as_deref()),
            (
                Some(c"/etc/podinfo/annotations"),
                Some(c"/dev/termination-log")
            )
        );
        assert_eq!(a.warning, Threshold::Bytes(900 << 20));
        assert_eq!(a.failure, Threshold::Bytes(3 << 29));
        assert_eq!(
            (a.usage, a.format, a.on_error, a.verbose),
            (Usage::Total, Format::Json, OnError::Pass, true)
        );
        assert_eq!(
            (a.cgroup.as_deref(), a.root.as_slice()),
            (Some(&b"/x"[..]), &b"/host"[..])
        );
        assert_eq!(run_args(&["--root", "/"]).root, b"");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_args(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse_args(&["-h", "--bogus"]), Ok(Parsed::Help));
        assert_eq!(parse_args(&["-V"]), Ok(Parsed::Version));
    }

    #[test]
    fn lead_and_state() {
        let a = run_args(&["--lead", "1.5s", "--state", "/dev/shm/kubemem"]);
        assert_eq!(a.lead, Some((1500, b"1.5s".to_vec())));
        assert_eq!(a.state.as_deref(), Some(c"/dev/shm/kubemem"));
        let cfg = a.config(rustix::stdio::stdout(), rustix::stdio::stderr());
        assert_eq!(
            cfg.lead.map(|l| (l.ms, l.text)),
            Some((1500, b"1.5s".as_slice()))
        );
        // --state alone records (lines say eta=); --lead alone is for kubemem run.
        assert_eq!(run_args(&["--state", "s"]).lead, None);
        let (a, _) = supervised(&["run", "--lead", "3s", "--", "app"]);
        assert_eq!(a.lead, Some((3000, b"3s".to_vec())));
        assert_eq!(
            err(&["--lead", "3s"]),
            "--lead needs --state FILE: the probe keeps its samples there between runs"
        );
        assert_eq!(
            err(&["run", "--state", "s", "--", "app"]),
            "--state is an option of the probe (kubemem run keeps its samples in memory)"
        );
        assert_eq!(
            err(&["--lead", "0s", "--state", "s"]),
            "--lead: must be above 0"
        );
        assert!(err(&["--lead", "3", "--state", "s"]).starts_with("--lead: "));
        assert_eq!(err(&["--state", ""]), "--state: empty path");
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(
            err(&["--warning", "95", "--failure", "90"]),
            "--warning 95% is above --failure 90%"
        );
        assert_eq!(
            err(&["-w", "2Gi", "-f", "1Gi"]),
            "--warning 2147483648 is above --failure 1073741824"
        );
        assert!(err(&["--warning", "1..5"])
            .starts_with("--warning: invalid threshold '1..5': not a number"));
        assert!(err(&["--warning", "abc"]).contains("unknown unit"));
        assert!(err(&["--failure", "101"]).contains("a percent above 100"));
        assert!(err(&["--failure", "5Xi"]).contains("unknown unit"));
        assert_eq!(err(&["--bogus"]), "unknown option --bogus");
        assert_eq!(err(&["-x"]), "unknown option -x");
        assert_eq!(err(&["extra"]), "unexpected argument 'extra'");
        assert_eq!(err(&["--warning"]), "--warning: missing value");
        assert_eq!(
            err(&["--usage", "rss"]),
            "--usage: expected working-set or total, got 'rss'"
        );
        assert_eq!(
            err(&["--log-format", "xml"]),
            "--log-format: expected logfmt or json, got 'xml'"
        );
        assert_eq!(
            err(&["--on-error", "maybe"]),
            "--on-error: expected fail or pass, got 'maybe'"
        );
        assert_eq!(
            err(&["--verbose=yes"]),
            "--verbose takes no value, got 'yes'"
        );
        assert_eq!(err(&["--root", ""]), "--root: empty path");
        assert_eq!(err(&["--annotations", ""]), "--annotations: empty path");
        assert_eq!(
            err(&["--termination-log", "a\0b"]),
            "--termination-log: NUL in path"
        );
    }

    #[test]
    fn install_takes_dest_only() {
        assert_eq!(
            parse_args(&["install", "/shared/kubemem"]),
            Ok(Parsed::Install(c"/shared/kubemem".into()))
        );
        // DEST may look like an option.
        assert_eq!(
            parse_args(&["install", "-v"]),
            Ok(Parsed::Install(c"-v".into()))
        );
        assert_eq!(err(&["install"]), "install: expected DEST");
        // After `--`, `run` and `install` are arguments, not subcommands (found by fuzzing).
        assert_eq!(err(&["--", "run", "true"]), "unexpected argument 'run'");
        assert_eq!(
            err(&["--", "install", "x"]),
            "unexpected argument 'install'"
        );
        assert_eq!(err(&["install", "a", "b"]), "install: expected DEST only");
        assert_eq!(err(&["install", "a", "--"]), "install: expected DEST only");
        assert_eq!(err(&["install", "a", "-v"]), "install: expected DEST only");
        assert_eq!(
            err(&["-v", "install", "a"]),
            "unexpected argument 'install'"
        );
    }

    #[test]
    fn mixed_kinds_are_not_compared() {
        // 95% vs 1Gi cannot be ordered without the limit: both are accepted.
        let a = run_args(&["-w", "95", "-f", "1Gi"]);
        assert_eq!(
            (a.warning, a.failure),
            (Threshold::Percent(95_00), Threshold::Bytes(1 << 30))
        );
        // Equal thresholds are fine (the warning is then never seen).
        run_args(&["-w", "90", "-f", "90"]);
    }

    #[cfg(feature = "evict")]
    #[test]
    fn evict_and_its_timeout() {
        use crate::evict::Options;
        assert_eq!(run_args(&[]).evict, None);
        assert_eq!(
            run_args(&["--evict"]).evict,
            Some(Options { timeout_ms: 500 })
        );
        assert_eq!(
            run_args(&["--evict-timeout", "1.5s", "--evict"]).evict,
            Some(Options { timeout_ms: 1500 })
        );
        assert_eq!(
            err(&["--evict-timeout", "300ms"]),
            "--evict-timeout needs --evict"
        );
        assert_eq!(
            err(&["--evict", "--evict-timeout", "0ms"]),
            "--evict-timeout: must be above 0"
        );
        assert!(err(&["--evict", "--evict-timeout", "300"]).contains("unknown unit"));
        assert_eq!(
            err(&["run", "--evict", "--", "app"]),
            "--evict is an option of the probe, not of kubemem run"
        );
        assert!(HELP.contains("--evict-timeout <DURATION>"));
    }

    #[cfg(not(feature = "evict"))]
    #[test]
    fn without_the_feature_evict_is_unknown() {
        assert_eq!(err(&["--evict"]), "unknown option --evict");
        assert!(!HELP.contains("--evict"));
    }

    #[test]
    fn run_defaults_and_the_command() {
        let (a, r) = supervised(&["run", "--", "sleep", "10"]);
        assert_eq!(a, run_args(&[]));
        assert_eq!(
            (r.signal, r.warning_signal, r.grace_ms, r.interval_ms),
            (Signal::TERM, None, 30_000, 100)
        );
        assert_eq!(command(&r), ["sleep", "10"]);
        // Without `--` the first value starts the command; what follows is CMD's.
        let (_, r) = supervised(&["run", "-w", "80", "app", "--help", "-w", "--", "x"]);
        assert_eq!(command(&r), ["app", "--help", "-w", "--", "x"]);
        let (_, r) = supervised(&["run", "--", "--interval", "0"]);
        assert_eq!(command(&r), ["--interval", "0"]);
    }

    #[test]
    fn run_takes_the_probe_options_and_its_own() {
        let (a, r) = supervised(&[
            "run",
            "--warning",
            "85",
            "--failure=95",
            "--logfile",
            "/proc/1/fd/1",
            "--signal",
            "SIGINT",
            "--warning-signal",
            "usr1",
            "--grace",
            "1.5s",
            "--interval=20ms",
            "--root",
            "/host",
            "--",
            "app",
        ]);
        assert_eq!(
            (a.warning, a.failure, a.root.as_slice()),
            (
                Threshold::Percent(85_00),
                Threshold::Percent(95_00),
                &b"/host"[..]
            )
        );
        assert_eq!(
            (r.signal, r.warning_signal, r.grace_ms, r.interval_ms),
            (Signal::INT, Some(Signal::USR1), 1_500, 20)
        );
        assert_eq!(
            supervised(&["run", "--signal", "9", "x"]).1.signal,
            Signal::KILL
        );
        assert_eq!(supervised(&["run", "--grace", "0s", "x"]).1.grace_ms, 0);
    }

    #[test]
    fn run_usage_errors_say_what_is_wrong() {
        let no_command = "run: no command (kubemem run [OPTIONS] -- CMD [ARGS...])";
        let bad_duration = |v: &str| {
            format!(
                "invalid duration '{v}': unknown unit (use ms s m h) \
                 (expected a duration like 100ms, 1.5s or 1m)"
            )
        };
        let rows: &[(&[&str], String)] = &[
            (&["run"], no_command.into()),
            (&["run", "--"], no_command.into()),
            (&["run", "-w", "80"], no_command.into()),
            (
                &["run", "--interval", "0s", "x"],
                "--interval: must be above 0".into(),
            ),
            (
                &["run", "--interval", "5x", "x"],
                format!("--interval: {}", bad_duration("5x")),
            ),
            (
                &["run", "--grace", "30", "x"],
                format!("--grace: {}", bad_duration("30")),
            ),
            (
                &["run", "--grace", "1..5s", "x"],
                "--grace: invalid duration '1..5s': not a number \
                 (expected a duration like 100ms, 1.5s or 1m)"
                    .into(),
            ),
            (
                &["run", "--signal", "BOGUS", "x"],
                "--signal: unknown signal 'BOGUS' \
                 (expected a name like TERM, SIGUSR1 or a number)"
                    .into(),
            ),
            (
                &["run", "--warning-signal", "0", "x"],
                "--warning-signal: unknown signal '0' \
                 (expected a name like TERM, SIGUSR1 or a number)"
                    .into(),
            ),
            (&["run", "--signal"], "--signal: missing value".into()),
            (
                &["run", "-w", "95", "-f", "90", "x"],
                "--warning 95% is above --failure 90%".into(),
            ),
            // Run's options belong to run, and run comes first.
            (
                &["--signal", "TERM"],
                "--signal is an option of kubemem run".into(),
            ),
            (
                &["--interval", "1s"],
                "--interval is an option of kubemem run".into(),
            ),
            (&["-v", "run", "x"], "unexpected argument 'run'".into()),
        ];
        for (args, want) in rows {
            assert_eq!(err(args), *want, "{args:?}");
        }
    }
}
