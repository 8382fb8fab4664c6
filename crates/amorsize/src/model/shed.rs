//! The closed loop's rule: given what a parallel run measured over its first chunks, keep its
//! workers, shed some, or shed all but one. Pure, so that its laws are property tests.
//!
//! The measured figure is a speedup over the serial loop: the workers' throughput together
//! (items per second of wall time) divided by the serial rate the sample measured. A run that
//! measures below 1 is slower than the loop it replaced, whatever the model predicted, and
//! goes on alone. A run that pays but far below its prediction, with many workers, is often
//! past its contention peak (locks, the allocator, memory bandwidth: the Universal Scalability
//! Law's α and β terms), and goes on with fewer.

use std::num::NonZeroUsize;

/// A run that measures below this fraction of its predicted speedup, and below this fraction
/// of its workers, goes on with fewer workers. Half: well outside the ±30 % that runs of the
/// same work vary by on a busy machine, so noise alone does not trim a run that pays.
pub(crate) const TRIM_BELOW: f64 = 0.5;

/// What the run should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep every worker.
    Keep,
    /// Go on with this many workers (fewer than now; 1 runs as the serial loop would).
    Shed(NonZeroUsize),
}

/// The verdict for a run on `workers` workers that measured `speedup` (parallel throughput ÷
/// serial rate) where `predicted` was predicted (`None` when nothing was: a fixed plan).
///
/// - below 1 (parallel slower than the loop): shed to one worker;
/// - at or above the prediction: keep;
/// - below half (`TRIM_BELOW`) of the prediction and of the workers, with 3 workers or more: shed
///   to the workers the measured speedup needs, one more for the noise, at least 2;
/// - anything else, and a figure that is not a finite number: keep.
///
/// # Examples
///
/// ```
/// use amorsize::model::shed::{judge, Verdict};
/// use std::num::NonZeroUsize;
///
/// let two = NonZeroUsize::new(2).unwrap();
/// // Two workers that together ran at 0.45× the loop: the caller goes on alone.
/// assert_eq!(judge(two, 0.45, Some(1.99)), Verdict::Shed(NonZeroUsize::MIN));
/// // As fast as predicted: nothing changes.
/// assert_eq!(judge(two, 1.99, Some(1.99)), Verdict::Keep);
/// // 16 workers that reach 3×, where 12× was predicted: 4 workers reach it.
/// let sixteen = NonZeroUsize::new(16).unwrap();
/// assert_eq!(judge(sixteen, 3.0, Some(12.0)), Verdict::Shed(NonZeroUsize::new(4).unwrap()));
/// ```
pub fn judge(workers: NonZeroUsize, speedup: f64, predicted: Option<f64>) -> Verdict {
    let w = workers.get();
    if w <= 1 || !speedup.is_finite() {
        return Verdict::Keep;
    }
    if speedup < 1.0 {
        return Verdict::Shed(NonZeroUsize::MIN);
    }
    let Some(predicted) = predicted.filter(|p| p.is_finite()) else {
        return Verdict::Keep;
    };
    if speedup >= predicted {
        return Verdict::Keep;
    }
    if w >= 3 && speedup < TRIM_BELOW * predicted && speedup < TRIM_BELOW * w as f64 {
        // `speedup` is finite and at least 1 here, so the cast is exact enough and in range.
        let needed = (speedup.ceil() as usize).saturating_add(1).clamp(2, w - 1);
        return NonZeroUsize::new(needed).map_or(Verdict::Keep, Verdict::Shed);
    }
    Verdict::Keep
}

/// Below this measured speedup a whole run too short for the closed loop's windows backs off
/// at once; between it and 1 only when the run before it measured slower too (the planner's
/// `recall::confirm_slower`): 0.5. A run that one outlier slowed
/// (a worker woken late beside another program's spinning threads) measured 0.78 where its
/// neighbours measured 1.3-1.5 (`small`, 300 items of 1 µs on 2 cores); contention measures far
/// lower (`locked` 0.2-0.4; allocating `records` has measured 0.45), and a
/// second slow call to confirm it would cost a whole slow call more.
pub const CONFIRM_ABOVE: f64 = 0.5;

/// The share of a call's serial time that retrying parallel after a shed may lose, averaged
/// over the calls of the back-off and the retry: 5 %, the slack of "never slower than the
/// loop" that the benchmark holds amorsize to (0.95×).
pub const RETRY_LOSS: f64 = 0.05;

/// How much serial work of a workload runs after a shed before parallel is tried again, in
/// seconds of the serial loop: a retry that still does not pay loses about what the shed run
/// lost, `lost` seconds (its parallel phase's time × (1 − its measured speedup)), so the calls
/// between two retries, the retry included, must take `lost ÷ RETRY_LOSS` for the loss to
/// average at most [`RETRY_LOSS`] of the time. A long call whose shed came early (a slowed
/// window) lets the next call try again; short calls that lost much wait many. After an
/// `earlier` span (the workload shed again on its retry) it at least doubles, so that retries
/// of work that keeps contending grow rare. `None` for a loss that is not a number.
///
/// # Examples
///
/// ```
/// use amorsize::model::shed::backoff_span;
///
/// // A run that ran 4 ms at 0.45× lost 2.2 ms: 44 ms of serial calls pass, the retry's
/// // included, before the next retry.
/// assert!((backoff_span(0.004 * 0.55, None).unwrap() - 0.044).abs() < 1e-12);
/// // Shed again on the retry: twice as long.
/// assert!((backoff_span(0.004 * 0.55, Some(0.044)).unwrap() - 0.088).abs() < 1e-12);
/// ```
pub fn backoff_span(lost: f64, earlier: Option<f64>) -> Option<f64> {
    if !lost.is_finite() {
        return None;
    }
    let span = lost.max(0.0) / RETRY_LOSS;
    Some(match earlier.filter(|e| e.is_finite()) {
        Some(before) => span.max(2.0 * before),
        None => span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_sheds_at_or_above_the_prediction(
            w in 1usize..256, predicted in 1.0f64..256.0, over in 0.0f64..10.0,
        ) {
            let workers = NonZeroUsize::new(w).unwrap();
            prop_assert_eq!(judge(workers, predicted + over, Some(predicted)), Verdict::Keep);
        }

        #[test]
        fn always_sheds_to_one_below_the_serial_rate(
            w in 2usize..256, speedup in 0.0f64..1.0, predicted in proptest::option::of(0.0f64..256.0),
        ) {
            let workers = NonZeroUsize::new(w).unwrap();
            prop_assert_eq!(judge(workers, speedup, predicted), Verdict::Shed(NonZeroUsize::MIN));
        }

        #[test]
        fn a_shed_leaves_fewer_workers_and_a_trim_keeps_two(
            w in 1usize..256, speedup in 0.0f64..300.0, predicted in proptest::option::of(0.0f64..300.0),
        ) {
            let workers = NonZeroUsize::new(w).unwrap();
            if let Verdict::Shed(to) = judge(workers, speedup, predicted) {
                prop_assert!(to < workers);
                prop_assert!(speedup < 1.0 || to.get() >= 2);
            }
        }
    }

    proptest! {
        #[test]
        fn a_back_off_keeps_the_average_loss_within_the_bound_and_doubles_on_repeats(
            lost in 0.0f64..1.0, earlier in proptest::option::of(0.0f64..100.0),
        ) {
            let span = backoff_span(lost, earlier).unwrap();
            // A retry that loses `lost` again loses at most RETRY_LOSS of the span.
            prop_assert!(lost <= RETRY_LOSS * span * (1.0 + 1e-12));
            if let Some(before) = earlier {
                prop_assert!(span >= 2.0 * before);
            }
        }
    }

    #[test]
    fn figures_that_are_not_numbers_change_nothing() {
        let four = NonZeroUsize::new(4).unwrap();
        assert_eq!(judge(four, f64::NAN, Some(3.0)), Verdict::Keep);
        assert_eq!(judge(four, 2.5, Some(f64::NAN)), Verdict::Keep);
        assert_eq!(judge(NonZeroUsize::MIN, 0.1, Some(3.0)), Verdict::Keep);
        // Pays, but no prediction to hold it to.
        assert_eq!(judge(four, 1.1, None), Verdict::Keep);
    }
}
