//! The recorded working-set traces (benches/trend/traces/, recorded by record.sh) and their
//! replay through an estimator the way kubemem samples: `kubemem run` every 100 ms, the probe
//! once a second. Shared by benches/trend.rs (every estimator, a table) and
//! tests/trend_traces.rs (the shipped one, asserted).

use kubemem::trend::{self, Trend};

/// One sample: `ms` since the recording began, the working set and the limit in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ms: u64,
    pub used: u64,
    pub limit: u64,
}

pub struct Trace {
    pub name: String,
    pub samples: Vec<Sample>,
    /// A leak's: when it would have reached the limit (`# limit_at_ms=` in the trace).
    pub limit_at: Option<u64>,
}

impl Trace {
    /// The lead the issue's test of this workload uses: 3 s for the leaks, 10 s for the flat
    /// line, 5 s for the sawtooth, 3 s for the rest.
    pub fn issue_lead(&self) -> u64 {
        if self.name.starts_with("flat") {
            10_000
        } else if self.name.starts_with("saw-") {
            5_000
        } else {
            3_000
        }
    }
}

/// Every trace of `dir` (default benches/trend/traces), by name.
pub fn load(dir: Option<&str>) -> Vec<Trace> {
    let dir = dir.unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/trend/traces"));
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("the traces' directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let mut samples = Vec::new();
            let mut limit_at = None;
            for line in text.lines() {
                if let Some(c) = line.strip_prefix('#') {
                    if let Some(v) = c.trim().strip_prefix("limit_at_ms=") {
                        limit_at = Some(v.parse().unwrap());
                    }
                    continue;
                }
                let f: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
                samples.push(Sample {
                    ms: f[0],
                    used: f[1],
                    limit: f[2],
                });
            }
            Trace {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                samples,
                limit_at,
            }
        })
        .collect()
}

/// A growth-rate estimator: fed every sample it is shown, asked for the time to the limit.
pub trait Estimator {
    fn push(&mut self, at: u64, used: u64);
    fn eta(&self, used: u64, limit: u64) -> Option<u64>;
}

/// What kubemem ships (src/trend.rs).
pub struct Shipped(pub Trend);

impl Estimator for Shipped {
    fn push(&mut self, at: u64, used: u64) {
        self.0.push(at, used);
    }
    fn eta(&self, used: u64, limit: u64) -> Option<u64> {
        self.0.eta(used, limit)
    }
}

/// The cadences replayed: every sample (`kubemem run`'s 100 ms interval; the next look is an
/// interval away) or every 10th (the probe once a second; the next look is as far as the
/// time since the previous one), the latter from each of the 10 possible first samples.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Run100ms,
    Probe1s,
}

impl Cadence {
    pub fn phases(self) -> std::ops::Range<usize> {
        match self {
            Cadence::Run100ms => 0..1,
            Cadence::Probe1s => 0..10,
        }
    }
}

/// The times (ms) at which `due` says to act, replaying `trace` from `phase` at `cadence`
/// through a fresh `est`.
pub fn replay(
    trace: &Trace,
    est: &mut dyn Estimator,
    lead: u64,
    cadence: Cadence,
    phase: usize,
) -> Vec<u64> {
    let step = if cadence == Cadence::Run100ms { 1 } else { 10 };
    let mut prev: Option<u64> = None;
    let mut fired = Vec::new();
    for s in trace.samples.iter().skip(phase).step_by(step) {
        est.push(s.ms, s.used);
        let next = match cadence {
            Cadence::Run100ms => 100,
            Cadence::Probe1s => prev.map_or(0, |p| s.ms - p),
        };
        prev = Some(s.ms);
        if trend::due(est.eta(s.used, s.limit), lead, next) {
            fired.push(s.ms);
        }
    }
    fired
}
