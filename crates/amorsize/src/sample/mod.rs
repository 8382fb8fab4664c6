//! Runs the user's function on a few items and measures it. Sampled results are kept, so that
//! execution never runs an item twice.

use crate::model::Seconds;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// What the sample measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Items measured.
    pub count: usize,
    /// Mean wall time of one item.
    pub item_time: Seconds,
    /// Coefficient of variation of the per-item wall time.
    pub cv: f64,
}

/// The results of the sampled items, with their input indices, and the measurements.
#[derive(Debug)]
pub struct Sampled<R> {
    /// `(input index, result)` in increasing index order.
    pub results: Vec<(usize, R)>,
    /// What the sample measured.
    pub figures: Sample,
}

/// How many items a sample takes at most.
const MAX_SAMPLE_ITEMS: usize = 5;

/// Samples a slice at indices spread across it.
pub(crate) fn sample_slice<T, R, F>(items: &[T], f: &F) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
{
    let n = items.len();
    let k = n.min(MAX_SAMPLE_ITEMS);
    let indices: Vec<usize> = (0..k).map(|j| j * n / k.max(1)).collect();
    measure(indices.into_iter().map(|i| (i, &items[i])), f)
}

/// Samples the first items of an iterator; the items pulled are returned beside the results.
pub(crate) fn sample_iter<I, R, F>(iter: &mut I, f: &F) -> Result<Sampled<R>>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    let prefix: Vec<I::Item> = iter.by_ref().take(MAX_SAMPLE_ITEMS).collect();
    measure(prefix.iter().enumerate(), f)
}

fn measure<'a, T: 'a, R, F>(
    items: impl Iterator<Item = (usize, &'a T)>,
    f: &F,
) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
{
    let mut results = Vec::new();
    let mut times = Vec::new();
    for (index, item) in items {
        let start = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| f(item)))
            .map_err(|payload| Error::panicked(index, payload.as_ref()))?;
        times.push(start.elapsed().as_secs_f64());
        results.push((index, r));
    }
    let count = times.len();
    let mean = if count == 0 {
        0.0
    } else {
        times.iter().sum::<f64>() / count as f64
    };
    let var = if count < 2 {
        0.0
    } else {
        times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (count - 1) as f64
    };
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    Ok(Sampled {
        results,
        figures: Sample {
            count,
            item_time: mean,
            cv,
        },
    })
}
