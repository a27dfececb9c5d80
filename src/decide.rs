//! The verdict: pure integer arithmetic on one sample and the two thresholds.

use crate::parse::Threshold;

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Failure,
}

impl Level {
    pub const fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Failure => "failure",
        }
    }
}

impl Threshold {
    /// True when `used` is at or above this threshold of `limit`. Exact: compared in u128,
    /// never through floating point (92.5% of 2^63 must not round).
    pub fn reached(self, used: u64, limit: u64) -> bool {
        match self {
            Threshold::Percent(hundredths) => {
                u128::from(used) * 10_000 >= u128::from(limit) * u128::from(hundredths)
            }
            Threshold::Bytes(b) => used >= b,
        }
    }
}

impl Threshold {
    /// The fewest bytes in use that reach this threshold of `limit`: `reached(used, limit)`
    /// is `used >= bytes(limit)`.
    pub fn bytes(self, limit: u64) -> u64 {
        match self {
            // At most `limit`: hundredths never exceed 10,000.
            Threshold::Percent(h) => (u128::from(limit) * u128::from(h)).div_ceil(10_000) as u64,
            Threshold::Bytes(b) => b,
        }
    }
}

/// The level for `used` against `limit`.
pub fn decide(used: u64, limit: u64, warning: Threshold, failure: Threshold) -> Level {
    if failure.reached(used, limit) {
        Level::Failure
    } else if warning.reached(used, limit) {
        Level::Warning
    } else {
        Level::Ok
    }
}

/// used / limit in tenths of a percent, rounded down (so a printed `95.0` has really reached
/// 95%). A zero limit (`memory.max` 0) counts as full.
pub fn per_mille(used: u64, limit: u64) -> u128 {
    match limit {
        0 => 1000,
        _ => u128::from(used) * 1000 / u128::from(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Threshold::{Bytes, Percent};

    #[test]
    fn percent_is_exact_at_the_boundary() {
        assert!(Percent(95_00).reached(95, 100));
        assert!(!Percent(95_00).reached(94, 100));
        assert!(Percent(92_50).reached(925, 1000));
        assert!(!Percent(92_50).reached(924, 1000));
        // Large values: 2^63 * 0.925 is not representable in f64 exactly; u128 is.
        let limit = 1u64 << 63;
        let at = (u128::from(limit) * 9250).div_ceil(10000) as u64;
        assert!(Percent(92_50).reached(at, limit));
        assert!(!Percent(92_50).reached(at - 1, limit));
        assert!(Percent(10_000).reached(u64::MAX, u64::MAX));
        assert!(Percent(0).reached(0, 1));
    }

    #[test]
    fn bytes_threshold_ignores_the_limit() {
        assert!(Bytes(900 << 20).reached(900 << 20, 1));
        assert!(!Bytes(900 << 20).reached((900 << 20) - 1, u64::MAX));
    }

    #[test]
    fn levels() {
        let (w, f) = (Percent(85_00), Percent(95_00));
        assert_eq!(decide(84, 100, w, f), Level::Ok);
        assert_eq!(decide(85, 100, w, f), Level::Warning);
        assert_eq!(decide(95, 100, w, f), Level::Failure);
        assert_eq!(decide(200, 100, w, f), Level::Failure);
        // Mixed kinds: the failure amount fires even though the warning percent does not.
        assert_eq!(decide(10, 100, w, Bytes(10)), Level::Failure);
        // A zero limit is always full.
        assert_eq!(decide(0, 0, w, f), Level::Failure);
    }

    #[test]
    fn bytes_is_where_reached_starts() {
        for limit in [0, 1, 7, 1000, 1 << 30, (1 << 63) + 12345, u64::MAX] {
            for t in [
                Percent(0),
                Percent(1),
                Percent(92_50),
                Percent(10_000),
                Bytes(5),
            ] {
                let b = t.bytes(limit);
                assert!(t.reached(b, limit), "{t:?} {limit}");
                assert!(b == 0 || !t.reached(b - 1, limit), "{t:?} {limit}");
            }
        }
    }

    #[test]
    fn per_mille_rounds_down() {
        assert_eq!(per_mille(1020054733, 1073741824), 950); // 95.0000002%
        assert_eq!(per_mille(1020054528, 1073741824), 949); // 94.99998%: not yet 95
        assert_eq!(per_mille(949, 1000), 949);
        assert_eq!(per_mille(9999, 10000), 999);
        assert_eq!(per_mille(1, 0), 1000);
        assert_eq!(per_mille(u64::MAX, 1), u128::from(u64::MAX) * 1000);
    }
}
