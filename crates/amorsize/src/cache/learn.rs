//! The cache as the pipeline uses it: the process's cache ([`with_default`](super::with_default))
//! read before planning and written after running. Each function is one call at its place in
//! `probe`, `plan` or `exec`, and does nothing when the cache is off or unusable.

use super::{with_default, Measured, WorkloadHistory, WorkloadKey};
use crate::model::{Backend, Costs, Workload};
use crate::Plan;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Workloads too short to record ([`MIN_WORTH`]) whose contention this process remembers, at
/// most; the least recently taught is forgotten beyond it.
pub const SHORT_REMEMBERED: usize = 64;

/// What this process learned of a short workload: its contention, how many parallel runs
/// taught it, the load then, and when.
struct Short {
    key: WorkloadKey,
    contention: f64,
    learned: u64,
    load: f64,
    at: Instant,
}

/// Contention learned from runs too short to be worth a write to the file: kept in memory, so
/// that a short workload called again in this process (a loop of small batches) plans with
/// what its last parallel run measured instead of repeating a loss. Most recently taught last.
static SHORT: Mutex<Vec<Short>> = Mutex::new(Vec::new());

/// The contention this process learned for the short workload `key`, as it applies under the
/// load now (read only when there is something to apply it to); `None` when it learned none.
pub(crate) fn recall_short(key: &WorkloadKey, load_now: impl FnOnce() -> f64) -> Option<f64> {
    let (contention, load, age) = {
        let short = SHORT.lock().unwrap_or_else(PoisonError::into_inner);
        let s = short.iter().find(|s| s.key == *key)?;
        (s.contention, s.load, s.at.elapsed())
    };
    Some(super::contention_now(contention, load, age, load_now()))
}

/// Learns from a short run of `key` (under [`MIN_WORTH`]): a parallel run moves the
/// contention toward what would have predicted it, a serial one fades it (as for the runs the
/// file records).
fn remember_short(key: &WorkloadKey, plan: &Plan, wall: Duration, items: usize) {
    let load = plan
        .caps()
        .and_then(|c| c.load.as_ref())
        .map_or(0.0, |l| l.competing);
    let estimate = match plan.prediction() {
        Some(p) if plan.is_parallel() => {
            let busy = p
                .candidate
                .workers
                .get()
                .min(items.div_ceil(p.candidate.chunk.get()));
            super::contention_of_run(p, busy, wall.as_secs_f64())
        }
        _ => None,
    };
    let mut short = SHORT.lock().unwrap_or_else(PoisonError::into_inner);
    let at = short.iter().position(|s| s.key == *key);
    let mut entry = match (at, estimate) {
        (Some(at), _) => short.remove(at),
        // Nothing learned and nothing to fade.
        (None, None) => return,
        (None, Some(_)) => Short {
            key: key.clone(),
            contention: 0.0,
            learned: 0,
            load,
            at: Instant::now(),
        },
    };
    match estimate {
        Some(e) => {
            entry.contention = super::update_contention(entry.contention, entry.learned, e);
            entry.learned += 1;
            entry.load = load;
            entry.at = Instant::now();
        }
        None if !plan.is_parallel() => entry.contention = super::fade_contention(entry.contention),
        None => {}
    }
    short.push(entry);
    if short.len() > SHORT_REMEMBERED {
        short.remove(0);
    }
}

/// How long a serial decision from a full sample stands for the same workload called again
/// in this process: 1 s, short against how long a load on the machine lasts, long against a
/// loop of small batches. Past it, the next call samples and plans afresh.
pub const RECALL_FOR: Duration = Duration::from_secs(1);

/// Calls that may reuse one serial decision before the next one samples and plans afresh: 16,
/// so that a workload that has changed shape is seen within a few calls, while a loop of small
/// batches pays the sample on one call in 17.
pub const RECALL_TIMES: u32 = 16;

/// How much slower than at the decision the glance's items may be for the decision to stand:
/// twice. A glance times eight items across the input one by one, each often a miss to memory,
/// so its figure varies by that much from call to call without the work changing.
pub const RECALL_GLANCE_FACTOR: f64 = 2.0;

/// A serial decision this process made from a full sample.
struct Recent {
    key: WorkloadKey,
    items: usize,
    glance_item: f64,
    threshold: f64,
    serial: f64,
    best_speedup: f64,
    at: Instant,
    reused: u32,
}

/// Serial decisions from full samples, most recent last, at most [`SHORT_REMEMBERED`].
static RECENT: Mutex<Vec<Recent>> = Mutex::new(Vec::new());

/// What [`recall_serial`] found: a serial decision that stands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recalled {
    /// The serial time of the input now, at the decision's time per item.
    pub(crate) serial: f64,
    /// The best speedup the decision found for a parallel plan.
    pub(crate) best_speedup: f64,
    /// Seconds since the decision.
    pub(crate) age: f64,
    /// Calls that reused it, this one included.
    pub(crate) reused: u32,
}

/// Notes the plan a full sample of `key` led to, for `items` items whose glance took
/// `glance_item` each, under the caller's `threshold`: a serial plan refused for the work's
/// size (not for a limit or the load of the moment, which change) is kept for
/// [`recall_serial`]; any other plan forgets the key's.
pub(crate) fn note_plan(
    key: &WorkloadKey,
    items: usize,
    glance_item: f64,
    threshold: f64,
    plan: &Plan,
) {
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    recent.retain(|r| r.key != *key);
    let (serial, best_speedup) = match plan.reason() {
        crate::plan::Reason::TooSmall {
            serial,
            best_speedup,
            ..
        } => (*serial, *best_speedup),
        crate::plan::Reason::TooFast { best_speedup, .. } => (
            plan.predicted_serial_time()
                .map_or(0.0, |d| d.as_secs_f64()),
            *best_speedup,
        ),
        _ => return,
    };
    if plan.is_parallel() || items == 0 || !glance_item.is_finite() || glance_item <= 0.0 {
        return;
    }
    recent.push(Recent {
        key: key.clone(),
        items,
        glance_item,
        threshold,
        serial,
        best_speedup,
        at: Instant::now(),
        reused: 0,
    });
    if recent.len() > SHORT_REMEMBERED {
        recent.remove(0);
    }
}

/// The serial decision that stands for `items` items of `key` whose glance took `glance_item`
/// each, under `threshold`: one noted within [`RECALL_FOR`], reused fewer than
/// [`RECALL_TIMES`] times, for at most a quarter more items, as high a threshold, and items
/// at most [`RECALL_GLANCE_FACTOR`] times slower at the glance. Counts the reuse.
pub(crate) fn recall_serial(
    key: &WorkloadKey,
    items: usize,
    glance_item: f64,
    threshold: f64,
) -> Option<Recalled> {
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    let at = recent.iter().position(|r| r.key == *key)?;
    let r = &mut recent[at];
    let age = r.at.elapsed();
    let stands = age < RECALL_FOR
        && r.reused < RECALL_TIMES
        && items.saturating_mul(4) <= r.items.saturating_mul(5)
        && threshold >= r.threshold
        && glance_item <= r.glance_item * RECALL_GLANCE_FACTOR;
    if !stands {
        // Expired or contradicted: the next plan samples and notes afresh.
        recent.remove(at);
        return None;
    }
    r.reused += 1;
    Some(Recalled {
        serial: r.serial * items as f64 / r.items as f64,
        best_speedup: r.best_speedup,
        age: age.as_secs_f64(),
        reused: r.reused,
    })
}

/// Work shorter than this is neither looked up nor recorded: a recorded run costs a write
/// transaction (about half a millisecond on a loaded 2-core machine), which must stay a small
/// part of the run it records, and a decision this small is not worth remembering.
pub const MIN_WORTH: Duration = Duration::from_millis(10);

/// The calibration of `backend` remembered for this machine, when fresh; the overhead probes
/// are then skipped.
pub(crate) fn recall_costs(backend: Backend) -> Option<Costs> {
    with_default(|c| c.load_costs(backend))
        .flatten()
        // A fallback is not a measurement; none is stored, and none is trusted.
        .filter(|c| !c.fallbacks.any())
}

/// Remembers a calibration that was measured; fallbacks are not remembered, so that the next
/// process measures again.
pub(crate) fn remember_costs(costs: &Costs) {
    if !costs.fallbacks.any() {
        with_default(|c| c.store_costs(costs));
    }
}

/// What past runs of the workload `key` measured on this machine, for a workload worth it: the
/// cache is not read for work whose serial time (as the sample predicts it) is under
/// [`MIN_WORTH`]. Its contention is the part that applies under the load other programs put
/// on the cores now ([`WorkloadHistory::contention_at`]).
pub(crate) fn recall(key: &WorkloadKey, workload: &Workload) -> Option<WorkloadHistory> {
    if workload.serial_time() < MIN_WORTH.as_secs_f64() {
        return None;
    }
    let mut history = with_default(|c| c.workload(key)).flatten()?;
    let load_now = crate::plan::Caps::from_machine(crate::probe::machine())
        .capacity()
        .competing;
    history.contention = history.contention_at(load_now);
    Some(history)
}

/// Records a finished run of `key`: its `plan` ran `items` items in `wall`. Skipped when it
/// ran nested in another run (on threads it shared, so its time says nothing of its own plan),
/// when its plan was not made from a sample, or when it took less than [`MIN_WORTH`].
pub(crate) fn remember(key: &WorkloadKey, plan: &Plan, wall: Duration, items: usize, nested: bool) {
    let Some(sample) = plan.sample() else {
        return;
    };
    if nested {
        return;
    }
    if wall < MIN_WORTH {
        remember_short(key, plan, wall, items);
        return;
    }
    let measured = Measured { wall, items };
    with_default(|c| c.record_run(key, sample, plan, &measured));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backend;
    use crate::plan::{decide, Caps};
    use crate::Options;

    /// The memory is the process's: tests that fill it take turns.
    static TURN: Mutex<()> = Mutex::new(());

    fn parallel_plan() -> Plan {
        let costs = Costs {
            worker_start: 5e-6,
            chunk_dispatch: 1e-6,
            ..Costs::zero(Backend::Threads)
        };
        let plan = decide(
            &Workload::new(100_000, 20e-9),
            &costs,
            &Caps::cores(2, "test"),
            &Options::new(),
        );
        assert!(plan.is_parallel(), "{plan}");
        let mut plan = plan;
        // Only plans made from a sample teach anything.
        plan.set_sample(crate::sample::Sample::default());
        plan
    }

    #[test]
    fn a_short_run_slower_than_predicted_is_remembered_in_memory_and_fades_on_serial_runs() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("short-and-slow");
        let plan = parallel_plan();
        assert_eq!(recall_short(&key, || 0.0), None);
        // Predicted about 1 ms; it took 3.
        let predicted = plan.predicted_time().unwrap();
        assert!(predicted < MIN_WORTH / 3);
        remember(&key, &plan, predicted * 3, 100_000, false);
        let alpha = recall_short(&key, || 0.0).expect("learned");
        assert!(alpha > 0.5, "{alpha}");
        // Not applied under another load.
        assert_eq!(recall_short(&key, || 3.0), Some(0.0));
        // A serial run fades it.
        let serial = Plan::fixed(std::num::NonZeroUsize::MIN, std::num::NonZeroUsize::MIN);
        let mut faded = serial.clone();
        faded.set_sample(crate::sample::Sample::default());
        remember(&key, &faded, predicted, 100_000, false);
        let after = recall_short(&key, || 0.0).expect("still known");
        assert!(after < alpha && after > 0.0);
        // A nested run teaches nothing.
        let other = WorkloadKey::named("short-nested");
        remember(&other, &plan, predicted * 3, 100_000, true);
        assert_eq!(recall_short(&other, || 0.0), None);
    }

    fn serial_plan() -> Plan {
        let costs = Costs {
            worker_start: 50e-6,
            ..Costs::zero(Backend::Threads)
        };
        let plan = decide(
            &Workload::new(1000, 20e-9),
            &costs,
            &Caps::cores(2, "test"),
            &Options::new(),
        );
        assert!(
            matches!(plan.reason(), crate::plan::Reason::TooSmall { .. }),
            "{plan}"
        );
        plan
    }

    #[test]
    fn a_serial_decision_stands_for_a_few_calls_while_the_glance_agrees() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("recalled-serial");
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan());
        let r = recall_serial(&key, 1000, 150e-9, 1.2).expect("stands");
        assert_eq!(r.reused, 1);
        assert!(r.best_speedup < 1.2);
        // Items slower at the glance than the factor allows: planned afresh, and forgotten.
        assert!(recall_serial(&key, 1000, 100e-9 * RECALL_GLANCE_FACTOR * 1.1, 1.2).is_none());
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        // More items than a quarter beyond, or a lower threshold: planned afresh.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan());
        assert!(recall_serial(&key, 1300, 100e-9, 1.2).is_none());
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan());
        assert!(recall_serial(&key, 1000, 100e-9, 1.1).is_none());
        // At most RECALL_TIMES reuses, then a fresh plan.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan());
        for k in 1..=RECALL_TIMES {
            assert_eq!(
                recall_serial(&key, 1000, 100e-9, 1.2).map(|r| r.reused),
                Some(k)
            );
        }
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        // A parallel plan for the key forgets the serial one.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan());
        note_plan(&key, 1000, 100e-9, 1.2, &parallel_plan());
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
    }

    #[test]
    fn short_memory_is_bounded() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = parallel_plan();
        let wall = plan.predicted_time().unwrap() * 2;
        for i in 0..SHORT_REMEMBERED + 10 {
            remember(
                &WorkloadKey::named(format!("bounded-{i}")),
                &plan,
                wall,
                100_000,
                false,
            );
        }
        let held = SHORT.lock().unwrap().len();
        assert!(held <= SHORT_REMEMBERED);
        assert!(recall_short(&WorkloadKey::named("bounded-0"), || 0.0).is_none());
    }
}
