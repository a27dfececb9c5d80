//! `cargo bench --bench trend`: the recorded working-set traces (benches/trend/traces/, real
//! workloads in a 256 MiB cgroup v1, see record.sh) replayed through the estimator kubemem
//! ships (src/trend.rs) and through the alternatives it was chosen over, which live only
//! here. Prints a markdown table: per trace, lead and cadence, the lead each estimator left
//! before a leak reached the limit, or the signals it gave where there must be none.
//!
//! Every estimator sees the same window W = max(lead, 6 s) and answers only once its samples
//! span 2/3 of W, so that they differ in the slope alone:
//! - least squares: the slope of the line fitted to the window's samples;
//! - Theil-Sen: the median of the slopes between every two of the window's samples;
//! - two halves: the rise from the first half's floor (lowest sample) to the second's;
//! - three floors: the shipped floors of three thirds without the check of their middles;
//! - EWMA: the derivative between samples, averaged with a time constant of W/2 (the mean
//!   age of a sample in the window).
//!
//! And two candidate changes to the shipped estimator, for the sawtooth after a start-up
//! (the first third holds the start from 0, so its floor and middle are low whatever follows):
//! - A: as shipped, and each rise of the middles is at least half the floors' rise;
//! - B: as shipped, but the rate is the slowest of the two floor and the two middle rises.

use std::collections::VecDeque;

use kubemem::trend::{Point, Trend, MIN_WINDOW_MS};

#[path = "trend/replay.rs"]
mod replay;
use replay::{Cadence, Estimator, Shipped, Trace};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    LeastSquares,
    TheilSen,
    TwoHalves,
    ThreeFloors,
    Ewma,
    MiddlesHalf,
    SlowestOfFour,
}

const KINDS: [(Kind, &str); 7] = [
    (Kind::LeastSquares, "least squares"),
    (Kind::TheilSen, "Theil-Sen"),
    (Kind::TwoHalves, "two halves"),
    (Kind::ThreeFloors, "3 floors, no middles"),
    (Kind::Ewma, "EWMA of d/dt"),
    (Kind::MiddlesHalf, "*cand. A*"),
    (Kind::SlowestOfFour, "*cand. B*"),
];

/// A rejected estimator. The floor-based ones use the shipped trend's points (the same
/// lows, merged the same way); the others the raw samples of the window.
struct Alt {
    kind: Kind,
    window: u64,
    points: Trend,
    raw: VecDeque<(u64, u64)>,
    /// EWMA: the averaged derivative (bytes/ms), the previous sample, the first one's time.
    ewma: f64,
    prev: Option<(u64, u64)>,
    start: Option<u64>,
}

impl Alt {
    fn new(kind: Kind, lead: u64) -> Alt {
        Alt {
            kind,
            window: lead.max(MIN_WINDOW_MS),
            points: Trend::new(lead),
            raw: VecDeque::new(),
            ewma: 0.0,
            prev: None,
            start: None,
        }
    }

    /// Bytes per ms, when the estimator sees growth.
    fn rate(&self) -> Option<f64> {
        let now = self.prev?.0;
        let enough = |first: u64| (now - first) * 3 >= self.window * 2;
        let r = match self.kind {
            Kind::LeastSquares | Kind::TheilSen => {
                if !enough(self.raw.front()?.0) {
                    return None;
                }
                let pts: Vec<(f64, f64)> = self
                    .raw
                    .iter()
                    .map(|&(t, u)| (t as f64, u as f64))
                    .collect();
                if self.kind == Kind::LeastSquares {
                    least_squares(&pts)
                } else {
                    theil_sen(&pts)
                }
            }
            Kind::TwoHalves | Kind::ThreeFloors | Kind::MiddlesHalf | Kind::SlowestOfFour => {
                let pts = self.points.points();
                let first = pts.first()?.at;
                if !enough(first) {
                    return None;
                }
                let span = now - first;
                let floor = |from: u64, to: u64| {
                    pts.iter().filter(|p| p.at >= from && p.at < to).fold(
                        None,
                        |low: Option<Point>, p| match low {
                            Some(l) if l.low <= p.low => Some(l),
                            _ => Some(*p),
                        },
                    )
                };
                let slope = |a: Point, b: Point| {
                    (b.low as f64 - a.low as f64) / (b.at as f64 - a.at as f64)
                };
                if self.kind == Kind::TwoHalves {
                    let (f1, f2) = (
                        floor(first, first + span / 2)?,
                        floor(first + span / 2, u64::MAX)?,
                    );
                    if f2.low <= f1.low {
                        return None;
                    }
                    slope(f1, f2)
                } else {
                    let (b1, b2) = (first + span / 3, first + span / 3 * 2);
                    let (f1, f2, f3) = (floor(first, b1)?, floor(b1, b2)?, floor(b2, u64::MAX)?);
                    if !(f1.low < f2.low && f2.low < f3.low) {
                        return None;
                    }
                    let r = slope(f1, f2).min(slope(f2, f3));
                    if self.kind == Kind::ThreeFloors {
                        r
                    } else {
                        let (m1, m2, m3) = (
                            median(pts, first, b1) as f64,
                            median(pts, b1, b2) as f64,
                            median(pts, b2, u64::MAX) as f64,
                        );
                        if !(m1 < m2 && m2 < m3) {
                            return None;
                        }
                        let (d1, d2) = ((f2.low - f1.low) as f64, (f3.low - f2.low) as f64);
                        if self.kind == Kind::MiddlesHalf {
                            if m2 - m1 < d1 / 2.0 || m3 - m2 < d2 / 2.0 {
                                return None;
                            }
                            r
                        } else {
                            // the middles are a third of the span apart
                            let third = (span / 3) as f64;
                            r.min((m2 - m1) / third).min((m3 - m2) / third)
                        }
                    }
                }
            }
            Kind::Ewma => {
                if !enough(self.start?) {
                    return None;
                }
                self.ewma
            }
        };
        (r > 0.0).then_some(r)
    }
}

impl Estimator for Alt {
    fn push(&mut self, at: u64, used: u64) {
        self.points.push(at, used);
        self.raw.push_back((at, used));
        while self.raw.front().is_some_and(|&(t, _)| t + self.window < at) {
            self.raw.pop_front();
        }
        if let Some((t0, u0)) = self.prev {
            let dt = (at - t0) as f64;
            if dt > 0.0 {
                let d = (used as f64 - u0 as f64) / dt;
                let alpha = dt / (self.window as f64 / 2.0 + dt);
                self.ewma += alpha * (d - self.ewma);
            }
        }
        self.prev = Some((at, used));
        self.start.get_or_insert(at);
    }

    fn eta(&self, used: u64, limit: u64) -> Option<u64> {
        let r = self.rate()?;
        Some((limit.saturating_sub(used) as f64 / r) as u64)
    }
}

/// The upper median of the lows in `[from, to)`, as src/trend.rs takes it.
fn median(pts: &[Point], from: u64, to: u64) -> u64 {
    let mut lows: Vec<u64> = pts
        .iter()
        .filter(|p| p.at >= from && p.at < to)
        .map(|p| p.low)
        .collect();
    lows.sort_unstable();
    lows[lows.len() / 2]
}

fn least_squares(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mt, mu) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), &(t, u)| (a + t / n, b + u / n));
    let (num, den) = pts.iter().fold((0.0, 0.0), |(a, b), &(t, u)| {
        (a + (t - mt) * (u - mu), b + (t - mt) * (t - mt))
    });
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

fn theil_sen(pts: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    if slopes.is_empty() {
        return 0.0;
    }
    slopes.sort_by(f64::total_cmp);
    slopes[slopes.len() / 2]
}

/// One cell: for a leak the lead left (ms before the limit) at the first signal, the least
/// of the phases (and the most, when they differ), with ✗ when it is short of the lead (less
/// 100 ms at 100 ms: the ripple of the page counters); elsewhere "–" when no phase signalled,
/// else ✗ with the number of samples that would have signalled and the first one's time.
fn cell(
    trace: &Trace,
    lead: u64,
    cadence: Cadence,
    make: &dyn Fn() -> Box<dyn Estimator>,
) -> String {
    let runs: Vec<Vec<u64>> = cadence
        .phases()
        .map(|ph| replay::replay(trace, &mut *make(), lead, cadence, ph))
        .collect();
    match trace.limit_at {
        Some(limit_at) => {
            let left: Vec<Option<i64>> = runs
                .iter()
                .map(|f| f.first().map(|&at| limit_at as i64 - at as i64))
                .collect();
            if left.iter().any(Option::is_none) {
                return "✗ none".into();
            }
            let left: Vec<i64> = left.into_iter().flatten().collect();
            let (lo, hi) = (*left.iter().min().unwrap(), *left.iter().max().unwrap());
            let need = if cadence == Cadence::Run100ms {
                lead as i64 - 100
            } else {
                lead as i64
            };
            let mark = if lo < need { "✗ " } else { "" };
            if hi - lo >= 100 {
                format!(
                    "{mark}{:.1}–{:.1} s",
                    lo as f64 / 1000.0,
                    hi as f64 / 1000.0
                )
            } else {
                format!("{mark}{:.1} s", lo as f64 / 1000.0)
            }
        }
        None => {
            let n: usize = runs.iter().map(Vec::len).sum();
            match runs.iter().filter_map(|f| f.first()).min() {
                None => "–".into(),
                Some(&first) => format!("✗ {n} from {:.1} s", first as f64 / 1000.0),
            }
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: the table either way.
    // TREND_TRACES=DIR: other recordings of record.c (e.g. the same workload again).
    let dir = std::env::var("TREND_TRACES").ok();
    let traces = replay::load(dir.as_deref());
    let mut head = String::from("| trace | lead | cadence | **shipped** |");
    let mut rule = String::from("|---|---|---|---|");
    for (_, name) in KINDS {
        head += &format!(" {name} |");
        rule += "---|";
    }
    println!("{head}\n{rule}");
    for trace in &traces {
        let mut leads = vec![trace.issue_lead()];
        if !leads.contains(&3_000) {
            leads.push(3_000);
        }
        for &lead in &leads {
            for (cadence, cname) in [(Cadence::Run100ms, "100 ms"), (Cadence::Probe1s, "1 s")] {
                let mut row = format!(
                    "| {} | {} s | {cname} | {} |",
                    trace.name,
                    lead / 1000,
                    cell(trace, lead, cadence, &|| Box::new(Shipped(Trend::new(
                        lead
                    ))))
                );
                for (kind, _) in KINDS {
                    row += &format!(
                        " {} |",
                        cell(trace, lead, cadence, &|| Box::new(Alt::new(kind, lead)))
                    );
                }
                println!("{row}");
            }
        }
    }
    println!(
        "\nLeaks: the lead left at the first signal (1 s: least–most over the 10 phases of \
         the probe's runs); ✗ when short of the lead (100 ms: less 100 ms). Elsewhere: – for \
         no signal, else the samples that would have signalled (summed over phases) and the \
         first one's time since the start."
    );
}
