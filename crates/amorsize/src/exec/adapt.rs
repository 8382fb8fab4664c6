//! Online chunk-size adaptation: when the measured chunk durations drift from the prediction,
//! the chunk size of the remaining work changes.
//!
//! The rule follows joblib's auto-batching (`BatchCompletionCallBack` and
//! `_BatchedCalls` in joblib/parallel.py): a moving average of the measured durations
//! (weights 0.8 old / 0.2 new), and a batch size that changes by at most a factor of two per
//! step. Here the average is kept per item, so that it stays meaningful across chunk sizes,
//! it takes in the median of the last three chunks (so that one chunk stalled by the scheduler
//! does not swing it), and the target is the chunk duration the plan predicted.
//!
//! The rule itself, [`next_chunk`], is a pure function; [`Adapter`] only feeds it measurements.

use crate::model::Seconds;
use crate::report::ChunkAdjustment;
use crate::stats::median_of_three;
use std::num::NonZeroUsize;
use std::time::Duration;

/// How far (as a factor, either way) the expected chunk duration may drift from the target
/// before the chunk size changes.
pub(crate) const DRIFT: f64 = 2.0;

/// Weight of the newest chunk in the moving average of the per-item time (joblib's 0.2).
pub(crate) const SMOOTHING: f64 = 0.2;

/// The chunk size for the remaining work, given the current chunk size, the moving average of
/// the per-item time, the target chunk duration and an optional upper bound (so that a growing
/// chunk still leaves every worker something to do).
///
/// Unchanged while `avg_item × chunk` stays within a factor [`DRIFT`] of `target`; otherwise
/// moves toward `target ÷ avg_item`, at most halving or doubling in one step. Never below 1.
pub(crate) fn next_chunk(
    chunk: usize,
    avg_item: Seconds,
    target: Seconds,
    cap: Option<usize>,
) -> usize {
    let chunk = chunk.max(1);
    if !(avg_item > 0.0 && avg_item.is_finite() && target > 0.0 && target.is_finite()) {
        return chunk;
    }
    let expected = avg_item * chunk as f64;
    // The chunk size that would take `target` at the measured rate, as a real number: it is
    // only compared, then the step bounds decide.
    let ideal = target / avg_item;
    if expected > DRIFT * target {
        let halved = chunk.div_ceil(2);
        (ideal.ceil() as usize).clamp(halved, chunk).max(1)
    } else if expected * DRIFT < target {
        let doubled = chunk.saturating_mul(2);
        let grown = (ideal.floor() as usize).clamp(chunk, doubled);
        match cap {
            Some(cap) => grown.min(cap.max(chunk)),
            None => grown,
        }
    } else {
        chunk
    }
}

/// Feeds measured chunk durations to [`next_chunk`] and records each change it makes.
#[derive(Clone, Debug)]
pub(crate) struct Adapter {
    predicted_item: Seconds,
    target: Seconds,
    avg_item: Seconds,
    /// Per-item times of the last three chunks, newest last.
    recent: [Seconds; 3],
    chunk: usize,
    /// The largest chunk the run allows, if any (a stream's memory bound).
    most: Option<usize>,
    done: usize,
    adjustments: Vec<ChunkAdjustment>,
}

impl Adapter {
    /// An adapter for a plan that predicted `item_time` per item and chunks of `chunk` items.
    /// `None` when there is no usable prediction to hold the run to.
    pub(crate) fn new(item_time: Option<Duration>, chunk: NonZeroUsize) -> Option<Adapter> {
        let predicted_item = item_time?.as_secs_f64();
        if !(predicted_item > 0.0 && predicted_item.is_finite()) {
            return None;
        }
        Some(Adapter {
            predicted_item,
            target: predicted_item * chunk.get() as f64,
            avg_item: predicted_item,
            recent: [predicted_item; 3],
            chunk: chunk.get(),
            most: None,
            done: 0,
            adjustments: Vec::new(),
        })
    }

    /// Never grows the chunk beyond `most` items (nor beyond its current size, if larger):
    /// for a run whose memory is bounded by its chunk size.
    pub(crate) fn at_most(mut self, most: NonZeroUsize) -> Adapter {
        self.most = Some(most.get());
        self
    }

    /// Takes one finished chunk of `items` items that took `elapsed`; returns the new chunk
    /// size when it changed. `remaining` (items not yet handed out, when known) and `workers`
    /// bound growth so that every worker keeps a chunk.
    pub(crate) fn observe(
        &mut self,
        items: usize,
        elapsed: Duration,
        remaining: Option<usize>,
        workers: usize,
    ) -> Option<usize> {
        if items == 0 {
            return None;
        }
        self.done += items;
        let per_item = elapsed.as_secs_f64() / items as f64;
        self.recent = [self.recent[1], self.recent[2], per_item];
        let [a, b, c] = self.recent;
        self.avg_item = (1.0 - SMOOTHING) * self.avg_item + SMOOTHING * median_of_three(a, b, c);
        let share = remaining.map(|r| (r / workers.max(1)).max(1));
        let cap = match (share, self.most) {
            (Some(share), Some(most)) => Some(share.min(most)),
            (share, most) => share.or(most),
        };
        let next = next_chunk(self.chunk, self.avg_item, self.target, cap);
        if next == self.chunk {
            return None;
        }
        self.adjustments.push(ChunkAdjustment {
            after_items: self.done,
            from: self.chunk,
            to: next,
            measured_item_time: Duration::from_secs_f64(self.avg_item),
            predicted_item_time: Duration::from_secs_f64(self.predicted_item),
        });
        self.chunk = next;
        Some(next)
    }

    /// The changes made so far, in order.
    pub(crate) fn adjustments(&self) -> &[ChunkAdjustment] {
        &self.adjustments
    }

    /// The changes made, in order.
    pub(crate) fn into_adjustments(self) -> Vec<ChunkAdjustment> {
        self.adjustments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: f64 = 1e-3;

    #[test]
    fn on_target_keeps_the_chunk() {
        assert_eq!(next_chunk(100, 0.01 * MS, 1.0 * MS, None), 100);
        // Within the drift factor either way.
        assert_eq!(next_chunk(100, 0.019 * MS, 1.0 * MS, None), 100);
        assert_eq!(next_chunk(100, 0.006 * MS, 1.0 * MS, None), 100);
    }

    #[test]
    fn slow_chunks_halve_at_most() {
        // Ten times slower than predicted: halve, not divide by ten.
        assert_eq!(next_chunk(100, 0.1 * MS, 1.0 * MS, None), 50);
        // Three times slower: the ideal (34) is within one halving.
        assert_eq!(next_chunk(100, 0.03 * MS, 1.0 * MS, None), 50);
        assert_eq!(next_chunk(1, 1.0, 1.0 * MS, None), 1);
    }

    #[test]
    fn fast_chunks_double_at_most_and_respect_the_cap() {
        assert_eq!(next_chunk(100, 0.0001 * MS, 1.0 * MS, None), 200);
        assert_eq!(next_chunk(100, 0.003 * MS, 1.0 * MS, None), 200);
        assert_eq!(next_chunk(100, 0.0001 * MS, 1.0 * MS, Some(150)), 150);
        // A cap below the current chunk never shrinks it: growth is what the cap bounds.
        assert_eq!(next_chunk(100, 0.0001 * MS, 1.0 * MS, Some(10)), 100);
    }

    #[test]
    fn unusable_figures_keep_the_chunk() {
        assert_eq!(next_chunk(7, 0.0, 1.0, None), 7);
        assert_eq!(next_chunk(7, f64::NAN, 1.0, None), 7);
        assert_eq!(next_chunk(7, 1.0, 0.0, None), 7);
        assert_eq!(next_chunk(0, 1.0, 1.0, None), 1);
    }

    #[test]
    fn one_outlier_changes_nothing() {
        let mut a = Adapter::new(
            Some(Duration::from_micros(10)),
            NonZeroUsize::new(100).unwrap(),
        )
        .unwrap();
        assert_eq!(a.observe(100, Duration::from_millis(1), None, 2), None);
        // One chunk 25× slower (a stalled thread), then back to normal.
        assert_eq!(a.observe(100, Duration::from_millis(25), None, 2), None);
        assert_eq!(a.observe(100, Duration::from_millis(1), None, 2), None);
        assert!(a.adjustments().is_empty());
    }

    #[test]
    fn adapter_records_each_change() {
        let mut a = Adapter::new(
            Some(Duration::from_micros(10)),
            NonZeroUsize::new(100).unwrap(),
        )
        .unwrap();
        // Chunks run at the predicted rate: nothing changes.
        assert_eq!(a.observe(100, Duration::from_millis(1), None, 2), None);
        // Then items turn out 100× slower, and stay so: halving from the second slow chunk on.
        let mut changes = Vec::new();
        for _ in 0..6 {
            let chunk = a.adjustments().last().map_or(100, |c| c.to);
            let took = Duration::from_millis(chunk as u64);
            changes.extend(a.observe(chunk, took, None, 2));
        }
        assert!(changes.len() >= 3, "{changes:?}");
        assert_eq!(changes[0], 50);
        assert!(changes.windows(2).all(|w| w[1] * 2 >= w[0] && w[1] < w[0]));
        let adj = a.clone().into_adjustments();
        assert_eq!(adj.len(), changes.len());
        assert_eq!((adj[0].from, adj[0].to), (100, 50));
        assert!(adj[0].after_items <= 300);
        assert!(adj[0].measured_item_time > adj[0].predicted_item_time);
    }

    #[test]
    fn growth_stops_at_the_largest_chunk_allowed() {
        let mut a = Adapter::new(
            Some(Duration::from_micros(10)),
            NonZeroUsize::new(100).unwrap(),
        )
        .unwrap()
        .at_most(NonZeroUsize::new(300).unwrap());
        // Items 1000× faster than predicted: the chunk doubles up to the bound, then stays.
        let mut chunk = 100;
        for _ in 0..20 {
            let took = Duration::from_nanos(10 * chunk as u64);
            if let Some(next) = a.observe(chunk, took, None, 2) {
                chunk = next;
            }
        }
        assert_eq!(chunk, 300);
        let sizes: Vec<usize> = a.adjustments().iter().map(|c| c.to).collect();
        assert_eq!(sizes, [200, 300]);
        // With few items left, each worker's share of them binds before the bound.
        let mut b = Adapter::new(
            Some(Duration::from_micros(10)),
            NonZeroUsize::new(100).unwrap(),
        )
        .unwrap()
        .at_most(NonZeroUsize::new(1000).unwrap());
        let fast = Duration::from_micros(1);
        let first = (0..20).find_map(|_| b.observe(100, fast, Some(300), 2));
        assert_eq!(first, Some(150));
    }

    #[test]
    fn no_prediction_no_adapter() {
        let one = NonZeroUsize::MIN;
        assert!(Adapter::new(None, one).is_none());
        assert!(Adapter::new(Some(Duration::ZERO), one).is_none());
    }

    proptest! {
        #[test]
        fn one_step_changes_by_at_most_two(
            chunk in 1usize..1_000_000,
            avg in 1e-9f64..1.0,
            target in 1e-6f64..10.0,
            cap in proptest::option::of(1usize..1_000_000),
        ) {
            let next = next_chunk(chunk, avg, target, cap);
            prop_assert!(next >= 1);
            prop_assert!(next <= chunk.saturating_mul(2));
            prop_assert!(next >= chunk.div_ceil(2));
        }

        #[test]
        fn changes_move_toward_the_target(
            chunk in 1usize..1_000_000,
            avg in 1e-9f64..1.0,
            target in 1e-6f64..10.0,
        ) {
            let next = next_chunk(chunk, avg, target, None);
            let before = (avg * chunk as f64 - target).abs();
            let after = (avg * next as f64 - target).abs();
            // Never further from the target than before, up to one item of rounding.
            prop_assert!(after <= before + avg);
        }
    }
}
