//! The command line. The one module that uses std and allocates: lexopt collects argv into
//! `OsString`s, and the parsed [`Args`] own their paths. Everything after [`Args::config`]
//! borrows from them and allocates nothing.
//!
//! Values are parsed from their bytes with kubemem's own parsers (no `FromStr`, no boxed
//! errors), and errors are messages assembled from static pieces.

extern crate std;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::vec::Vec;

use lexopt::{Arg, Parser};
use rustix::fd::BorrowedFd;

use crate::parse::{parse_threshold, BadNumber, Threshold};
use crate::{Config, Format, OnError, Usage};

pub const HELP: &str = "\
kubemem: a memory guard for containers, as an exec liveness probe.

Reads this process's own memory cgroup (v1, v2 or hybrid), compares the working set
(usage minus inactive page cache, as kubelet and `kubectl top` count it) with the
effective limit, and exits non-zero before the OOM killer would strike.

Usage: kubemem [OPTIONS]

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
  -v, --verbose                log a line on every run, also when healthy
  -h, --help                   print this help
  -V, --version                print the version

THRESHOLD is a percent of the effective limit (85, 85%, 92.5) or an amount in
use with a Kubernetes unit (900Mi, 1.5Gi, 512M, 2G; Ki Mi Gi Ti, k M G T).

Exit codes:
  0  below the failure threshold (warnings are logged)
  2  memory cannot be measured (0 with --on-error pass); the error goes to stderr
  3  usage error
  4  at or above the failure threshold
";

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
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
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
            out,
            err,
        }
    }
}

/// Parses the command line. `Parser::from_env()` in the binary, `Parser::from_args` in tests.
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
    };
    while let Some(arg) = p.next().map_err(lexopt_error)? {
        match arg {
            Arg::Short('w') | Arg::Long("warning") => {
                args.warning = threshold("--warning", value(&mut p)?)?
            }
            Arg::Short('f') | Arg::Long("failure") => {
                args.failure = threshold("--failure", value(&mut p)?)?
            }
            Arg::Short('l') | Arg::Long("logfile") => {
                let v = path("--logfile", value(&mut p)?)?;
                args.logfile = Some(
                    CString::new(v).map_err(|_| UsageError::new(&[b"--logfile: NUL in path"]))?,
                );
            }
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
    match (args.warning, args.failure) {
        (Threshold::Percent(w), Threshold::Percent(f)) if w > f => {}
        (Threshold::Bytes(w), Threshold::Bytes(f)) if w > f => {}
        _ => return Ok(Parsed::Run(args)),
    }
    let (mut w, mut f) = ([0u8; 32], [0u8; 32]);
    Err(UsageError::new(&[
        b"--warning ",
        crate::report::threshold_text(args.warning, &mut w),
        b" is above --failure ",
        crate::report::threshold_text(args.failure, &mut f),
    ]))
}

fn value(p: &mut Parser) -> Result<OsString, UsageError> {
    p.value().map_err(lexopt_error)
}

fn threshold(flag: &str, v: OsString) -> Result<Threshold, UsageError> {
    parse_threshold(v.as_bytes()).map_err(|e| {
        UsageError::new(&[
            flag.as_bytes(),
            b": invalid threshold '",
            v.as_bytes(),
            b"': ",
            e.reason().as_bytes(),
            match e {
                BadNumber::UnknownUnit => b" (use Ki Mi Gi Ti or k M G T)",
                _ => b"".as_slice(),
            },
            b" (expected a percent like 85 or 92.5%, or a quantity like 900Mi)",
        ])
    })
}

fn path(flag: &str, v: OsString) -> Result<Vec<u8>, UsageError> {
    match v.as_bytes() {
        [] => Err(UsageError::new(&[flag.as_bytes(), b": empty path"])),
        b => Ok(b.to_vec()),
    }
}

fn choice<T: Copy>(flag: &str, v: OsString, options: &[(&[u8], T)]) -> Result<T, UsageError> {
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

fn lexopt_error(e: lexopt::Error) -> UsageError {
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
            Ok(Parsed::Run(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
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
        ]);
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
}
