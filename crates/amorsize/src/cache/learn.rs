//! The cache as the pipeline uses it: the process's cache ([`with_default`](super::with_default))
//! read before planning and written after running. Each function is one call at its place in
//! `probe`, `plan` or `exec`, and does nothing when the cache is off or unusable.

use super::{with_default, Measured, WorkloadHistory, WorkloadKey};
use crate::model::{Backend, Costs, Workload};
use crate::Plan;
use std::time::Duration;

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
    if nested || wall < MIN_WORTH {
        return;
    }
    let measured = Measured { wall, items };
    with_default(|c| c.record_run(key, sample, plan, &measured));
}
