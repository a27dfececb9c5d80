//! `kubemem run` with real processes, as tini is tested: exit statuses (every code and
//! 128 + N), signal forwarding to CMD and to its process group, zombie reaping as a
//! subreaper, exec failures, usage errors, and the thresholds acting on CMD over a fixture
//! tree whose `memory.current` the test rewrites.
//!
//! Nothing here asserts how fast kubemem reacts: every wait polls for a condition, and its
//! deadline only keeps a broken build from hanging the suite.

use std::fs;
use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

mod common;
use common::bin;

/// A healthy pod's view of cgroup v2 (85/95 is healthy there).
fn fixture() -> String {
    format!(
        "{}/tests/fixtures/k8s-v2-cgroupns",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The loop a test's CMD ends with: it says it is ready, then waits for the test to let it
/// go (also when the test fails: see `Supervised::drop`).
const WAIT: &str = "touch ready; while [ ! -e stop ]; do sleep 0.02; done";

/// Waits until `cond` holds. The deadline is a hang guard, not a timing assertion.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        sleep(Duration::from_millis(5));
    }
}

/// A directory of its own for each test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("kubemem-run-{}-{n}-{tag}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    /// Also kills a worker the test started (its pid in `worker-pid`) that is still there,
    /// which an init that does not end CMD's group leaves behind (a control, or a broken
    /// build), so that no test leaves a process running. By PID, after checking that it
    /// still runs in this directory.
    fn drop(&mut self) {
        if let Ok(pid) = self.read("worker-pid").trim().parse::<i32>() {
            let cwd = fs::read_link(format!("/proc/{pid}/cwd"));
            if cwd.is_ok_and(|cwd| cwd == self.0) {
                let _ = kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL);
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `kubemem run <args> -- sh -c <script>`, in `dir`, output to files there.
struct Supervised<'d> {
    child: Child,
    dir: &'d TempDir,
}

impl<'d> Supervised<'d> {
    fn start(dir: &'d TempDir, args: &[&str], script: &str) -> Supervised<'d> {
        Supervised::start_in(dir, Command::new(bin()), args, script)
    }

    /// As `start`, with `command` running kubemem (e.g. `unshare ... kubemem`).
    fn start_in(
        dir: &'d TempDir,
        mut command: Command,
        args: &[&str],
        script: &str,
    ) -> Supervised<'d> {
        let child = command
            .arg("run")
            .args(args)
            .args(["--", "sh", "-c", script])
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path("stdout")).unwrap())
            .stderr(fs::File::create(dir.path("stderr")).unwrap())
            .spawn()
            .unwrap();
        Supervised { child, dir }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32).unwrap()
    }

    fn ready(&self) {
        eventually("CMD to be ready", || self.dir.path("ready").exists());
    }

    /// Lets CMD's loop end.
    fn stop(&self) {
        fs::write(self.dir.path("stop"), "").unwrap();
    }

    /// kubemem's exit code.
    fn code(&mut self) -> i32 {
        let mut status = None;
        eventually("kubemem to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        status
            .code()
            .unwrap_or_else(|| panic!("kubemem died: {status:?}"))
    }
}

impl Drop for Supervised<'_> {
    fn drop(&mut self) {
        self.stop();
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `kubemem run <args> -- <command>` to the end: (exit code, stdout, stderr).
fn run(args: &[&str], command: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("run")
        .args(args)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn exits_with_every_exit_code_of_cmd() {
    let root = fixture();
    let codes: Vec<i32> = (0..=255).collect();
    // A batch at a time, so as not to start 512 processes at once.
    for batch in codes.chunks(32) {
        let children: Vec<(i32, Child)> = batch
            .iter()
            .map(|&n| {
                let child = Command::new(bin())
                    .args(["run", "--root", &root, "--", "sh", "-c"])
                    .arg(format!("exit {n}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                (n, child)
            })
            .collect();
        for (n, mut child) in children {
            assert_eq!(child.wait().unwrap().code(), Some(n), "sh -c 'exit {n}'");
        }
    }
}

#[test]
fn exits_128_plus_n_when_a_signal_ends_cmd() {
    for (name, n) in [
        ("HUP", 1),
        ("INT", 2),
        ("KILL", 9),
        ("USR1", 10),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
    ] {
        let (code, stdout, stderr) = run(
            &["--root", &fixture()],
            &["sh", "-c", &format!("kill -{name} $$")],
        );
        assert_eq!(code, 128 + n, "kill -{name}: {stdout}{stderr}");
        // kubemem run's own line goes to standard error, never into CMD's output.
        assert_eq!(stdout, "");
        assert!(
            stderr.starts_with("level=info action=start pid=") && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

// ---- What an init must do, shared with dumb-init and tini --------------------------------
//
// The tests named `init_*` run any init given by `init()`: kubemem run, or, as a control,
// `KUBEMEM_INIT_CONTROL` (say `dumb-init` or `tini -s -g --`), so that each behaviour can be
// shown against a peer built from Debian's packages:
//   KUBEMEM_INIT_CONTROL=dumb-init cargo test --test run init_

/// The init's command line up to CMD.
fn init() -> Vec<String> {
    match std::env::var("KUBEMEM_INIT_CONTROL") {
        Ok(control) if !control.is_empty() => {
            control.split_whitespace().map(String::from).collect()
        }
        _ => [bin(), "run", "--root", &fixture(), "--"]
            .map(String::from)
            .to_vec(),
    }
}

/// Where the init runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// A child of the test: not PID 1, a subreaper (`docker run --init`, a wrapper script).
    Child,
    /// PID 1 of a new PID namespace, as in a container.
    Pid1,
    /// Below another PID 1 in a new PID namespace (Kubernetes `shareProcessNamespace`, where
    /// the pause process is PID 1).
    BelowInit,
}

/// Whether `unshare --pid --fork --mount-proc` works here (root); under CI=true it must.
fn pid_namespaces() -> bool {
    let permitted = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !permitted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: unshare --pid --fork --mount-proc must work (run as root)"
        );
        eprintln!("SKIP: unshare --pid --fork --mount-proc not permitted");
    }
    permitted
}

/// The command that starts the init at `place` with `cmd`, and how many parents stand
/// between the test's child and the init.
fn init_command(place: Place, cmd: &[&str]) -> (Command, usize) {
    let mut line = init();
    line.extend(cmd.iter().map(|s| s.to_string()));
    let unshare = ["--pid", "--fork", "--mount-proc", "--"];
    match place {
        Place::Child => {
            let mut c = Command::new(&line[0]);
            c.args(&line[1..]);
            (c, 0)
        }
        Place::Pid1 => {
            let mut c = Command::new("unshare");
            c.args(unshare).args(&line);
            (c, 1)
        }
        Place::BelowInit => {
            // A shell as PID 1 that only waits: it forwards nothing, as the pause process.
            let mut c = Command::new("unshare");
            c.args(unshare)
                .args(["sh", "-c", "\"$@\" & wait $!", "sh"])
                .args(&line);
            (c, 2)
        }
    }
}

/// The pid, as seen from here, `depth` generations below `pid` (each an only child).
fn descendant(pid: Pid, depth: usize) -> Pid {
    let mut pid = pid;
    for _ in 0..depth {
        let mut children = Vec::new();
        eventually("the init to start", || {
            children = children_of(pid);
            children.len() == 1
        });
        pid = Pid::from_raw(children[0].0).unwrap();
    }
    pid
}

/// The state letter of a process (`T` stopped), or None once it is gone.
fn state_of(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ppid_and_state(&stat)?.1)
}

/// Every process below `pid`, deepest first.
fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for (child, _) in children_of(Pid::from_raw(pid).unwrap()) {
        out.extend(descendants(child));
        out.push(child);
    }
    out
}

/// Waits for the init (the test's `child`) to exit, after letting CMD go (`stop`, and
/// SIGCONT for whatever a control stopped). A hang guard, not a timing: past 30 s the
/// whole tree is killed, by PID, and the test fails.
fn finish(child: &mut Child, dir: &TempDir) -> std::process::ExitStatus {
    fs::write(dir.path("stop"), "").unwrap();
    let pid = child.id() as i32;
    for p in descendants(pid).into_iter().chain([pid]) {
        let _ = kill_process(Pid::from_raw(p).unwrap(), Signal::CONT);
    }
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > give_up {
            for p in descendants(pid).into_iter().chain([pid]) {
                let _ = kill_process(Pid::from_raw(p).unwrap(), Signal::KILL);
            }
            let _ = child.wait();
            panic!("the init did not exit after CMD was let go: killed");
        }
        sleep(Duration::from_millis(5));
    }
}

/// Waits up to 5 s for `cond`; false if it never held (a control may not do it).
fn within(mut cond: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !cond() {
        if Instant::now() > give_up {
            return false;
        }
        sleep(Duration::from_millis(5));
    }
    true
}

/// CMD for the signal tests: records every signal it can catch, one number a line, in
/// `got`, and never forks (a forked `sleep` in CMD's group would be stopped or killed by the
/// signals meant for CMD). Python cannot catch 32 and 33 (glibc's own).
const RECORDER: &str = r#"
import os, signal, time
# One write(2) per signal: a buffered file's lock would make a handler that interrupts
# another one's write fail ("reentrant call").
got = os.open("got", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def record(n, _frame):
    os.write(got, b"%d\n" % n)
for n in signal.valid_signals():
    if n not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        signal.signal(n, record)
open("ready", "w").close()
while not os.path.exists("stop"):
    time.sleep(0.02)
"#;

/// Python's full path: a version manager's `python3` on PATH is a script that forks.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Every signal a process can catch, by number (the real-time ones too), reaches CMD, and
/// none ends the init, PID 1 or not: 1 to 64 less KILL and STOP (they cannot be caught),
/// CHLD (the init's own) and 32 and 33 (CMD cannot catch them: see the next test).
fn forwards_every_signal(place: Place) {
    if !matches!(place, Place::Child) && !pid_namespaces() {
        return;
    }
    let dir = TempDir::new(&format!("signals-{place:?}"));
    let (mut command, depth) = init_command(place, &[python(), "-c", RECORDER]);
    let mut child = command
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    let init = descendant(Pid::from_raw(child.id() as i32).unwrap(), depth);
    eventually("CMD to be ready", || dir.path("ready").exists());
    let numbers: Vec<i32> = (1..=64)
        .filter(|n| ![9, 19, 17, 32, 33].contains(n))
        .collect();
    let mut missed = Vec::new();
    for &n in &numbers {
        let sent = Command::new("kill")
            .args([format!("-{n}"), init.as_raw_nonzero().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{n}");
        let got = || dir.read("got").lines().any(|l| l == n.to_string());
        if !within(|| got() || !matches!(child.try_wait(), Ok(None))) || !got() {
            missed.push(n);
            // A control that stopped itself and CMD on a job-control signal: resume them
            // (SIGCONT to each, as `fg` would) to go on with the next signal.
            for p in descendants(child.id() as i32) {
                let _ = kill_process(Pid::from_raw(p).unwrap(), Signal::CONT);
            }
            let _ = kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::CONT);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let alive = child.try_wait().unwrap().is_none();
    let status = finish(&mut child, &dir);
    assert!(
        alive,
        "{place:?}: the init ended ({status:?}) while CMD lived; CMD missed {missed:?}; stderr {}",
        dir.read("stderr")
    );
    assert!(missed.is_empty(), "{place:?}: CMD did not get {missed:?}");
    assert_eq!(status.code(), Some(0), "{place:?}: {}", dir.read("stderr"));
}

#[test]
fn init_forwards_every_signal_as_a_child() {
    forwards_every_signal(Place::Child);
}

#[test]
fn init_forwards_every_signal_as_pid_1() {
    forwards_every_signal(Place::Pid1);
}

#[test]
fn init_forwards_every_signal_below_another_init() {
    forwards_every_signal(Place::BelowInit);
}

/// 32 and 33, which the C libraries keep for their threads, are forwarded too: CMD (a shell,
/// which cannot catch them) dies of each, and the init, not PID 1, lives to exit 128 + N.
#[test]
fn init_forwards_the_signals_the_c_library_keeps() {
    for n in [32, 33, 34] {
        let dir = TempDir::new(&format!("rt-{n}"));
        let script = format!("echo $$ > cmd-pid; {WAIT}");
        let (mut command, _) = init_command(Place::Child, &["sh", "-c", &script]);
        // std spawns with glibc's posix_spawn, whose child ignores 32 and 33 (glibc's own
        // signals), and an ignored signal stays ignored through exec, so this test process
        // and CMD would ignore them. A container runtime starts the init with their default
        // action: set it back before the exec, with the raw system call, since glibc's
        // `sigaction` refuses them.
        // SAFETY: the closure only makes system calls (async-signal-safe after fork).
        unsafe { command.pre_exec(default_action_32_to_34) };
        let mut child = command
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        eventually("CMD to be ready", || dir.path("ready").exists());
        let sent = Command::new("kill")
            .args([format!("-{n}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        within(|| !matches!(child.try_wait(), Ok(None)));
        let status = finish(&mut child, &dir);
        assert_eq!(status.code(), Some(128 + n), "kill -{n}: {status:?}");
    }
}

/// Sets signals 32 to 34 to their default action (see the test above).
fn default_action_32_to_34() -> std::io::Result<()> {
    // The kernel's `struct sigaction` on Linux: handler (SIG_DFL is 0), flags, restorer,
    // mask.
    let default = [0u64; 4];
    for n in 32..=34 {
        // SAFETY: `default` is a valid kernel sigaction for the duration of the call; the
        // old action is not asked for.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                n,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CMD leads its own process group, and forwarded signals go to the group: a worker that
/// CMD started sees them too.
#[test]
fn init_forwards_to_the_process_group_of_cmd() {
    let dir = TempDir::new("group");
    let worker = "trap 'echo USR1 >> worker-got' USR1; trap 'exit 0' TERM; \
                                    echo $$ > worker-pid; touch worker-ready; \
                  while [ ! -e stop ]; do sleep 0.02; done";
    fs::write(dir.path("worker.sh"), worker).unwrap();
    let script = format!("sh worker.sh & {WAIT}");
    let (mut command, _) = init_command(Place::Child, &["sh", "-c", &script]);
    let mut child = command
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("CMD and its worker to be ready", || {
        dir.path("ready").exists() && dir.path("worker-ready").exists()
    });
    rustix::process::kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::USR1).unwrap();
    within(|| dir.read("worker-got") == "USR1\n");
    finish(&mut child, &dir);
    assert_eq!(
        dir.read("worker-got"),
        "USR1\n",
        "the worker's record of USR1"
    );
}

/// When CMD exits, what is left of its process group gets SIGTERM (a worker can finish what
/// it was writing), and the init exits with CMD's status.
#[test]
fn init_terms_what_cmd_left_of_its_group() {
    let dir = TempDir::new("leftover");
    let worker = "trap 'echo TERM > worker-got; exit 0' TERM; \
                                    echo $$ > worker-pid; touch worker-ready; while :; do sleep 0.02; done";
    fs::write(dir.path("worker.sh"), worker).unwrap();
    // CMD waits until the worker's trap is set, then exits 7 without it.
    let script = "sh worker.sh & while [ ! -e worker-ready ]; do sleep 0.01; done; exit 7";
    let (mut command, _) = init_command(Place::Child, &["sh", "-c", script]);
    let mut child = command
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    within(|| !matches!(child.try_wait(), Ok(None)));
    let status = finish(&mut child, &dir);
    assert_eq!(status.code(), Some(7));
    eventually("the worker to record TERM", || {
        dir.read("worker-got") == "TERM\n"
    });
}

/// CMD's standard output carries CMD's bytes and nothing else: `docker run image cmd | jq`.
#[test]
fn init_leaves_cmd_standard_output_to_cmd() {
    let (mut command, _) = init_command(Place::Child, &["sh", "-c", "printf 'only {this}'"]);
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "only {this}");
}

/// With a terminal (CMD has its foreground), SIGTSTP to the init suspends CMD's group and
/// the init; SIGCONT resumes both. The init runs in a session of its own on a
/// pseudo-terminal, as a shell's job in a terminal (or `docker run -it`) does.
#[test]
fn init_job_control_under_a_terminal() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = TempDir::new("tty");
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes the two descriptors; the name, termios and size are not given.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are new descriptors that nothing else owns.
    let (_master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // CMD must not fork: a shell stopped while it waits for a vforked `sleep` shows as `D`.
    let cmd = r#"
import os, time
open("cmd-pid", "w").write("%d" % os.getpid())
open("init-pid", "w").write("%d" % os.getppid())
open("ready", "w").close()
while not os.path.exists("stop"):
    time.sleep(0.02)
"#;
    let mut line = init();
    line.extend([python(), "-c", cmd].map(String::from));
    let mut command = Command::new(&line[0]);
    command
        .args(&line[1..])
        .current_dir(&dir.0)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    // SAFETY: setsid and ioctl are system calls (async-signal-safe after fork).
    unsafe {
        command.pre_exec(|| {
            // A new session whose controlling terminal is the pseudo-terminal (standard input).
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut child = command.spawn().unwrap();
    eventually("CMD to be ready", || dir.path("ready").exists());
    let pid = |name: &str| -> i32 { dir.read(name).trim().parse().unwrap() };
    let (init, cmd) = (pid("init-pid"), pid("cmd-pid"));
    assert_eq!(init, child.id() as i32);
    let signal = |sig: Signal| kill_process(Pid::from_raw(init).unwrap(), sig).unwrap();

    signal(Signal::TSTP);
    let stopped = within(|| state_of(init) == Some('T') && state_of(cmd) == Some('T'));
    let states = format!("init {:?}, CMD {:?}", state_of(init), state_of(cmd));
    signal(Signal::CONT);
    let resumed = within(|| {
        state_of(init).is_some_and(|s| s != 'T') && state_of(cmd).is_some_and(|s| s != 'T')
    });
    let status = finish(&mut child, &dir);
    assert!(stopped, "the init and CMD stopped on SIGTSTP ({states})");
    assert!(resumed, "the init and CMD resumed on SIGCONT");
    assert_eq!(status.code(), Some(0));
}

/// kubemem's own: a worker that ignores the SIGTERM after CMD's exit gets SIGKILL after
/// --grace, so that nothing of CMD's group outlives kubemem.
#[test]
fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = TempDir::new("leftover-kill");
    let worker = "trap '' TERM; echo $$ > worker-pid; while :; do sleep 0.02; done";
    fs::write(dir.path("worker.sh"), worker).unwrap();
    let script = "sh worker.sh & while [ ! -s worker-pid ]; do sleep 0.01; done; exit 3";
    let mut child = Command::new(bin())
        .args([
            "run",
            "--root",
            &fixture(),
            "--grace",
            "300ms",
            "--",
            "sh",
            "-c",
            script,
        ])
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    within(|| !matches!(child.try_wait(), Ok(None)));
    let status = finish(&mut child, &dir);
    assert_eq!(status.code(), Some(3), "{}", dir.read("stderr"));
    let worker: i32 = dir.read("worker-pid").trim().parse().unwrap();
    // Gone, or a zombie of another reaper's about to go: not running.
    assert!(state_of(worker).is_none() || state_of(worker) == Some('Z'));
}

/// The parent pid in /proc/<pid>/stat, and the state.
fn ppid_and_state(stat: &str) -> Option<(i32, char)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((fields.next()?.parse().ok()?, state))
}

/// kubemem's children, with their states.
fn children_of(pid: Pid) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some((ppid, state)) = ppid_and_state(&stat) {
            if ppid == pid.as_raw_nonzero().get() {
                out.push((child, state));
            }
        }
    }
    out
}

/// Run in the background of a subshell that exits at once: orphaned, it waits until it has
/// a new parent, records that parent and exits, leaving a zombie for kubemem to reap.
const ORPHAN: &str = "sleep 0.1; cut -d' ' -f4 /proc/$$/stat > orphan-ppid\n";

/// As a subreaper, kubemem inherits CMD's orphans and reaps them when they exit.
#[test]
fn reaps_orphans_as_a_subreaper() {
    let dir = TempDir::new("orphan");
    fs::write(dir.path("orphan.sh"), ORPHAN).unwrap();
    let script = format!("(sh orphan.sh &); {WAIT}");
    let mut k = Supervised::start(&dir, &["--root", &fixture()], &script);
    k.ready();
    eventually("the orphan to exit", || {
        dir.read("orphan-ppid").ends_with('\n')
    });
    let kubemem = k.pid().as_raw_nonzero().get();
    assert_eq!(dir.read("orphan-ppid").trim(), kubemem.to_string());
    eventually("no zombie under kubemem", || {
        let children = children_of(k.pid());
        children.len() == 1 && children.iter().all(|&(_, state)| state != 'Z')
    });
    k.stop();
    assert_eq!(k.code(), 0, "{}", dir.read("stderr"));
}

/// As PID 1 of a new PID namespace (root only: `unshare`), orphans come to kubemem
/// without a subreaper, and it reaps them.
#[test]
fn reaps_orphans_as_pid_1() {
    if !pid_namespaces() {
        return;
    }
    let dir = TempDir::new("pid1");
    fs::write(dir.path("orphan.sh"), ORPHAN).unwrap();
    let mut unshare = Command::new("unshare");
    unshare.args(["--pid", "--fork", "--mount-proc", bin()]);
    let script = format!("[ $$ = 2 ] || exit 99; (sh orphan.sh &); {WAIT}");
    let mut k = Supervised::start_in(&dir, unshare, &["--root", &fixture()], &script);
    k.ready();
    eventually("the orphan to exit", || {
        dir.read("orphan-ppid").ends_with('\n')
    });
    assert_eq!(dir.read("orphan-ppid"), "1\n");
    // kubemem is unshare's child; seen from here, CMD is its only child and no zombie.
    let kubemem = children_of(k.pid());
    assert_eq!(kubemem.len(), 1);
    let kubemem = Pid::from_raw(kubemem[0].0).unwrap();
    eventually("no zombie under kubemem", || {
        let children = children_of(kubemem);
        children.len() == 1 && children.iter().all(|&(_, state)| state != 'Z')
    });
    k.stop();
    assert_eq!(k.code(), 0, "{}", dir.read("stderr"));
}

#[test]
fn exec_failures_exit_like_a_shell() {
    let dir = TempDir::new("exec");
    let not_executable = dir.path("script");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let script = not_executable.to_str().unwrap();
    for (command, code, reason) in [
        ("/nonexistent/cmd", 127, "no such file or directory"),
        ("kubemem-no-such-command", 127, "no such file or directory"),
        (script, 126, "permission denied"),
        ("/", 126, "permission denied"),
    ] {
        let (got, _, stderr) = run(&["--root", &fixture()], &[command]);
        assert_eq!(got, code, "{command}: {stderr}");
        // The child's error line and kubemem's start line, in either order.
        let want = format!("level=error command={command} error=\"cannot execute: {reason}\"");
        let mut lines: Vec<&str> = stderr.lines().collect();
        lines.sort();
        assert_eq!(lines.len(), 2, "{stderr}");
        assert_eq!(lines[0], want);
        assert!(lines[1].starts_with("level=info action=start "), "{stderr}");
    }
}

#[test]
fn usage_errors_are_one_line_and_exit_3() {
    for args in [
        &["run"][..],
        &["run", "--"],
        &["run", "--interval", "0s", "--", "true"],
        &["run", "--interval", "5x", "--", "true"],
        &["run", "--grace", "30", "--", "true"],
        &["run", "--signal", "BOGUS", "--", "true"],
        &["--signal", "TERM"],
    ] {
        let out = Command::new(bin()).args(args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("kubemem: "), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn memory_that_cannot_be_measured_stops_or_not_per_on_error() {
    let (code, stdout, stderr) = run(&["--root", "/nonexistent"], &["sh", "-c", "exit 5"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.starts_with("level=error file=/nonexistent/proc/self/cgroup "));
    let args = ["--root", "/nonexistent", "--on-error", "pass"];
    let (code, stdout, stderr) = run(&args, &["sh", "-c", "exit 5"]);
    assert_eq!((code, stdout.as_str()), (5, ""), "{stderr}");
    assert!(stderr.contains("action=start") && stderr.contains("wakeup=none"));
}

/// A copy of the fixture whose `memory.current` the test rewrites in place (kubemem keeps
/// the file open). memory.max is 1073741824 and inactive_file 104857600, so with
/// --warning 85 --failure 95 these working sets are 83.3%, 88.0% and 102.0%; the values
/// have the same width, so that a rewrite is never read half done.
const HEALTHY: &str = "1000000000\n";
const WARNING: &str = "1050000000\n";
const FAILURE: &str = "1200000000\n";

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(dir: &TempDir) -> Tree {
        let root = dir.path("root");
        copy_tree(Path::new(&fixture()), &root);
        let tree = Tree { root };
        tree.set(HEALTHY);
        tree
    }

    /// `kubemem run --root <tree> --interval 20ms --logfile <dir>/log <args> -- sh -c
    /// <script>`.
    fn start<'d>(&self, dir: &'d TempDir, args: &[&str], script: &str) -> Supervised<'d> {
        let (root, log) = (self.root.to_str().unwrap(), dir.path("log"));
        let log = log.to_str().unwrap();
        let common = ["--root", root, "--interval", "20ms", "--logfile", log];
        Supervised::start(dir, &[&common[..], args].concat(), script)
    }

    fn set(&self, current: &str) {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(self.root.join("sys/fs/cgroup/memory.current"))
            .unwrap();
        f.rewind().unwrap();
        f.write_all(current.as_bytes()).unwrap();
    }
}

/// The log's lines as key=value maps (the fixture's paths have no spaces).
fn log_lines(dir: &TempDir) -> Vec<Vec<(String, String)>> {
    dir.read("log")
        .lines()
        .map(|line| {
            line.split(' ')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

/// The `level action signal` of each line with an `action`.
fn actions(dir: &TempDir) -> Vec<String> {
    let get = |l: &[(String, String)], key: &str| {
        l.iter()
            .find(|(k, _)| k == key)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    log_lines(dir)
        .iter()
        .map(|l| {
            let words = [get(l, "level"), get(l, "action"), get(l, "signal")];
            words.join(" ").trim_end().to_string()
        })
        .collect()
}

fn wait_for_actions(dir: &TempDir, want: &[&str]) {
    eventually(&format!("log actions {want:?}"), || actions(dir) == want);
}

#[test]
fn thresholds_signal_cmd_once_until_usage_falls_below_them() {
    let dir = TempDir::new("thresholds");
    let tree = Tree::new(&dir);
    let args = [
        "--warning",
        "85",
        "--failure",
        "95",
        "--warning-signal",
        "USR1",
        "--grace",
        "10m",
        "--verbose",
    ];
    let traps = "trap 'echo USR1 >> got' USR1; trap 'echo TERM >> got' TERM";
    let mut k = tree.start(&dir, &args, &format!("{traps}; {WAIT}"));
    k.ready();
    let mut want = vec!["info start"];
    wait_for_actions(&dir, &want);
    let mut step = |current, action, signals: &str| {
        tree.set(current);
        want.push(action);
        wait_for_actions(&dir, &want);
        eventually(&format!("CMD to have got {signals}"), || {
            let got = dir.read("got");
            got.split_whitespace().collect::<Vec<_>>().join(" ") == signals
        });
        want.clone()
    };
    step(WARNING, "warning signal USR1", "USR1");
    let want = step(FAILURE, "failure signal TERM", "USR1 TERM");
    // Staying above sends nothing more (a pause of many intervals, then the same state).
    sleep(Duration::from_millis(300));
    assert_eq!(actions(&dir), want);
    assert_eq!(dir.read("got"), "USR1\nTERM\n");
    // Below failure, above warning: failure re-arms and fires again; warning does not.
    step(WARNING, "warning rearm", "USR1 TERM");
    step(FAILURE, "failure signal TERM", "USR1 TERM TERM");
    // Below both: both re-arm.
    step(HEALTHY, "ok rearm", "USR1 TERM TERM");
    step(WARNING, "warning signal USR1", "USR1 TERM TERM USR1");

    // The lines carry the probe's keys and the target.
    let lines = log_lines(&dir);
    let line = &lines[2];
    let pid = k.pid().as_raw_nonzero().get();
    for (key, value) in [
        ("level", "failure"),
        ("used", "1095142400"),
        ("limit", "1073741824"),
        ("percent", "101.9"),
        ("warning", "85%"),
        ("failure", "95%"),
        ("usage", "working-set"),
        ("cgroup", "v2"),
        ("limit_source", "cgroup"),
        ("action", "signal"),
        ("signal", "TERM"),
    ] {
        assert!(
            line.contains(&(key.to_string(), value.to_string())),
            "{key}={value} in {line:?}"
        );
    }
    let cmd_pid: i32 = line
        .iter()
        .find(|(k, _)| k == "pid")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_ne!(cmd_pid, pid, "the pid is CMD's, not kubemem's");
    // Failure lines also go to standard error (the probe's go to standard output): kubemem
    // run writes nothing into CMD's output.
    assert_eq!(dir.read("stdout"), "");
    let stderr = dir.read("stderr");
    let failures = stderr.lines().filter(|l| l.starts_with("level=failure "));
    assert_eq!(failures.count(), 2, "{stderr}");

    k.stop();
    assert_eq!(k.code(), 0, "{}", dir.read("stderr"));
    // No error of kubemem's (the shell reports its `sleep`s that the signals ended).
    assert!(
        !dir.read("stderr").contains("level=error"),
        "{}",
        dir.read("stderr")
    );
}

#[test]
fn sigkill_after_the_grace_period_when_cmd_ignores_the_signal() {
    let dir = TempDir::new("grace");
    let tree = Tree::new(&dir);
    let script = format!("trap '' TERM; {WAIT}");
    let mut k = tree.start(&dir, &["--grace", "200ms"], &script);
    k.ready();
    tree.set(FAILURE);
    // Straight from healthy to failure: the warning (no --warning-signal) fires as well.
    assert_warned_signalled_killed(&mut k, &dir);
}

/// CMD, which ignores SIGTERM, went past both thresholds at once: kubemem logged the warning,
/// sent SIGTERM, and SIGKILL the grace period later, and exits as CMD did (128 + 9).
fn assert_warned_signalled_killed(k: &mut Supervised<'_>, dir: &TempDir) {
    assert_eq!(k.code(), 128 + 9, "{}", dir.read("stderr"));
    let want = [
        "info start",
        "warning log",
        "failure signal TERM",
        "failure kill KILL",
    ];
    assert_eq!(actions(dir), want);
}

#[test]
fn annotations_set_the_thresholds_and_the_termination_log_says_why_cmd_ended() {
    let dir = TempDir::new("annotations");
    let tree = Tree::new(&dir);
    // 36.8% at first, below every threshold; then HEALTHY (83.3%), above both thresholds of
    // the file, which override the flags'.
    tree.set("0500000000\n");
    let annotations = dir.path("annotations");
    fs::write(
        &annotations,
        "kubemem.io/failure=\"80\"\nkubemem.io/warning=\"50%\"",
    )
    .unwrap();
    let log = dir.path("termination-log");
    fs::write(&log, "an older message, longer than nothing").unwrap();
    let args = [
        "--warning",
        "85",
        "--failure",
        "95",
        "--grace",
        "200ms",
        "--annotations",
        annotations.to_str().unwrap(),
        "--termination-log",
        log.to_str().unwrap(),
    ];
    let mut k = tree.start(&dir, &args, &format!("trap '' TERM; {WAIT}"));
    k.ready();
    tree.set(HEALTHY);
    assert_warned_signalled_killed(&mut k, &dir);
    let lines = dir.read("log");
    let last = lines.lines().last().unwrap();
    assert!(last.contains(" warning=50% failure=80% "), "{last}");
    // The line of the SIGKILL replaced that of the SIGTERM, without its newline.
    assert_eq!(dir.read("termination-log"), last);
}

#[test]
fn a_malformed_annotations_file_stops_run_before_cmd() {
    let dir = TempDir::new("bad-annotations");
    let annotations = dir.path("annotations");
    fs::write(&annotations, "kubemem.io/failure=\"95\nx=\"1\"").unwrap();
    let args = ["--annotations", annotations.to_str().unwrap()];
    let (code, stdout, stderr) = run(&args, &["sh", "-c", "echo started"]);
    assert_eq!((code, stdout.as_str()), (3, ""), "{stderr}");
    let want = format!(
        "level=error file={} line=1 error=\"value without its closing double quote\"\n",
        annotations.display()
    );
    assert_eq!(stderr, want);
}
