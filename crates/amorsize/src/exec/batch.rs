//! The batch entry points: plan (sampling the function, or reusing the plan of a call of the
//! same workload a moment ago), then run, reusing the sampled results so that every item runs
//! exactly once.

use super::spill;
use super::threads::{self, Batch, Done, Failure};
use crate::report::RunReport;
use crate::{plan, sample, Error, ErrorKind, Options, Plan, Result};
use std::num::NonZeroUsize;

/// The results of a run, in input order, and its report.
#[derive(Debug)]
#[non_exhaustive]
pub struct Run<R> {
    /// One result per input item, in input order.
    pub results: Vec<R>,
    /// What the run measured beside what the plan predicted.
    pub report: RunReport,
}

/// Runs `f` on every item of `items` — serially or in parallel, as measured to be fastest —
/// and returns the results in input order.
///
/// This is [`Options::execute`] with the default options. A function that returns a
/// `Result` gets one `Result` per item: each item's error is collected while the others
/// complete; [`try_execute`] stops at the first error instead.
///
/// # Examples
///
/// ```
/// let items: Vec<u64> = (0..1000).collect();
/// let squares = amorsize::execute(&items, |x| x * x)?;
/// assert_eq!(squares[999], 999 * 999);
///
/// // Errors per item, the rest still completes.
/// let parsed = amorsize::execute(&["1", "x", "3"], |s| s.parse::<u32>())?;
/// assert!(parsed[1].is_err());
/// assert_eq!(parsed[2].as_ref().ok(), Some(&3));
/// # Ok::<(), amorsize::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::Panicked`] when `f` panics, naming the item ([`Error::item`]); the other
/// workers stop at their next item and are joined before this returns. [`ErrorKind::Io`]
/// when worker threads cannot be started.
pub fn execute<T, R, F>(items: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    Options::default().execute(items, f)
}

/// [`execute`] for any iterable: runs `f` on every item and returns the results in order.
///
/// The first items are sampled to plan; the rest are collected, then run.
/// [`stream`](crate::stream) handles inputs too large to hold.
///
/// # Examples
///
/// ```
/// let lengths = amorsize::execute_iter(["a", "bb", "ccc"], |s| s.len())?;
/// assert_eq!(lengths, [1, 2, 3]);
/// # Ok::<(), amorsize::Error>(())
/// ```
///
/// # Errors
///
/// As [`execute`].
pub fn execute_iter<I, R, F>(items: I, f: F) -> Result<Vec<R>>
where
    I: IntoIterator,
    I::Item: Sync,
    R: Send,
    F: Fn(&I::Item) -> R + Sync,
{
    Options::default().execute_iter(items, f)
}

/// Runs a fallible `f` on every item and returns the results in input order, or the first
/// error: the other workers stop at their next item.
///
/// # Examples
///
/// ```
/// use amorsize::ErrorKind;
///
/// let ok = amorsize::try_execute(&["1", "2"], |s| s.parse::<u32>())?;
/// assert_eq!(ok, [1, 2]);
/// let err = amorsize::try_execute(&["1", "x"], |s| s.parse::<u32>()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ItemFailed);
/// assert_eq!(err.item(), Some(1));
/// # Ok::<(), amorsize::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::ItemFailed`] with the item's index and the function's error as
/// [`source`](std::error::Error::source); otherwise as [`execute`].
pub fn try_execute<T, R, E, F>(items: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    E: std::error::Error + Send + Sync + 'static,
    F: Fn(&T) -> std::result::Result<R, E> + Sync,
{
    Options::default().try_execute(items, f)
}

impl Options {
    /// Runs `f` on every item of `items` with these options; see [`execute`].
    ///
    /// # Errors
    ///
    /// As [`execute`].
    pub fn execute<T, R, F>(&self, items: &[T], f: F) -> Result<Vec<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        plan_and_run(items, &f, (no_failure, false), self)?
            .map_err(|failure| failure.into_error(|_, _| unreachable_failure()))
    }

    /// Plans and runs `f` on every item of `items`, returning the results and the run's
    /// report.
    ///
    /// # Examples
    ///
    /// ```
    /// let items: Vec<u64> = (0..100).collect();
    /// let run = amorsize::Options::new().run(&items, |x| x + 1)?;
    /// assert_eq!(run.results.len(), 100);
    /// assert_eq!(run.report.items, 100);
    /// assert!(run.report.reused_from_sample > 0);
    /// # Ok::<(), amorsize::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`execute`].
    pub fn run<T, R, F>(&self, items: &[T], f: F) -> Result<Run<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let (plan, sampled) = match plan::quick::reuse(items.len(), &f, self) {
            Some(plan) => (plan, Vec::new()),
            None => {
                let first = match watch_first(items, &f, &no_failure, self)? {
                    Watched::Spilled(done) => {
                        let (results, plan, stats) = (*done)
                            .map_err(|failure| failure.into_error(|_, _| unreachable_failure()))?;
                        let report = report_of(&plan, items.len(), 0, stats);
                        return Ok(Run { results, report });
                    }
                    Watched::First(first) => first,
                };
                plan::plan_slice_first(items, &f, self, first).map(|(plan, s)| (plan, s.results))?
            }
        };
        let (results, report) = run_batch(items, sampled, 0, &f, (no_failure, false), &plan, self)
            .map_err(|failure| failure.into_error(|_, _| unreachable_failure()))??;
        Ok(Run {
            results,
            report: report.build(&plan),
        })
    }

    /// [`execute_iter`] with these options.
    ///
    /// # Errors
    ///
    /// As [`execute`].
    pub fn execute_iter<I, R, F>(&self, items: I, f: F) -> Result<Vec<R>>
    where
        I: IntoIterator,
        I::Item: Sync,
        R: Send,
        F: Fn(&I::Item) -> R + Sync,
    {
        self.iter_batch(items, f).map(|(results, _, _)| results)
    }

    /// [`Options::run`] for any iterable: runs its first few items (a glance that may settle
    /// it serial at once), collects the rest, samples them across their length, runs them, and
    /// returns the results in order with the run's report.
    ///
    /// # Errors
    ///
    /// As [`execute`].
    pub fn run_iter<I, R, F>(&self, items: I, f: F) -> Result<Run<R>>
    where
        I: IntoIterator,
        I::Item: Sync,
        R: Send,
        F: Fn(&I::Item) -> R + Sync,
    {
        let (results, plan, report) = self.iter_batch(items, f)?;
        Ok(Run {
            results,
            report: report.build(&plan),
        })
    }

    /// Runs an iterable: a glance at its first items, then the rest collected, and either run
    /// at once (the glance settled it serial) or planned (from a sample of it, or reusing the
    /// plan of a call a moment ago) and run.
    fn iter_batch<I, R, F>(&self, items: I, f: F) -> Result<(Vec<R>, Plan, Measured)>
    where
        I: IntoIterator,
        I::Item: Sync,
        R: Send,
        F: Fn(&I::Item) -> R + Sync,
    {
        let mut iter = items.into_iter();
        let (prefix, glance) = sample::glance_iter(
            &mut iter,
            &f,
            plan::GLANCE_ITEMS,
            crate::calibrate::PARALLEL_FLOOR,
        )?;
        let k = prefix.len();
        // The glance's items have run; their results are kept.
        drop(prefix);
        let rest: Vec<I::Item> = iter.collect();
        let key = || crate::cache::WorkloadKey::of_run(self.name.as_deref(), &f, k + rest.len());
        let (head, plan, sampled) = match plan::quick::settle(glance, k + rest.len(), self, key) {
            plan::quick::Look::Serial(glance, proof) => {
                let (plan, head) = plan::settled(k + rest.len(), glance, proof, self);
                (head.results, plan, Vec::new())
            }
            plan::quick::Look::Plan(glance) => {
                // The rest is planned as a slice of its own (its indices start at `k`): with
                // the plan of a call a moment ago when it stands, else from a sample of it.
                match plan::quick::reuse(rest.len(), &f, self) {
                    Some(plan) => (glance.results, plan, Vec::new()),
                    None => {
                        let (plan, sampled) =
                            plan::plan_slice(&rest, &f, self).map_err(|e| e.item_offset(k))?;
                        (glance.results, plan, sampled.results)
                    }
                }
            }
        };
        let plan = plan.for_iterator();
        let (rest_results, report) =
            run_batch(&rest, sampled, k, &f, (no_failure, false), &plan, self)
                .map_err(|failure| failure.into_error(|_, _| unreachable_failure()))??;
        let mut results: Vec<R> = Vec::with_capacity(k + rest.len());
        results.extend(head.into_iter().map(|(_, r)| r));
        results.extend(rest_results);
        Ok((results, plan, report))
    }

    /// [`try_execute`] with these options.
    ///
    /// # Errors
    ///
    /// As [`try_execute`].
    pub fn try_execute<T, R, E, F>(&self, items: &[T], f: F) -> Result<Vec<R>>
    where
        T: Sync,
        R: Send,
        E: std::error::Error + Send + Sync + 'static,
        F: Fn(&T) -> std::result::Result<R, E> + Sync,
    {
        let results = plan_and_run(items, &f, (Result::is_err, true), self)?
            .map_err(|failure| failure.into_error(item_failed))?;
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.map_err(|e| item_failed::<R, E>(i, Err(e))))
            .collect()
    }
}

impl Plan {
    /// Runs `f` on every item of `items` as this plan says, returning the results in input
    /// order with the run's report. Nothing is sampled: every item runs here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    ///
    /// let plan = amorsize::Plan::fixed(NonZeroUsize::new(2).unwrap(), NonZeroUsize::new(8).unwrap());
    /// let items: Vec<u32> = (0..100).collect();
    /// let run = plan.run(&items, |x| x * 2)?;
    /// assert_eq!(run.results, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    /// assert_eq!(run.report.items, 100);
    /// # Ok::<(), amorsize::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`execute`].
    pub fn run<T, R, F>(&self, items: &[T], f: F) -> Result<Run<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let (results, report) = run_batch(
            items,
            Vec::new(),
            0,
            &f,
            (no_failure, false),
            self,
            &Options::default(),
        )
        .map_err(|failure| failure.into_error(|_, _| unreachable_failure()))??;
        Ok(Run {
            results,
            report: report.build(self),
        })
    }
}

/// Plans `items` and runs them: with the plan of a call a moment ago when it stands
/// ([`plan::quick::reuse`]), at once, with no plan built, when a glance settles them serial
/// ([`plan::quick`]; the smallest inputs then cost about a microsecond more than a plain
/// loop), otherwise from a sample. The outer error is planning's or the engine's, the inner
/// one a failure of the user's function.
fn plan_and_run<T, O, F, P>(
    items: &[T],
    f: &F,
    (fails, fallible): (P, bool),
    options: &Options,
) -> Result<std::result::Result<Vec<O>, Failure<O>>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let (plan, sampled) = match plan::quick::reuse(items.len(), f, options) {
        Some(plan) => (plan, Vec::new()),
        None => {
            let first = match watch_first(items, f, &fails, options)? {
                Watched::Spilled(done) => return Ok((*done).map(|(results, _, _)| results)),
                Watched::First(first) => first,
            };
            let bounds = plan::sample_bounds(options);
            match plan::quick::look(items, f, options, &bounds, first)? {
                plan::quick::Look::Serial(glance, _) => {
                    let batch = Batch {
                        items,
                        sampled: glance.results,
                        base: 0,
                        f,
                        fails,
                        fallible,
                    };
                    let serial = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
                    let ran = threads::run(batch, &serial, &super::ExecOptions::default())?;
                    return Ok(ran.map(|done| done.results));
                }
                plan::quick::Look::Plan(glance) => {
                    let (plan, sampled) =
                        plan::plan_slice_after(items, f, options, &bounds, glance)?;
                    (plan, sampled.results)
                }
            }
        }
    };
    match run_batch(items, sampled, 0, f, (fails, fallible), &plan, options) {
        Ok(run) => run.map(|(results, _)| Ok(results)),
        Err(failure) => Ok(Err(failure)),
    }
}

/// How a call's first item ran, when the call watches it ([`spill`]).
enum Watched<O> {
    /// Alone (its result and wall time), or not yet (`None`: the call does not watch it).
    First(Option<(O, crate::units::Seconds)>),
    /// The others started on workers during it, and every item has run.
    Spilled(Box<spill::Spilled<O>>),
}

/// Runs the first item of `items` under watch when the call watches one ([`spill::watches`]).
///
/// # Errors
///
/// [`ErrorKind::Panicked`] when the first item, run alone, panics.
fn watch_first<T, O, F, P>(items: &[T], f: &F, fails: &P, options: &Options) -> Result<Watched<O>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    if !spill::watches(items.len(), options) {
        return Ok(Watched::First(None));
    }
    Ok(match spill::first_item(items, f, fails) {
        spill::First::Alone(result, took) => Watched::First(Some((result?, took))),
        spill::First::Spilled(done) => Watched::Spilled(done),
    })
}

fn no_failure<O>(_: &O) -> bool {
    false
}

/// The error for a failure that `no_failure` never reports; kept as an error rather than a
/// panic so that no path of the library panics on the user's behalf.
fn unreachable_failure() -> Error {
    Error::new(
        ErrorKind::ItemFailed,
        "an item was reported failed by a run that counts no result as a failure",
    )
}

fn item_failed<R, E>(index: usize, result: std::result::Result<R, E>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    match result {
        Err(e) => Error::new(
            ErrorKind::ItemFailed,
            format!("the function failed on item {index}: {e}"),
        )
        .with_item(index)
        .with_source(e),
        Ok(_) => unreachable_failure().with_item(index),
    }
}

/// What a batch measured, made into a [`RunReport`] only when the caller asks for one.
struct Measured {
    items: usize,
    reused: usize,
    stats: threads::Stats,
}

impl Measured {
    fn build(self, plan: &Plan) -> RunReport {
        report_of(plan, self.items, self.reused, self.stats)
    }
}

/// The report of a run of `plan` over `items` items, `reused` of them from the sample, that
/// measured `stats`.
pub(crate) fn report_of(
    plan: &Plan,
    items: usize,
    reused: usize,
    stats: threads::Stats,
) -> RunReport {
    RunReport {
        plan: plan.clone(),
        items,
        reused_from_sample: reused,
        workers: stats.workers,
        chunks: stats.chunks,
        wall: stats.wall,
        busy: stats.busy,
        nested: stats.nested,
        adjustments: stats.adjustments,
        assumed_items: None,
        phases: stats.phases,
        sheds: stats.sheds,
        serial_alone: stats.alone.map(|(phase, _)| phase),
    }
}

/// The speedup a whole parallel run of `ran` items measured, when the closed loop's rule
/// ([`crate::model::shed::judge`]) sheds it to one worker: its throughput ÷ the slowest
/// serial rate the plan's sample allows ([`super::check::serial_item_high`]).
fn slower_than_the_loop(plan: &Plan, stats: &threads::Stats, ran: usize) -> Option<f64> {
    let wall = stats.wall.as_secs_f64();
    let serial_item = super::check::serial_item_high(plan)?;
    let workers = NonZeroUsize::new(stats.workers)?;
    if ran == 0 || wall <= 0.0 {
        return None;
    }
    let measured = ran as f64 / wall * serial_item;
    let verdict = crate::model::shed::judge(workers, measured, plan.predicted_speedup());
    (verdict == crate::model::shed::Verdict::Shed(NonZeroUsize::MIN)).then_some(measured)
}

/// Runs a planned batch. The outer error is the engine's (threads could not start); the inner
/// one a failure of the user's function.
fn run_batch<T, O, F, P>(
    items: &[T],
    sampled: Vec<(usize, O)>,
    base: usize,
    f: &F,
    (fails, fallible): (P, bool),
    plan: &Plan,
    options: &Options,
) -> std::result::Result<Result<(Vec<O>, Measured)>, Failure<O>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let mut settings = options.exec.clone();
    // A chunk size the caller fixed stays fixed.
    settings.adapt &= options.chunk.is_none();
    let reused = base + sampled.len();
    let batch = Batch {
        items,
        sampled,
        base,
        f,
        fails,
        fallible,
    };
    let done = match threads::run(batch, plan, &settings) {
        Ok(outcome) => outcome?,
        Err(e) => return Ok(Err(e)),
    };
    let Done { results, stats } = done;
    let measured = Measured {
        items: base + items.len(),
        reused,
        stats,
    };
    let key = crate::cache::WorkloadKey::of_run(options.name.as_deref(), f, measured.items);
    learn(
        &key,
        plan,
        &measured.stats,
        measured.items - measured.reused,
        options.disk_cache,
    );
    Ok(Ok((results, measured)))
}

/// What a run of `ran` items teaches the next calls of `key`, at once: a run that shed its
/// workers down to the caller makes the next calls serial for a back-off
/// ([`note_shed`](crate::plan::recall::note_shed)); a parallel run that kept them forgets that
/// back-off. What is remembered for later processes (the cache) is the parallel throughput the
/// run measured: a run that shed is recorded as if its every item had run at the rate of its
/// first phase, so that the contention learned is the one its workers met, and a run that
/// kept its workers after a trial at the rate of its phases on all of them (the trial's
/// window on one worker measured the loop, not the plan). Batches and
/// pipelines ([`adaptor`](crate::adaptor)) alike.
pub(crate) fn learn(
    key: &crate::cache::WorkloadKey,
    plan: &Plan,
    stats: &threads::Stats,
    ran: usize,
    disk_cache: bool,
) {
    use crate::plan::recall as learn;
    if matches!(plan.reason(), crate::plan::Reason::MeasuredSlower { .. }) {
        // Serial because of what a parallel run measured: it measures nothing new.
        return;
    }
    let mut wall = stats.wall;
    if !stats.nested && plan.is_parallel() {
        match stats.sheds.last() {
            Some(last) if last.to == 1 => {
                let first = &stats.sheds[0];
                learn::note_shed(key, plan, (first.measured_speedup, first.from), first.at);
            }
            Some(_) => learn::forget_shed(key),
            // A run that kept its workers after measuring the serial rate on its own items:
            // the next calls that reuse its plan are judged against that rate.
            None if stats.alone.is_some() => {
                learn::forget_shed(key);
                if let Some(serial) = stats.alone.and_then(|(alone, noise)| {
                    crate::plan::SerialAlone::new(alone.items, alone.wall.as_secs_f64(), noise)
                }) {
                    learn::note_serial_alone(key, serial);
                }
            }
            // A run too short for the closed loop to judge while it ran (under a few ms) is
            // judged whole, by the same rule, once it has ended, and backs off when it measured
            // far slower or the run before it measured slower too; one it judged (and kept its
            // workers, perhaps after measuring the serial rate on its own items) stands.
            None if stats.judged => learn::forget_shed(key),
            // A first such run that measured slower, not far slower, is only noted
            // (`confirm_slower`).
            None => match slower_than_the_loop(plan, stats, ran) {
                Some(measured)
                    if measured < crate::model::shed::CONFIRM_ABOVE
                        || learn::confirm_slower(key) =>
                {
                    learn::note_shed(key, plan, (measured, stats.workers), stats.wall)
                }
                Some(_) => {}
                None => learn::forget_shed(key),
            },
        }
        let rate = if stats.sheds.is_empty() {
            // A trial's window on one worker measured the serial rate, not the plan: the
            // plan's rate is that of the phases on all its workers.
            stats.alone.and_then(|_| {
                let whole = stats.phases.iter().filter(|p| p.workers == stats.workers);
                let (items, secs) = whole.fold((0, 0.0), |(n, t), p| {
                    (n + p.items, t + p.wall.as_secs_f64())
                });
                (items > 0 && secs > 0.0).then(|| items as f64 / secs)
            })
        } else {
            stats.phases.first().and_then(|p| p.throughput())
        };
        if let Some(rate) = rate.filter(|_| ran > 0) {
            wall = std::time::Duration::from_secs_f64(ran as f64 / rate);
        }
    }
    learn::remember(key, plan, (stats.wall, wall), ran, stats.nested, disk_cache);
}
