//! The per-workload correction the model applies: contention between workers, as the
//! Universal Scalability Law's α ([`Workload::contention`](crate::model::Workload::contention)),
//! learned from measured ÷ predicted time of parallel runs. Pure arithmetic.
//!
//! A sample runs one item at a time, alone on the machine: it cannot see workers slowing each
//! other down (memory bandwidth, shared caches, locks). A parallel run can. The model predicts
//! `total = rest + compute × (1 + α (W − 1))` for `W` busy workers; given the measured wall time
//! `M` of a run, the α that would have predicted it exactly is
//! `(M − rest) ÷ (compute × (W − 1))` ([`contention_of_run`]). Estimates are smoothed: a running
//! mean over the first runs, then an exponentially weighted one, so that one noisy run moves it
//! by at most [`MIN_WEIGHT`] of the way ([`update_contention`]).

use crate::model::{Prediction, Seconds};

/// The weight of the newest estimate once [`1 / MIN_WEIGHT`](MIN_WEIGHT) runs are known. joblib's
/// batch-duration average keeps 0.8 of history and takes 0.2 of the newest; a quarter learns a
/// little faster, within a few runs.
pub const MIN_WEIGHT: f64 = 0.25;

/// The fraction by which a serial run fades the contention. Small, because each retry of
/// parallelism that still does not pay costs a slower run: from the largest contention, about
/// four serial runs pass before a parallel plan on two workers is predicted to pay again.
pub const FADE: f64 = 0.1;

/// The largest contention learned: at α = 1 every extra worker doubles the work of all, so that
/// no parallel plan can win. A run further off says something broke (the machine was suspended,
/// another job took the cores), not that the workload changed.
pub const MAX_CONTENTION: f64 = 1.0;

/// The contention that would have predicted a run exactly: the run of the plan whose best
/// parallel prediction is `p`, on `busy` workers (those that got a chunk), took `wall`
/// seconds. `None` when the run cannot tell (fewer than 2 busy workers, no compute predicted,
/// or a time that is not a finite positive number). Below 0 (faster than predicted even without
/// contention) it is 0: the model has no term for workers helping each other.
///
/// # Examples
///
/// ```
/// use amorsize::cache::contention_of_run;
/// use amorsize::model::{Candidate, Prediction};
///
/// // Predicted 1 s of compute on 2 workers, nothing else; it took 1.5 s.
/// let p = Prediction {
///     candidate: Candidate::new(2, 10),
///     serial: 2.0,
///     worker_start: 0.0,
///     compute: 1.0,
///     contention: 0.0,
///     dispatch: 0.0,
///     transfer: 0.0,
///     tail: 0.0,
/// };
/// assert_eq!(contention_of_run(&p, 2, 1.5), Some(0.5));
/// assert_eq!(contention_of_run(&p, 2, 0.8), Some(0.0));
/// assert_eq!(contention_of_run(&p, 1, 1.5), None);
/// ```
pub fn contention_of_run(p: &Prediction, busy: usize, wall: Seconds) -> Option<f64> {
    let extra_workers = busy.checked_sub(1).filter(|&w| w > 0)? as f64;
    if !(wall.is_finite() && wall > 0.0 && p.compute.is_finite() && p.compute > 0.0) {
        return None;
    }
    let rest = p.total() - p.contention;
    let alpha = (wall - rest) / (p.compute * extra_workers);
    alpha.is_finite().then(|| alpha.clamp(0.0, MAX_CONTENTION))
}

/// The contention after one more parallel run whose own estimate was `estimate`, given the
/// previous value and how many runs it was learned from. An estimate that is not a finite
/// number is ignored.
///
/// # Examples
///
/// ```
/// use amorsize::cache::update_contention;
///
/// // The first run sets it, later ones move it part of the way.
/// assert_eq!(update_contention(0.0, 0, 0.4), 0.4);
/// let a = update_contention(0.4, 1, 0.0);
/// assert!(0.0 < a && a < 0.4);
/// ```
pub fn update_contention(previous: f64, runs: u64, estimate: f64) -> f64 {
    let previous = sanitize(previous);
    if !estimate.is_finite() {
        return previous;
    }
    let estimate = estimate.clamp(0.0, MAX_CONTENTION);
    if runs == 0 {
        return estimate;
    }
    let weight = (1.0 / (runs as f64 + 1.0)).max(MIN_WEIGHT);
    ((1.0 - weight) * previous + weight * estimate).clamp(0.0, MAX_CONTENTION)
}

/// The contention after a serial run, which says nothing of parallel time: it fades toward 0. Contention learned on a loaded machine can turn the next plans
/// serial, and serial runs would never measure it again; fading by [`FADE`] makes the planner
/// retry parallelism after a few serial runs, and a workload that really gains nothing learns
/// its contention again on that one parallel run.
///
/// # Examples
///
/// ```
/// use amorsize::cache::fade_contention;
///
/// assert_eq!(fade_contention(0.5), 0.45);
/// assert_eq!(fade_contention(0.0), 0.0);
/// ```
pub fn fade_contention(previous: f64) -> f64 {
    sanitize(previous) * (1.0 - FADE)
}

/// A stored contention as the model may use it: 0 when unusable.
pub(crate) fn sanitize(alpha: f64) -> f64 {
    if alpha.is_finite() {
        alpha.clamp(0.0, MAX_CONTENTION)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Candidate;
    use proptest::prelude::*;

    fn prediction(compute: f64, other: f64, alpha: f64, busy: usize) -> Prediction {
        Prediction {
            candidate: Candidate::new(busy, 1),
            serial: compute * busy as f64,
            worker_start: other,
            compute,
            contention: compute * alpha * (busy as f64 - 1.0),
            dispatch: 0.0,
            transfer: 0.0,
            tail: 0.0,
        }
    }

    proptest! {
        #[test]
        fn the_estimate_predicts_the_run_it_came_from(
            compute in 1e-3f64..10.0, other in 0.0f64..1.0, used in 0.0f64..0.5,
            truth in 0.0f64..0.9, busy in 2usize..64,
        ) {
            // A run that took what contention `truth` predicts gives back `truth`, whatever
            // contention the plan had used.
            let wall = prediction(compute, other, truth, busy).total();
            let alpha = contention_of_run(&prediction(compute, other, used, busy), busy, wall).unwrap();
            prop_assert!((alpha - truth).abs() < 1e-9, "{alpha} vs {truth}");
        }

        #[test]
        fn lies_between_previous_and_estimate(prev in 0.0f64..1.0, runs in 1u64..50, est in 0.0f64..1.0) {
            let a = update_contention(prev, runs, est);
            let (lo, hi) = if prev < est { (prev, est) } else { (est, prev) };
            prop_assert!(a >= lo - 1e-12 && a <= hi + 1e-12, "{a} not in [{lo}, {hi}]");
        }

        #[test]
        fn a_steady_estimate_is_learned(est in 0.0f64..1.0, start in 0.0f64..1.0) {
            let mut a = start;
            for runs in 1..40 {
                a = update_contention(a, runs, est);
            }
            prop_assert!((a - est).abs() < 0.01, "{a} vs {est}");
        }

        #[test]
        fn never_leaves_the_limits(prev in -1e3f64..1e3, runs in 0u64..5, est in -1e9f64..1e9) {
            for a in [update_contention(prev, runs, est), fade_contention(prev)] {
                prop_assert!(a.is_finite() && (0.0..=MAX_CONTENTION).contains(&a));
            }
        }
    }

    #[test]
    fn runs_that_cannot_tell_give_nothing() {
        let p = prediction(1.0, 0.0, 0.0, 4);
        assert_eq!(contention_of_run(&p, 1, 2.0), None);
        assert_eq!(contention_of_run(&p, 4, f64::NAN), None);
        assert_eq!(
            contention_of_run(&prediction(0.0, 0.0, 0.0, 4), 4, 2.0),
            None
        );
        assert_eq!(contention_of_run(&p, 4, 1e9), Some(MAX_CONTENTION));
    }

    #[test]
    fn nonsense_is_ignored_and_fading_reaches_zero() {
        assert_eq!(update_contention(0.2, 3, f64::NAN), 0.2);
        assert_eq!(update_contention(f64::NAN, 3, f64::INFINITY), 0.0);
        let mut a: f64 = 1.0;
        for _ in 0..300 {
            a = fade_contention(a);
        }
        assert!(a < 1e-9);
    }
}
