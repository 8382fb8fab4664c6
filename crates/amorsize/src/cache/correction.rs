//! The per-workload correction: measured ÷ predicted time of parallel runs, smoothed, by which
//! the model's parallel prediction is multiplied next time. Pure arithmetic.
//!
//! It absorbs what the model does not see — memory-bandwidth contention, cache effects, a
//! sample that ran warmer than the whole — as one factor per workload. Smoothing is in log
//! space (a ratio of 2 and one of ½ cancel out): a running geometric mean over the first runs,
//! then an exponentially weighted one, so that one noisy run moves it by at most
//! [`MIN_WEIGHT`] of the way.

/// The weight of the newest run once [`1 / MIN_WEIGHT`](MIN_WEIGHT) runs are known: the smoothing
/// of joblib's batch-duration moving average (0.8 old, 0.2 new) leans on history a little more;
/// a quarter keeps a cache that learns within a few runs.
pub const MIN_WEIGHT: f64 = 0.25;

/// A ratio outside `[1/LIMIT, LIMIT]` is clamped: a run 100× off its prediction says
/// something broke (the machine was suspended, another job took the cores), not that the
/// workload changed.
pub const LIMIT: f64 = 16.0;

/// The correction after one more run whose raw model error was `ratio` (measured ÷ predicted
/// without correction), given the previous correction and how many runs it was made from.
/// A ratio that is not a positive finite number is ignored.
///
/// # Examples
///
/// ```
/// use amorsize::cache::update_correction;
///
/// // The first run sets it, later ones move it part of the way.
/// assert_eq!(update_correction(1.0, 0, 3.0), 3.0);
/// let c = update_correction(3.0, 1, 1.0);
/// assert!(1.0 < c && c < 3.0);
/// ```
pub fn update_correction(previous: f64, runs: u64, ratio: f64) -> f64 {
    if !(ratio.is_finite() && ratio > 0.0) {
        return sanitize(previous);
    }
    let ratio = ratio.clamp(1.0 / LIMIT, LIMIT);
    if runs == 0 || !(previous.is_finite() && previous > 0.0) {
        return ratio;
    }
    let weight = (1.0 / (runs as f64 + 1.0)).max(MIN_WEIGHT);
    let log = (1.0 - weight) * previous.ln() + weight * ratio.ln();
    log.exp().clamp(1.0 / LIMIT, LIMIT)
}

/// The correction after a serial run, which says nothing of parallel time: it fades toward 1 by
/// [`MIN_WEIGHT`] of the way (in log space). A correction learned on a loaded machine can turn
/// the next plans serial, and serial runs would never measure it again; fading makes the planner
/// retry parallelism after a few serial runs, and a workload that really gains nothing relearns
/// its correction on that one parallel run.
///
/// # Examples
///
/// ```
/// use amorsize::cache::fade_correction;
///
/// let c = fade_correction(4.0);
/// assert!(1.0 < c && c < 4.0);
/// assert_eq!(fade_correction(1.0), 1.0);
/// ```
pub fn fade_correction(previous: f64) -> f64 {
    let c = sanitize(previous);
    ((1.0 - MIN_WEIGHT) * c.ln()).exp()
}

/// A stored correction as the model may use it: 1 when unusable.
pub(crate) fn sanitize(c: f64) -> f64 {
    if c.is_finite() && c > 0.0 {
        c.clamp(1.0 / LIMIT, LIMIT)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lies_between_previous_and_ratio(prev in 0.1f64..10.0, runs in 1u64..50, ratio in 0.1f64..10.0) {
            let c = update_correction(prev, runs, ratio);
            let (lo, hi) = if prev < ratio { (prev, ratio) } else { (ratio, prev) };
            prop_assert!(c >= lo * (1.0 - 1e-12) && c <= hi * (1.0 + 1e-12), "{c} not in [{lo}, {hi}]");
        }

        #[test]
        fn a_steady_ratio_is_learned(ratio in 0.1f64..10.0, start in 0.1f64..10.0) {
            let mut c = start;
            for runs in 1..40 {
                c = update_correction(c, runs, ratio);
            }
            prop_assert!((c / ratio - 1.0).abs() < 0.01, "{c} vs {ratio}");
        }

        #[test]
        fn never_leaves_the_limits(prev in -1e3f64..1e3, runs in 0u64..5, ratio in -1e9f64..1e9) {
            let c = update_correction(prev, runs, ratio);
            prop_assert!(c.is_finite() && (1.0 / LIMIT..=LIMIT).contains(&c));
        }
    }

    #[test]
    fn fading_reaches_one_and_never_crosses_it() {
        for start in [0.1, 0.5, 2.0, 16.0] {
            let mut c = start;
            for _ in 0..60 {
                let next = fade_correction(c);
                assert!((next - 1.0).abs() <= (c - 1.0).abs());
                assert_eq!(next >= 1.0, c >= 1.0);
                c = next;
            }
            assert!((c - 1.0).abs() < 1e-6, "{start} -> {c}");
        }
    }

    #[test]
    fn nonsense_ratios_are_ignored() {
        assert_eq!(update_correction(2.0, 3, f64::NAN), 2.0);
        assert_eq!(update_correction(2.0, 3, 0.0), 2.0);
        assert_eq!(update_correction(f64::NAN, 3, f64::INFINITY), 1.0);
    }

    #[test]
    fn the_first_runs_are_a_geometric_mean() {
        let c = update_correction(update_correction(1.0, 0, 4.0), 1, 1.0);
        assert!((c - 2.0).abs() < 1e-12);
    }
}
