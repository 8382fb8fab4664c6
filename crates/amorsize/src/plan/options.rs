//! Options of planning and execution, set through a builder.

use std::num::NonZeroUsize;
use std::time::Duration;

/// How amorsize samples, decides and runs. Start from [`Options::new`] (the defaults) and
/// change what you need.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) threshold: f64,
    pub(crate) max_workers: Option<NonZeroUsize>,
    pub(crate) workers: Option<NonZeroUsize>,
    pub(crate) chunk: Option<NonZeroUsize>,
    pub(crate) target_chunk: Option<Duration>,
    pub(crate) name: Option<String>,
    pub(crate) exec: crate::exec::ExecOptions,
}

/// The speedup below which parallelism is refused: the original library's default, kept
/// because a predicted 1.2× leaves room for the model's error before a plan could be slower
/// than the serial loop.
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
            exec: crate::exec::ExecOptions::default(),
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse parallelism whose predicted speedup is below `threshold` (default 1.2).
    pub fn threshold(mut self, threshold: f64) -> Self {
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

    /// Aim for chunks that take about `d` each.
    pub fn target_chunk_duration(mut self, d: Duration) -> Self {
        self.target_chunk = Some(d);
        self
    }

    /// Name the workload (for reports and the cache).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}
