//! What worker processes cost on this machine, measured once per process: worker start, the
//! round trip of a chunk, and the pipe's throughput. Each figure passes a quality check
//! (plausible, repeats that agree) or is replaced by its named fallback, and the plan says so.
//!
//! - worker start: spawning this executable in worker mode until its hello arrives, five
//!   times one after another (up to one worker per CPU is kept in the global pool);
//! - chunk dispatch: the round trip of an empty chunk to a live worker (two pipe writes, two
//!   wake-ups), mean of a batch, median of the batches;
//! - transfer per byte: a chunk padded with 1 MiB against an empty one, per byte.

use super::pool::{Pool, Worker};
use super::wire::{self, Request};
use super::NOOP;
use crate::calibrate::Calibration;
use crate::model::{Backend, Costs, Fallbacks, Seconds};
use crate::stats::accept;
use crate::Result;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Fallback time to start one worker process: fork and exec of a Rust executable, dynamic
/// loading and the runtime's start take 1–10 ms on Linux (more for a large binary with a cold
/// page cache); the upper end is taken so that an unmeasured machine leans serial.
pub const FALLBACK_PROCESS_START: Seconds = 10e-3;

/// Fallback round trip of one chunk to a worker process: a pipe write and a wake-up each way,
/// 10–50 µs on Linux (`perf bench sched pipe` measures 2–10 µs per one-way hop, more with
/// postcard framing and a busy machine); the upper end is taken.
pub const FALLBACK_PROCESS_DISPATCH: Seconds = 50e-6;

/// Fallback time per byte through a pipe: Linux pipes move 1–10 GB/s with 64 KiB buffers
/// (pipe(7)); 1 GB/s is taken.
pub const FALLBACK_PIPE_PER_BYTE: Seconds = 1e-9;

/// Workers started to time the start; as many as the machine has CPUs are kept for later
/// runs, the others are stopped.
const STARTS: usize = 5;
/// Repeats of the dispatch and throughput timings; the median is kept.
const REPEATS: usize = 5;
/// Empty round trips averaged in one dispatch repeat.
const ROUND_TRIPS: usize = 20;
/// Padding of the throughput chunk.
const PADDING: usize = 1 << 20;

static PROCESSES: OnceLock<Calibration> = OnceLock::new();

/// The process backend's costs on this machine, measured on first use (which starts worker
/// processes into the [global](Pool::global) pool) and cached for the process.
///
/// # Errors
///
/// When no worker process can be started; nothing is cached then.
pub fn calibration() -> Result<&'static Calibration> {
    if let Some(c) = PROCESSES.get() {
        return Ok(c);
    }
    let measured = calibrate(Pool::global())?;
    Ok(PROCESSES.get_or_init(|| measured))
}

/// The process backend's costs if they have been measured already in this process.
pub fn calibration_if_measured() -> Option<&'static Calibration> {
    PROCESSES.get()
}

fn calibrate(pool: &Pool) -> Result<Calibration> {
    let began = Instant::now();
    let mut fallbacks = Fallbacks::default();
    let mut workers = Vec::with_capacity(STARTS);
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let worker = Worker::spawn()?;
        starts.extend(worker.start_time().map(|d| d.as_secs_f64()));
        workers.push(worker);
    }
    let worker_start = accept(&starts, 100e-6..=5.0).unwrap_or_else(|| {
        fallbacks.worker_start = true;
        FALLBACK_PROCESS_START
    });
    let timed = time_exchanges(&mut workers[0]);
    let worker_rss = timed.as_ref().and_then(|t| t.2);
    let (dispatch, per_byte) = match timed {
        Some((empty, padded, _)) => {
            let per_byte: Vec<Seconds> = padded
                .iter()
                .zip(&empty)
                .map(|(p, e)| (p - e) / PADDING as f64)
                .collect();
            (
                accept(&empty, 1e-6..=10e-3),
                accept(&per_byte, 10e-12..=100e-9),
            )
        }
        None => (None, None),
    };
    let chunk_dispatch = dispatch.unwrap_or_else(|| {
        fallbacks.chunk_dispatch = true;
        FALLBACK_PROCESS_DISPATCH
    });
    let transfer_per_byte = per_byte.unwrap_or_else(|| {
        fallbacks.transfer_per_byte = true;
        FALLBACK_PIPE_PER_BYTE
    });
    let keep = crate::probe::machine().logical_cpus().max(1);
    for (i, worker) in workers.into_iter().enumerate() {
        if i < keep {
            pool.put(worker);
        } else {
            worker.close();
        }
    }
    let costs = Costs {
        backend: Backend::Processes,
        worker_start,
        chunk_dispatch,
        transfer_per_byte,
        fallbacks,
    };
    Ok(Calibration {
        worker_rss,
        ..Calibration::new(costs, began.elapsed())
    })
}

/// Per repeat: the mean round trip of an empty chunk, and the round trip of a padded one;
/// and the worker's peak RSS it reported at the end. `None` if the worker failed (its
/// figures then fall back).
fn time_exchanges(worker: &mut Worker) -> Option<(Vec<Seconds>, Vec<Seconds>, Option<u64>)> {
    let mut header = Vec::new();
    let request = Request::Chunk {
        function: NOOP,
        first: 0,
        count: 0,
    };
    wire::encode_into(&request, &mut header).ok()?;
    let padding = vec![0u8; PADDING];
    let mut response = Vec::new();
    let timeout = Some(Duration::from_secs(10));
    // One round trip first, so that the worker's pages and buffers are warm.
    worker.exchange(&[&header], timeout, &mut response).ok()?;
    let mut empty = Vec::with_capacity(REPEATS);
    let mut padded = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let start = Instant::now();
        for _ in 0..ROUND_TRIPS {
            worker.exchange(&[&header], timeout, &mut response).ok()?;
        }
        empty.push(start.elapsed().as_secs_f64() / ROUND_TRIPS as f64);
        let start = Instant::now();
        worker
            .exchange(&[&header, &padding], timeout, &mut response)
            .ok()?;
        padded.push(start.elapsed().as_secs_f64());
    }
    let peak_rss = match postcard::take_from_bytes::<wire::Response>(&response) {
        Ok((wire::Response::Chunk { peak_rss, .. }, _)) if peak_rss > 0 => Some(peak_rss),
        _ => None,
    };
    Some((empty, padded, peak_rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_the_process_fallbacks_it_used() {
        let costs = Costs {
            backend: Backend::Processes,
            worker_start: FALLBACK_PROCESS_START,
            chunk_dispatch: FALLBACK_PROCESS_DISPATCH,
            transfer_per_byte: FALLBACK_PIPE_PER_BYTE,
            fallbacks: Fallbacks {
                worker_start: true,
                chunk_dispatch: true,
                transfer_per_byte: true,
            },
        };
        let text: Vec<String> = crate::plan::fallback_warnings(&costs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(text.len(), 3, "{text:?}");
        for name in [
            "FALLBACK_PROCESS_START",
            "FALLBACK_PROCESS_DISPATCH",
            "FALLBACK_PIPE_PER_BYTE",
        ] {
            assert!(text.iter().any(|t| t.contains(name)), "{name} in {text:?}");
        }
    }
}
