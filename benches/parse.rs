//! `cargo bench`: each parser on real-sized input next to a naive std version, and one whole
//! in-process probe run over a fixture tree. Exec-level costs (start-up, system calls, RSS)
//! are what matter for a probe; those are measured on the binary, not here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use kubemem::locate::Selector;
use kubemem::parse;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{rel}")).unwrap()
}

fn naive_stat(text: &[u8], key: &str) -> Option<u64> {
    std::str::from_utf8(text).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

fn benches(c: &mut Criterion) {
    // A full v1 memory.stat (local, hierarchical_* and total_* rows) and a v2 one.
    let v1_stat =
        fixture("hybrid-host/sys/fs/cgroup/memory/system.slice/billing-worker.service/memory.stat");
    let v2_stat = fixture("k8s-v2-cgroupns/sys/fs/cgroup/memory.stat");
    let mut g = c.benchmark_group("stat");
    g.bench_function("v2/kubemem", |b| {
        b.iter(|| parse::parse_stat(black_box(&v2_stat)))
    });
    g.bench_function("v2/naive", |b| {
        b.iter(|| naive_stat(black_box(&v2_stat), "inactive_file"))
    });
    g.bench_function("v1/kubemem", |b| {
        b.iter(|| parse::parse_stat(black_box(&v1_stat)))
    });
    g.bench_function("v1/naive", |b| {
        b.iter(|| {
            let s = black_box(&v1_stat);
            (
                naive_stat(s, "total_inactive_file"),
                naive_stat(s, "hierarchical_memory_limit"),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("u64");
    let value = b"18446744073709551615\n";
    g.bench_function("kubemem", |b| b.iter(|| parse::parse_u64(black_box(value))));
    g.bench_function("std", |b| {
        b.iter(|| {
            std::str::from_utf8(black_box(value))
                .ok()?
                .trim_end()
                .parse::<u64>()
                .ok()
        })
    });
    g.finish();

    // A pod's mountinfo with 40 mounts: a cgroup v2 container with a namespace (23 mounts)
    // plus the volume mounts a real workload adds (ConfigMaps, Secrets, emptyDirs).
    let cgroup = fixture("k8s-v2-cgroupns/proc/self/cgroup");
    let mut mountinfo = fixture("k8s-v2-cgroupns/proc/self/mountinfo");
    for i in 0..17 {
        mountinfo.extend_from_slice(
            format!(
                "{} 1365 254:1 /var/lib/kubelet/pods/4f1c6a2e-8d0b-4e8a-9a51-2b0c3d4e5f60/volumes/\
                 kubernetes.io~configmap/config-{i} /etc/app/config-{i} ro,relatime - ext4 \
                 /dev/vda1 rw,discard\n",
                1500 + i
            )
            .as_bytes(),
        );
    }
    assert_eq!(mountinfo.iter().filter(|&&c| c == b'\n').count(), 40);
    let paths = parse::parse_proc_cgroup(&cgroup).unwrap();
    let mut g = c.benchmark_group("mountinfo");
    g.bench_function("kubemem", |b| {
        b.iter(|| {
            let mut s = Selector::new(paths);
            s.feed_lines(black_box(&mountinfo)).unwrap();
            s.finish().map(|(_, dir, _)| dir.len())
        })
    });
    g.bench_function("kubemem-every-line", |b| {
        b.iter(|| {
            let mut s = Selector::new(paths);
            for line in black_box(&mountinfo)
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
            {
                s.feed(line).unwrap();
            }
            s.finish().map(|(_, dir, _)| dir.len())
        })
    });
    g.bench_function("naive", |b| {
        b.iter(|| {
            let text = std::str::from_utf8(black_box(&mountinfo)).unwrap();
            text.lines()
                .filter_map(|l| l.split_once(" - "))
                .find(|(_, r)| r.starts_with("cgroup2 "))
                .map(|(l, _)| l.split(' ').nth(4).unwrap().replace("\\040", " ").len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("threshold");
    g.bench_function("kubemem", |b| {
        b.iter(|| parse::parse_threshold(black_box(b"1.5Gi")))
    });
    g.bench_function("f64", |b| {
        b.iter(|| {
            black_box("1.5Gi")
                .strip_suffix("Gi")
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| (n * 1073741824.0).ceil() as u64)
        })
    });
    g.finish();

    // One whole probe run in process: locate, read, parse, decide (no output: healthy).
    let args = match kubemem::args::parse(lexopt::Parser::from_args([
        "--root",
        &format!("{FIXTURES}/k8s-v2-privileged"),
    ])) {
        Ok(kubemem::args::Parsed::Probe(a)) => a,
        _ => unreachable!(),
    };
    let devnull = std::fs::File::create("/dev/null").unwrap();
    use std::os::fd::AsFd;
    let cfg = args.config(devnull.as_fd(), devnull.as_fd());
    c.bench_function("probe/k8s-v2-privileged", |b| {
        b.iter(|| {
            let exit = kubemem::run(black_box(&cfg));
            // The probe leaves its files for exit to close; a loop must close them.
            kubemem::sys::close_kept();
            exit
        })
    });
}

criterion_group!(parsers, benches);
criterion_main!(parsers);
