//! `.amorsize()` on rayon pipelines: the pipeline samples itself, plans, and runs serially or
//! on a pool of the planned size, with splits no finer than the planned chunk.
//!
//! ```
//! use rayon::prelude::*;
//! use amorsize::prelude::*;
//!
//! let v: Vec<u64> = (0..10_000).collect();
//! let total: u64 = v.par_iter().map(|x| x * 2).amorsize().sum();
//! assert_eq!(total, 2 * v.iter().sum::<u64>());
//! ```
//!
//! # How a pipeline is driven
//!
//! [`Amorsize`] is an [`IndexedParallelIterator`]. When a consumer drives it (`sum`,
//! `collect`, `for_each`, `reduce`, …), it takes the pipeline's producer and the consumer
//! (rayon's [`plumbing`](rayon::iter::plumbing)) and:
//!
//! 1. **samples through the pipeline**, as [`execute`](crate::execute) samples a slice: a
//!    glance at the first 8 items (which settles the smallest inputs serial at once), then
//!    the library's sample meter until it has enough, never more than 5 % of the input. Items
//!    too fast to time alone are sampled in one block from the front, as the loop runs them;
//!    slower ones at places spread over the input (the front, the middle, the quarters, …),
//!    since inputs are often sorted by cost. Each sampled piece is cut off the producer and
//!    the consumer (`split_at`) and folded through both, so that it runs exactly once and its
//!    result stays in its place, joined to its neighbours by the consumer's own reducers;
//! 2. **plans** with the library's planner ([`plan`](crate::plan)), the cache and the reuse of
//!    a plan made a moment ago included, as [`execute`](crate::execute) does;
//! 3. **runs the rest**: a serial plan as one fold of each part left on the calling thread; a
//!    parallel one on a pool of the planned workers (shared and kept for reuse) that claim
//!    pieces of the planned chunk in order, as the batch executor's workers claim chunks. The
//!    executor's closed loop checks the workers' throughput against the sampled serial rate
//!    while they run and sheds those that do not pay; once it is down to one worker, the
//!    calling thread folds the rest.
//!
//! Nothing is collected on the way: a reduction stays a reduction (a `sum` over 10⁸ items
//! holds a partial sum per piece of a window of at most [`WINDOW_PIECES`] pieces). A panic in
//! the pipeline propagates as rayon's do, from the sample or the rest alike (the workers stop
//! claiming pieces first). Driven from inside a rayon pool (nested), the rest runs on that
//! pool, the calling thread one of its workers. Afterwards the run teaches the next calls as
//! an `execute` run does: a run that shed its workers makes the next drives serial for a
//! back-off, and what it measured goes to the cache.
//!
//! # Where to put it
//!
//! Last, right before the consumer: `.map(f).amorsize().sum()`. Adaptors applied after it that
//! ask for its producer (`zip`, `enumerate`, `chunks`, …) take the pipeline's producer as it is,
//! and the pipeline then runs as plain rayon.
//!
//! # Why it decided
//!
//! [`Amorsize::on_report`] hands the run's [`RunReport`] — the plan with its reasons
//! ([`RunReport::plan`]), the items the sample ran, the phases and the sheds of the closed
//! loop, the measured speedup — to a hook once the pipeline finished. A progress callback of
//! the [`Options`] is not called by pipelines.

mod engine;
mod line;
mod unindexed;

pub use engine::WINDOW_PIECES;
pub use unindexed::{AmorsizeUnindexed, AmorsizeUnindexedExt, SERIAL_AFTER_LOSS};

use crate::report::RunReport;
use crate::Options;
use rayon::iter::plumbing::{Consumer, ProducerCallback, UnindexedConsumer};
use rayon::iter::{IndexedParallelIterator, ParallelIterator};
use std::fmt;
use std::sync::Arc;

/// A hook that hears how a pipeline ran: its plan and what the run measured.
pub type Hook = Arc<dyn Fn(&RunReport) + Send + Sync>;

/// The extension trait that gives every [`IndexedParallelIterator`] `.amorsize()`.
///
/// # Examples
///
/// ```
/// use rayon::prelude::*;
/// use amorsize::prelude::*;
/// use std::collections::HashMap;
///
/// let v: Vec<u64> = (0..1000).collect();
/// let total: u64 = v.par_iter().map(|x| x * x).amorsize().sum();
/// assert_eq!(total, v.iter().map(|x| x * x).sum::<u64>());
///
/// let words: Vec<String> = v.iter().map(|x| x.to_string()).collect();
/// let lengths: HashMap<String, usize> =
///     words.par_iter().map(|w| (w.clone(), w.len())).amorsize().collect();
/// assert_eq!(lengths["999"], 3);
///
/// let parsed: Result<Vec<u32>, _> = ["1", "2", "x"].par_iter().map(|s| s.parse::<u32>()).amorsize().collect();
/// assert!(parsed.is_err());
///
/// let mut data = vec![1u32; 100];
/// data.par_iter_mut().amorsize().for_each(|x| *x += 1);
/// assert!(data.iter().all(|&x| x == 2));
/// ```
pub trait AmorsizeExt: IndexedParallelIterator {
    /// Samples the pipeline while it runs, then runs the rest serially or on a pool of the
    /// planned size (see the [module](crate::adaptor)), with the default [`Options`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rayon::prelude::*;
    /// use amorsize::prelude::*;
    ///
    /// let strings: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    /// let out: Vec<String> = strings.into_par_iter().map(|s| s + "!").amorsize().collect();
    /// assert_eq!(out[42], "42!");
    /// ```
    fn amorsize(self) -> Amorsize<Self> {
        Amorsize::new(self, Options::new())
    }

    /// [`amorsize`](AmorsizeExt::amorsize) with these options: the threshold, fixed workers or
    /// chunk size, a name for the cache, sample bounds.
    ///
    /// # Examples
    ///
    /// ```
    /// use rayon::prelude::*;
    /// use amorsize::prelude::*;
    ///
    /// let v: Vec<u64> = (0..1000).collect();
    /// let s: u64 = v.par_iter().map(|x| x + 1).amorsize_with(amorsize::Options::new().threshold(1.5)).sum();
    /// assert_eq!(s, 1000 * 1001 / 2);
    /// ```
    fn amorsize_with(self, options: Options) -> Amorsize<Self> {
        Amorsize::new(self, options)
    }
}

impl<P: IndexedParallelIterator> AmorsizeExt for P {}

/// A pipeline that plans itself when driven; made by [`AmorsizeExt::amorsize`].
#[must_use = "a parallel iterator does nothing until a consumer drives it"]
#[derive(Clone)]
pub struct Amorsize<P> {
    base: P,
    options: Options,
    hook: Option<Hook>,
}

impl<P: fmt::Debug> fmt::Debug for Amorsize<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Amorsize")
            .field("base", &self.base)
            .field("options", &self.options)
            .field("hook", &self.hook.as_ref().map(|_| ".."))
            .finish()
    }
}

impl<P> Amorsize<P> {
    fn new(base: P, options: Options) -> Self {
        Amorsize {
            base,
            options,
            hook: None,
        }
    }

    /// Calls `hook` with the plan and what the run measured, once the pipeline has run.
    ///
    /// # Examples
    ///
    /// ```
    /// use rayon::prelude::*;
    /// use amorsize::prelude::*;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let keep = Arc::clone(&seen);
    /// let v: Vec<u64> = (0..1000).collect();
    /// let n = v
    ///     .par_iter()
    ///     .map(|x| x % 7)
    ///     .amorsize()
    ///     .on_report(move |run| *keep.lock().unwrap() = Some(run.clone()))
    ///     .count();
    /// assert_eq!(n, 1000);
    /// let run = seen.lock().unwrap().take().expect("reported");
    /// assert_eq!(run.items, 1000);
    /// let phases: usize = run.phases.iter().map(|p| p.items).sum();
    /// assert_eq!(run.reused_from_sample + phases, 1000);
    /// println!("{}\n{run}", run.plan); // the plan with its reasons, then what the run measured
    /// ```
    pub fn on_report(mut self, hook: impl Fn(&RunReport) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }
}

impl<P: IndexedParallelIterator> ParallelIterator for Amorsize<P> {
    type Item = P::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        self.drive(consumer)
    }

    fn opt_len(&self) -> Option<usize> {
        Some(self.base.len())
    }
}

impl<P: IndexedParallelIterator> IndexedParallelIterator for Amorsize<P> {
    fn drive<C: Consumer<Self::Item>>(self, consumer: C) -> C::Result {
        let len = self.base.len();
        self.base.with_producer(engine::Callback {
            len,
            consumer,
            options: self.options,
            hook: self.hook,
        })
    }

    fn len(&self) -> usize {
        self.base.len()
    }

    /// The pipeline's producer as it is: an adaptor after `.amorsize()` that asks for it
    /// (`zip`, `enumerate`) drives the pipeline as plain rayon.
    fn with_producer<CB: ProducerCallback<Self::Item>>(self, callback: CB) -> CB::Output {
        self.base.with_producer(callback)
    }
}
