//! Raw timings of the thread backend's overheads, for the calibration
//! ([`calibrate`](crate::calibrate) holds the protocol: repeats, quality checks, fallbacks, the
//! cache).

use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// How long dropping a calibration pool may take to see its threads exit.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// A rayon pool whose threads say when they have exited, so that calibration leaves no thread
/// behind it (rayon's `ThreadPool` lets its threads exit on their own after the drop).
struct Pool {
    pool: Option<rayon::ThreadPool>,
    workers: usize,
    exited: Receiver<()>,
}

impl Pool {
    fn new(workers: usize) -> Option<Pool> {
        let (tx, exited): (Sender<()>, Receiver<()>) = crossbeam_channel::unbounded();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("amorsize-calibrate-{i}"))
            .exit_handler(move |_| {
                let _ = tx.send(());
            })
            .build()
            .ok()?;
        Some(Pool {
            workers: pool.current_num_threads(),
            pool: Some(pool),
            exited,
        })
    }

    fn get(&self) -> &rayon::ThreadPool {
        self.pool.as_ref().expect("the pool lives until drop")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.pool.take());
        let deadline = Instant::now() + EXIT_WAIT;
        for _ in 0..self.workers {
            if self.exited.recv_deadline(deadline).is_err() {
                break;
            }
        }
    }
}

/// How long idle workers are left alone before a parallel section is timed: long enough for
/// rayon's idle threads to stop spinning and go to sleep (they yield a few dozen times first),
/// as they are between the calls of a program.
const SETTLE: Duration = Duration::from_micros(500);

/// A pool for timing parallel sections and dispatch, kept while the timings repeat.
pub(crate) struct DispatchBench {
    pool: Pool,
}

impl DispatchBench {
    /// A pool of `workers` threads, woken once.
    pub(crate) fn new(workers: usize) -> Option<Self> {
        let pool = Pool::new(workers)?;
        pool.get().broadcast(|_| ());
        Some(DispatchBench { pool })
    }

    /// Workers of the pool.
    pub(crate) fn workers(&self) -> usize {
        self.pool.workers
    }

    /// Wall time, in seconds, of a parallel section as the executor runs one: a scope on the
    /// calling thread spawning one empty job per worker but the first, whose empty share the
    /// calling thread runs itself, and waiting for them all, once the workers have gone to
    /// sleep ([`SETTLE`]).
    pub(crate) fn section(&self) -> f64 {
        std::thread::sleep(SETTLE);
        let start = Instant::now();
        self.pool.get().in_place_scope(|scope| {
            for i in 1..self.pool.workers {
                scope.spawn(move |_| {
                    std::hint::black_box(i);
                });
            }
            std::hint::black_box(0);
        });
        start.elapsed().as_secs_f64()
    }

    /// Wall time, in seconds, to run `chunks` empty chunks through the pool, each its own task.
    pub(crate) fn run(&self, chunks: usize) -> f64 {
        let start = Instant::now();
        self.pool.get().install(|| {
            (0..chunks).into_par_iter().with_max_len(1).for_each(|i| {
                std::hint::black_box(i);
            });
        });
        start.elapsed().as_secs_f64()
    }
}
