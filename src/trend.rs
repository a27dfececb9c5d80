//! Time left: when the working set, at its recent rate of growth, would reach the limit.
//!
//! The estimator ("rising floors", chosen in DESIGN.md from the traces there):
//!
//! - **Window**: the samples of the last `W = max(lead, 6 s)`: never extrapolate further
//!   ahead than we have looked back, and never over less than three GC cycles of a couple
//!   of seconds.
//! - **Floors**: the samples' span is cut into three equal thirds by time, and each third's
//!   floor is its lowest working set. Memory that a garbage collector frees, a one-off spike
//!   and page cache that comes and goes all sit above the floor; a leak raises it.
//! - **Growth**: only when the floors rise twice (`f1 < f2 < f3`) and each third's median
//!   rises by at least half as much as its floor. A sawtooth whose period is shorter than two
//!   thirds of the span has a drop in the second or the last third, so one of the rises is
//!   not one, or its median stays where the peak's third left it; a single step (a start-up,
//!   a cache filled once) rises once, not twice.
//! - **Still growing**: the newest sample has risen since the start of the last third, and
//!   since the start of that third's second half, at least half as fast as the floors did;
//!   a start-up ramp that has ended rose twice, and stopped.
//! - **Rate**: when the two rises agree within a factor of three, from the first floor to
//!   the last, two thirds apart. A steady leak is exact.
//! - **Minimum data**: at least one sample in each third, over a span of at least two thirds
//!   of the window less a sixteenth (3,625 ms for the 6 s minimum).
//!
//! Pure arithmetic on a fixed array: no allocation, no clock (the caller passes times in
//! milliseconds of a clock of its choice), no floating point.

/// The points kept. A window holds at most 25 (a new point at most every `W / 24`, see
/// [`Trend::push`]); the rest is headroom for samples a little older than the window.
pub const POINTS: usize = 32;

/// The shortest window: three thirds of 2 s, the period of the shortest GC cycle the tests
/// (and DESIGN.md's traces) must not mistake for growth, and still the first estimate of a
/// leak that fills the cgroup in 8 s with 3 s to spare.
pub const MIN_WINDOW_MS: u64 = 6_000;

/// What a sample of usage may read below the truth: the kernel charges a cgroup's counter in
/// per-CPU batches of 64 pages (`MEMCG_CHARGE_BATCH`), 256 KiB a CPU; measured here (2 CPUs)
/// ±210 KiB around a steady leak. The time left counts from this much more: at 2 MiB/s half
/// a second earlier, which the lead obtained needed (its minimum was 2.89 s of 3 over 20
/// runs without it), at 32 MiB/s 31 ms.
pub const RIPPLE: u64 = 1 << 20;

/// One or more consecutive samples: the lowest working set of them, and when it was seen
/// (so that a floor falls into the third where it happened).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub at: u64,
    pub low: u64,
}

/// The recent samples of one cgroup's working set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trend {
    points: [Point; POINTS],
    len: usize,
    /// The latest sample's time: the end of the window.
    last: Option<u64>,
    /// When the newest point took its first sample (its `at` is its lowest one's).
    opened: u64,
    window: u64,
}

impl Trend {
    /// An empty trend for a lead of `lead_ms` (0: no lead, the shortest window).
    pub const fn new(lead_ms: u64) -> Trend {
        Trend {
            points: [Point { at: 0, low: 0 }; POINTS],
            len: 0,
            last: None,
            opened: 0,
            window: if lead_ms > MIN_WINDOW_MS {
                lead_ms
            } else {
                MIN_WINDOW_MS
            },
        }
    }

    /// The window in milliseconds.
    pub const fn window(&self) -> u64 {
        self.window
    }

    /// The points held, oldest first.
    pub fn points(&self) -> &[Point] {
        &self.points[..self.len]
    }

    /// The latest sample's time.
    pub const fn last(&self) -> Option<u64> {
        self.last
    }

    /// A trend of points read back (the probe's state file). `None` unless they are in
    /// order, no later than `last` and fit: such a state is not ours and is started afresh.
    pub fn restore(lead_ms: u64, last: u64, points: &[Point]) -> Option<Trend> {
        let mut t = Trend::new(lead_ms);
        if points.len() > POINTS
            || points.windows(2).any(|w| w[0].at >= w[1].at)
            || points.last().is_some_and(|p| p.at > last)
        {
            return None;
        }
        t.points[..points.len()].copy_from_slice(points);
        t.len = points.len();
        t.last = Some(last);
        t.opened = points.last().map_or(0, |p| p.at);
        Some(t)
    }

    /// Adds a sample of `used` bytes at `at` ms, and returns the time since the previous one
    /// (`None` for the first). A sample earlier than the previous one (the clock went back)
    /// starts the trend afresh.
    pub fn push(&mut self, at: u64, used: u64) -> Option<u64> {
        let gap = match self.last {
            Some(last) if at >= last => Some(at - last),
            Some(_) => {
                self.len = 0;
                None
            }
            None => None,
        };
        self.last = Some(at);
        // Older than the window: no use any more.
        let from = at.saturating_sub(self.window);
        let old = self.points().iter().take_while(|p| p.at < from).count();
        self.points.copy_within(old..self.len, 0);
        self.len -= old;
        // Samples less than W/24 after a point's first share it (its lowest, the earliest of
        // equals): at 100 ms and more, the window keeps its resolution and the array its
        // bound. Counted from the first sample, so that a flat line is a point every W/24,
        // not one point that moves with the newest sample.
        let opened = self.opened;
        match self.len.checked_sub(1).map(|i| &mut self.points[i]) {
            Some(p) if at - opened < self.window / 24 => {
                if used < p.low {
                    *p = Point { at, low: used };
                }
            }
            _ => {
                self.opened = at;
                if self.len == POINTS {
                    self.points.copy_within(1.., 0);
                    self.len -= 1;
                }
                self.points[self.len] = Point { at, low: used };
                self.len += 1;
            }
        }
        gap
    }

    /// Milliseconds until `used` reaches `limit` at the trend's rate, or `None` when there is
    /// no rising trend (or too little data for one). 0 when `used` is already there.
    pub fn eta(&self, used: u64, limit: u64) -> Option<u64> {
        let (rise, over) = self.rate()?;
        let left = u128::from(limit.saturating_sub(used.saturating_add(RIPPLE)));
        Some(u64::try_from(left * u128::from(over) / u128::from(rise)).unwrap_or(u64::MAX))
    }

    /// The growth rate as `rise` bytes over `over` ms, both above 0.
    pub fn rate(&self) -> Option<(u64, u64)> {
        let now = self.last?;
        let pts = self.points();
        let first = pts.first()?.at;
        let span = now - first;
        // Two thirds of the window, less a sixteenth: a probe every second spans 3,996 ms
        // in four periods, which must not wait a fifth for the 4,000.
        if span.saturating_mul(48) < self.window.saturating_mul(29) {
            return None;
        }
        let (b1, b2) = (first + span / 3, first + span / 3 * 2);
        let floor = |from: u64, to: u64| {
            pts.iter()
                .filter(|p| p.at >= from && p.at < to)
                .fold(None, |low: Option<Point>, p| match low {
                    Some(l) if l.low <= p.low => Some(l),
                    _ => Some(*p),
                })
        };
        let (f1, f2, f3) = (floor(first, b1)?, floor(b1, b2)?, floor(b2, u64::MAX)?);
        if !(f1.low < f2.low && f2.low < f3.low) {
            return None;
        }
        // The middles must rise too, each by at least half the rise of the floor below it. A
        // last third shorter than a GC cycle can miss the drop and rise above the floor
        // before it; its middle is the ramp after the drop, no higher than the middle of the
        // third that held the peak (measured: within ripple, 0.04 to 0.5 MiB, where the
        // floors rose 27 to 38 MiB). A leak raises the middles as much as the floors.
        let (m1, m2, m3) = (
            median(pts, first, b1),
            median(pts, b1, b2),
            median(pts, b2, u64::MAX),
        );
        let rises = |lo: u64, hi: u64, floor_rise: u64| {
            hi > lo && u128::from(hi - lo) * 2 >= u128::from(floor_rise)
        };
        if !(rises(m1, m2, f2.low - f1.low) && rises(m2, m3, f3.low - f2.low)) {
            return None;
        }
        // The two rises must agree within a factor of three: a rise of ripple after one of a
        // start-up (a probe's thirds of a sawtooth: 147 MiB, then 0.04) is not a trend.
        let (a, b) = (
            (f2.low - f1.low, f2.at - f1.at),
            (f3.low - f2.low, f3.at - f2.at),
        );
        let (ra, rb) = (
            u128::from(a.0) * u128::from(b.1),
            u128::from(b.0) * u128::from(a.1),
        );
        // Saturating: times and sizes near 2^64 (a state file's) must not overflow u128.
        if ra > rb.saturating_mul(3) || rb > ra.saturating_mul(3) {
            return None;
        }
        let rise = (f3.low - f1.low, f3.at - f1.at);
        let newest = pts[pts.len() - 1];
        // Still growing: the newest point has risen, at least half as fast as the floors
        // did, since the start of the last third and since the start of its second half (the
        // last sixth). A start-up ramp that ended rose twice, and stopped: measured on 94%
        // reached over 3 s, the floors alone made it due 3 to 4 s after the ramp ended, and
        // half a second after when the newest sample was a page below the level reached.
        let start = |from: u64| pts.iter().find(|p| p.at >= from).copied();
        for since in [start(b2)?, start(b2 + span / 6)?] {
            let risen = (u128::from(newest.low.saturating_sub(since.low)) * u128::from(rise.1))
                .saturating_mul(2);
            if risen < u128::from(rise.0) * u128::from(newest.at - since.at) {
                return None;
            }
        }
        // The rate over both rises: the floors two thirds apart, so a page counter's ripple
        // (some 200 KiB either way) weighs half what it would on one rise.
        Some(rise)
    }
}

/// The median of the lows of the points in `[from, to)`: the mean of the two middle ones of
/// an even count (of two points, their mean: a probe's third often holds two). There is at
/// least one point there.
fn median(pts: &[Point], from: u64, to: u64) -> u64 {
    let mut lows = [0u64; POINTS];
    let mut n = 0;
    for p in pts.iter().filter(|p| p.at >= from && p.at < to) {
        lows[n] = p.low;
        n += 1;
    }
    let lows = &mut lows[..n];
    let (below, &mut upper, _) = lows.select_nth_unstable(n / 2);
    match n % 2 {
        1 => upper,
        // The largest of the lower half is the other middle one.
        _ => {
            let lower = below.iter().copied().max().unwrap_or(upper);
            lower / 2 + upper / 2 + (lower % 2 + upper % 2) / 2
        }
    }
}

/// Whether to act now: the limit would be reached within `lead_ms`, or the next look
/// (`next_ms` from now, give or take a quarter of it: a probe period's jitter, a slow exec)
/// could come too late to leave `lead_ms`.
pub fn due(eta_ms: Option<u64>, lead_ms: u64, next_ms: u64) -> bool {
    let wait = next_ms.saturating_add(next_ms / 4);
    eta_ms.is_some_and(|eta| eta <= lead_ms.saturating_add(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const LIMIT: u64 = 256 * MIB;

    /// Feeds `trace(t_ms)` every `step` ms for `until` ms, and returns the first time at
    /// which `due` says to act, with the eta then.
    fn first_due(
        lead: u64,
        step: u64,
        until: u64,
        trace: impl Fn(u64) -> u64,
    ) -> Option<(u64, u64)> {
        let mut t = Trend::new(lead);
        let mut at = 0;
        while at <= until {
            let used = trace(at);
            t.push(at, used);
            let eta = t.eta(used, LIMIT);
            if due(eta, lead, step) {
                return Some((at, eta.unwrap()));
            }
            at += step;
        }
        None
    }

    /// A leak of `rate` MiB/s from `base` MiB, with the ripple of page counters (a few
    /// pages either way, deterministic).
    fn leak(rate: u64, base: u64) -> impl Fn(u64) -> u64 {
        move |t| base * MIB + rate * MIB * t / 1000 + (t * 7919 % 13) * 4096
    }

    /// When `trace` reaches the limit.
    fn limit_at(trace: &impl Fn(u64) -> u64) -> u64 {
        (0..).step_by(10).find(|&t| trace(t) >= LIMIT).unwrap()
    }

    #[test]
    fn a_leak_is_caught_with_the_lead_left() {
        for (rate, base) in [(2, 216), (8, 96), (32, 0)] {
            for step in [100, 1000] {
                let trace = leak(rate, base);
                let (at, _) = first_due(3000, step, 60_000, &trace).expect("no signal");
                let left = limit_at(&trace) - at;
                // The lead, and at most a step and a quarter, the ripple's MiB and a point's
                // merge more.
                assert!(left >= 3000, "{rate} MiB/s step {step}: {left} ms left");
                let most = 3000 + step * 5 / 4 + 1000 / rate + 300;
                assert!(left <= most, "{rate} MiB/s step {step}: {left} left");
            }
        }
    }

    #[test]
    fn a_flat_line_never_acts() {
        let flat = |t: u64| LIMIT / 100 * 94 + (t * 7919 % 13) * 4096;
        assert_eq!(first_due(10_000, 100, 60_000, flat), None);
        assert_eq!(first_due(10_000, 1000, 60_000, flat), None);
    }

    /// 40% to 85% over `period`, freed back to 40%, from a start at a few MiB.
    fn sawtooth(period: u64) -> impl Fn(u64) -> u64 {
        move |t| {
            if t < 50 {
                return 3 * MIB;
            }
            let phase = t % period;
            LIMIT / 100 * 40 + LIMIT / 100 * 45 * phase / period
        }
    }

    #[test]
    fn a_sawtooth_never_acts() {
        for step in [100, 250, 1000, 1010] {
            for period in [500, 1000, 1500, 2000, 2500] {
                for shift in [0, 130, 470, 990] {
                    let saw = sawtooth(period);
                    let trace = |t: u64| saw(t + shift);
                    assert_eq!(
                        first_due(5000, step, 60_000, trace),
                        None,
                        "{step} {period} {shift}"
                    );
                    assert_eq!(
                        first_due(3000, step, 60_000, trace),
                        None,
                        "{step} {period} {shift}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_spike_or_a_step_is_not_a_trend() {
        // Flat at 60%, one sample at 99%.
        let spike = |t: u64| {
            if t == 20_000 {
                LIMIT / 100 * 99
            } else {
                LIMIT / 100 * 60
            }
        };
        assert_eq!(first_due(3000, 100, 60_000, spike), None);
        // A cache read once: 10% to 90% at 5 s.
        let step = |t: u64| if t < 5000 { LIMIT / 10 } else { LIMIT / 10 * 9 };
        assert_eq!(first_due(3000, 100, 60_000, step), None);
        assert_eq!(first_due(3000, 1000, 60_000, step), None);
    }

    #[test]
    fn a_ramp_that_ended_or_a_dip_is_not_a_trend() {
        // 94% reached over 3 s, then flat (a start-up), exactly or a page lower at times.
        for lead in [3000, 5000, 10_000] {
            for step in [100, 1000] {
                let ramp = |t: u64| (LIMIT / 100 * 94 * t.min(3000) / 3000) - (t % 3) * 4096;
                assert_eq!(first_due(lead, step, 60_000, ramp), None, "{lead} {step}");
            }
        }
        // Flat at 94% with one 100 ms dip of 1 MiB, at every phase of the thirds.
        for dip in (3000..9000).step_by(300) {
            let flat = |t: u64| LIMIT / 100 * 94 - if t == dip { MIB } else { 0 };
            assert_eq!(first_due(10_000, 100, 30_000, flat), None, "dip at {dip}");
        }
    }

    #[test]
    fn page_cache_coming_and_going_is_not_a_trend() {
        // Active cache filled over 3 s up to 90%, reclaimed to 30%, repeated (every 3.5 s).
        let cache = |t: u64| {
            let phase = t % 3500;
            LIMIT / 100 * 30 + LIMIT / 100 * 60 * phase.min(3000) / 3000
        };
        assert_eq!(first_due(10_000, 100, 120_000, cache), None);
    }

    #[test]
    fn too_little_data_gives_no_rate() {
        // The shortest window, 6 s: a span of 3,625 ms (two thirds less a sixteenth) first.
        let mut t = Trend::new(3000);
        for at in (0..3625).step_by(100) {
            t.push(at, at * MIB);
            assert_eq!(t.rate(), None, "{at}");
        }
        t.push(3625, 3625 * MIB);
        assert!(t.rate().is_some());
    }

    #[test]
    fn a_linear_leak_is_estimated_exactly() {
        let mut t = Trend::new(0);
        for at in (0..=6000).step_by(100) {
            t.push(at, 10 * MIB + at * MIB / 100); // 10 MiB/s
        }
        let (rise, over) = t.rate().unwrap();
        assert_eq!(u128::from(rise) * 1000 / u128::from(over), 10 * MIB as u128);
        // The ripple's MiB counts as used: 9 MiB left at 10 MiB/s.
        assert_eq!(t.eta(LIMIT - 10 * MIB, LIMIT), Some(900));
        assert_eq!(t.eta(LIMIT - MIB, LIMIT), Some(0));
        assert_eq!(t.eta(LIMIT + 1, LIMIT), Some(0));
    }

    #[test]
    fn the_clock_going_back_starts_afresh() {
        let mut t = Trend::new(0);
        for at in (10_000..=16_000).step_by(100) {
            t.push(at, at * MIB);
        }
        assert!(t.rate().is_some());
        assert_eq!(t.push(5000, 1), None);
        assert_eq!(t.points(), &[Point { at: 5000, low: 1 }]);
        assert_eq!(t.rate(), None);
    }

    #[test]
    fn points_stay_bounded_and_within_the_window() {
        let mut t = Trend::new(0);
        for at in (0..100_000).step_by(7) {
            t.push(at, at);
            assert!(t.points().len() <= POINTS);
            assert!(t.points()[0].at + t.window() + t.window() / 24 >= at);
        }
        // After a long gap only the new sample is left.
        t.push(1_000_000, 5);
        assert_eq!(t.points().len(), 1);
    }

    #[test]
    fn restore_refuses_what_is_not_a_trend() {
        let p = |at, low| Point { at, low };
        assert!(Trend::restore(0, 10, &[p(1, 1), p(5, 2)]).is_some());
        assert!(Trend::restore(0, 10, &[p(5, 1), p(5, 2)]).is_none());
        assert!(Trend::restore(0, 10, &[p(5, 1), p(1, 2)]).is_none());
        assert!(Trend::restore(0, 4, &[p(1, 1), p(5, 2)]).is_none());
        assert!(Trend::restore(0, 4, &[p(1, 1); POINTS + 1]).is_none());
    }

    #[test]
    fn due_counts_the_wait_for_the_next_look() {
        assert!(due(Some(3000), 3000, 0));
        assert!(!due(Some(3001), 3000, 0));
        assert!(due(Some(3900), 3000, 1000));
        assert!(due(Some(4250), 3000, 1000));
        assert!(!due(Some(4251), 3000, 1000));
        assert!(!due(None, 3000, 1000));
        assert!(due(Some(0), 0, 0));
        assert!(due(Some(u64::MAX), u64::MAX, u64::MAX));
    }
}
