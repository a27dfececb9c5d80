//! kubemem-node's command line, parsed with lexopt and the probe's own value parsers and
//! messages (`kubemem::args`): a DURATION or a format is spelled and refused the same way.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use kubemem::args::{choice, duration, lexopt_error, value, UsageError};
use kubemem::Format;
use lexopt::{Arg, Parser};

use crate::select::Lead;

pub const HELP: &str = "\
kubemem-node: kubemem's memory guard for every annotated pod of a node, as a DaemonSet.

Watches the pods of its own node (one list+watch with the field selector
spec.nodeName=NODE), samples the working set of each watched container from the
node's cgroups as the kubemem probe does, and asks the API server to evict a
pod (policy/v1 Eviction: PodDisruptionBudgets hold) when a container crosses
its threshold. Each eviction and refusal is also a Warning Event on the pod
(reason PreOOMEviction).

A pod is watched when it has pre-oom-killer's label and annotations
  pre-oom-killer: enabled (label)
  pre-oom-killer.v1alpha1.k8s.io/target-container-name: CONTAINER
  pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold: PERCENT (of its limit)
or any of kubemem's own:
  kubemem.io/failure: THRESHOLD   evict at or above this (default 90)
  kubemem.io/warning: THRESHOLD   log a warning at or above this
  kubemem.io/container: NAME      the container to watch (default: all)
  kubemem.io/lead: DURATION       also evict when the working set, at its recent
                                  rate of growth, would reach the limit within
                                  DURATION (the shutdown the pod needs); the
                                  failure threshold still applies
A container whose cgroup and pod cgroup have no memory limit is never evicted.

Usage: kubemem-node [OPTIONS]

Options:
      --node <NAME>            the node whose pods are watched (default: $NODE_NAME)
      --cgroup-root <DIR>      the directory holding the kubelet's kubepods tree: the
                               cgroup v2 mount, or v1's memory hierarchy; DIR/memory
                               is used when it holds one (default /sys/fs/cgroup)
      --interval <DURATION>    sample every watched container this often (default 1s);
                               v1 thresholds and v2 memory.events wake it earlier
      --metrics-addr <ADDR>    host:port serving GET /metrics (Prometheus) and
                               GET /healthz (default 0.0.0.0:9102; empty: none)
      --lead <DURATION>        kubemem.io/lead of every watched pod that has none
                               (default: none)
      --dry-run                log and record Events, never evict
      --log-format <logfmt|json>
                               (default logfmt); every line goes to standard output
  -h, --help                   print this help
  -V, --version                print the version

DURATION is a number with a unit: 100ms, 1.5s, 1m, 1h.
THRESHOLD is a percent of the effective limit (85, 85%, 92.5) or an amount in use
with a Kubernetes unit (900Mi, 1.5Gi, 512M, 2G; Ki Mi Gi Ti, k M G T).

Kubernetes client: $KUBECONFIG, else the in-cluster service account.

Exit codes:
  0  after SIGTERM or SIGINT
  1  no usable Kubernetes client configuration
  3  usage error (also: no --node and no $NODE_NAME)
";

/// The default `--interval`, in milliseconds.
pub const INTERVAL_MS: u64 = 1000;

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub node: String,
    pub cgroup_root: PathBuf,
    pub interval_ms: u64,
    /// `None`: no metrics server.
    pub metrics_addr: Option<String>,
    pub dry_run: bool,
    pub format: Format,
    /// `--lead`: the lead of a watched pod without `kubemem.io/lead`.
    pub lead: Option<Lead>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
    Version,
}

/// Parses the command line; `env_node` is `$NODE_NAME`.
pub fn parse(mut p: Parser, env_node: Option<OsString>) -> Result<Parsed, UsageError> {
    let mut node: Option<OsString> = None;
    let mut opts = Options {
        node: String::new(),
        cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        interval_ms: INTERVAL_MS,
        metrics_addr: Some("0.0.0.0:9102".into()),
        dry_run: false,
        format: Format::Logfmt,
        lead: None,
    };
    while let Some(arg) = p.next().map_err(lexopt_error)? {
        match arg {
            Arg::Long("node") => node = Some(value(&mut p)?),
            Arg::Long("cgroup-root") => {
                let v = value(&mut p)?;
                if v.is_empty() {
                    return Err(usage(&[b"--cgroup-root: empty path"]));
                }
                opts.cgroup_root = PathBuf::from(v);
            }
            Arg::Long("interval") => {
                opts.interval_ms = match duration("--interval", value(&mut p)?)? {
                    0 => return Err(usage(&[b"--interval: must be above 0"])),
                    ms => ms,
                }
            }
            Arg::Long("metrics-addr") => {
                let v = value(&mut p)?;
                opts.metrics_addr = match v.to_str() {
                    Some("") => None,
                    Some(a) if a.parse::<std::net::SocketAddr>().is_ok() => Some(a.into()),
                    _ => {
                        return Err(usage(&[
                            b"--metrics-addr: expected host:port like 0.0.0.0:9102, got '",
                            v.as_bytes(),
                            b"'",
                        ]))
                    }
                };
            }
            Arg::Long("lead") => {
                opts.lead = Some(
                    Lead::parse("--lead", value(&mut p)?).map_err(|e| usage(&[e.as_bytes()]))?,
                )
            }
            Arg::Long("dry-run") => opts.dry_run = true,
            Arg::Long("log-format") => {
                opts.format = choice(
                    "--log-format",
                    value(&mut p)?,
                    &[(b"logfmt", Format::Logfmt), (b"json", Format::Json)],
                )?
            }
            Arg::Short('h') | Arg::Long("help") => return Ok(Parsed::Help),
            Arg::Short('V') | Arg::Long("version") => return Ok(Parsed::Version),
            _ => return Err(lexopt_error(arg.unexpected())),
        }
    }
    let node = node.or(env_node).filter(|n| !n.is_empty()).ok_or_else(|| {
        usage(&[b"no node: pass --node NAME or set NODE_NAME (the downward API's spec.nodeName)"])
    })?;
    opts.node = node
        .into_string()
        .map_err(|n| usage(&[b"--node: not UTF-8: '", n.as_bytes(), b"'"]))?;
    Ok(Parsed::Run(opts))
}

fn usage(parts: &[&[u8]]) -> UsageError {
    UsageError(parts.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], env: Option<&str>) -> Result<Parsed, String> {
        parse(
            Parser::from_args(args.iter().copied()),
            env.map(OsString::from),
        )
        .map_err(|e| String::from_utf8(e.0).unwrap())
    }

    fn options(args: &[&str]) -> Options {
        match parsed(args, Some("envnode")) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_every_flag() {
        let o = options(&[]);
        assert_eq!(o.node, "envnode");
        assert_eq!(o.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(o.interval_ms, 1000);
        assert_eq!(o.metrics_addr.as_deref(), Some("0.0.0.0:9102"));
        assert!(!o.dry_run);
        assert_eq!(o.format, Format::Logfmt);
        assert_eq!(o.lead, None);
        let o = options(&[
            "--node",
            "n1",
            "--cgroup-root",
            "/host/cgroup",
            "--interval",
            "250ms",
            "--metrics-addr",
            "127.0.0.1:0",
            "--dry-run",
            "--log-format",
            "json",
            "--lead",
            "2.5s",
        ]);
        assert_eq!(
            o,
            Options {
                node: "n1".into(),
                cgroup_root: "/host/cgroup".into(),
                interval_ms: 250,
                metrics_addr: Some("127.0.0.1:0".into()),
                dry_run: true,
                format: Format::Json,
                lead: Some(Lead {
                    ms: 2500,
                    text: "2.5s".into()
                }),
            }
        );
        assert_eq!(options(&["--metrics-addr", ""]).metrics_addr, None);
        assert_eq!(options(&["--interval=1.5s"]).interval_ms, 1500);
    }

    #[test]
    fn help_version_and_usage_errors() {
        assert_eq!(parsed(&["--help"], None), Ok(Parsed::Help));
        assert_eq!(parsed(&["-V"], None), Ok(Parsed::Version));
        let err = |args: &[&str]| parsed(args, Some("n")).unwrap_err();
        assert!(parsed(&[], None).unwrap_err().starts_with("no node"));
        assert!(parsed(&[], Some("")).unwrap_err().starts_with("no node"));
        assert_eq!(
            err(&["--interval", "10"]),
            "--interval: invalid duration '10': unknown unit (use ms s m h) \
             (expected a duration like 100ms, 1.5s or 1m)"
        );
        assert_eq!(err(&["--interval", "0s"]), "--interval: must be above 0");
        assert_eq!(err(&["--lead", "0ms"]), "--lead: must be above 0");
        assert!(err(&["--lead", "3"]).starts_with("--lead: invalid duration '3': unknown unit"));
        assert_eq!(
            err(&["--log-format", "xml"]),
            "--log-format: expected logfmt or json, got 'xml'"
        );
        assert!(err(&["--metrics-addr", "nohost"]).starts_with("--metrics-addr: expected"));
        assert_eq!(err(&["--frob"]), "unknown option --frob");
        assert_eq!(err(&["--node"]), "--node: missing value");
        assert_eq!(err(&["extra"]), "unexpected argument 'extra'");
    }
}
