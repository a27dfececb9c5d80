//! The probe on this machine's own cgroup, checked against the kernel's files read by hand
//! with a deliberately naive, independent reading of /proc/self/cgroup and mountinfo.
//!
//! The numbers move while the test runs (this test, cargo and the probe share the cgroup),
//! so the working set kubemem prints must lie between readings taken just before and just
//! after it, with a small slack for what the probe's own process adds.

mod common;

use std::fs;
use std::process::Command;

fn read_u64(path: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.trim_end()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}: {text:?}"))
}

fn stat_value(dir: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("{dir}/memory.stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}

/// (version, directory) found the simple way: the v1 memory line and the v1 memory mount
/// with root `/`, or the 0:: line and the cgroup2 mount with root `/`.
fn own_cgroup() -> (&'static str, String) {
    let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = |fstype: &str, option: Option<&str>| {
        mountinfo.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let ok = r[0] == fstype
                && option.is_none_or(|o| r[2].split(',').any(|x| x == o))
                && f[3] == "/";
            ok.then(|| f[4].to_string())
        })
    };
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, ctrl, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if ctrl.split(',').any(|c| c == "memory") {
            let mp = mount("cgroup", Some("memory")).expect("v1 memory mount with root /");
            return ("v1", format!("{mp}{}", path.trim_end_matches('/')));
        }
    }
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a 0:: line");
    let mp = mount("cgroup2", None).expect("cgroup2 mount with root /");
    ("v2", format!("{mp}{}", path.trim_end_matches('/')))
}

fn working_set(version: &str, dir: &str) -> u64 {
    let (usage, key) = match version {
        "v1" => (
            read_u64(&format!("{dir}/memory.usage_in_bytes")),
            "total_inactive_file",
        ),
        _ => (read_u64(&format!("{dir}/memory.current")), "inactive_file"),
    };
    usage.saturating_sub(stat_value(dir, key).unwrap_or(0))
}

#[test]
fn probe_matches_the_kernel_on_this_machine() {
    let (version, dir) = own_cgroup();
    let memtotal: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap();

    let before = working_set(version, &dir);
    let out = Command::new(common::bin())
        .arg("--verbose")
        .output()
        .unwrap();
    let after = working_set(version, &dir);

    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout:?} stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().next().expect("a --verbose line");
    let get = |key: &str| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    assert_eq!(get("cgroup"), version, "{line}");
    let used: u64 = get("used").parse().unwrap();
    let limit: u64 = get("limit").parse().unwrap();
    if get("limit_source") != "ancestor" {
        assert_eq!(get("path"), dir, "{line}");
    }

    // The probe process itself is charged to the cgroup while it runs: allow 4 MiB of slack.
    let slack = 4 << 20;
    let (lo, hi) = (
        before.min(after).saturating_sub(slack),
        before.max(after) + slack,
    );
    if get("limit_source") != "ancestor" {
        assert!(
            lo <= used && used <= hi,
            "{line}: used {used} not within [{lo}, {hi}] read by hand"
        );
    }

    let own_limit = match version {
        "v1" => Some(read_u64(&format!("{dir}/memory.limit_in_bytes"))),
        _ => fs::read_to_string(format!("{dir}/memory.max"))
            .ok()
            .and_then(|m| m.trim().parse().ok()),
    };
    let hierarchical = stat_value(&dir, "hierarchical_memory_limit");
    let tightest = [own_limit, hierarchical].into_iter().flatten().min();
    match tightest {
        Some(l) if l < memtotal * 1024 && get("limit_source") == "cgroup" => {
            assert_eq!(limit, l, "{line}")
        }
        Some(l) if l < memtotal * 1024 => assert!(limit <= l, "{line}"),
        _ if get("limit_source") == "host" => assert_eq!(limit, memtotal * 1024, "{line}"),
        _ => assert!(limit < memtotal * 1024, "{line}"),
    }
}

/// Each flag changes what a real run on this machine's cgroup does. A binary that ignores
/// its command line (a `#![no_main]` musl build reading std's empty `args_os()`) exits 0 on
/// all three, silently.
#[test]
fn flags_change_what_a_real_run_does() {
    let run = |args: &[&str]| {
        let out = Command::new(common::bin()).args(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    // Any working set is above 2 KiB: failure, with the failure line.
    let (code, stdout, stderr) = run(&["--warning", "1Ki", "--failure", "2Ki"]);
    assert_eq!(code, Some(4), "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.starts_with("level=failure "), "{stdout:?}");
    assert!(stdout.contains(" failure=2048 "), "{stdout:?}");

    // The same run in JSON: the format flag is read too.
    let (code, stdout, _) = run(&[
        "--warning",
        "1Ki",
        "--failure",
        "2Ki",
        "--log-format",
        "json",
    ]);
    assert_eq!(code, Some(4));
    assert!(stdout.starts_with("{\"level\":\"failure\""), "{stdout:?}");

    let (code, stdout, stderr) = run(&["--no-such-flag"]);
    assert_eq!(code, Some(3), "stdout {stdout:?} stderr {stderr:?}");
    assert!(stderr.contains("--no-such-flag"), "{stderr:?}");

    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, concat!("kubemem ", env!("CARGO_PKG_VERSION"), "\n"));
}
