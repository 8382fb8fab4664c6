//! What a worker process needs in memory: the peak resident set its workers reported for a
//! function (remembered per function in this process), or, before any ran it, an idle
//! worker's peak measured by the calibration plus one item's counted peak.

use crate::calibrate::Calibration;
use crate::model::{MemorySource, Workload};
use std::collections::HashMap;
use std::sync::Mutex;

/// The highest peak RSS the workers reported per function name, in this process.
static PEAKS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

/// Remembers that a worker that ran `function` peaked at `bytes`.
pub(super) fn note(function: &str, bytes: u64) {
    let mut peaks = PEAKS.lock().unwrap_or_else(|e| e.into_inner());
    let peak = peaks
        .get_or_insert_with(HashMap::new)
        .entry(function.to_owned())
        .or_insert(0);
    *peak = (*peak).max(bytes);
}

/// The highest peak resident set size, in bytes, that worker processes reported after running
/// chunks of the registered function `function` in this process; `None` before any ran it.
///
/// A worker's peak covers its whole life, so a worker that ran a larger function first
/// reports that one's: the figure errs towards fewer workers.
///
/// # Examples
///
/// ```
/// assert_eq!(amorsize::exec::process::measured_peak_rss("never-registered"), None);
/// ```
pub fn measured_peak_rss(function: &str) -> Option<u64> {
    let peaks = PEAKS.lock().unwrap_or_else(|e| e.into_inner());
    peaks.as_ref()?.get(function).copied()
}

/// Sets what one worker needs of `workload` running `function`: its workers' measured peak
/// when they ran it before, else an idle worker's measured peak (from `calibration`, when it
/// was read) plus one item's counted peak. Left unmeasured when neither is known.
pub(super) fn estimate(workload: &mut Workload, function: &str, calibration: Option<&Calibration>) {
    let item = workload.item_memory.map_or(0, |m| m.peak);
    let baseline = calibration.and_then(|c| c.worker_rss);
    let (bytes, source) = match (measured_peak_rss(function), baseline) {
        // The item's peak on top of the measured one: a worker's figure may come from chunks
        // of lighter items than the heaviest sampled.
        (Some(peak), _) => (
            peak.max(baseline.unwrap_or(0).saturating_add(item)),
            MemorySource::WorkerPeak,
        ),
        (None, Some(base)) => (base.saturating_add(item), MemorySource::WorkerBaseline),
        (None, None) => (0, MemorySource::NotMeasured),
    };
    workload.worker_memory = bytes;
    workload.memory_source = source;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ItemMemory;

    #[test]
    fn a_measured_peak_wins_over_the_idle_estimate_when_larger() {
        let mut w = Workload {
            item_memory: Some(ItemMemory {
                peak: 10,
                ..ItemMemory::default()
            }),
            ..Workload::default()
        };
        estimate(&mut w, "memory-test-unknown", None);
        assert_eq!(
            (w.worker_memory, w.memory_source),
            (0, MemorySource::NotMeasured)
        );
        note("memory-test-known", 500);
        note("memory-test-known", 300);
        assert_eq!(measured_peak_rss("memory-test-known"), Some(500));
        estimate(&mut w, "memory-test-known", None);
        assert_eq!(
            (w.worker_memory, w.memory_source),
            (500, MemorySource::WorkerPeak)
        );
    }
}
