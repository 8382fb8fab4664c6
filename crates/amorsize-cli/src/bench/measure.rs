//! Runs one workload every way side by side: the serial loop, rayon's default, the naive
//! all-cores chunk-1 hand-out, the oracle (the best of a measured grid) and amorsize.

use super::amz;
use super::timing::{interleaved, median, timed, Digest};
use super::workloads::Visit;
use amorsize::exec::tune::{tune_with, ChunkedPool, Grid, Trial};
use amorsize::model::Candidate;
use amorsize::Plan;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The strategies compared, in the order of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// A plain loop on one thread.
    Serial,
    /// rayon's default: `par_iter` over a slice, `par_bridge` over an iterator.
    Rayon,
    /// Every logical CPU a worker, one item per hand-out.
    Naive,
    /// The fastest (workers, chunk) of a measured grid ([`amorsize::tune`]).
    Oracle,
    /// `amorsize::execute`, planning included, in a warm process.
    Amorsize,
}

impl Strategy {
    /// Every strategy, in the order of the table.
    pub const ALL: [Strategy; 5] = [
        Strategy::Serial,
        Strategy::Rayon,
        Strategy::Naive,
        Strategy::Oracle,
        Strategy::Amorsize,
    ];

    /// The strategy's name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Serial => "serial",
            Strategy::Rayon => "rayon",
            Strategy::Naive => "naive",
            Strategy::Oracle => "oracle",
            Strategy::Amorsize => "amorsize",
        }
    }
}

/// How to measure.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Counted rounds (after one warm-up round), at least.
    pub rounds: usize,
    /// Time the counted rounds of a workload may take beyond `rounds` ([`interleaved`]).
    pub round_budget: Duration,
    /// Logical CPUs: the naive strategy's workers, and half the oracle grid's widest point.
    pub cpus: NonZeroUsize,
    /// Also measure amorsize with each worker count of the oracle grid, for the curve.
    pub curve: bool,
    /// Try only every other power of two as the oracle's chunk size (quick runs).
    pub coarse_grid: bool,
}

/// One point of the curve: amorsize held to a worker count.
#[derive(Clone, Debug)]
pub struct CurvePoint {
    /// The workers amorsize was told to use.
    pub workers: usize,
    /// Its predicted speedup over the serial loop, when it predicted one.
    pub predicted: Option<f64>,
    /// The median measured time.
    pub time: Duration,
}

/// Everything measured about one workload.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Items in the input.
    pub items: usize,
    /// Every counted time of every strategy, indexed like [`Strategy::ALL`] (as many as the
    /// workload's rounds).
    pub times: Vec<Vec<Duration>>,
    /// The oracle's choice.
    pub oracle: Candidate,
    /// How long finding it took.
    pub tune_time: Duration,
    /// The oracle's grid: every candidate tried, with its first measured time.
    pub trials: Vec<Trial>,
    /// The plan amorsize chose in the first counted call (see [`PLANNED_CALLS`]).
    pub plan: Plan,
    /// amorsize's predicted speedup at each worker count (when [`Settings::curve`]).
    pub curve: Vec<CurvePoint>,
}

impl Measured {
    /// Counted rounds.
    pub fn rounds(&self) -> usize {
        self.times.first().map_or(0, Vec::len)
    }

    /// The median time of `s`.
    pub fn median(&self, s: Strategy) -> Duration {
        median(&self.times[s as usize])
    }

    /// The oracle grid's fastest completed trial with `workers` workers (one run each, so
    /// noisier than the medians).
    pub fn best_trial(&self, workers: usize) -> Option<Duration> {
        self.trials
            .iter()
            .filter(|t| t.candidate.workers.get() == workers)
            .filter_map(|t| t.time)
            .min()
    }
}

/// amorsize's calls on a workload that also return their plan: the warm-up call and the first
/// counted one. The table shows the second's plan and prediction: made, as on any later call of
/// a program, with what the first call measured (the cache and the process's memory), and
/// before any counted call was measured. The other counted calls are plain `execute`.
const PLANNED_CALLS: usize = 2;

/// Measures a workload (see [`Visit`]).
pub struct Bench<'a>(pub &'a Settings);

impl Visit for Bench<'_> {
    type Out = Result<Measured>;

    fn slice<F>(self, items: &[u64], f: F) -> Result<Measured>
    where
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let settings = self.0;
        let want = Digest::of(&items.iter().map(&f).collect::<Vec<_>>());
        let (oracle, tune_time, trials) = tune(items, &f, settings)?;
        let naive_pool = ChunkedPool::new(settings.cpus)?;
        let oracle_pool = ChunkedPool::new(oracle.workers)?;
        let mut plan = None;
        let mut calls = 0;

        let mut serial = || timed(&want, true, "serial", || Ok(items.iter().map(&f).collect()));
        let mut rayon = || {
            timed(&want, true, "rayon", || {
                Ok(items.par_iter().map(&f).collect())
            })
        };
        let mut naive = || {
            timed(&want, true, "naive", || {
                Ok(naive_pool.map(items, NonZeroUsize::MIN, &f)?)
            })
        };
        let mut oracle_run = || {
            timed(&want, true, "oracle", || {
                Ok(oracle_pool.map(items, oracle.chunk, &f)?)
            })
        };
        let mut amorsize = || {
            timed(&want, true, "amorsize", || {
                calls += 1;
                if calls > PLANNED_CALLS {
                    return amz::execute(items, &f);
                }
                let (results, p) = amz::run_slice(items, &f, None)?;
                plan = Some(p);
                Ok(results)
            })
        };
        let times = interleaved(
            settings.rounds,
            settings.round_budget,
            &mut [
                &mut serial,
                &mut rayon,
                &mut naive,
                &mut oracle_run,
                &mut amorsize,
            ],
        )?;
        let plan = plan.context("amorsize never ran")?;

        let mut curve = Vec::new();
        if settings.curve {
            for workers in Grid::for_items(items.len(), settings.cpus.get()).workers() {
                let mut predicted = None;
                let mut times = Vec::with_capacity(settings.rounds);
                for _ in 0..settings.rounds {
                    times.push(timed(&want, true, "amorsize", || {
                        let (results, p) = amz::run_slice(items, &f, Some(*workers))?;
                        predicted = p.predicted_call_speedup();
                        Ok(results)
                    })?);
                }
                curve.push(CurvePoint {
                    workers: workers.get(),
                    predicted,
                    time: median(&times),
                });
            }
        }
        Ok(Measured {
            items: items.len(),
            times,
            oracle,
            tune_time,
            trials,
            plan,
            curve,
        })
    }

    fn iter<I, M, F>(self, make: M, f: F) -> Result<Measured>
    where
        I: Iterator<Item = u64> + Send,
        M: Fn() -> I,
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let settings = self.0;
        let want = Digest::of(&make().map(|x| f(&x)).collect::<Vec<_>>());
        // The grid is measured once over the collected input: a user tuning by hand would do
        // it once too, and then pay for collecting on every run (counted below).
        let collected: Vec<u64> = make().collect();
        let (oracle, tune_time, trials) = tune(&collected, &f, settings)?;
        drop(collected);
        let naive_pool = ChunkedPool::new(settings.cpus)?;
        let oracle_pool = ChunkedPool::new(oracle.workers)?;
        let mut plan = None;
        let mut calls = 0;

        let mut serial = || {
            timed(&want, true, "serial", || {
                Ok(make().map(|x| f(&x)).collect())
            })
        };
        let mut rayon = || {
            timed(&want, false, "rayon", || {
                Ok(make().par_bridge().map(|x| f(&x)).collect())
            })
        };
        let mut naive = || {
            timed(&want, true, "naive", || {
                let items: Vec<u64> = make().collect();
                Ok(naive_pool.map(&items, NonZeroUsize::MIN, &f)?)
            })
        };
        let mut oracle_run = || {
            timed(&want, true, "oracle", || {
                let items: Vec<u64> = make().collect();
                Ok(oracle_pool.map(&items, oracle.chunk, &f)?)
            })
        };
        let mut amorsize = || {
            timed(&want, true, "amorsize", || {
                calls += 1;
                if calls > PLANNED_CALLS {
                    return amz::execute_iter(make(), &f);
                }
                let (results, p) = amz::run_iter(make(), &f)?;
                plan = Some(p);
                Ok(results)
            })
        };
        let times = interleaved(
            settings.rounds,
            settings.round_budget,
            &mut [
                &mut serial,
                &mut rayon,
                &mut naive,
                &mut oracle_run,
                &mut amorsize,
            ],
        )?;
        let plan = plan.context("amorsize never ran")?;
        Ok(Measured {
            items: make().count(),
            times,
            oracle,
            tune_time,
            trials,
            plan,
            curve: Vec::new(),
        })
    }
}

/// Runs the oracle's grid (workers 1..2 × CPUs, chunks in powers of two, or of four for a
/// coarse grid).
pub fn tune<F>(
    items: &[u64],
    f: &F,
    settings: &Settings,
) -> Result<(Candidate, Duration, Vec<Trial>)>
where
    F: Fn(&u64) -> u64 + Sync,
{
    let mut grid = Grid::for_items(items.len(), settings.cpus.get());
    if settings.coarse_grid {
        // Powers of four, and the largest size, which gives each worker one chunk.
        let chunks = grid.chunks();
        let coarse = chunks
            .iter()
            .enumerate()
            .filter(|&(i, _)| i % 2 == 0 || i + 1 == chunks.len())
            .map(|(_, &c)| c)
            .collect();
        grid = Grid::new(grid.workers().to_vec(), coarse)?;
    }
    let start = Instant::now();
    let tuning = tune_with(items, f, &grid).context("tuning the oracle")?;
    Ok((tuning.best(), start.elapsed(), tuning.trials().to_vec()))
}
