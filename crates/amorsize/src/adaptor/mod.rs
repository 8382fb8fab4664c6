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
//! 1. **samples through the pipeline**: the first items of the producer, in timed blocks of
//!    growing size, are folded sequentially into pieces split off the consumer, so that each
//!    sampled item runs exactly once, producer and consumer both, and its result stays in
//!    place (joined to the rest by the consumer's own reducers, in order). The sample grows as
//!    the library's does ([`SampleBounds`](crate::sample::SampleBounds)): a glance at 8 items
//!    first (which settles the smallest inputs serial at once), then enough to measure
//!    reliably, never more than 5 % of the input;
//! 2. **plans** with the library's planner ([`plan`](crate::plan)), the cache and the reuse of
//!    a plan made a moment ago included, as [`execute`](crate::execute) does;
//! 3. **runs the rest**: a serial plan as one sequential fold of the rest of the producer on the
//!    calling thread; a parallel one bridged on a pool of the planned workers (shared and kept
//!    for reuse), never split finer than the planned chunk. When the rest is long enough, its
//!    first segment (two chunks per worker, at least a millisecond) runs alone first and its
//!    rate is compared with the sampled serial rate ([`parallel_pays`]): where parallel was not
//!    faster, the rest is folded serially on the calling thread (the workers are shed).
//!
//! Nothing is collected on the way: a reduction stays a reduction (a `sum` over 10⁸ items
//! holds a few partial sums). A panic in the pipeline propagates as rayon's do, from the
//! sample or the rest alike. Driven from inside a rayon pool (nested), the rest runs on that
//! pool.
//!
//! # Where to put it
//!
//! Last, right before the consumer: `.map(f).amorsize().sum()`. Adaptors applied after it that
//! ask for its producer (`zip`, `enumerate`, `chunks`, …) take the pipeline's producer as it is,
//! and the pipeline then runs as plain rayon.
//!
//! # Why it decided
//!
//! [`Amorsize::on_report`] hands a [`PipelineRun`] (the plan with its reasons, the sample,
//! the first segment's check and where each item ran) to a hook once the pipeline finished.
//! A progress callback of the [`Options`] is not called by pipelines.

mod check;
mod engine;
mod min_len;
mod report;
mod unindexed;

pub use check::{parallel_pays, SEGMENT_CHUNKS_PER_WORKER, SEGMENT_MAX_SHARE, SEGMENT_TIME};
pub use report::{Basis, PipelineRun, SegmentCheck};
pub use unindexed::{AmorsizeUnindexed, AmorsizeUnindexedExt, SERIAL_AFTER_LOSS};

use crate::Options;
use rayon::iter::plumbing::{Consumer, ProducerCallback, UnindexedConsumer};
use rayon::iter::{IndexedParallelIterator, ParallelIterator};
use std::fmt;
use std::sync::Arc;

/// A hook that hears how a pipeline ran.
pub type Hook = Arc<dyn Fn(&PipelineRun) + Send + Sync>;

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
    /// println!("{run}"); // the plan, its reasons, and what ran where
    /// ```
    pub fn on_report(mut self, hook: impl Fn(&PipelineRun) + Send + Sync + 'static) -> Self {
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
