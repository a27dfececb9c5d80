//! `kubemem run`: start CMD, stay its parent, and act on its memory before the OOM killer.
//!
//! [`run`] reads like tini's `main`: block the signals, open the sampler, become a
//! subreaper, spawn CMD, set up the kernel wake-ups, then one loop. The loop waits in a
//! single `poll` for a signal (read from a signalfd: no handler ever runs), a kernel wake-up
//! or the time of the next sample, whichever comes first; it forwards signals, reaps
//! zombies, samples and acts on the thresholds, and returns CMD's status once CMD has
//! exited.
//!
//! Before the spawn kubemem may fail and exit: nothing runs yet. After it, kubemem never
//! exits on an error of its own (catatonit's rule: a PID 1 that exits takes the container
//! with it); it logs the error, once per kind, and keeps supervising.
//!
//! Nothing in the loop allocates: samples are read into stack buffers and lines are built
//! by `report`.

use core::ffi::c_int;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::decide::{decide, Level};
use crate::error::{Error, Exit};
use crate::locate::{self, Location};
use crate::measure::{Sample, Sampler};
use crate::report::{self, Action, Outlook};
use crate::sys::{self, Argv};
use crate::trend::{self, Trend};
use crate::wakeup::{Levels, Wakeup};
use crate::Config;

/// What `kubemem run` needs besides the probe's [`Config`].
pub struct Options<'a> {
    /// Sent to CMD at the failure threshold.
    pub signal: Signal,
    /// Sent to CMD at the warning threshold.
    pub warning_signal: Option<Signal>,
    /// From `signal` to SIGKILL, in milliseconds.
    pub grace_ms: u64,
    /// Between samples, in milliseconds.
    pub interval_ms: u64,
    /// CMD and its arguments.
    pub argv: Argv<'a>,
}

/// The job-control signals: with a terminal, kubemem suspends CMD's group and itself on
/// them (see [`Supervisor::forward`]).
const JOB_CONTROL: [Signal; 3] = [Signal::TSTP, Signal::TTIN, Signal::TTOU];

/// Runs CMD under supervision and returns the exit status for kubemem: CMD's (128 + N when
/// signal N ended it), or one of [`Exit`]'s when CMD could not be started.
pub fn run(cfg: &Config<'_>, opts: &Options<'_>) -> u8 {
    // The pod's annotations are read once, before CMD starts.
    let cfg = &match crate::annotated(cfg) {
        Ok(cfg) => cfg,
        Err(exit) => return exit as u8,
    };
    // SIGCHLD inherited as ignored would have the kernel reap CMD and lose its status.
    sys::default_disposition(Signal::CHILD);
    let signals = match sys::block_all_signals() {
        Ok(fd) => fd,
        Err(e) => return cannot_start(cfg, "signalfd", e),
    };
    let mut loc = Location::new();
    let sampler = match open_sampler(cfg, &mut loc) {
        Ok(s) => Some(s),
        Err(e) => match crate::cannot_measure(cfg, &loc, e) {
            Exit::Ok => None,
            exit => return exit as u8,
        },
    };
    // The OOM kills before CMD are history; the line is for kills while it lives.
    let oom_kills = sampler
        .as_ref()
        .and_then(Sampler::oom_events)
        .map_or(0, |e| e.oom_kill);
    // Orphans of CMD's are re-parented to PID 1; below it, to the nearest subreaper.
    let me = rustix::process::getpid();
    if me != Pid::INIT {
        if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
            report::emit_error(cfg, &report::run_error(cfg, "subreaper", None, e));
        }
    }
    let program = opts.argv.program();
    // The child takes the terminal's foreground when standard input is one (see spawn).
    let tty = rustix::termios::isatty(rustix::stdio::stdin());
    let child = match sys::spawn(&opts.argv, |e| {
        report::emit_error(cfg, &report::exec_error(cfg, program, e));
        match e {
            Errno::NOENT => Exit::NotFound as u8,
            _ => Exit::CannotExecute as u8,
        }
    }) {
        Ok(pid) => pid,
        Err(e) => return cannot_start(cfg, "spawn", e),
    };

    // From here on kubemem exits only with CMD's status. The wake-ups are set up only now:
    // each v1 registration waits for an RCU grace period (about 10 ms), CMD need not.
    let wakeup = sampler
        .as_ref()
        .map(|s| Wakeup::open(&loc, s, levels(cfg, s)));
    let wakeup_name = wakeup.as_ref().map_or("none", Wakeup::name);
    report::emit(cfg, &report::started(cfg, child, wakeup_name), Level::Ok);
    Supervisor {
        cfg,
        opts,
        loc: &loc,
        sampler,
        wakeup,
        signals,
        child,
        tty,
        status: None,
        reached: Reached::default(),
        last: None,
        trend: Trend::new(cfg.lead.map_or(0, |l| l.ms)),
        outlook: Outlook::default(),
        oom_kills,
        kill_at: None,
        next_sample: 0,
        logged: 0,
    }
    .supervise()
}

fn cannot_start(cfg: &Config<'_>, what: &str, e: Errno) -> u8 {
    report::emit_error(cfg, &report::run_error(cfg, what, None, e));
    Exit::CannotStart as u8
}

fn open_sampler(cfg: &Config<'_>, loc: &mut Location) -> Result<Sampler, Error> {
    match cfg.cgroup {
        Some(dir) => locate::given(dir, loc)?,
        None => locate::locate(cfg.root, loc)?,
    }
    Sampler::open(cfg.root, loc, cfg.usage)
}

/// The thresholds in bytes of the limit as it is now, for v1 notifications (none when
/// memory cannot be read yet).
fn levels(cfg: &Config<'_>, sampler: &Sampler) -> Option<Levels> {
    let limit = sampler.sample(|_, _| false).ok()?.limit;
    Some(Levels {
        thresholds: [cfg.warning.bytes(limit), cfg.failure.bytes(limit)],
        limit,
    })
}

/// Which thresholds the last sample reached. A threshold fires when usage reaches it and
/// not again until usage has fallen below it (and so re-armed it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub warning: bool,
    pub failure: bool,
}

/// What a sample changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    pub warning: bool,
    pub failure: bool,
    /// Usage fell below a threshold that had fired.
    pub rearmed: bool,
}

impl Reached {
    /// Records a sample that reaches `now`, and says what fires.
    pub fn update(&mut self, now: Reached) -> Fired {
        let fired = Fired {
            warning: now.warning && !self.warning,
            failure: now.failure && !self.failure,
            rearmed: (self.warning && !now.warning) || (self.failure && !now.failure),
        };
        *self = now;
        fired
    }
}

/// Kinds of errors, each logged once (file errors again after a good sample): one bit per
/// [`crate::error::File`], then these.
const WAIT_ERROR: u32 = 1 << 20;
const SIGNALFD_ERROR: u32 = 1 << 21;
const POLL_ERROR: u32 = 1 << 22;
const FILE_ERRORS: u32 = (1 << 20) - 1;

struct Supervisor<'s> {
    cfg: &'s Config<'s>,
    opts: &'s Options<'s>,
    loc: &'s Location,
    sampler: Option<Sampler>,
    wakeup: Option<Wakeup>,
    signals: OwnedFd,
    child: Pid,
    /// CMD has the terminal: job-control signals suspend its group and kubemem.
    tty: bool,
    /// CMD's exit status, once reaped.
    status: Option<u8>,
    reached: Reached,
    /// The last good sample, for the line of a SIGKILL.
    last: Option<Sample>,
    /// The working set's recent samples, for `--lead` and `eta`.
    trend: Trend,
    /// What the last sample's lines say besides it.
    outlook: Outlook,
    /// The OOM kills counted so far in our cgroup.
    oom_kills: u64,
    /// When to SIGKILL CMD (monotonic milliseconds), after `--signal`.
    kill_at: Option<u64>,
    /// When to sample next (monotonic milliseconds).
    next_sample: u64,
    /// Kinds of errors logged (see [`WAIT_ERROR`]).
    logged: u32,
}

impl Supervisor<'_> {
    fn supervise(mut self) -> u8 {
        loop {
            if let Some(status) = self.status {
                self.end_group();
                return status;
            }
            let now = now_ms();
            if self.sampler.is_some() && now >= self.next_sample {
                self.sample(now);
                self.next_sample = now.saturating_add(self.opts.interval_ms);
            }
            if self.kill_at.is_some_and(|at| now >= at) {
                self.kill();
            }
            self.wait(now);
        }
    }

    /// Waits for a signal, a kernel wake-up, the next sample or the SIGKILL, and handles
    /// the first two.
    fn wait(&mut self, now: u64) {
        let due = [
            self.sampler.as_ref().map(|_| self.next_sample),
            self.kill_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = due.map(|at| timespec(at.saturating_sub(now)));
        // The wake-ups' slots; an empty one polls the signalfd for nothing.
        let wake = |i| {
            self.wakeup
                .as_ref()
                .and_then(|w| w.poll_fd(i))
                .unwrap_or_else(|| PollFd::new(&self.signals, PollFlags::empty()))
        };
        let mut fds = [PollFd::new(&self.signals, PollFlags::IN), wake(0), wake(1)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                self.log_once(POLL_ERROR, "poll", e);
                // Never spin on a failing poll: wait out the timeout without descriptors.
                let _ = poll(&mut [], timeout.as_ref());
                return;
            }
        }
        let revents = fds.map(|fd| fd.revents());
        if !revents[0].is_empty() {
            self.on_signals();
        }
        if let Some(w) = &mut self.wakeup {
            // Both, so that each re-arms.
            if w.fired(0, revents[1]) | w.fired(1, revents[2]) {
                self.next_sample = 0;
            }
        }
    }

    /// Forwards the signals waiting in the signalfd, in the order they came, and reaps on
    /// SIGCHLD. Every signal but SIGCHLD is forwarded (KILL and STOP never get here: they
    /// cannot be caught).
    fn on_signals(&mut self) {
        let mut batch = [0; sys::SIGNAL_BATCH];
        let mut child_exited = false;
        loop {
            let n = match sys::read_signals(self.signals.as_fd(), &mut batch) {
                Ok(n) => n,
                Err(e) => {
                    self.log_once(SIGNALFD_ERROR, "signalfd", e);
                    0
                }
            };
            for &signo in &batch[..n] {
                if signo == Signal::CHILD.as_raw() {
                    child_exited = true;
                } else {
                    self.forward(signo);
                }
            }
            if n < batch.len() {
                break;
            }
        }
        if child_exited {
            self.reap();
        }
    }

    /// Forwards `signo` to CMD's group. A job-control signal (TSTP, TTIN, TTOU) when CMD has
    /// the terminal suspends CMD's group and then kubemem, as dumb-init does: SIGSTOP to the
    /// group (a TSTP could be caught, or dropped by the kernel for an orphaned group), then to
    /// itself, so the shell that started kubemem sees its job stop; `fg` (SIGCONT, which the
    /// kernel delivers to a stopped process even when blocked, then forwarded) resumes both.
    /// As PID 1 the kernel does not stop kubemem; CMD's group still is. Without a terminal
    /// they are forwarded like any other signal.
    fn forward(&mut self, signo: c_int) {
        if self.tty && JOB_CONTROL.iter().any(|s| s.as_raw() == signo) {
            self.send(Signal::STOP);
            let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::STOP);
        } else {
            self.send_raw(signo);
        }
    }

    /// CMD has exited: SIGTERM to what is left of its process group, so that a worker it
    /// left behind can finish what it was writing (as dumb-init does), then wait for that
    /// group to be gone, at most `--grace`, forwarding signals and reaping, and SIGKILL what
    /// is still there (then wait for that too, at most a second). As PID 1 the kernel would kill the rest at kubemem's exit anyway;
    /// below a subreaper, the group would otherwise outlive kubemem as orphans.
    fn end_group(&mut self) {
        let group = -self.child.as_raw_nonzero().get();
        if sys::kill(group, Signal::TERM.as_raw()).is_err() {
            return; // ESRCH: nothing is left of the group.
        }
        let mut deadline = now_ms().saturating_add(self.opts.grace_ms);
        let mut killed = false;
        loop {
            self.reap();
            if sys::kill(group, 0) == Err(Errno::SRCH) {
                return;
            }
            let now = now_ms();
            if now >= deadline {
                if killed {
                    return; // Not gone a second after SIGKILL: nothing more kubemem can do.
                }
                // SIGKILL takes effect a moment later: wait (reaping) for the group to go,
                // so that none of it outlives kubemem.
                let _ = sys::kill(group, Signal::KILL.as_raw());
                killed = true;
                deadline = now.saturating_add(1000);
            }
            let mut fds = [PollFd::new(&self.signals, PollFlags::IN)];
            // At most 100 ms: the group may end by exits that are not kubemem's children
            // (no SIGCHLD), which only `kill(-group, 0)` sees.
            let polled = poll(&mut fds, Some(&timespec((deadline - now).min(100))));
            let ready = !fds[0].revents().is_empty();
            match polled {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => self.log_once(POLL_ERROR, "poll", e),
            }
            if ready {
                self.on_signals();
            }
        }
    }

    /// Reaps every child that has exited: CMD (its status is kubemem's) and the orphans
    /// re-parented to us.
    fn reap(&mut self) {
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if pid == self.child => {
                    self.status = self.status.or(exit_status(status));
                }
                Ok(Some(_)) | Err(Errno::INTR) => {}
                Ok(None) | Err(Errno::CHILD) => return,
                Err(e) => return self.log_once(WAIT_ERROR, "wait", e),
            }
        }
    }

    fn sample(&mut self, now: u64) {
        let Some(sampler) = &self.sampler else {
            return;
        };
        let (warning, failure) = (self.cfg.warning, self.cfg.failure);
        // The working set at every sample (memory.stat too), not raw usage even when it is
        // below both thresholds: the trend must not follow page cache.
        let sampled = sampler.sample(|_, _| true);
        let kills = sampler.oom_events().map(|e| e.oom_kill);
        let s = match sampled {
            Ok(s) => s,
            Err(e) => {
                if self.logged & (1 << e.file as u32) == 0 {
                    self.logged |= 1 << e.file as u32;
                    report::emit_error(self.cfg, &report::error(self.cfg, self.loc, e));
                }
                return;
            }
        };
        self.logged &= !FILE_ERRORS;
        self.last = Some(s);
        self.trend.push(now, s.used);
        let eta = self.trend.eta(s.used, s.limit);
        // The next sample is an interval away (sooner only on a kernel wake-up).
        let due = (self.cfg.lead).is_some_and(|l| trend::due(eta, l.ms, self.opts.interval_ms));
        let kills = kills.unwrap_or(self.oom_kills);
        self.outlook = Outlook {
            eta_ms: eta,
            oom_kills: kills,
        };
        if kills > self.oom_kills && self.status.is_none() {
            // A process of CMD's (a worker, or CMD's child) was killed and CMD lives on.
            let level = decide(s.used, s.limit, warning, failure).max(Level::Warning);
            let line = report::oom_kill(self.cfg, self.loc, &s, level, &self.outlook);
            report::emit(self.cfg, &line, level);
        }
        self.oom_kills = kills;
        let fired = self.reached.update(Reached {
            warning: warning.reached(s.used, s.limit),
            failure: failure.reached(s.used, s.limit) || due,
        });
        if fired.warning {
            self.act(&s, Level::Warning, self.opts.warning_signal);
        }
        if fired.failure {
            self.act(&s, Level::Failure, Some(self.opts.signal));
            // A second failure within the grace period keeps the first deadline.
            if self.kill_at.is_none() {
                self.kill_at = Some(now.saturating_add(self.opts.grace_ms));
            }
        }
        if fired.rearmed && self.cfg.verbose {
            let level = decide(s.used, s.limit, warning, failure);
            self.log(&s, level, Action::Rearm);
        }
    }

    /// Logs a threshold that fired and sends its signal, if any.
    fn act(&mut self, s: &Sample, level: Level, signal: Option<Signal>) {
        match signal {
            Some(sig) => {
                self.log(s, level, Action::Signal(sig));
                self.send(sig);
            }
            None => self.log(s, level, Action::Log),
        }
    }

    /// SIGKILL the grace period after `--signal`, if CMD is still there.
    fn kill(&mut self) {
        self.kill_at = None;
        if self.status.is_some() {
            return;
        }
        if let Some(s) = self.last {
            self.log(&s, Level::Failure, Action::Kill);
        }
        self.send(Signal::KILL);
    }

    /// Logs what a sample made kubemem do. When it signals CMD to end it (`--signal` at the
    /// failure threshold, then SIGKILL), the line also replaces the termination log, so the
    /// container's last state says why it ended.
    fn log(&self, s: &Sample, level: Level, action: Action) {
        let line = report::action(
            self.cfg,
            self.loc,
            s,
            level,
            &self.outlook,
            action,
            self.child,
        );
        report::emit(self.cfg, &line, level);
        if level == Level::Failure && action.signal().is_some() {
            report::terminate(self.cfg, &line);
        }
    }

    /// Sends `sig` to CMD's group (see [`Supervisor::send_raw`]).
    fn send(&self, sig: Signal) {
        self.send_raw(sig.as_raw());
    }

    /// Sends signal number `signo` to the process group CMD leads, so that its own children
    /// see it too, or to CMD alone when it left that group; once CMD has exited, to what is
    /// left of its group. A target already gone is no error.
    fn send_raw(&self, signo: c_int) {
        let pid = self.child.as_raw_nonzero().get();
        let leads =
            self.status.is_some() || rustix::process::getpgid(Some(self.child)) == Ok(self.child);
        match sys::kill(if leads { -pid } else { pid }, signo) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) => {
                let line = report::run_error(self.cfg, "signal", Some((signo, self.child)), e);
                report::emit_error(self.cfg, &line);
            }
        }
    }

    fn log_once(&mut self, kind: u32, what: &str, e: Errno) {
        if self.logged & kind == 0 {
            self.logged |= kind;
            report::emit_error(self.cfg, &report::run_error(self.cfg, what, None, e));
        }
    }
}

/// A shell's `$?` for a child that ended: its exit code, or 128 + the signal that killed it.
fn exit_status(status: WaitStatus) -> Option<u8> {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => Some(code as u8),
        (_, Some(sig)) => Some(128u8.wrapping_add(sig as u8)),
        _ => None,
    }
}

/// The monotonic clock in milliseconds: immune to the wall clock being set.
fn now_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(t.tv_nsec as u64 / 1_000_000)
}

fn timespec(ms: u64) -> Timespec {
    Timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reached(warning: bool, failure: bool) -> Reached {
        Reached { warning, failure }
    }

    #[test]
    fn thresholds_fire_once_until_usage_falls_below_them() {
        let mut r = Reached::default();
        let fired = |w, f, rearmed| Fired {
            warning: w,
            failure: f,
            rearmed,
        };
        assert_eq!(r.update(reached(false, false)), fired(false, false, false));
        assert_eq!(r.update(reached(true, false)), fired(true, false, false));
        assert_eq!(r.update(reached(true, false)), fired(false, false, false));
        assert_eq!(r.update(reached(true, true)), fired(false, true, false));
        assert_eq!(r.update(reached(true, true)), fired(false, false, false));
        // Below failure, still above warning: failure re-arms, warning does not fire again.
        assert_eq!(r.update(reached(true, false)), fired(false, false, true));
        assert_eq!(r.update(reached(true, true)), fired(false, true, false));
        assert_eq!(r.update(reached(false, false)), fired(false, false, true));
        // Straight from below both to above both: both fire.
        assert_eq!(r.update(reached(true, true)), fired(true, true, false));
    }
}
