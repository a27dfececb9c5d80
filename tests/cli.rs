//! Integration tests: run the built `kubemem` binary against the fixture trees in
//! `tests/fixtures/<case>/` through `--root`. See `tests/fixtures/README.md` for what each
//! fixture models. Expected numbers are derived by hand from the fixture files.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;
use common::bin;
/// `MemTotal: 16384000 kB` in every fixture's proc/meminfo.
const MEMTOTAL: u64 = 16_384_000 * 1024;
const MAX_LINE: usize = 400;

fn fixture(case: &str) -> String {
    let p = format!("{}/tests/fixtures/{}", env!("CARGO_MANIFEST_DIR"), case);
    assert!(PathBuf::from(&p).is_dir(), "missing fixture {p}");
    p
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    cmd: String,
}

impl Out {
    fn ctx(&self) -> String {
        format!(
            "\n  command: {}\n  exit: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// Run the binary; with `case`, `--root <fixture>` is prepended. Every output line is checked
/// against the 400-byte limit, counted without the `--root` prefix (the bytes the line has in
/// production), so the result does not depend on where the repository is checked out.
fn run(case: Option<&str>, args: &[&str]) -> Out {
    let mut all: Vec<String> = Vec::new();
    if let Some(c) = case {
        all.push("--root".into());
        all.push(fixture(c));
    }
    all.extend(args.iter().map(|s| s.to_string()));
    let output = Command::new(bin())
        .args(&all)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("failed to run kubemem");
    let out = Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout not UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr not UTF-8"),
        cmd: format!("kubemem {}", all.join(" ")),
    };
    for l in out.stdout.lines().chain(out.stderr.lines()) {
        assert!(
            l.len() < MAX_LINE,
            "line of {} bytes (>= {MAX_LINE}): {l}{}",
            l.len(),
            out.ctx()
        );
    }
    out
}

/// Parse one logfmt line into ordered key/value pairs. Values may be double-quoted with
/// `\"` and `\\` escapes. Panics on malformed input or duplicate keys.
fn logfmt(line: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        assert!(
            i < b.len() && b[i] == b'=',
            "logfmt: key without '=' in {line:?}"
        );
        let key = line[ks..i].to_string();
        assert!(!key.is_empty(), "logfmt: empty key in {line:?}");
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut closed = false;
            let mut bytes = Vec::new();
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        bytes.push(b[i + 1]);
                        i += 2;
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        bytes.push(c);
                        i += 1;
                    }
                }
            }
            assert!(closed, "logfmt: unterminated quote in {line:?}");
            assert!(
                i >= b.len() || b[i] == b' ',
                "logfmt: garbage after quote in {line:?}"
            );
            val = String::from_utf8(bytes).unwrap();
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            val.push_str(&line[vs..i]);
            assert!(!val.contains('"'), "logfmt: stray quote in {line:?}");
        }
        assert!(
            out.iter().all(|(k, _)| *k != key),
            "logfmt: duplicate key {key} in {line:?}"
        );
        out.push((key, val));
    }
    out
}

fn get<'a>(kv: &'a [(String, String)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Assert the line has every expected key with the expected value.
fn check_kv(line: &str, expected: &[(&str, String)], ctx: &str) {
    let kv = logfmt(line);
    for (k, v) in expected {
        match get(&kv, k) {
            Some(got) => assert_eq!(got, v, "key {k} in line {line:?}{ctx}"),
            None => panic!("key {k} missing in line {line:?}{ctx}"),
        }
    }
}

/// Exactly one line on stdout; return it.
fn one_stdout_line(o: &Out) -> String {
    let lines = o.stdout_lines();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one stdout line{}",
        o.ctx()
    );
    assert!(
        o.stdout.ends_with('\n'),
        "stdout line not newline-terminated{}",
        o.ctx()
    );
    lines[0].to_string()
}

/// Asserts the exit code, exactly one stdout line, and the expected keys in it; returns the line.
fn expect_line(o: &Out, code: i32, expected: &[(&str, String)]) -> String {
    assert_eq!(o.code, code, "{}", o.ctx());
    let line = one_stdout_line(o);
    check_kv(&line, expected, &o.ctx());
    line
}

fn tmp_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("kubemem-cli-{}-{}-{}", std::process::id(), n, tag))
}

// ---------------------------------------------------------------------------------------------
// Measured cases

struct Case {
    name: &'static str,
    cgroup: &'static str,
    limit: u64,
    source: &'static str,
    used: u64,
    percent: &'static str,
    /// path of the measured cgroup directory relative to the fixture root ("" = none)
    path: &'static str,
}

const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

const K8S_V2_PRIV_POD: &str = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod52458485_2ef5_49c0_a7f3_38bac3d6e633.slice";
const K8S_V2_PRIV_CTR: &str = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod52458485_2ef5_49c0_a7f3_38bac3d6e633.slice/cri-containerd-83ea524780687d71e47aa538aeecf38f83ec7ff226ad5adadcaf4cd1fa290fe9.scope";
const K8S_V2_TIE_CTR: &str = "sys/fs/cgroup/kubepods.slice/kubepods-podbef29720_5493_4026_a95a_a63ff9c5e891.slice/cri-containerd-7c03e19941799040d37e0261d9340af09aff85404858d1083d0bbe18f8fb4e5d.scope";
const COLON_PATH: &str = "sys/fs/cgroup/system.slice/containerd.service/kubepods-burstable-pod79e05c82_906d_42ed_a509_36c65bbb84a0.slice:cri-containerd:011bd3630355a4e842787a9d3dd22c4adfcd6aa4230740d3d6349fadc2eaca81";

const CASES: &[Case] = &[
    Case { name: "k8s-v2-cgroupns", cgroup: "v2", limit: GI, source: "cgroup",
           used: 584 * MI - 100 * MI, percent: "47.2", path: "sys/fs/cgroup" },
    Case { name: "k8s-v2-privileged", cgroup: "v2", limit: 2 * GI, source: "ancestor",
           used: 1680 * MI - 60 * MI, percent: "79.1", path: K8S_V2_PRIV_POD },
    Case { name: "docker-v1-hostroot", cgroup: "v1", limit: 512 * MI, source: "cgroup",
           used: 442 * MI - 32 * MI, percent: "80.0",
           path: "sys/fs/cgroup/memory/docker/3b05227ec45a20a7f4f94d28ed8f4d12b6125cf7ea67c679a625059d0282b669" },
    Case { name: "k8s-v1-rootpath", cgroup: "v1", limit: 256 * MI, source: "cgroup",
           used: 248 * MI - 4 * MI, percent: "95.3", path: "sys/fs/cgroup/memory" },
    Case { name: "docker-v1-rootpath-sub", cgroup: "v1", limit: GI, source: "ancestor",
           used: 740 * MI - 174 * MI, percent: "55.2", path: "sys/fs/cgroup/memory" },
    Case { name: "hybrid-host", cgroup: "v1", limit: 768 * MI, source: "cgroup",
           used: 382 * MI - 120 * MI, percent: "34.1",
           path: "sys/fs/cgroup/memory/system.slice/billing-worker.service" },
    Case { name: "v2-dind-init", cgroup: "v2", limit: 1536 * MI, source: "ancestor",
           used: 1200 * MI - 200 * MI, percent: "65.1", path: "sys/fs/cgroup" },
    Case { name: "v1-ecs-hierarchical", cgroup: "v1", limit: 2 * GI, source: "ancestor",
           used: 1800 * MI - 50 * MI, percent: "85.4", path: "sys/fs/cgroup/memory" },
    Case { name: "v2-unlimited-host", cgroup: "v2", limit: MEMTOTAL, source: "host",
           used: 700 * MI - 200 * MI, percent: "3.1", path: "sys/fs/cgroup" },
    Case { name: "v2-limit-above-memtotal", cgroup: "v2", limit: MEMTOTAL, source: "host",
           used: 4 * GI - 512 * MI, percent: "22.4", path: "sys/fs/cgroup" },
    Case { name: "v1-64k-unlimited", cgroup: "v1", limit: MEMTOTAL, source: "host",
           used: GI - 256 * MI, percent: "4.8", path: "sys/fs/cgroup/memory" },
    Case { name: "escaped-mountpoint", cgroup: "v2", limit: 512 * MI, source: "cgroup",
           used: 308 * MI - 20 * MI, percent: "56.2", path: "sys/fs/cgroup x" },
    Case { name: "multi-cgroup2-unusable-first", cgroup: "v2", limit: 256 * MI, source: "cgroup",
           used: 128 * MI - 16 * MI, percent: "43.7", path: "sys/fs/cgroup" },
    Case { name: "stacked-cgroup2", cgroup: "v2", limit: 4 * GI, source: "cgroup",
           used: 3688 * MI - 8 * MI, percent: "89.8", path: "sys/fs/cgroup" },
    Case { name: "containerd-systemd-colon", cgroup: "v2", limit: 384 * MI, source: "cgroup",
           used: 368 * MI - 4 * MI, percent: "94.7", path: COLON_PATH },
    Case { name: "v1-comounted", cgroup: "v1", limit: GI, source: "cgroup",
           used: 512 * MI - 256 * MI, percent: "25.0", path: "sys/fs/cgroup/cpu,cpuacct,memory" },
    Case { name: "k8s-v1-hostpath-cgroup", cgroup: "v1", limit: GI, source: "ancestor",
           used: (700 + 156 + 1) * MI - (80 + 16) * MI, percent: "74.3",
           path: "sys/fs/cgroup/memory/kubepods/burstable/pod90211943-9228-4c64-aedb-22be9cf0c490" },
    Case { name: "k8s-v2-privileged-tie", cgroup: "v2", limit: 512 * MI, source: "cgroup",
           used: 400 * MI - 40 * MI, percent: "70.3", path: K8S_V2_TIE_CTR },
    Case { name: "v2-limit-equals-memtotal", cgroup: "v2", limit: MEMTOTAL, source: "host",
           used: 2 * GI - 512 * MI, percent: "9.6", path: "sys/fs/cgroup" },
    Case { name: "v1-two-memory-mounts", cgroup: "v1", limit: 300 * MI, source: "cgroup",
           used: 200 * MI - 24 * MI, percent: "58.6", path: "sys/fs/cgroup/memory" },
    Case { name: "v2-stat-missing", cgroup: "v2", limit: 512 * MI, source: "cgroup",
           used: 410 * MI, percent: "80.0", path: "sys/fs/cgroup" },
    Case { name: "v1-inactive-above-usage", cgroup: "v1", limit: 100 * MI, source: "cgroup",
           used: 0, percent: "0.0", path: "sys/fs/cgroup/memory" },
    Case { name: "v2-stat-reordered", cgroup: "v2", limit: GI, source: "cgroup",
           used: 900 * MI - 400 * MI, percent: "48.8", path: "sys/fs/cgroup" },
    Case { name: "v2-no-final-newline", cgroup: "v2", limit: GI, source: "cgroup",
           used: 214_745_088 - 14_745_600, percent: "18.6", path: "sys/fs/cgroup" },
];

fn level_for(percent: &str, warn: f64, fail: f64) -> &'static str {
    let p: f64 = percent.parse().unwrap();
    if p >= fail {
        "failure"
    } else if p >= warn {
        "warning"
    } else {
        "ok"
    }
}

fn expected_kv(c: &Case, level: &str) -> Vec<(&'static str, String)> {
    vec![
        ("level", level.to_string()),
        ("used", c.used.to_string()),
        ("limit", c.limit.to_string()),
        ("percent", c.percent.to_string()),
        ("warning", "75%".to_string()),
        ("failure", "90%".to_string()),
        ("usage", "working-set".to_string()),
        ("cgroup", c.cgroup.to_string()),
        ("limit_source", c.source.to_string()),
        ("path", format!("{}/{}", fixture(c.name), c.path)),
    ]
}

#[test]
fn percent_values_in_table_are_consistent() {
    // guard against typos in the table: percent = floor(used*1000/limit)/10
    for c in CASES {
        let t = (c.used as u128 * 1000 / c.limit as u128) as u64;
        assert_eq!(
            format!("{}.{}", t / 10, t % 10),
            c.percent,
            "case {}",
            c.name
        );
    }
}

#[test]
fn measured_cases_verbose() {
    let mut failures = Vec::new();
    for c in CASES {
        let o = run(Some(c.name), &["-v"]);
        let level = level_for(c.percent, 75.0, 90.0);
        let want_code = if level == "failure" { 4 } else { 0 };
        let r = std::panic::catch_unwind(|| {
            assert_eq!(o.code, want_code, "exit code{}", o.ctx());
            let line = one_stdout_line(&o);
            check_kv(&line, &expected_kv(c, level), &o.ctx());
            let kv = logfmt(&line);
            assert_eq!(kv.len(), 10, "unexpected key set in {line:?}");
        });
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("[{}] {}", c.name, msg));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn measured_cases_default_output_only_at_warning_or_failure() {
    for c in CASES {
        let o = run(Some(c.name), &[]);
        let level = level_for(c.percent, 75.0, 90.0);
        match level {
            "ok" => {
                assert_eq!(o.code, 0, "[{}]{}", c.name, o.ctx());
                assert!(
                    o.stdout.is_empty(),
                    "[{}] healthy run must be silent{}",
                    c.name,
                    o.ctx()
                );
                assert!(
                    o.stderr.is_empty(),
                    "[{}] healthy run must be silent{}",
                    c.name,
                    o.ctx()
                );
            }
            _ => {
                let want = if level == "failure" { 4 } else { 0 };
                assert_eq!(o.code, want, "[{}]{}", c.name, o.ctx());
                let line = one_stdout_line(&o);
                check_kv(
                    &line,
                    &expected_kv(c, level),
                    &format!("[{}]{}", c.name, o.ctx()),
                );
            }
        }
    }
}

#[test]
fn path_with_space_is_quoted() {
    let o = run(Some("escaped-mountpoint"), &["-v"]);
    let line = one_stdout_line(&o);
    let want = format!("path=\"{}/sys/fs/cgroup x\"", fixture("escaped-mountpoint"));
    assert!(line.contains(&want), "want {want} in {line:?}");
}

#[test]
fn verbose_long_flag_on_healthy_case() {
    let o = run(Some("k8s-v2-cgroupns"), &["--verbose"]);
    expect_line(&o, 0, &[("level", "ok".into()), ("percent", "47.2".into())]);
    assert!(o.stderr.is_empty(), "{}", o.ctx());
}

#[test]
fn usage_total() {
    // k8s-v2-cgroupns: memory.current 584Mi of 1Gi
    let o = run(Some("k8s-v2-cgroupns"), &["--usage", "total", "-v"]);
    expect_line(
        &o,
        0,
        &[
            ("level", "ok".into()),
            ("used", (584 * MI).to_string()),
            ("limit", GI.to_string()),
            ("percent", "57.0".into()),
            ("usage", "total".into()),
        ],
    );

    // docker-v1-hostroot: memory.usage_in_bytes 442Mi of 512Mi -> 86.3 warning
    let o = run(Some("docker-v1-hostroot"), &["--usage", "total"]);
    expect_line(
        &o,
        0,
        &[
            ("level", "warning".into()),
            ("used", (442 * MI).to_string()),
            ("percent", "86.3".into()),
            ("usage", "total".into()),
            ("cgroup", "v1".into()),
        ],
    );

    // k8s-v2-privileged: the pod slice carries the limit -> its raw memory.current (1680Mi of 2Gi)
    let o = run(Some("k8s-v2-privileged"), &["--usage", "total"]);
    let line = one_stdout_line(&o);
    check_kv(
        &line,
        &[
            ("level", "warning".into()),
            ("used", (1680 * MI).to_string()),
            ("percent", "82.0".into()),
            ("limit_source", "ancestor".into()),
            (
                "path",
                format!("{}/{}", fixture("k8s-v2-privileged"), K8S_V2_PRIV_POD),
            ),
        ],
        &o.ctx(),
    );

    // stale v1 stats: raw usage is not clamped
    let o = run(Some("v1-inactive-above-usage"), &["--usage=total", "-v"]);
    let line = one_stdout_line(&o);
    check_kv(
        &line,
        &[("used", "4313088".into()), ("percent", "4.1".into())],
        &o.ctx(),
    );
}

#[test]
fn explicit_cgroup_dir() {
    // --cgroup DIR is used as given (a full path, not prefixed by --root); ancestors are not walked.
    // k8s-v2-privileged container scope: memory.max = max -> MemTotal of the --root meminfo;
    // used = 1676Mi - (60Mi - 8192) of the container itself.
    let root = fixture("k8s-v2-privileged");
    let dir = format!("{root}/{K8S_V2_PRIV_CTR}");
    let o = run(Some("k8s-v2-privileged"), &["--cgroup", &dir, "-v"]);
    expect_line(
        &o,
        0,
        &[
            ("level", "ok".into()),
            ("used", (1676 * MI - (60 * MI - 8192)).to_string()),
            ("limit", MEMTOTAL.to_string()),
            ("percent", "10.1".into()),
            ("limit_source", "host".into()),
            ("cgroup", "v2".into()),
            ("path", dir.clone()),
        ],
    );

    // the pod slice itself: its own limit
    let dir = format!("{root}/{K8S_V2_PRIV_POD}");
    let o = run(Some("k8s-v2-privileged"), &["--cgroup", &dir]);
    expect_line(
        &o,
        0,
        &[
            ("level", "warning".into()),
            ("used", "1698693120".into()),
            ("limit", (2 * GI).to_string()),
            ("limit_source", "cgroup".into()),
            ("path", dir.clone()),
        ],
    );

    // v1: hierarchical_memory_limit still applies
    let dir = format!("{}/sys/fs/cgroup/memory", fixture("v1-ecs-hierarchical"));
    let o = run(Some("v1-ecs-hierarchical"), &["--cgroup", &dir]);
    let line = one_stdout_line(&o);
    check_kv(
        &line,
        &[
            ("level", "warning".into()),
            ("used", "1835008000".into()),
            ("limit", (2 * GI).to_string()),
            ("limit_source", "ancestor".into()),
            ("cgroup", "v1".into()),
            ("path", dir.clone()),
        ],
        &o.ctx(),
    );

    // no detection: works without /proc/self/cgroup (100Mi - 10Mi of 1Gi)
    let dir = format!("{}/sys/fs/cgroup", fixture("err-no-proc-cgroup"));
    let o = run(Some("err-no-proc-cgroup"), &["--cgroup", &dir, "-v"]);
    expect_line(
        &o,
        0,
        &[
            ("level", "ok".into()),
            ("used", (90 * MI).to_string()),
            ("percent", "8.7".into()),
            ("limit_source", "cgroup".into()),
            ("path", dir),
        ],
    );

    // a directory that is not a memory cgroup
    let dir = format!("{}/sys/fs/cgroup/unified", fixture("hybrid-host"));
    let o = run(Some("hybrid-host"), &["--cgroup", &dir]);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert_eq!(o.stderr_lines().len(), 1, "{}", o.ctx());
    assert!(o.stderr.starts_with("level=error "), "{}", o.ctx());
}

// ---------------------------------------------------------------------------------------------
// Thresholds (k8s-v2-cgroupns: used 507510784 of 1073741824 = 47.2%)

struct Thr {
    args: &'static [&'static str],
    code: i32,
    level: &'static str, // "" = no line expected
    warning: &'static str,
    failure: &'static str,
}

const THRESHOLDS: &[Thr] = &[
    Thr {
        args: &["-w", "40", "-f", "50"],
        code: 0,
        level: "warning",
        warning: "40%",
        failure: "50%",
    },
    Thr {
        args: &["-w", "40%", "-f", "45%"],
        code: 4,
        level: "failure",
        warning: "40%",
        failure: "45%",
    },
    Thr {
        args: &["--warning", "30", "--failure", "47.2"],
        code: 4,
        level: "failure",
        warning: "30%",
        failure: "47.2%",
    },
    Thr {
        args: &["-w", "30", "-f", "47.3", "-v"],
        code: 0,
        level: "warning",
        warning: "30%",
        failure: "47.3%",
    },
    Thr {
        args: &["-w", "85%", "-f", "92.5", "-v"],
        code: 0,
        level: "ok",
        warning: "85%",
        failure: "92.5%",
    },
    Thr {
        args: &["-w", "12.34", "-f", "56.78"],
        code: 0,
        level: "warning",
        warning: "12.34%",
        failure: "56.78%",
    },
    Thr {
        args: &["-w", "40", "-f", "40"],
        code: 4,
        level: "failure",
        warning: "40%",
        failure: "40%",
    },
    Thr {
        args: &["-w", "0", "-f", "100"],
        code: 0,
        level: "warning",
        warning: "0%",
        failure: "100%",
    },
    Thr {
        args: &["-w", "400Mi", "-f", "512M"],
        code: 0,
        level: "warning",
        warning: "419430400",
        failure: "512000000",
    },
    Thr {
        args: &["-w", "400Mi", "-f", "480Mi"],
        code: 4,
        level: "failure",
        warning: "419430400",
        failure: "503316480",
    },
    Thr {
        args: &["-w", "900Mi", "-f", "1.5Gi", "-v"],
        code: 0,
        level: "ok",
        warning: "943718400",
        failure: "1610612736",
    },
    Thr {
        args: &["-w", "495616k", "-f", "2G"],
        code: 0,
        level: "warning",
        warning: "495616000",
        failure: "2000000000",
    },
    Thr {
        args: &["-w", "484Ki", "-f", "1Ti", "-v"],
        code: 0,
        level: "warning",
        warning: "495616",
        failure: "1099511627776",
    },
    Thr {
        args: &["-w", "1T", "-f", "2T", "-v"],
        code: 0,
        level: "ok",
        warning: "1000000000000",
        failure: "2000000000000",
    },
    Thr {
        args: &["-w", "900Mi", "-f", "1Gi"],
        code: 0,
        level: "",
        warning: "",
        failure: "",
    },
    Thr {
        args: &["-w", "40", "-f", "900Mi"],
        code: 0,
        level: "warning",
        warning: "40%",
        failure: "943718400",
    },
    Thr {
        args: &["-w", "400Mi", "-f", "95"],
        code: 0,
        level: "warning",
        warning: "419430400",
        failure: "95%",
    },
    Thr {
        args: &["-w", "40", "-f", "484Mi"],
        code: 4,
        level: "failure",
        warning: "40%",
        failure: "507510784",
    },
    // mixed kinds are not compared with each other: 2Gi "above" 50% is fine
    Thr {
        args: &["-w", "2Gi", "-f", "50"],
        code: 0,
        level: "",
        warning: "",
        failure: "",
    },
];

#[test]
fn thresholds() {
    for t in THRESHOLDS {
        let o = run(Some("k8s-v2-cgroupns"), t.args);
        assert_eq!(o.code, t.code, "{:?}{}", t.args, o.ctx());
        if t.level.is_empty() {
            assert!(
                o.stdout.is_empty(),
                "{:?}: expected no output{}",
                t.args,
                o.ctx()
            );
            continue;
        }
        let line = one_stdout_line(&o);
        check_kv(
            &line,
            &[
                ("level", t.level.into()),
                ("warning", t.warning.into()),
                ("failure", t.failure.into()),
                ("used", "507510784".into()),
                ("limit", "1073741824".into()),
                ("percent", "47.2".into()),
            ],
            &format!("{:?}{}", t.args, o.ctx()),
        );
    }
}

#[test]
fn threshold_92_5_on_failing_case() {
    // k8s-v1-rootpath: 95.3%
    let o = run(Some("k8s-v1-rootpath"), &["-w", "85", "-f", "92.5"]);
    expect_line(
        &o,
        4,
        &[
            ("level", "failure".into()),
            ("warning", "85%".into()),
            ("failure", "92.5%".into()),
        ],
    );
    // stacked-cgroup2: 89.8% -> warning with 92.5
    let o = run(Some("stacked-cgroup2"), &["-w", "85", "-f", "92.5"]);
    expect_line(
        &o,
        0,
        &[("level", "warning".into()), ("failure", "92.5%".into())],
    );
}

#[test]
fn warning_above_failure_is_usage_error() {
    for args in [
        &["-w", "95", "-f", "90"][..],
        &["-w", "90.01", "-f", "90"][..],
        &["-w", "1Gi", "-f", "900Mi"][..],
        &["-w", "2G", "-f", "1.5Gi"][..],
        &["-f", "70"][..], // default warning 75 > 70
    ] {
        let o = run(Some("k8s-v2-cgroupns"), args);
        assert_eq!(o.code, 3, "{args:?}{}", o.ctx());
        assert!(o.stdout.is_empty(), "{args:?}{}", o.ctx());
        assert!(o.stderr.starts_with("kubemem: "), "{args:?}{}", o.ctx());
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &["--bogus"],
        &["-x"],
        &["extra-positional"],
        &["-w"],
        &["--failure"],
        &["-w", ""],
        &["-w", "abc"],
        &["-w", "101"],
        &["-f", "100.01"],
        &["-w", "-5"],
        &["-w", "85.123"],
        &["-w", "85%%"],
        &["-w", "10Xi"],
        &["-w", "10m"],
        &["-w", "10Pi"],
        &["-f", "1.5.0Gi"],
        &["--usage", "rss"],
        &["--usage"],
        &["--log-format", "xml"],
        &["--on-error", "maybe"],
        &["--on-error", "pass", "-w", "abc"],
    ];
    for args in cases {
        let o = run(Some("k8s-v2-cgroupns"), args);
        assert_eq!(o.code, 3, "{args:?}{}", o.ctx());
        assert!(o.stdout.is_empty(), "{args:?}{}", o.ctx());
        assert!(
            o.stderr.starts_with("kubemem: "),
            "{args:?}: stderr should start with 'kubemem: '{}",
            o.ctx()
        );
    }
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h"] {
        let o = run(None, &[flag]);
        assert_eq!(o.code, 0, "{}", o.ctx());
        assert!(
            o.stdout.contains("--warning") && o.stdout.contains("--failure"),
            "{}",
            o.ctx()
        );
        assert!(
            o.stdout.contains("--root") && o.stdout.contains("--on-error"),
            "{}",
            o.ctx()
        );
        assert!(
            o.stdout.contains("--annotations <FILE>")
                && o.stdout.contains("--termination-log <PATH>")
                && o.stdout.contains("kubemem install DEST"),
            "{}",
            o.ctx()
        );
    }
    for flag in ["--version", "-V"] {
        let o = run(None, &[flag]);
        assert_eq!(o.code, 0, "{}", o.ctx());
        assert!(o.stdout.contains(env!("CARGO_PKG_VERSION")), "{}", o.ctx());
    }
}

// ---------------------------------------------------------------------------------------------
// Logfile (the flags of the C kubemem)

#[test]
fn logfile_at_failure_goes_to_file_and_stdout() {
    let log = tmp_path("fail.log");
    std::fs::write(&log, "previous line\n").unwrap();
    let logs = log.to_str().unwrap();
    for round in 1..=2 {
        let o = run(
            Some("k8s-v1-rootpath"),
            &["--warning", "85", "--failure", "95", "--logfile", logs],
        );
        let line = expect_line(
            &o,
            4,
            &[
                ("level", "failure".into()),
                ("warning", "85%".into()),
                ("failure", "95%".into()),
                ("percent", "95.3".into()),
            ],
        );
        let content = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 1 + round, "logfile content {content:?}");
        assert_eq!(
            lines[0], "previous line",
            "logfile must be appended to: {content:?}"
        );
        assert_eq!(lines[round], line, "logfile line differs from stdout line");
        assert!(content.ends_with('\n'));
    }
    let _ = std::fs::remove_file(&log);
}

#[test]
fn logfile_at_warning_goes_to_file_only() {
    let log = tmp_path("warn.log");
    let logs = log.to_str().unwrap();
    // v1-ecs-hierarchical: 85.4%
    let o = run(
        Some("v1-ecs-hierarchical"),
        &["-w", "85", "-f", "95", "-l", logs],
    );
    assert_eq!(o.code, 0, "{}", o.ctx());
    assert!(
        o.stdout.is_empty(),
        "warning must not go to stdout with --logfile{}",
        o.ctx()
    );
    let content = std::fs::read_to_string(&log).expect("logfile created");
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 1, "{content:?}");
    check_kv(
        lines[0],
        &[
            ("level", "warning".into()),
            ("percent", "85.4".into()),
            ("limit_source", "ancestor".into()),
            ("cgroup", "v1".into()),
        ],
        &o.ctx(),
    );
    let _ = std::fs::remove_file(&log);

    // healthy with -v: the ok line goes to the logfile only
    let log3 = tmp_path("verbose.log");
    let o = run(
        Some("k8s-v2-cgroupns"),
        &["-v", "--logfile", log3.to_str().unwrap()],
    );
    assert_eq!(o.code, 0, "{}", o.ctx());
    assert!(o.stdout.is_empty(), "{}", o.ctx());
    let content = std::fs::read_to_string(&log3).expect("logfile created");
    assert_eq!(content.lines().count(), 1, "{content:?}");
    check_kv(
        content.lines().next().unwrap(),
        &[("level", "ok".into()), ("percent", "47.2".into())],
        &o.ctx(),
    );
    let _ = std::fs::remove_file(&log3);

    // healthy without -v: nothing written
    let log2 = tmp_path("ok.log");
    let o = run(
        Some("k8s-v2-cgroupns"),
        &["--logfile", log2.to_str().unwrap()],
    );
    assert_eq!(o.code, 0, "{}", o.ctx());
    assert!(o.stdout.is_empty(), "{}", o.ctx());
    let content = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(content.is_empty(), "{content:?}");
    let _ = std::fs::remove_file(&log2);
}

#[test]
fn unwritable_logfile_keeps_exit_code() {
    let dir = tmp_path("no-such-dir");
    let log = dir.join("kubemem.log");
    let logs = log.to_str().unwrap();
    // failure case: exit 4 unchanged, message on stderr, failure line still on stdout
    let o = run(
        Some("k8s-v1-rootpath"),
        &["--warning", "85", "--failure", "95", "--logfile", logs],
    );
    assert_eq!(o.code, 4, "{}", o.ctx());
    assert!(
        !o.stderr.trim().is_empty(),
        "expected a message on stderr{}",
        o.ctx()
    );
    let line = one_stdout_line(&o);
    check_kv(&line, &[("level", "failure".into())], &o.ctx());
    // warning case: exit 0 unchanged, message on stderr
    let o = run(
        Some("v1-ecs-hierarchical"),
        &["-w", "85", "-f", "95", "-l", logs],
    );
    assert_eq!(o.code, 0, "{}", o.ctx());
    assert!(
        !o.stderr.trim().is_empty(),
        "expected a message on stderr{}",
        o.ctx()
    );
    assert!(!dir.exists(), "must not create the directory");
}

// ---------------------------------------------------------------------------------------------
// JSON

#[test]
fn json_output() {
    let o = run(Some("k8s-v1-rootpath"), &["--log-format", "json"]);
    assert_eq!(o.code, 4, "{}", o.ctx());
    let line = one_stdout_line(&o);
    assert!(line.starts_with('{') && line.ends_with('}'), "{line:?}");
    let path = format!("{}/sys/fs/cgroup/memory", fixture("k8s-v1-rootpath"));
    for want in [
        "\"level\":\"failure\"".to_string(),
        "\"used\":255852544".to_string(),
        "\"limit\":268435456".to_string(),
        "\"percent\":95.3".to_string(),
        "\"warning\":\"75%\"".to_string(),
        "\"failure\":\"90%\"".to_string(),
        "\"usage\":\"working-set\"".to_string(),
        "\"cgroup\":\"v1\"".to_string(),
        "\"limit_source\":\"cgroup\"".to_string(),
        format!("\"path\":\"{path}\""),
    ] {
        assert!(line.contains(&want), "want {want} in {line:?}");
    }

    let o = run(Some("escaped-mountpoint"), &["--log-format=json", "-v"]);
    assert_eq!(o.code, 0, "{}", o.ctx());
    let line = one_stdout_line(&o);
    assert!(line.starts_with('{') && line.ends_with('}'), "{line:?}");
    assert!(line.contains("\"level\":\"ok\""), "{line:?}");
    assert!(line.contains("\"percent\":56.2"), "{line:?}");
    let path = format!(
        "\"path\":\"{}/sys/fs/cgroup x\"",
        fixture("escaped-mountpoint")
    );
    assert!(line.contains(&path), "want {path} in {line:?}");

    let o = run(
        Some("v1-inactive-above-usage"),
        &["--log-format", "json", "-v"],
    );
    let line = one_stdout_line(&o);
    assert!(
        line.contains("\"used\":0,") && line.contains("\"percent\":0.0"),
        "{line:?}"
    );
}

#[test]
fn json_error() {
    let o = run(Some("err-current-suffix"), &["--log-format", "json"]);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert!(o.stdout.is_empty(), "{}", o.ctx());
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", o.ctx());
    let l = lines[0];
    assert!(l.starts_with('{') && l.ends_with('}'), "{l:?}");
    assert!(l.contains("\"level\":\"error\""), "{l:?}");
    assert!(l.contains("/sys/fs/cgroup/memory.current\""), "{l:?}");
    assert!(l.contains("\"error\":\""), "{l:?}");
}

// ---------------------------------------------------------------------------------------------
// Errors

struct Err {
    name: &'static str,
    args: &'static [&'static str],
    /// the named file must end with one of these (relative to the fixture root)
    file: &'static [&'static str],
}

const ERRORS: &[Err] = &[
    Err {
        name: "err-no-proc-cgroup",
        args: &[],
        file: &["proc/self/cgroup"],
    },
    Err {
        name: "err-no-memory-line",
        args: &[],
        file: &["proc/self/cgroup"],
    },
    Err {
        name: "err-no-mount",
        args: &[],
        file: &["proc/self/mountinfo"],
    },
    Err {
        name: "err-outside-mount-root",
        args: &[],
        file: &["proc/self/mountinfo"],
    },
    Err {
        name: "err-cgroupns-no-fresh-mount",
        args: &[],
        file: &["proc/self/mountinfo"],
    },
    // memory controller off: memory.current and memory.max are both absent; either may be named
    Err {
        name: "err-memory-controller-off",
        args: &[],
        file: &["sys/fs/cgroup/memory.current", "sys/fs/cgroup/memory.max"],
    },
    Err {
        name: "err-no-memory-current",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-no-memory-current",
        args: &["-v"],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-cr",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-suffix",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-minus",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-plus",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-empty",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-overflow",
        args: &[],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-current-overflow",
        args: &["-v"],
        file: &["sys/fs/cgroup/memory.current"],
    },
    Err {
        name: "err-max-malformed",
        args: &[],
        file: &["sys/fs/cgroup/memory.max"],
    },
    Err {
        name: "err-stat-malformed",
        args: &[],
        file: &["sys/fs/cgroup/memory.stat"],
    },
    Err {
        name: "err-stat-malformed",
        args: &["-v"],
        file: &["sys/fs/cgroup/memory.stat"],
    },
    Err {
        name: "err-v1-limit-sign",
        args: &[],
        file: &["sys/fs/cgroup/memory/memory.limit_in_bytes"],
    },
    Err {
        name: "err-v1-stat-malformed",
        args: &["-v"],
        file: &["sys/fs/cgroup/memory/memory.stat"],
    },
];

#[test]
fn errors() {
    let mut failures = Vec::new();
    for e in ERRORS {
        let r = std::panic::catch_unwind(|| {
            let o = run(Some(e.name), e.args);
            assert_eq!(o.code, 2, "exit code{}", o.ctx());
            assert!(o.stdout.is_empty(), "stdout must be empty{}", o.ctx());
            let lines = o.stderr_lines();
            assert_eq!(lines.len(), 1, "stderr must be exactly one line{}", o.ctx());
            assert!(
                o.stderr.ends_with('\n'),
                "stderr line not newline-terminated{}",
                o.ctx()
            );
            let kv = logfmt(lines[0]);
            let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["level", "file", "error"], "{}", o.ctx());
            assert_eq!(get(&kv, "level"), Some("error"), "{}", o.ctx());
            let file = get(&kv, "file").unwrap_or_else(|| panic!("no file= key{}", o.ctx()));
            assert!(
                e.file.iter().any(|f| file.ends_with(&format!("/{f}"))),
                "file={file:?} should end with {:?}{}",
                e.file,
                o.ctx()
            );
            assert!(
                file.starts_with(&fixture(e.name)),
                "file={file:?} should carry the --root prefix{}",
                o.ctx()
            );
            let reason = get(&kv, "error").unwrap_or_else(|| panic!("no error= key{}", o.ctx()));
            assert!(!reason.trim().is_empty(), "empty reason{}", o.ctx());

            let mut args: Vec<&str> = e.args.to_vec();
            args.extend(["--on-error", "pass"]);
            let o = run(Some(e.name), &args);
            assert_eq!(o.code, 0, "--on-error pass{}", o.ctx());
            assert!(
                o.stdout.is_empty(),
                "--on-error pass: stdout must be empty{}",
                o.ctx()
            );

            let mut args: Vec<&str> = e.args.to_vec();
            args.extend(["--on-error", "fail"]);
            let o = run(Some(e.name), &args);
            assert_eq!(o.code, 2, "--on-error fail{}", o.ctx());
        });
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("[{} {:?}] {}", e.name, e.args, msg));
        }
    }
    assert!(
        failures.is_empty(),
        "{} error case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn root_that_does_not_exist_is_a_measurement_error() {
    let missing = tmp_path("no-root");
    let o = run(None, &["--root", missing.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert_eq!(o.stderr_lines().len(), 1, "{}", o.ctx());
    assert!(o.stderr.contains("level=error"), "{}", o.ctx());
}

// ---------------------------------------------------------------------------------------------
// Output size

#[test]
fn every_output_line_is_under_400_bytes() {
    // `run` asserts the limit on every line; exercise every fixture in every format.
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().into_string().unwrap();
        for args in [
            &["-v"][..],
            &["-v", "--log-format", "json"][..],
            &["-v", "--usage", "total", "-w", "900Mi", "-f", "1.5Gi"][..],
        ] {
            let o = run(Some(&name), args);
            assert!(
                o.stdout.len() + o.stderr.len() > 0,
                "{name}: no output with -v{}",
                o.ctx()
            );
            n += 1;
        }
    }
    assert!(n >= 3 * 30, "expected the fixture set, ran {n}");
}

// ---------------------------------------------------------------------------------------------
// --annotations (tests/annotations/; k8s-v2-cgroupns is at 47.2%)

fn annotations(name: &str) -> String {
    format!("{}/tests/annotations/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn annotations_override_the_flags() {
    // kubelet's file (6.7 KB, longer than one read): warning 80, failure 92.5; flags that the
    // file overrides would fail.
    let o = run(
        Some("k8s-v2-cgroupns"),
        &[
            "-w",
            "10",
            "-f",
            "20",
            "--annotations",
            &annotations("kubelet"),
        ],
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "", ""),
        "{}",
        o.ctx()
    );
    let rows = [
        ("kubelet", ["10", "20"], "-v", 0, ["ok", "80%", "92.5%"]),
        // pre-oom-killer's percent (45) is the failure threshold; the warning stays the flag's.
        (
            "pre-oom-killer",
            ["30", "95"],
            "",
            4,
            ["failure", "30%", "45%"],
        ),
        // A file without our keys leaves the flags alone.
        ("empty", ["40", "95"], "", 0, ["warning", "40%", "95%"]),
    ];
    for (file, [w, f], extra, code, [level, warning, failure]) in rows {
        let file = annotations(file);
        let mut args = vec!["-w", w, "-f", f, "--annotations", &file];
        args.extend([extra].iter().filter(|a| !a.is_empty()));
        let want = [("level", level), ("warning", warning), ("failure", failure)];
        expect_line(
            &run(Some("k8s-v2-cgroupns"), &args),
            code,
            &want.map(|(k, v)| (k, v.to_string())),
        );
    }
}

#[test]
fn a_bad_annotations_file_is_a_usage_error_naming_the_line() {
    let missing = tmp_path("no-annotations");
    let rows = [
        (
            annotations("bad-threshold"),
            "line=2 error=\"kubemem.io/failure: unknown unit\"",
        ),
        (
            annotations("unterminated"),
            "line=2 error=\"value without its closing double quote\"",
        ),
        (
            missing.to_str().unwrap().to_string(),
            "error=\"cannot open: no such file or directory\"",
        ),
    ];
    for (file, want) in rows {
        // --on-error pass is about measuring; a wrong configuration still fails.
        for extra in [&[][..], &["--on-error", "pass"][..]] {
            let mut args = vec!["--annotations", &file];
            args.extend(extra);
            let o = run(Some("k8s-v2-cgroupns"), &args);
            assert_eq!(o.code, 3, "{}", o.ctx());
            assert!(o.stdout.is_empty(), "{}", o.ctx());
            assert_eq!(
                o.stderr,
                format!("level=error file={file} {want}\n"),
                "{}",
                o.ctx()
            );
        }
    }
    let o = run(
        Some("k8s-v2-cgroupns"),
        &[
            "--annotations",
            &annotations("bad-threshold"),
            "--log-format",
            "json",
        ],
    );
    assert_eq!(o.code, 3, "{}", o.ctx());
    assert!(
        o.stderr
            .ends_with(",\"line\":2,\"error\":\"kubemem.io/failure: unknown unit\"}\n"),
        "{}",
        o.ctx()
    );
}

// ---------------------------------------------------------------------------------------------
// --termination-log

#[test]
fn termination_log_holds_the_line_of_a_failed_probe() {
    let log = tmp_path("termination-log");
    let logs = log.to_str().unwrap();
    let older = "an older message, longer than the line that replaces it ".repeat(20);
    let reset = || std::fs::write(&log, &older).unwrap();

    // Failure: the verdict line, replacing the file, without its newline.
    reset();
    let o = run(Some("k8s-v1-rootpath"), &["--termination-log", logs]);
    let line = expect_line(&o, 4, &[("level", "failure".into())]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), line);
    // Also with a logfile: the line goes everywhere it goes without one.
    let logfile = tmp_path("termination-logfile");
    let o = run(
        Some("k8s-v1-rootpath"),
        &[
            "--termination-log",
            logs,
            "--logfile",
            logfile.to_str().unwrap(),
        ],
    );
    let line = expect_line(&o, 4, &[("level", "failure".into())]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), line);
    assert_eq!(std::fs::read_to_string(&logfile).unwrap(), line + "\n");
    let _ = std::fs::remove_file(&logfile);

    // Healthy, warning, and an error with --on-error pass: the probe did not fail, the
    // file is left alone.
    for (case, args) in [
        ("k8s-v2-cgroupns", &[][..]),
        ("k8s-v2-cgroupns", &["-v"][..]),
        ("v1-ecs-hierarchical", &[][..]),
        ("err-current-suffix", &["--on-error", "pass"][..]),
    ] {
        reset();
        let mut args = args.to_vec();
        args.extend(["--termination-log", logs]);
        let o = run(Some(case), &args);
        assert_eq!(o.code, 0, "{}", o.ctx());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), older, "{}", o.ctx());
    }

    // Memory that cannot be measured fails the probe too: the error line.
    reset();
    let o = run(Some("err-current-suffix"), &["--termination-log", logs]);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), o.stderr.trim_end());
    // So does a malformed annotations file.
    let o = run(
        Some("k8s-v2-cgroupns"),
        &[
            "--termination-log",
            logs,
            "--annotations",
            &annotations("bad-threshold"),
        ],
    );
    assert_eq!(o.code, 3, "{}", o.ctx());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), o.stderr.trim_end());
    let _ = std::fs::remove_file(&log);
}

#[test]
fn unwritable_termination_log_keeps_exit_code() {
    let dir = tmp_path("no-such-dir");
    let log = dir.join("termination-log");
    let o = run(
        Some("k8s-v1-rootpath"),
        &["--termination-log", log.to_str().unwrap()],
    );
    assert_eq!(o.code, 4, "{}", o.ctx());
    let line = one_stdout_line(&o);
    check_kv(&line, &[("level", "failure".into())], &o.ctx());
    assert_eq!(
        o.stderr,
        format!(
            "level=error file={} error=\"cannot open termination log: no such file or directory\"\n",
            log.display()
        ),
        "{}",
        o.ctx()
    );
    assert!(!dir.exists(), "must not create the directory");
}

// ---------------------------------------------------------------------------------------------
// kubemem install

#[test]
fn install_copies_the_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp_path("install");
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("kubemem");
    // An existing file is replaced and made executable.
    std::fs::write(&dest, "old").unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(None, &["install", dest.to_str().unwrap()]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "", ""),
        "{}",
        o.ctx()
    );
    assert!(std::fs::read(&dest).unwrap() == std::fs::read(bin()).unwrap());
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let copy = Command::new(&dest).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&copy.stdout).contains(env!("CARGO_PKG_VERSION")));

    let missing = dir.join("no-such-dir/kubemem");
    let o = run(None, &["install", missing.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{}", o.ctx());
    assert_eq!(
        o.stderr,
        format!(
            "level=error file={} error=\"cannot open: no such file or directory\"\n",
            missing.display()
        )
    );
    for args in [
        &["install"][..],
        &["install", "a", "b"],
        &["-v", "install", "a"],
    ] {
        let o = run(None, args);
        assert_eq!(o.code, 3, "{}", o.ctx());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// What a file in an unexpected form does: never a hang

/// Runs kubemem as `run` does, but kills it if it has not exited after 5 s (a hang guard: the
/// test fails as "hung"); returns its output and how long it took.
fn run_bounded(args: &[String]) -> (Out, std::time::Duration) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kubemem {args:?} hung (killed after 5 s)");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let output = child.wait_with_output().unwrap();
    let out = Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        cmd: format!("kubemem {}", args.join(" ")),
    };
    (out, elapsed)
}

fn mkfifo(path: &std::path::Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A copy of a fixture tree, to change one file of it.
fn copy_fixture(case: &str, tag: &str) -> PathBuf {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let to = tmp_path(tag);
    copy(PathBuf::from(fixture(case)).as_path(), &to);
    to
}

/// `/proc/1/fd/1` is a pipe or a FIFO in most runtimes: a FIFO without a reader is an error
/// line (ENXIO) at once, the exit code unchanged, where a blocking open would wait forever.
#[test]
fn a_fifo_logfile_without_a_reader_is_an_error_not_a_hang() {
    let dir = tmp_path("fifo-log");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("log");
    mkfifo(&fifo);
    let log = fifo.to_str().unwrap().to_string();
    for (case, flags, code, level) in [
        (
            "k8s-v1-rootpath",
            &["--warning", "85", "--failure", "95"][..],
            4,
            "failure",
        ),
        ("k8s-v2-cgroupns", &["--verbose"][..], 0, "ok"),
    ] {
        let mut args = vec![
            "--root".to_string(),
            fixture(case),
            "--logfile".into(),
            log.clone(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        let (o, took) = run_bounded(&args);
        assert_eq!(o.code, code, "{}", o.ctx());
        let want = format!(
            "level=error file={log} error=\"cannot open log file: no such device or address\""
        );
        assert_eq!(o.stderr_lines(), [want.as_str()], "{}", o.ctx());
        if level == "failure" {
            check_kv(&one_stdout_line(&o), &[("level", level.into())], &o.ctx());
        }
        assert!(took.as_millis() < 100, "took {took:?}{}", o.ctx());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A FIFO in place of `memory.current` is a clear error naming it, never a hang: with no
/// writer it reads as empty, with a writer that wrote nothing as "try again".
#[test]
fn a_fifo_in_place_of_a_cgroup_file_is_an_error_not_a_hang() {
    let root = copy_fixture("k8s-v2-cgroupns", "fifo-cgroup");
    let current = root.join("sys/fs/cgroup/memory.current");
    std::fs::remove_file(&current).unwrap();
    mkfifo(&current);
    let args = ["--root".to_string(), root.to_str().unwrap().to_string()];
    let (o, took) = run_bounded(&args);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert!(
        o.stderr.contains("memory.current") && o.stderr.contains("error=\"empty value\""),
        "{}",
        o.ctx()
    );
    assert!(took.as_millis() < 100, "took {took:?}{}", o.ctx());

    // A writer holds the FIFO open (read and write, so this open does not block either).
    let _writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&current)
        .unwrap();
    let (o, took) = run_bounded(&args);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert!(
        o.stderr.contains("memory.current") && o.stderr.contains("temporarily unavailable"),
        "{}",
        o.ctx()
    );
    assert!(took.as_millis() < 100, "took {took:?}{}", o.ctx());
    std::fs::remove_dir_all(root).unwrap();
}

/// Blanks around a number are padding (`720719872  ` then a newline): the same reading as
/// without them. A carriage return stays an error (see the err-current-* fixtures).
#[test]
fn numbers_padded_with_blanks_read_as_the_numbers() {
    let plain = run(Some("k8s-v2-cgroupns"), &["--verbose"]);
    let root = copy_fixture("k8s-v2-cgroupns", "padded");
    let cgroup = root.join("sys/fs/cgroup");
    for (file, padded) in [
        ("memory.current", "612368384  \n"),
        ("memory.max", "\t1073741824 \n"),
    ] {
        let value = std::fs::read_to_string(cgroup.join(file)).unwrap();
        assert_eq!(value.trim(), padded.trim(), "{file}");
        std::fs::write(cgroup.join(file), padded).unwrap();
    }
    let args = [
        "--root".to_string(),
        root.to_str().unwrap().to_string(),
        "--verbose".into(),
    ];
    let (o, _) = run_bounded(&args);
    assert_eq!(o.code, 0, "{}", o.ctx());
    let (a, b) = (
        logfmt(&one_stdout_line(&plain)),
        logfmt(&one_stdout_line(&o)),
    );
    for key in ["used", "limit", "percent", "limit_source"] {
        assert_eq!(get(&a, key), get(&b, key), "{key}{}", o.ctx());
    }
    std::fs::remove_dir_all(root).unwrap();
}

// ---------------------------------------------------------------------------------------------
// --lead, --state, eta= and oom_kills=

/// Replaces `key`'s line in every `name` file below `dir` with `key value`.
fn set_in_files(dir: &std::path::Path, name: &str, key: &str, value: u64) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            set_in_files(&path, name, key, value);
        } else if path.file_name().is_some_and(|n| n == name) {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<String> = text
                .lines()
                .map(|l| match l.split_once(' ') {
                    Some((k, _)) if k == key => format!("{k} {value}"),
                    _ => l.to_string(),
                })
                .collect();
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        }
    }
}

/// The kernel's OOM kills in the cgroup show as `oom_kills=N` in logfmt and JSON, on both
/// versions, and not at all while there are none.
#[test]
fn oom_kills_are_printed_when_the_kernel_killed() {
    for (case, file) in [
        ("k8s-v2-cgroupns", "memory.events"),
        ("k8s-v1-hostpath-cgroup", "memory.oom_control"),
    ] {
        let o = run(Some(case), &["-v"]);
        assert!(!o.stdout.contains("oom_kills"), "{}", o.ctx());
        let root = copy_fixture(case, "oom");
        set_in_files(&root, file, "oom_kill", 3);
        let root = root.to_str().unwrap();
        let o = run(None, &["--root", root, "-v"]);
        assert_eq!(o.code, 0, "{}", o.ctx());
        let kv = logfmt(&one_stdout_line(&o));
        assert_eq!(get(&kv, "oom_kills"), Some("3"), "{}", o.ctx());
        let o = run(None, &["--root", root, "-v", "--log-format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&one_stdout_line(&o)).unwrap();
        assert_eq!(v["oom_kills"], 3, "{}", o.ctx());
        // None again: no key, and no error.
        set_in_files(std::path::Path::new(root), file, "oom_kill", 0);
        let o = run(None, &["--root", root, "-v"]);
        assert!(
            !o.stdout.contains("oom_kills") && o.stderr.is_empty(),
            "{}",
            o.ctx()
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}

/// One probe run per second over a working set growing at 128 MiB/s towards 1 GiB: no
/// estimate while the runs span less than 4 s, then eta= with the time left (within 10%),
/// and exit 4 at the first run that has it (4 s or less left, lead 3.5 s plus the wait for
/// the next run). The working set written before each run follows the clock, so a slow run
/// changes when it is sampled, not the rate.
#[test]
fn the_state_file_carries_the_trend_and_the_lead_fails_the_probe() {
    let root = copy_fixture("k8s-v2-cgroupns", "lead");
    let cg = root.join("sys/fs/cgroup");
    let state = root.join("state");
    let inactive: u64 = 100 * MI; // the fixture's inactive_file
    let start = std::time::Instant::now();
    let args = |json: bool| {
        let mut a = vec![
            "--root".to_string(),
            root.to_str().unwrap().to_string(),
            "--state".into(),
            state.to_str().unwrap().into(),
            "--lead".into(),
            "3.5s".into(),
            "-v".into(),
        ];
        if json {
            a.extend(["--log-format".into(), "json".into()]);
        }
        a
    };
    let mut failed_at = None;
    for i in 0..8 {
        let elapsed = start.elapsed().as_secs_f64();
        let used = (elapsed * 128.0 * MI as f64) as u64;
        std::fs::write(cg.join("memory.current"), format!("{}\n", inactive + used)).unwrap();
        let a = args(i % 2 == 1);
        let o = run(None, &a.iter().map(String::as_str).collect::<Vec<_>>());
        let line = one_stdout_line(&o);
        let eta = if i % 2 == 1 {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["lead"], "3.5s", "{}", o.ctx());
            v.get("eta").map(|e| e.as_f64().unwrap())
        } else {
            let kv = logfmt(&line);
            assert_eq!(get(&kv, "lead"), Some("3.5s"), "{}", o.ctx());
            get(&kv, "eta").map(|e| e.parse::<f64>().unwrap())
        };
        assert_eq!(std::fs::metadata(&state).unwrap().len(), 560);
        if elapsed < 3.9 {
            assert_eq!((o.code, eta), (0, None), "run at {elapsed:.2} s{}", o.ctx());
        } else if eta.is_some() {
            let left = (GI - used) as f64 / (128.0 * MI as f64);
            let eta = eta.unwrap();
            assert!(
                (eta - left).abs() <= left / 10.0,
                "eta {eta} left {left}{}",
                o.ctx()
            );
            assert_eq!(o.code, 4, "{eta} s left, lead 3.5 s{}", o.ctx());
            failed_at = Some(elapsed);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    assert!(failed_at.is_some(), "the lead never failed the probe");

    // A state file of another kind, or torn: started afresh, never an error.
    for junk in [
        &b"not a state file"[..],
        &[0u8; 560][..],
        &[0xffu8; 4096][..],
    ] {
        std::fs::write(&state, junk).unwrap();
        let a = args(false);
        let o = run(None, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.code, 0, "{}", o.ctx());
        assert!(
            o.stderr.is_empty() && !o.stdout.contains("eta="),
            "{}",
            o.ctx()
        );
        // Rewritten whole (a longer file keeps its tail, which the checksum ignores).
        let bytes = std::fs::read(&state).unwrap();
        assert_eq!(&bytes[..8], b"kubemem\x01");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// A state file that cannot be opened is an error line naming it: exit 2, or 0 with
/// `--on-error pass`; the line also goes to the termination log.
#[test]
fn an_unusable_state_file_is_an_error_naming_it() {
    let dir = tmp_path("state-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let missing_dir = dir.join("no/such/dir/state");
    let tlog = dir.join("termination-log");
    let (state, tlog) = (missing_dir.to_str().unwrap(), tlog.to_str().unwrap());
    let o = run(
        Some("k8s-v2-cgroupns"),
        &["--state", state, "--lead", "3s", "--termination-log", tlog],
    );
    assert_eq!(o.code, 2, "{}", o.ctx());
    let want = format!("level=error file={state} error=\"cannot open: no such file or directory\"");
    assert_eq!(o.stderr_lines(), [want.as_str()], "{}", o.ctx());
    assert_eq!(std::fs::read_to_string(tlog).unwrap(), want);
    let o = run(
        Some("k8s-v2-cgroupns"),
        &["--state", state, "--on-error", "pass"],
    );
    assert_eq!((o.code, o.stderr_lines().len()), (0, 1), "{}", o.ctx());
    // A directory in its place.
    let o = run(Some("k8s-v2-cgroupns"), &["--state", dir.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.ctx());
    assert!(
        o.stderr.contains("cannot open: is a directory"),
        "{}",
        o.ctx()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
