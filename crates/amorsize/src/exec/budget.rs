//! A stream's memory budget ([`Options::memory_budget`]): the items it keeps in flight are
//! bounded by bytes as well as by count.

use crate::{Options, Plan};

impl Options {
    /// Bounds the memory a stream holds for its items in flight to about `bytes`: each item
    /// handed out counts its input's `size_of` and its result's bytes (heap included when
    /// [`Counting`](crate::alloc::Counting) measured it, else the `size_of`), and each worker
    /// running counts one item's peak (counted, else nothing). The tighter of this and
    /// [`Options::in_flight`] holds; a stream always keeps at least one chunk in flight, so a
    /// budget below one chunk still makes progress. Batches hold every result anyway, and a
    /// plan warns when those would fill memory. Streams of worker processes take their budget
    /// from [`ProcessOptions::memory_budget`](crate::exec::process::ProcessOptions::memory_budget).
    ///
    /// # Examples
    ///
    /// ```
    /// // Results of 4 KiB each, in at most about 64 KiB at a time.
    /// let sums: Vec<usize> = amorsize::Options::new()
    ///     .memory_budget(64 << 10)
    ///     .stream(0..100usize, |&i| [i as u8; 4096])
    ///     .map(|block| block.iter().map(|&b| usize::from(b)).sum())
    ///     .collect();
    /// assert_eq!(sums.len(), 100);
    /// ```
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.exec.memory_budget = Some(bytes);
        self
    }
}

/// The bound on a stream's items in flight for `options` with `plan`, whose input items take
/// `input_bytes` each: the caller's [`Options::in_flight`], the memory budget's, or the
/// tighter of both; `None` when neither is set.
pub(super) fn in_flight_limit(options: &Options, plan: &Plan, input_bytes: usize) -> Option<usize> {
    let by_count = options.exec.in_flight.map(|n| n.get());
    let Some(budget) = options.exec.memory_budget else {
        return by_count;
    };
    let (result, peak) = plan.workload().map_or((0, 0), |w| {
        (w.result_bytes, w.item_memory.map_or(0, |m| m.peak))
    });
    let running = peak.saturating_mul(plan.workers().get() as u64);
    let per_item = (input_bytes as u64).saturating_add(result).max(1);
    let items = budget.saturating_sub(running) / per_item;
    let by_budget = usize::try_from(items).unwrap_or(usize::MAX).max(1);
    Some(by_count.map_or(by_budget, |n| n.min(by_budget)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Costs, ItemMemory, Workload};
    use crate::plan::{decide, Caps};
    use std::num::NonZeroUsize;

    fn plan(result_bytes: u64, peak: u64) -> Plan {
        let w = Workload {
            result_bytes,
            item_memory: Some(ItemMemory {
                peak,
                ..ItemMemory::default()
            }),
            ..Workload::new(1000, 1e-3)
        };
        let options = Options::new().workers(NonZeroUsize::new(4).unwrap());
        decide(
            &w,
            &Costs::zero(Backend::Threads),
            &Caps::cores(4, "test"),
            &options,
        )
    }

    #[test]
    fn the_budget_bounds_items_by_their_bytes_less_what_the_running_ones_need() {
        let options = Options::new().memory_budget(100_000);
        // 4 workers × 5000 B running leave 80 000 B for items of 8 + 992 B.
        assert_eq!(in_flight_limit(&options, &plan(992, 5000), 8), Some(80));
        let both = options.in_flight(NonZeroUsize::new(10).unwrap());
        assert_eq!(in_flight_limit(&both, &plan(992, 5000), 8), Some(10));
        assert_eq!(in_flight_limit(&Options::new(), &plan(992, 5000), 8), None);
    }

    #[test]
    fn a_budget_below_one_item_still_lets_one_through() {
        let options = Options::new().memory_budget(10);
        assert_eq!(
            in_flight_limit(&options, &plan(1 << 20, 1 << 20), 8),
            Some(1)
        );
    }
}
