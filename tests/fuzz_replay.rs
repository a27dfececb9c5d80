//! Replays the fuzz targets' seeds through the same checks on stable: every kernel file in
//! the fixture trees, the annotations files in `tests/annotations/`, a table of thresholds,
//! command lines and annotation lines, and every kept crash case in
//! `fuzz/regressions/<target>/`. `fuzz/seed.sh` builds the fuzzers' corpora from the same
//! sources.

use std::fs;
use std::path::{Path, PathBuf};

use kubemem::check;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn fixture_files_through_every_parser_check() {
    let mut all = Vec::new();
    files(&repo("tests/fixtures"), &mut all);
    let mut seen = [0usize; 4];
    for path in &all {
        let data = fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        match name {
            "memory.stat" | "memory.events" | "memory.oom_control" => seen[0] += 1,
            "memory.current" | "memory.max" | "memory.usage_in_bytes" | "memory.limit_in_bytes" => {
                seen[1] += 1
            }
            "cgroup" if path.ends_with("proc/self/cgroup") => {
                check::proc_cgroup(&data);
                let mountinfo = fs::read(path.with_file_name("mountinfo")).unwrap_or_default();
                check::mountinfo(&[&data[..], b"\0", &mountinfo].concat());
                seen[2] += 1;
            }
            _ => {}
        }
        // Every file is also thrown at every parser: none may panic or disagree.
        check::u64(&data);
        check::stat(&data);
        check::oom_events(&data);
        check::state(&data);
        check::proc_cgroup(&data);
        check::threshold(&data);
        check::annotations(&data);
        #[cfg(feature = "http")]
        check::http_response(&data);
        seen[3] += 1;
    }
    assert!(
        seen.iter().all(|&n| n > 10),
        "too few fixture files seen: {seen:?}"
    );
}

#[test]
fn threshold_and_argv_seeds() {
    for t in [
        "85",
        "85%",
        "92.5",
        "92.25%",
        "0",
        "100",
        "900Mi",
        "1.5Gi",
        "512M",
        "2G",
        "1Ki",
        "3Ti",
        "2T",
        "0.001Ki",
        "16777215Ti",
        "1e3",
        "",
        "%",
        ".5",
        "5.",
        "abc",
    ] {
        check::threshold(t.as_bytes());
    }
    for argv in [
        "--warning\x0085\x00--failure\x0095\x00--logfile\x00/proc/1/fd/1",
        "-w\x00900Mi\x00-f\x001.5Gi\x00-v",
        "--warning=95\0--failure=90",
        "--usage\0total\0--log-format\0json\0--on-error\0pass",
        "--root\0/\0--cgroup\0/x",
        "-h",
        "--bogus",
        "run\0--warning-signal\0USR1\0--grace\x001.5s\0--interval\x0020ms\0--\0sh\0-c\0exit 3",
        "run\0--signal\x009\0app\0--signal\0x",
        "run\0--interval\x000s\0x",
        "run\0--",
    ] {
        check::args(argv.as_bytes());
    }
}

#[cfg(feature = "http")]
#[test]
fn http_response_seeds() {
    let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web needs 2 healthy pods and has 2 currently"}]},"code":429}"#;
    let length = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{status}",
        status.len()
    );
    for seed in [
        &length[..],
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n8;x=1\r\n{\"kind\":\r\n8\r\n\"Status\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nforbidden: \\u00e9 \\ud83d\\ude00",
        "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "",
        "\u{0}\u{ffff}\"\\",
    ] {
        check::http_response(seed.as_bytes());
    }
}

#[test]
fn annotations_seeds() {
    let mut all = Vec::new();
    files(&repo("tests/annotations"), &mut all);
    assert!(all.len() >= 4, "too few annotations files: {all:?}");
    for path in &all {
        check::annotations(&fs::read(path).unwrap());
    }
    for text in [
        "kubemem.io/failure=\"95\"\nkubemem.io/warning=\"85\"",
        "pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold=\"80\"\n",
        "kubemem.io/failure=\"\\x39\\065\"\nx=\"\\a\\u00e9\\U0001f600\\377\"",
        "a=\"\\ud800\"",
        "a=\"1\nb",
        "=\"\"",
        "kubemem.io/warning=\"2Gi\"\nkubemem.io/failure=\"1Gi\"",
        "",
    ] {
        check::annotations(text.as_bytes());
    }
}

#[test]
fn kept_crash_cases() {
    let dir = repo("fuzz/regressions");
    for target in fs::read_dir(&dir).unwrap() {
        let target = target.unwrap().path();
        if !target.is_dir() {
            continue;
        }
        let check: fn(&[u8]) = match target.file_name().unwrap().to_str().unwrap() {
            "u64" => check::u64,
            "stat" => check::stat,
            "proc_cgroup" => check::proc_cgroup,
            "mountinfo" => check::mountinfo,
            "threshold" => check::threshold,
            "args" => check::args,
            "annotations" => check::annotations,
            "oom_events" => check::oom_events,
            "state" => check::state,
            #[cfg(feature = "http")]
            "http_response" => check::http_response,
            other => panic!("fuzz/regressions/{other}: no such target"),
        };
        for case in fs::read_dir(&target).unwrap() {
            check(&fs::read(case.unwrap().path()).unwrap());
        }
    }
}
