//! Raw timings of the thread backend's overheads, for the probe's calibration
//! ([`probe::overhead`](crate::probe::overhead) holds the protocol: repeats, quality checks,
//! fallbacks, the cache). Here because only `exec` starts threads.

use rayon::prelude::*;
use std::time::Instant;

/// Wall time, in seconds, to build a rayon pool of `workers` threads, run a no-op on every
/// thread (so that each has really started) and drop the pool; `None` when the pool cannot be
/// built (out of threads).
pub(crate) fn pool_start(workers: usize) -> Option<f64> {
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("amorsize-calibrate-{i}"))
        .build()
        .ok()?;
    pool.broadcast(|_| ());
    let elapsed = start.elapsed().as_secs_f64();
    drop(pool);
    Some(elapsed)
}

/// A pool for timing dispatch, kept while the timings repeat.
pub(crate) struct DispatchBench {
    pool: rayon::ThreadPool,
}

impl DispatchBench {
    /// A pool of `workers` threads, woken once.
    pub(crate) fn new(workers: usize) -> Option<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("amorsize-calibrate-{i}"))
            .build()
            .ok()?;
        pool.broadcast(|_| ());
        Some(DispatchBench { pool })
    }

    /// Workers of the pool.
    pub(crate) fn workers(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Wall time, in seconds, to run `chunks` empty chunks through the pool, each its own task.
    pub(crate) fn run(&self, chunks: usize) -> f64 {
        let start = Instant::now();
        self.pool.install(|| {
            (0..chunks).into_par_iter().with_max_len(1).for_each(|i| {
                std::hint::black_box(i);
            });
        });
        start.elapsed().as_secs_f64()
    }
}
