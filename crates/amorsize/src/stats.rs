//! The statistics every stage shares: the median of repeated measurements, the spread of a
//! workload's item times, and the acceptance check a repeated calibration must pass.
//!
//! Pure functions over numbers (seconds as `f64`, or [`Duration`]s): no clock, no file, and
//! nothing else of the crate, so that every layer may use them.
//!
//! The median is the middle value in order, the upper of the two middle ones for an even count:
//! always a value that was measured, never the mean of two.

use std::cmp::Ordering;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The median of `values` (the upper middle one of an even count), in the total order of
/// [`f64::total_cmp`]; `None` when there are none.
///
/// # Examples
///
/// ```
/// use amorsize::stats::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(3.0));
/// assert_eq!(median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    middle(values, f64::total_cmp)
}

/// The median of `values` (the upper middle one of an even count); `None` when there are none.
///
/// # Examples
///
/// ```
/// use amorsize::stats::median_duration;
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// assert_eq!(median_duration(&[ms(9), ms(1), ms(5)]), Some(ms(5)));
/// ```
pub fn median_duration(values: &[Duration]) -> Option<Duration> {
    middle(values, Duration::cmp)
}

/// The median of three values without a buffer, for a path taken once per chunk: the same value
/// as [`median`] of the three for numbers that are not NaN. One outlier among the three (a chunk
/// stalled by the scheduler) changes nothing.
///
/// # Examples
///
/// ```
/// use amorsize::stats::median_of_three;
/// assert_eq!(median_of_three(1.0, 25.0, 1.0), 1.0);
/// ```
pub fn median_of_three(a: f64, b: f64, c: f64) -> f64 {
    a.max(b).min(a.min(b).max(c))
}

/// The element at the middle of `values` in the order of `cmp`.
fn middle<T: Copy>(values: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, cmp);
    Some(*m)
}

/// The coefficient of variation of one item's time, estimated from batches of items timed
/// together: `(seconds, items)` per batch, and the mean time per item over all of them.
///
/// A batch of `b` independent items has a per-item mean whose variance is σ²/b, so
/// `b (m − mean)²` estimates σ² whatever the batch size. 0 with fewer than two batches (no spread
/// can be told) or a mean that is not positive.
///
/// # Examples
///
/// ```
/// use amorsize::stats::batch_cv;
/// // Batches of one item each: the plain sample coefficient of variation.
/// let cv = batch_cv(&[(1.0, 1), (3.0, 1)], 2.0);
/// assert!((cv - 2f64.sqrt() / 2.0).abs() < 1e-12);
/// assert_eq!(batch_cv(&[(1.0, 1)], 1.0), 0.0);
/// ```
pub fn batch_cv(batches: &[(f64, usize)], mean: f64) -> f64 {
    // A NaN mean fails `mean > 0.0` too.
    if batches.len() < 2 || mean.partial_cmp(&0.0) != Some(Ordering::Greater) {
        return 0.0;
    }
    let sum: f64 = batches
        .iter()
        .map(|&(seconds, b)| {
            let m = seconds / b as f64;
            b as f64 * (m - mean).powi(2)
        })
        .sum();
    (sum / (batches.len() - 1) as f64).sqrt() / mean
}

/// The spread of repeated measurements around their median: the ratio of the median's two
/// neighbours in order (1 when they agree). `None` with fewer than three values, a value that is
/// not finite, or a lower neighbour that is not positive.
///
/// # Examples
///
/// ```
/// use amorsize::stats::repeat_spread;
/// assert_eq!(repeat_spread(&[2.0, 8.0, 4.0]), Some(4.0));
/// assert_eq!(repeat_spread(&[1.0, 1.0]), None);
/// ```
pub fn repeat_spread(values: &[f64]) -> Option<f64> {
    if values.len() < 3 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let (low, high) = (v[mid - 1], v[mid + 1]);
    (low > 0.0).then(|| high / low)
}

/// The widest spread ([`repeat_spread`]) the repeats of one calibration may show and still be
/// accepted by [`accept`]: the median's neighbours within a factor 4 of each other.
pub(crate) const MAX_REPEAT_SPREAD: f64 = 4.0;

/// The acceptance check of a repeated measurement of one cost: its median, when there are at
/// least three finite repeats whose spread around the median ([`repeat_spread`]) is at most 4
/// (the median's neighbours within a factor 4 of each other) and the median lies within
/// `plausible`. `None` rejects the measurement (the caller then falls back to a documented
/// constant). A check of the signal against the clock's resolution is a lower bound of
/// `plausible`.
///
/// # Examples
///
/// ```
/// use amorsize::stats::accept;
/// assert_eq!(accept(&[3e-3, 2e-3, 2.5e-3], 1e-4..=5.0), Some(2.5e-3));
/// // Repeats that disagree, or a median beyond the plausible range: rejected.
/// assert_eq!(accept(&[1e-3, 9e-3, 5e-3], 1e-4..=5.0), None);
/// assert_eq!(accept(&[10.0, 10.0, 10.0], 1e-4..=5.0), None);
/// ```
pub fn accept(values: &[f64], plausible: RangeInclusive<f64>) -> Option<f64> {
    let spread = repeat_spread(values)?;
    let median = median(values)?;
    (spread <= MAX_REPEAT_SPREAD && plausible.contains(&median)).then_some(median)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_median_is_the_middle_value_and_the_upper_one_of_an_even_count() {
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[2.0, 1.0]), Some(2.0));
        assert_eq!(median(&[9.0, 1.0, 5.0, 3.0, 7.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        let ms = Duration::from_millis;
        assert_eq!(median_duration(&[ms(4), ms(1), ms(3), ms(2)]), Some(ms(3)));
        assert_eq!(median_duration(&[]), None);
    }

    #[test]
    fn the_median_of_three_ignores_one_outlier() {
        assert_eq!(median_of_three(1.0, 1.0, 25.0), 1.0);
        assert_eq!(median_of_three(25.0, 1.0, 1.0), 1.0);
        assert_eq!(median_of_three(1.0, 25.0, 25.0), 25.0);
        assert_eq!(median_of_three(3.0, 1.0, 2.0), 2.0);
        assert_eq!(median_of_three(2.0, 3.0, 1.0), 2.0);
    }

    #[test]
    fn a_nan_sorts_last_and_does_not_poison_the_median() {
        assert_eq!(median(&[f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN, 1.0, 2.0, 3.0, 0.5]), Some(2.0));
    }

    #[test]
    fn the_check_keeps_the_median_of_agreeing_plausible_repeats() {
        assert_eq!(accept(&[3e-3, 2e-3, 2.5e-3], 1e-4..=5.0), Some(2.5e-3));
        // Only the median's neighbours must agree: one wild repeat at either end is outvoted.
        assert_eq!(
            accept(&[1e-9, 2e-3, 2e-3, 2e-3, 9.0], 1e-4..=5.0),
            Some(2e-3)
        );
    }

    #[test]
    fn the_check_rejects_disagreeing_implausible_or_too_few_repeats() {
        let accept = |v: &[f64]| accept(v, 1e-4..=5.0);
        assert_eq!(accept(&[1e-3, 9e-3, 5e-3]), None);
        assert_eq!(accept(&[10.0, 10.0, 10.0]), None);
        assert_eq!(accept(&[-1e-3, -1e-3, -1e-3]), None);
        assert_eq!(accept(&[1e-3, 1e-3]), None);
        assert_eq!(accept(&[f64::NAN, 1e-3, 1e-3]), None);
        assert_eq!(accept(&[f64::INFINITY, 1e-3, 1e-3]), None);
    }

    #[test]
    fn batches_of_one_give_the_sample_coefficient_of_variation() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        let mean = 2.5;
        let sd = (xs.iter().map(|x: &f64| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let batches: Vec<(f64, usize)> = xs.iter().map(|&x| (x, 1)).collect();
        assert!((batch_cv(&batches, mean) - sd / mean).abs() < 1e-12);
        // Equal per-item times in batches of any size: no spread.
        assert_eq!(batch_cv(&[(2.0, 2), (5.0, 5), (1.0, 1)], 1.0), 0.0);
        assert_eq!(batch_cv(&[(2.0, 2), (5.0, 5)], 0.0), 0.0);
    }

    proptest! {
        /// The median is a value of the input with at most half the values above it and at most
        /// half below it (the upper middle one: strictly fewer than half above).
        #[test]
        fn the_median_splits_the_values_in_half(values in prop::collection::vec(-1e9f64..1e9, 1..60)) {
            let m = median(&values).unwrap();
            prop_assert!(values.contains(&m));
            let below = values.iter().filter(|&&v| v < m).count();
            let above = values.iter().filter(|&&v| v > m).count();
            prop_assert!(below <= values.len() / 2, "{below} below {m} of {values:?}");
            prop_assert!(above < values.len().div_ceil(2), "{above} above {m} of {values:?}");
            // The same value as the sorted input's middle element.
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            prop_assert_eq!(m, sorted[sorted.len() / 2]);
        }

        #[test]
        fn the_median_ignores_the_order_of_the_values(
            mut values in prop::collection::vec(0u64..1_000_000, 1..40),
            seed in any::<u64>(),
        ) {
            let durations: Vec<Duration> = values.iter().map(|&n| Duration::from_nanos(n)).collect();
            let m = median_duration(&durations).unwrap();
            let shift = (seed as usize) % values.len();
            values.rotate_left(shift);
            values.reverse();
            let shuffled: Vec<Duration> = values.iter().map(|&n| Duration::from_nanos(n)).collect();
            prop_assert_eq!(median_duration(&shuffled), Some(m));
        }

        #[test]
        fn the_median_of_three_is_the_median(a in -1e9f64..1e9, b in -1e9f64..1e9, c in -1e9f64..1e9) {
            prop_assert_eq!(median_of_three(a, b, c), median(&[a, b, c]).unwrap());
        }
    }
}
