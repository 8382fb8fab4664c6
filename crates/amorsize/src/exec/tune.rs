//! The empirical answer: run the work over a grid of (workers, chunk size) candidates, measure
//! each, and keep the fastest.
//!
//! [`tune`] is the oracle a plan can be held against: it does not predict, it tries. It costs
//! many runs of the whole input, so it suits a workload that will run again and again with the
//! same shape, or a benchmark. [`ChunkedPool`] is the runner it measures with: the executor's
//! engine on a rayon pool of a fixed size, whose workers take chunks of a fixed size, in turn,
//! from a shared cursor.

use super::pool::{self, Pool};
use super::settings::ExecOptions;
use super::threads::{self, Batch, Cause, Failure};
use crate::model::Candidate;
use crate::stats::median_duration;
use crate::{Error, ErrorKind, Plan, Result};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// A fixed number of workers taking chunks of a fixed size, in input order, from a shared
/// counter: the simplest dynamic hand-out, with no prediction and no adaptation.
///
/// One worker is the plain loop on the calling thread (no pool is started for it).
///
/// # Examples
///
/// ```
/// use amorsize::exec::tune::ChunkedPool;
/// use std::num::NonZeroUsize;
///
/// let pool = ChunkedPool::new(NonZeroUsize::new(2).unwrap())?;
/// let items: Vec<u64> = (0..100).collect();
/// let squares = pool.map(&items, NonZeroUsize::new(8).unwrap(), |x| x * x)?;
/// assert_eq!(squares, items.iter().map(|x| x * x).collect::<Vec<_>>());
/// # Ok::<(), amorsize::Error>(())
/// ```
#[derive(Debug)]
pub struct ChunkedPool {
    workers: NonZeroUsize,
    /// The pool, of the caller's own (none for one worker).
    pool: Option<Pool>,
}

/// How a run ended when it may be cut short.
enum Outcome<R> {
    Done(Vec<R>),
    CutOff,
}

impl ChunkedPool {
    /// A pool of `workers` threads (none for one worker: the calling thread runs the loop).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when the operating system refuses to start the
    /// threads.
    pub fn new(workers: NonZeroUsize) -> Result<Self> {
        let pool = if workers.get() == 1 {
            None
        } else {
            Some(pool::dedicated(workers.get(), "amorsize-tune")?)
        };
        Ok(ChunkedPool { workers, pool })
    }

    /// The number of workers.
    pub fn workers(&self) -> NonZeroUsize {
        self.workers
    }

    /// Applies `f` to every item, `chunk` items at a time per worker, and returns the results
    /// in input order. Each item runs exactly once.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Panicked`] naming the item when `f` panics;
    /// the other workers stop at their next stretch of items.
    pub fn map<T, R, F>(&self, items: &[T], chunk: NonZeroUsize, f: F) -> Result<Vec<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        match self.map_until(items, chunk, &f, None)? {
            Outcome::Done(results) => Ok(results),
            // Without a deadline a run is never cut off.
            Outcome::CutOff => unreachable!("a run without a deadline was cut off"),
        }
    }

    /// Like [`map`](Self::map), but stops handing out chunks once `deadline` has passed: a
    /// trial that slow cannot be the fastest, and waiting for it would only cost time.
    ///
    /// This is the executor's own engine ([`threads`](super::threads)), with chunks of exactly
    /// `chunk` items to the end and no adaptation, so that a trial times the candidate it
    /// names.
    fn map_until<T, R, F>(
        &self,
        items: &[T],
        chunk: NonZeroUsize,
        f: &F,
        deadline: Option<Instant>,
    ) -> Result<Outcome<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let batch = Batch {
            items,
            sampled: Vec::new(),
            base: 0,
            f,
            fails: |_: &R| false,
            fallible: false,
        };
        let settings = ExecOptions {
            adapt: false,
            fixed_chunks: true,
            deadline,
            ..ExecOptions::default()
        };
        let plan = Plan::fixed(self.workers, chunk);
        let ran = match &self.pool {
            Some(pool) => threads::run_on(batch, &plan, &settings, pool)?,
            None => threads::run(batch, &plan, &settings)?,
        };
        match ran {
            Ok(done) => Ok(Outcome::Done(done.results)),
            Err(Failure {
                cause: Cause::Deadline,
                ..
            }) => Ok(Outcome::CutOff),
            Err(failure) => Err(failure.into_error(|index, _| {
                Error::new(ErrorKind::ItemFailed, "an item failed").with_item(index)
            })),
        }
    }
}

/// The candidates [`tune_with`] tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    workers: Vec<NonZeroUsize>,
    chunks: Vec<NonZeroUsize>,
}

impl Grid {
    /// The default grid for `items` items on a machine of `cpus` logical CPUs: workers from 1
    /// to 2 × `cpus` (every count up to 8, then powers of two and the multiples of `cpus` /
    /// 2, so that a large machine is not tried a hundred times over), and chunk sizes in
    /// powers of two from 1 up to the first that gives each worker a single chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::exec::tune::Grid;
    ///
    /// let grid = Grid::for_items(100, 2);
    /// let workers: Vec<usize> = grid.workers().iter().map(|w| w.get()).collect();
    /// assert_eq!(workers, [1, 2, 3, 4]);
    /// let chunks: Vec<usize> = grid.chunks().iter().map(|c| c.get()).collect();
    /// assert_eq!(chunks, [1, 2, 4, 8, 16, 32, 64, 128]);
    /// ```
    pub fn for_items(items: usize, cpus: usize) -> Grid {
        let cpus = cpus.max(1);
        let most = 2 * cpus;
        let half = cpus.div_ceil(2);
        let workers = (1..=most)
            .filter(|&w| w <= 8 || w.is_power_of_two() || w % half == 0)
            .filter_map(NonZeroUsize::new)
            .collect();
        let mut chunks = Vec::new();
        let mut c = 1usize;
        loop {
            chunks.push(NonZeroUsize::new(c).unwrap_or(NonZeroUsize::MIN));
            if c >= items || c > usize::MAX / 2 {
                break;
            }
            c *= 2;
        }
        Grid { workers, chunks }
    }

    /// A grid of exactly these worker counts and chunk sizes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when either list is empty.
    pub fn new(workers: Vec<NonZeroUsize>, chunks: Vec<NonZeroUsize>) -> Result<Grid> {
        if workers.is_empty() || chunks.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a tuning grid needs at least one worker count and one chunk size",
            ));
        }
        let mut workers = workers;
        workers.sort_unstable();
        workers.dedup();
        Ok(Grid { workers, chunks })
    }

    /// The worker counts tried.
    pub fn workers(&self) -> &[NonZeroUsize] {
        &self.workers
    }

    /// The chunk sizes tried.
    pub fn chunks(&self) -> &[NonZeroUsize] {
        &self.chunks
    }

    /// The candidates worth running for `items` items: one worker runs a plain loop, so its
    /// chunk size does not matter, and a chunk larger than a worker's share of the input only
    /// repeats the largest useful one.
    fn candidates(&self, items: usize) -> Vec<Candidate> {
        let mut chunks = self.chunks.clone();
        chunks.sort_unstable();
        chunks.dedup();
        let largest = chunks[chunks.len() - 1];
        let mut out = Vec::new();
        for &workers in &self.workers {
            if workers.get() == 1 {
                out.push(Candidate {
                    workers,
                    chunk: largest,
                });
                continue;
            }
            let share = items.div_ceil(workers.get()).max(1);
            let mut kept: Vec<NonZeroUsize> =
                chunks.iter().copied().filter(|c| c.get() < share).collect();
            if let Some(&whole) = chunks.iter().find(|c| c.get() >= share) {
                kept.push(whole);
            }
            // Largest chunks first: they are quick to measure and set a deadline that cuts
            // the slow trials of tiny chunks short.
            out.extend(
                kept.into_iter()
                    .rev()
                    .map(|chunk| Candidate { workers, chunk }),
            );
        }
        out
    }
}

/// One measured candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Trial {
    /// The candidate tried.
    pub candidate: Candidate,
    /// Its wall time, or `None` when it was cut off for running past the deadline (more than
    /// 1.5 (`CUT_OFF_FACTOR`) × the best time so far, so it could not have been the fastest).
    pub time: Option<Duration>,
}

/// What [`tune`] found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Tuning {
    best: Candidate,
    best_time: Duration,
    trials: Vec<Trial>,
}

impl Tuning {
    /// The fastest candidate.
    pub fn best(&self) -> Candidate {
        self.best
    }

    /// The fastest candidate's wall time: the median of its confirming runs.
    pub fn best_time(&self) -> Duration {
        self.best_time
    }

    /// Every candidate tried, in the order tried, with its first measured time.
    pub fn trials(&self) -> &[Trial] {
        &self.trials
    }
}

/// A trial slower than this many times the best so far is stopped: it is all but sure not to
/// win (only the three fastest are confirmed anyway), and a tiny chunk on a tiny function can
/// be a hundred times slower than the loop.
pub(crate) const CUT_OFF_FACTOR: f64 = 1.5;

/// How many of the fastest candidates are run again to confirm the winner; one pass alone
/// picks whichever candidate the machine's noise favoured.
const FINALISTS: usize = 3;

/// Confirming runs per finalist (the median counts).
const CONFIRM_RUNS: usize = 3;

/// Finds the fastest (workers, chunk size) for `f` over `items` by measuring the default
/// [`Grid`] for this machine.
///
/// `f` runs on every item once per trial, many times in all: it should have no side effects
/// that matter. The results are discarded; use the answer with [`ChunkedPool`] or as
/// [`Options::workers`](crate::Options::workers) and
/// [`Options::chunk_size`](crate::Options::chunk_size).
///
/// # Examples
///
/// ```
/// let items: Vec<u64> = (0..64).collect();
/// let tuning = amorsize::tune(&items, |x| x.wrapping_mul(3))?;
/// assert!(tuning.trials().iter().any(|t| t.candidate == tuning.best()));
/// # Ok::<(), amorsize::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] for empty input; [`ErrorKind::Panicked`] when `f` panics;
/// [`ErrorKind::Io`] when a pool cannot start.
pub fn tune<T, R, F>(items: &[T], f: F) -> Result<Tuning>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let grid = Grid::for_items(items.len(), crate::probe::machine().logical_cpus());
    tune_with(items, f, &grid)
}

/// Like [`tune`], over the candidates of `grid`.
///
/// # Errors
///
/// As [`tune`].
pub fn tune_with<T, R, F>(items: &[T], f: F, grid: &Grid) -> Result<Tuning>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    if items.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "cannot tune over an empty input: there is nothing to measure",
        ));
    }
    let candidates = grid.candidates(items.len());
    let mut pools: Vec<ChunkedPool> = Vec::new();
    let mut trials = Vec::with_capacity(candidates.len());
    let mut best_so_far: Option<Duration> = None;
    for candidate in candidates {
        let pool = pool_for(&mut pools, candidate.workers)?;
        let start = Instant::now();
        let deadline = best_so_far.map(|b| start + b.mul_f64(CUT_OFF_FACTOR));
        let outcome = pool.map_until(items, candidate.chunk, &f, deadline)?;
        let elapsed = start.elapsed();
        let time = match outcome {
            Outcome::Done(results) => {
                drop(results);
                best_so_far = Some(best_so_far.map_or(elapsed, |b| b.min(elapsed)));
                Some(elapsed)
            }
            Outcome::CutOff => None,
        };
        trials.push(Trial { candidate, time });
    }

    let mut finalists: Vec<(Candidate, Duration)> = trials
        .iter()
        .filter_map(|t| t.time.map(|time| (t.candidate, time)))
        .collect();
    finalists.sort_by_key(|&(_, time)| time);
    finalists.truncate(FINALISTS);
    // Interleaved, so that a slow moment of the machine hurts every finalist alike.
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); finalists.len()];
    for _ in 0..CONFIRM_RUNS {
        for (k, &(candidate, _)) in finalists.iter().enumerate() {
            let pool = pool_for(&mut pools, candidate.workers)?;
            let start = Instant::now();
            let results = pool.map(items, candidate.chunk, &f)?;
            runs[k].push(start.elapsed());
            drop(results);
        }
    }
    let (best, best_time) = finalists
        .iter()
        .zip(runs)
        .map(|(&(candidate, _), times)| (candidate, median_duration(&times).unwrap_or_default()))
        .min_by_key(|&(_, time)| time)
        .ok_or_else(|| {
            // The first trial has no deadline, so at least one trial always completes.
            Error::new(ErrorKind::InvalidInput, "no tuning candidate completed")
        })?;
    Ok(Tuning {
        best,
        best_time,
        trials,
    })
}

/// The pool of `workers` threads, started on first use and kept for the other chunk sizes.
fn pool_for(pools: &mut Vec<ChunkedPool>, workers: NonZeroUsize) -> Result<&ChunkedPool> {
    let index = match pools.iter().position(|p| p.workers == workers) {
        Some(i) => i,
        None => {
            pools.push(ChunkedPool::new(workers)?);
            pools.len() - 1
        }
    };
    Ok(&pools[index])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn map_keeps_input_order_for_every_shape() {
        for workers in [1, 2, 3, 5] {
            let pool = ChunkedPool::new(nz(workers)).unwrap();
            for n in [0, 1, 2, 7, 64, 1000] {
                let items: Vec<usize> = (0..n).collect();
                for chunk in [1, 3, 64, 5000] {
                    let out = pool.map(&items, nz(chunk), |x| x * 2 + 1).unwrap();
                    let want: Vec<usize> = items.iter().map(|x| x * 2 + 1).collect();
                    assert_eq!(out, want, "workers {workers}, n {n}, chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn every_item_runs_once() {
        let pool = ChunkedPool::new(nz(4)).unwrap();
        let items: Vec<usize> = (0..500).collect();
        let calls: Vec<AtomicUsize> = (0..500).map(|_| AtomicUsize::new(0)).collect();
        pool.map(&items, nz(7), |&i| calls[i].fetch_add(1, Ordering::Relaxed))
            .unwrap();
        assert!(calls.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn a_panic_names_its_item() {
        for workers in [1, 3] {
            let pool = ChunkedPool::new(nz(workers)).unwrap();
            let items: Vec<usize> = (0..200).collect();
            let err = pool
                .map(&items, nz(4), |&i| {
                    if i == 137 {
                        panic!("bad item");
                    }
                    i
                })
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panicked);
            assert_eq!(err.item(), Some(137));
            assert!(err.to_string().contains("bad item"));
        }
    }

    #[test]
    fn a_passed_deadline_cuts_a_trial_off_and_a_later_one_does_not() {
        let items: Vec<u64> = (0..64).collect();
        let past = Some(Instant::now());
        let later = Some(Instant::now() + Duration::from_secs(3600));
        for workers in [1, 2] {
            let pool = ChunkedPool::new(nz(workers)).unwrap();
            let slow = |x: &u64| {
                std::thread::sleep(Duration::from_millis(1));
                x + 1
            };
            let cut = pool.map_until(&items, nz(4), &slow, past).unwrap();
            assert!(matches!(cut, Outcome::CutOff), "{workers} worker(s)");
            let done = pool.map_until(&items, nz(4), &slow, later).unwrap();
            assert!(
                matches!(done, Outcome::Done(ref r) if *r == (1..=64).collect::<Vec<u64>>()),
                "{workers} worker(s)"
            );
        }
    }

    #[test]
    fn fixed_chunks_are_claimed_whole_to_the_end() {
        // A chunk runs on one thread. With 2 workers and chunks of 16 over 64 items, each
        // aligned block of 16 is one chunk, so one thread ran it all; a shrinking tail (as
        // planned runs have) would split the last blocks between the workers.
        let items: Vec<usize> = (0..64).collect();
        let pool = ChunkedPool::new(nz(2)).unwrap();
        let ran_on = pool
            .map(&items, nz(16), |_| {
                std::thread::sleep(Duration::from_micros(200));
                std::thread::current().id()
            })
            .unwrap();
        for block in ran_on.chunks(16) {
            assert!(block.iter().all(|t| *t == block[0]), "{ran_on:?}");
        }
    }

    #[test]
    fn default_grid_spans_one_to_twice_the_cpus() {
        let grid = Grid::for_items(1000, 3);
        let workers: Vec<usize> = grid.workers().iter().map(|w| w.get()).collect();
        assert_eq!(workers, [1, 2, 3, 4, 5, 6]);
        let chunks: Vec<usize> = grid.chunks().iter().map(|c| c.get()).collect();
        assert_eq!(chunks.first(), Some(&1));
        assert_eq!(chunks.last(), Some(&1024));
        assert!(chunks.windows(2).all(|w| w[1] == 2 * w[0]));

        let big = Grid::for_items(10, 64);
        let workers: Vec<usize> = big.workers().iter().map(|w| w.get()).collect();
        assert_eq!(workers.first(), Some(&1));
        assert_eq!(workers.last(), Some(&128));
        assert!(workers.contains(&64) && workers.contains(&96));
        assert!(workers.len() < 20, "{workers:?}");
    }

    #[test]
    fn candidates_skip_redundant_chunks() {
        let grid = Grid::new(vec![nz(1), nz(2)], vec![nz(1), nz(2), nz(4), nz(8)]).unwrap();
        let got: Vec<(usize, usize)> = grid
            .candidates(6)
            .iter()
            .map(|c| (c.workers.get(), c.chunk.get()))
            .collect();
        // One worker: one trial. Two workers share 3 items each: chunk 4 already gives each
        // worker one chunk, so 8 adds nothing.
        assert_eq!(got, [(1, 8), (2, 4), (2, 2), (2, 1)]);
    }

    #[test]
    fn tune_returns_a_tried_candidate_and_rejects_empty_input() {
        let items: Vec<u64> = (0..300).collect();
        let grid = Grid::for_items(items.len(), 2);
        let tuning = tune_with(&items, |x| x.wrapping_mul(2654435761), &grid).unwrap();
        assert!(tuning
            .trials()
            .iter()
            .any(|t| t.candidate == tuning.best() && t.time.is_some()));
        assert_eq!(
            tuning.trials().len(),
            grid.candidates(items.len()).len(),
            "every candidate is tried once"
        );

        let err = tune(&[] as &[u64], |x| *x).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn tune_reports_a_panic() {
        let items: Vec<u64> = (0..50).collect();
        let err = tune(&items, |&x| {
            assert!(x != 30, "thirty");
            x
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert_eq!(err.item(), Some(30));
    }
}
