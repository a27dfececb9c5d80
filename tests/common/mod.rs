//! What the suites that run the kubemem binary share: which binary that is.

use std::process::Command;
use std::sync::OnceLock;

/// The kubemem binary under test: `KUBEMEM_BIN` when set, else cargo's build of this package.
///
/// The test command (tests/run.sh) sets `KUBEMEM_BIN` to the release binary `./build.sh`
/// leaves in `target/dist/`, the static musl binary users get: a glibc debug build once hid a
/// musl binary that ignored every argument. Under `CI=true` it must be set, so that CI never
/// tests a binary nobody ships. The binary must match this build's features: `kubemem-evict`
/// for `cargo test --features evict`, `kubemem` otherwise.
pub fn bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = match std::env::var("KUBEMEM_BIN") {
            Ok(path) if !path.is_empty() => path,
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("KUBEMEM_BIN is not set: under CI=true the suites run the release binary (tests/run.sh sets it)")
            }
            _ => env!("CARGO_BIN_EXE_kubemem").to_owned(),
        };
        let help = Command::new(&bin)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("cannot run KUBEMEM_BIN={bin}: {e}"));
        let has_evict = String::from_utf8_lossy(&help.stdout).contains("--evict");
        assert_eq!(
            has_evict,
            cfg!(feature = "evict"),
            "{bin} {} --evict, but these tests were built {} the evict feature",
            if has_evict { "has" } else { "lacks" },
            if cfg!(feature = "evict") { "with" } else { "without" },
        );
        bin
    })
}
