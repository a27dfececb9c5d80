//! The probe leaves its files open for exit to close (one `close` per file saved). In one
//! process that runs it many times, the descriptors it keeps are bounded and
//! `kubemem::sys::close_kept` closes them. Alone in its test binary: it counts the process's
//! descriptors, which other tests running in parallel threads would change.

use std::fs;
use std::os::fd::AsFd;

use kubemem::args::{parse, Parsed};

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn kept_descriptors_are_bounded_and_closed_on_request() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/k8s-v2-cgroupns"
    );
    let argv = ["--root", root, "--verbose"];
    let Ok(Parsed::Probe(args)) = parse(lexopt::Parser::from_args(argv)) else {
        panic!("bad arguments");
    };
    let sink = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let cfg = args.config(sink.as_fd(), sink.as_fd());
    let before = open_fds();

    assert_eq!(kubemem::run(&cfg) as i32, 0);
    let one_run = open_fds() - before;
    // --verbose reads all seven files: cgroup, mountinfo, meminfo, max, current, stat and
    // events (the OOM history of its line).
    assert_eq!(one_run, 7, "descriptors kept by one run");

    for _ in 0..100 {
        assert_eq!(kubemem::run(&cfg) as i32, 0);
    }
    assert_eq!(
        open_fds() - before,
        kubemem::sys::KEPT,
        "kept beyond the table"
    );

    kubemem::sys::close_kept();
    assert_eq!(open_fds(), before, "close_kept left descriptors open");
}
