//! "No heap allocation after argument parsing", checked: a counting global allocator wraps
//! the system one, arguments are parsed first, then every allocation made by `kubemem::run`
//! on this thread fails the test. Covers the healthy, warning, failure (with a logfile and
//! JSON, with annotations and a termination log, with a state file), error and real-cgroup
//! paths, and one sample of the supervisor's sampler.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use kubemem::args::{parse, Parsed};
use kubemem::locate::{locate, Location};
use kubemem::measure::Sampler;
use kubemem::{Exit, Usage};

struct Counting;

thread_local! {
    // `const` thread-locals need no lazy initialisation, so reading them cannot allocate.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with the allocator armed; returns its result and the number of allocations.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let t = f();
    ARMED.with(|a| a.set(false));
    (t, COUNT.with(Cell::get))
}

/// Parses `argv`, then runs the probe with the allocator armed; returns the exit code and
/// the number of allocations `run` made.
fn allocations_during_run(argv: &[&str]) -> (Exit, usize) {
    let Ok(Parsed::Probe(args)) = parse(lexopt::Parser::from_args(argv.iter().copied())) else {
        panic!("bad test arguments {argv:?}");
    };
    let sink = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let cfg = args.config(sink.as_fd(), sink.as_fd());
    let exit = counted(|| kubemem::run(&cfg));
    kubemem::sys::close_kept();
    exit
}

/// A minimal cgroup v2 tree (a Kubernetes container with its own cgroup namespace).
fn v2_tree(name: &str, current: u64) -> PathBuf {
    let root = std::env::temp_dir().join(format!("kubemem-alloc-{}-{name}", std::process::id()));
    let cg = root.join("sys/fs/cgroup");
    fs::create_dir_all(root.join("proc/self")).unwrap();
    fs::create_dir_all(&cg).unwrap();
    fs::write(root.join("proc/self/cgroup"), "0::/\n").unwrap();
    fs::write(
        root.join("proc/self/mountinfo"),
        "1 0 0:1 / / rw - overlay overlay rw\n2 1 0:2 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw,nsdelegate\n",
    )
    .unwrap();
    fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       16384000 kB\nMemFree:         1000 kB\n",
    )
    .unwrap();
    fs::write(cg.join("memory.current"), format!("{current}\n")).unwrap();
    fs::write(cg.join("memory.max"), "1073741824\n").unwrap();
    fs::write(
        cg.join("memory.stat"),
        "anon 1\nfile 2\ninactive_file 1048576\nactive_file 0\n",
    )
    .unwrap();
    fs::write(
        cg.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 0\noom_kill 0\noom_group_kill 0\n",
    )
    .unwrap();
    root
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn no_allocation_after_argument_parsing() {
    let healthy = v2_tree("healthy", 100 << 20);
    let full = v2_tree("full", 1 << 30);
    let full_cgroup = full.join("sys/fs/cgroup");
    let log = std::env::temp_dir().join(format!("kubemem-alloc-{}.log", std::process::id()));
    let end = std::env::temp_dir().join(format!("kubemem-alloc-{}.end", std::process::id()));
    let state = std::env::temp_dir().join(format!("kubemem-alloc-{}.state", std::process::id()));
    let junk = std::env::temp_dir().join(format!("kubemem-alloc-{}.junk", std::process::id()));
    fs::write(&junk, b"not a state file").unwrap();
    let kubelet = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/annotations/kubelet");
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/annotations/bad-threshold"
    );
    let cases: &[(&[&str], Exit)] = &[
        (&["--root", s(&healthy)], Exit::Ok),
        (&["--root", s(&healthy), "-v"], Exit::Ok),
        (&["--root", s(&healthy), "-w", "5"], Exit::Ok),
        (
            &["--root", s(&full), "-l", s(&log), "--log-format", "json"],
            Exit::Failure,
        ),
        (
            &[
                "--root",
                s(&full),
                "--usage",
                "total",
                "-f",
                "2Gi",
                "-w",
                "1Gi",
            ],
            Exit::Ok,
        ),
        (
            &["--cgroup", s(&full_cgroup), "-l", "/nonexistent/dir/log"],
            Exit::Failure,
        ),
        (&["--root", "/nonexistent"], Exit::CannotMeasure),
        // The annotations file read in pieces, and the termination log written.
        (
            &[
                "--root",
                s(&full),
                "--annotations",
                kubelet,
                "--termination-log",
                s(&end),
            ],
            Exit::Failure,
        ),
        (&["--root", s(&healthy), "--annotations", bad], Exit::Usage),
        (&["--root", "/nonexistent", "--on-error", "pass"], Exit::Ok),
        // The state file: created, then read back and rewritten; a foreign one; none.
        (
            &["--root", s(&healthy), "--state", s(&state), "--lead", "3s"],
            Exit::Ok,
        ),
        (
            &["--root", s(&full), "--state", s(&state), "-v"],
            Exit::Failure,
        ),
        (
            &["--root", s(&healthy), "--state", s(&junk), "-v"],
            Exit::Ok,
        ),
        (
            &["--root", s(&healthy), "--state", "/nonexistent/state"],
            Exit::CannotMeasure,
        ),
        // This machine's own cgroup, whatever it is.
        (&["-v"], Exit::Ok),
    ];
    for (argv, want) in cases {
        let (exit, allocs) = allocations_during_run(argv);
        assert_eq!(exit, *want, "{argv:?}");
        assert_eq!(
            allocs, 0,
            "{argv:?} allocated {allocs} times after argument parsing"
        );
    }
    // The counter itself works: an allocation while armed is seen.
    ARMED.with(|a| a.set(true));
    let v = std::hint::black_box(vec![1u8; 10]);
    ARMED.with(|a| a.set(false));
    assert!(
        COUNT.with(Cell::get) >= 1,
        "the counting allocator saw nothing"
    );
    drop(v);
    for dir in [healthy, full] {
        fs::remove_dir_all(dir).unwrap();
    }
    let _ = fs::remove_file(log);
    let _ = fs::remove_file(end);
    let _ = fs::remove_file(state);
    let _ = fs::remove_file(junk);
}

#[test]
fn no_allocation_in_a_sample_of_the_supervisor() {
    let root = v2_tree("sampler", 1 << 30);
    let bytes = s(&root).as_bytes();
    let mut loc = Location::new();
    locate(bytes, &mut loc).unwrap();
    let sampler = Sampler::open(bytes, &loc, Usage::WorkingSet).unwrap();
    let mut trend = kubemem::trend::Trend::new(3000);
    let ((sample, eta, events), allocs) = counted(|| {
        let sample = sampler.sample(|_, _| true).unwrap();
        trend.push(1000, sample.used);
        let eta = trend.eta(sample.used, sample.limit);
        (sample, eta, sampler.oom_events())
    });
    assert_eq!(sample.used, (1 << 30) - (1 << 20));
    assert_eq!(eta, None);
    assert_eq!(events.map(|e| e.oom_kill), Some(0));
    assert_eq!(allocs, 0, "a sample allocated {allocs} times");
    fs::remove_dir_all(root).unwrap();
}
