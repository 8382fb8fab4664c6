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
//! by at most `MIN_WEIGHT` of the way ([`update_contention`]).
//!
//! **A learned contention does not outlive the load it was learned under.** Other programs'
//! runnable threads slow a parallel run in a way the model now predicts from the probe
//! ([`Capacity`](crate::model::Capacity)), but what the probe's snapshot misses ends up in the
//! estimate. So each estimate is tied to the load (other runnable threads) of the run that
//! gave it: it applies only while the load is the same ([`same_load`]); a run under another
//! load starts the learning over; and it halves every `CONTENTION_HALF_LIFE`
//! ([`contention_now`]), so that what a transient load left behind goes even when no run
//! measures it again.

use crate::model::{Prediction, Seconds};
use std::time::Duration;

/// The weight of the newest estimate once `1 / MIN_WEIGHT` runs are known. joblib's
/// batch-duration average keeps 0.8 of history and takes 0.2 of the newest; a quarter learns a
/// little faster, within a few runs.
pub(crate) const MIN_WEIGHT: f64 = 0.25;

/// The fraction by which a serial run fades the contention. Small, because each retry of
/// parallelism that still does not pay costs a slower run: from the largest contention, about
/// four serial runs pass before a parallel plan on two workers is predicted to pay again.
pub(crate) const FADE: f64 = 0.1;

/// The largest contention learned: at α = 1 every extra worker doubles the work of all, so that
/// no parallel plan can win. A run further off says something broke (the machine was suspended,
/// another job took the cores), not that the workload changed.
pub(crate) const MAX_CONTENTION: f64 = 1.0;

/// How long a learned contention takes to halve. Contention between a workload's own workers
/// (memory bandwidth, locks) lasts as long as the machine; what other programs add lasts
/// minutes to hours. An hour lets a workload that runs often keep what it learned (each
/// parallel run measures it again), while one learned under a load that the probe missed is
/// mostly gone after an afternoon.
pub(crate) const CONTENTION_HALF_LIFE: Duration = Duration::from_secs(3600);

/// Other runnable threads by which two loads may differ and still be the same load: half a
/// thread (snapshots of a steady load count whole threads; a count scaled to the process's
/// CPUs moves by fractions), plus a tenth of the larger load (on a busy many-core machine a
/// thread more or less changes little).
pub(crate) const LOAD_TOLERANCE: f64 = 0.5;

/// Whether a contention learned with `learned` other runnable threads applies with `now`: they
/// differ by at most `LOAD_TOLERANCE` plus a tenth of the larger.
///
/// # Examples
///
/// ```
/// use amorsize::model::same_load;
///
/// assert!(same_load(0.0, 0.0));
/// // Learned beside one busy thread on a quiet machine: not the same.
/// assert!(!same_load(1.0, 0.0));
/// assert!(same_load(20.0, 21.0));
/// ```
pub fn same_load(learned: f64, now: f64) -> bool {
    let (a, b) = (sanitize_load(learned), sanitize_load(now));
    (a - b).abs() <= LOAD_TOLERANCE + 0.1 * a.max(b)
}

/// The contention `alpha`, learned `age` ago under `learned_load` other runnable threads, as it
/// applies now with `load_now`: 0 under another load ([`same_load`]), else halved every
/// `CONTENTION_HALF_LIFE`.
///
/// # Examples
///
/// ```
/// use amorsize::model::contention_now;
/// use std::time::Duration;
///
/// // Learned beside a busy thread (1 competing): not applied once it stopped.
/// assert_eq!(contention_now(0.8, 1.0, Duration::ZERO, 0.0), 0.0);
/// assert_eq!(contention_now(0.8, 1.0, Duration::ZERO, 1.0), 0.8);
/// // Half after one half-life (an hour).
/// assert!((contention_now(0.8, 0.0, Duration::from_secs(3600), 0.0) - 0.4).abs() < 1e-12);
/// ```
pub fn contention_now(alpha: f64, learned_load: f64, age: Duration, load_now: f64) -> f64 {
    if !same_load(learned_load, load_now) {
        return 0.0;
    }
    let halvings = age.as_secs_f64() / CONTENTION_HALF_LIFE.as_secs_f64();
    sanitize(alpha) * 0.5f64.powf(halvings)
}

/// A load as the rules above may use it: 0 when not a finite non-negative number.
fn sanitize_load(load: f64) -> f64 {
    if load.is_finite() && load > 0.0 {
        load
    } else {
        0.0
    }
}

/// The contention that would have predicted a run exactly: the run of the plan whose best
/// parallel prediction is `p`, on `busy` workers (those that got a chunk), took `wall`
/// seconds. `None` when the run cannot tell (fewer than 2 busy workers, no compute predicted,
/// or a time that is not a finite positive number). Below 0 (faster than predicted even without
/// contention) it is 0: the model has no term for workers helping each other.
///
/// # Examples
///
/// ```
/// use amorsize::model::contention_of_run;
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
/// use amorsize::model::update_contention;
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
/// serial, and serial runs would never measure it again; fading by `FADE` makes the planner
/// retry parallelism after a few serial runs, and a workload that really gains nothing learns
/// its contention again on that one parallel run.
///
/// # Examples
///
/// ```
/// use amorsize::model::fade_contention;
///
/// assert_eq!(fade_contention(0.5), 0.45);
/// assert_eq!(fade_contention(0.0), 0.0);
/// ```
pub fn fade_contention(previous: f64) -> f64 {
    sanitize(previous) * (1.0 - FADE)
}

/// What a workload's record holds of its contention, and the rule that updates it after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Learned {
    /// Parallel runs it was learned from, under [`load`](Self::load).
    pub runs: u64,
    /// The contention α.
    pub alpha: f64,
    /// The load (other runnable threads) it was learned under: a running mean over the runs.
    pub load: f64,
    /// When it was last learned, in seconds since the Unix epoch.
    pub at: i64,
}

/// What one finished run says of its workload's contention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunContention {
    /// Whether it ran in parallel.
    pub parallel: bool,
    /// The contention that would have predicted it exactly ([`contention_of_run`]), when it
    /// can tell.
    pub estimate: Option<f64>,
    /// The load (other runnable threads) it ran under.
    pub load: f64,
}

impl RunContention {
    /// What the run of `items` items, planned as `p` (its best parallel prediction, `None` for
    /// a serial plan), says after taking `wall` seconds; also returns the contention the
    /// prediction included per extra worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::model::{Candidate, Prediction, RunContention};
    ///
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
    /// let (run, used) = RunContention::of(Some(&p), 100, 1.5, 0.0);
    /// assert_eq!((run.estimate, used), (Some(0.5), 0.0));
    /// // 10 items in chunks of 10: one worker busy, nothing to learn.
    /// assert_eq!(RunContention::of(Some(&p), 10, 1.5, 0.0).0.estimate, None);
    /// ```
    pub fn of(p: Option<&Prediction>, items: usize, wall: Seconds, load: f64) -> (Self, f64) {
        let Some(p) = p else {
            let run = RunContention {
                parallel: false,
                estimate: None,
                load,
            };
            return (run, 0.0);
        };
        // The workers that got a chunk, as the model counts them.
        let busy = p
            .candidate
            .workers
            .get()
            .min(items.div_ceil(p.candidate.chunk.get()));
        let used = if busy > 1 && p.compute > 0.0 {
            p.contention / (p.compute * (busy - 1) as f64)
        } else {
            0.0
        };
        let run = RunContention {
            parallel: true,
            estimate: contention_of_run(p, busy, wall),
            load,
        };
        (run, used)
    }
}

impl Learned {
    /// Nothing learned yet, as of `now`.
    pub fn nothing(now: i64) -> Self {
        Learned {
            at: now,
            ..Learned::default()
        }
    }

    /// What is learned after `run`, at `now`: under the load it was learned under, the run's
    /// estimate joins the others ([`update_contention`]; the load too, as a running mean);
    /// under another load, it starts the learning over; a serial run fades it
    /// ([`fade_contention`]); a parallel run that cannot tell leaves it.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::model::{Learned, RunContention};
    ///
    /// let run = |estimate, load| RunContention { parallel: true, estimate: Some(estimate), load };
    /// let first = Learned::nothing(0).after(&run(0.4, 0.0), 10);
    /// assert_eq!((first.runs, first.alpha, first.at), (1, 0.4, 10));
    /// // Under another load (one more busy thread) the learning starts over.
    /// let other = first.after(&run(0.1, 1.0), 20);
    /// assert_eq!((other.runs, other.alpha, other.load), (1, 0.1, 1.0));
    /// let serial = RunContention { parallel: false, estimate: None, load: 0.0 };
    /// assert!((first.after(&serial, 30).alpha - 0.36).abs() < 1e-12);
    /// ```
    pub fn after(self, run: &RunContention, now: i64) -> Learned {
        match run.estimate {
            Some(estimate) if self.runs > 0 && same_load(self.load, run.load) => {
                let weight = (1.0 / (self.runs as f64 + 1.0)).max(MIN_WEIGHT);
                Learned {
                    runs: self.runs + 1,
                    alpha: update_contention(self.alpha, self.runs, estimate),
                    load: self.load + weight * (run.load - self.load),
                    at: now,
                }
            }
            Some(estimate) => Learned {
                runs: 1,
                alpha: update_contention(0.0, 0, estimate),
                load: run.load,
                at: now,
            },
            None if !run.parallel => Learned {
                alpha: fade_contention(self.alpha),
                ..self
            },
            None => Learned {
                alpha: sanitize(self.alpha),
                ..self
            },
        }
    }
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
        fn applies_only_under_the_same_load_and_fades_with_age(
            alpha in 0.0f64..1.0, learned in 0.0f64..64.0, now in 0.0f64..64.0,
            hours in 0.0f64..48.0, more in 0.0f64..48.0,
        ) {
            let age = |h: f64| Duration::from_secs_f64(h * 3600.0);
            let a = contention_now(alpha, learned, age(hours), now);
            prop_assert!((0.0..=alpha).contains(&a));
            if !same_load(learned, now) {
                prop_assert_eq!(a, 0.0);
            }
            // Older never applies more.
            prop_assert!(contention_now(alpha, learned, age(hours + more), now) <= a);
            // The same load: symmetric.
            prop_assert_eq!(same_load(learned, now), same_load(now, learned));
        }

        #[test]
        fn never_leaves_the_limits(prev in -1e3f64..1e3, runs in 0u64..5, est in -1e9f64..1e9) {
            for a in [update_contention(prev, runs, est), fade_contention(prev)] {
                prop_assert!(a.is_finite() && (0.0..=MAX_CONTENTION).contains(&a));
            }
        }
    }

    #[test]
    fn learned_at_one_of_two_cores_is_not_applied_at_two() {
        // One busy `yes` on a 2-core machine: the run learned α = 0.9 beside it.
        assert_eq!(contention_now(0.9, 1.0, Duration::from_secs(60), 0.0), 0.0);
        assert!(contention_now(0.9, 1.0, Duration::from_secs(60), 1.0) > 0.88);
        assert_eq!(contention_now(0.9, f64::NAN, Duration::ZERO, 0.0), 0.9);
        // A day later, even the same load keeps almost nothing of it.
        assert!(contention_now(0.9, 1.0, Duration::from_secs(86_400), 1.0) < 1e-6);
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
