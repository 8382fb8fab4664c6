//! Options of planning and execution, set through a builder.

use crate::sample::SampleBounds;
use std::num::NonZeroUsize;
use std::time::Duration;

/// How amorsize samples, decides and runs. Start from [`Options::new`] (the defaults) and
/// change what you need.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let options = amorsize::Options::new()
///     .threshold(1.5)
///     .target_chunk_duration(Duration::from_millis(50))
///     .name("resize images");
/// let items: Vec<u64> = (0..100).collect();
/// let plan = options.optimize(&items, |x| x * 2).unwrap();
/// assert_eq!(plan.name(), Some("resize images"));
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) threshold: f64,
    pub(crate) max_workers: Option<NonZeroUsize>,
    pub(crate) workers: Option<NonZeroUsize>,
    pub(crate) chunk: Option<NonZeroUsize>,
    pub(crate) target_chunk: Option<Duration>,
    pub(crate) name: Option<String>,
    pub(crate) exec: super::ExecOptions,
    pub(crate) sample: SampleBounds,
    pub(crate) items: Option<usize>,
    pub(crate) disk_cache: bool,
}

/// The speedup below which parallelism is refused: the original library's default, kept
/// because a predicted 1.2× leaves room for the model's error (a sample of a few items, costs
/// measured on a busy machine) before a plan could be slower than the serial loop, while still
/// taking the gains that matter (anything from 1.2× on 2 cores up).
pub const DEFAULT_THRESHOLD: f64 = 1.2;

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: DEFAULT_THRESHOLD,
            max_workers: None,
            workers: None,
            chunk: None,
            target_chunk: None,
            name: None,
            exec: super::ExecOptions::default(),
            sample: SampleBounds::default(),
            items: None,
            disk_cache: true,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse parallelism whose predicted speedup is below `threshold` (default 1.2). Below 1
    /// the planner accepts plans predicted slower than the serial loop: for experiments and
    /// tests that need a parallel run of tiny work, never for production.
    ///
    /// # Panics
    ///
    /// If `threshold` is NaN or negative.
    pub fn threshold(mut self, threshold: f64) -> Self {
        assert!(
            threshold >= 0.0,
            "the speedup threshold must be a number of at least 0 (1.2 by default), not {threshold}"
        );
        self.threshold = threshold;
        self
    }

    /// Never use more than `n` workers.
    pub fn max_workers(mut self, n: NonZeroUsize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Use exactly `n` workers instead of choosing.
    pub fn workers(mut self, n: NonZeroUsize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Use chunks of exactly `n` items instead of choosing.
    pub fn chunk_size(mut self, n: NonZeroUsize) -> Self {
        self.chunk = Some(n);
        self
    }

    /// Keep chunks shorter than about `d` (default 0.2 s, the original's target; the planner
    /// picks shorter chunks when the dispatch cost allows).
    pub fn target_chunk_duration(mut self, d: Duration) -> Self {
        self.target_chunk = Some(d);
        self
    }

    /// Name the workload (for reports and the cache).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many items a sample takes and how long it measures (see [`SampleBounds`]).
    pub fn sample_bounds(mut self, bounds: SampleBounds) -> Self {
        self.sample = bounds;
        self
    }

    /// The number of items of an iterator whose length its `size_hint` does not tell.
    pub fn items(mut self, n: usize) -> Self {
        self.items = Some(n);
        self
    }

    /// Whether this call may read and write the disk cache (default: yes, where the `cache`
    /// feature builds it in and `AMORSIZE_CACHE` does not turn it off). With `false`, the call
    /// neither reads its workload's past runs from the file nor records its run there; what
    /// the run teaches is kept in this process's memory. The machine's calibration, shared by
    /// every call of the process, is read from the file at most once per process.
    ///
    /// # Examples
    ///
    /// ```
    /// let items: Vec<u64> = (0..100).collect();
    /// let plan = amorsize::Options::new().disk_cache(false).optimize(&items, |x| x + 1).unwrap();
    /// assert!(plan.sample().is_some());
    /// ```
    pub fn disk_cache(mut self, on: bool) -> Self {
        self.disk_cache = on;
        self
    }

    /// Whether a plan made with these options depends on nothing of the caller's but the
    /// threshold and the name: no workers, worker cap, chunk size, chunk duration, sample
    /// bounds or item count. Only such a plan is reused by a later call of the same workload
    /// ([`crate::plan::recall::recall_parallel`]), and only by a call whose options are such too.
    pub(crate) fn leave_plan_to_sample(&self) -> bool {
        self.workers.is_none()
            && self.max_workers.is_none()
            && self.chunk.is_none()
            && self.target_chunk.is_none()
            && self.items.is_none()
            && self.sample == SampleBounds::default()
    }

    /// Samples `f` on `items` and decides; see [`optimize`](crate::optimize).
    ///
    /// # Errors
    ///
    /// When `f` panics on a sampled item ([`ErrorKind::Panicked`](crate::ErrorKind::Panicked),
    /// with the item's index).
    pub fn optimize<T, R, F>(&self, items: &[T], f: F) -> crate::Result<super::Plan>
    where
        F: Fn(&T) -> R,
    {
        super::plan_slice(items, &f, self).map(|(plan, _)| plan)
    }

    /// Samples `f` on the first items of `iter` and decides; see
    /// [`optimize_iter`](crate::optimize_iter).
    ///
    /// # Errors
    ///
    /// When `f` panics on a sampled item ([`ErrorKind::Panicked`](crate::ErrorKind::Panicked),
    /// with the item's index).
    pub fn optimize_iter<I, R, F>(
        &self,
        iter: I,
        f: F,
    ) -> crate::Result<(super::Plan, crate::Preserved<I>)>
    where
        I: Iterator,
        F: Fn(&I::Item) -> R,
    {
        let planned = super::plan_iter(iter, &f, self)?;
        Ok((planned.plan, planned.prefix.into_iter().chain(planned.rest)))
    }
}
