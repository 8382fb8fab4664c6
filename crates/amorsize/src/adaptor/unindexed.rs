//! `.amorsize()` on pipelines that are not indexed (`filter`, `flat_map`, `par_bridge`, a hash
//! map's items, a string's lines): their producer cannot be split at an index, so no sample can
//! be cut off their front. Each drive times what it runs (per piece, through the consumer) and
//! the next drive of the same pipeline decides from it.
//!
//! - The first drive of a pipeline in a process runs as plain rayon on the global pool, and
//!   measures the time per item its pieces took and the wall time.
//! - Later drives plan from the last drive's figures (its items, their time each): serially
//!   (the whole pipeline on one thread of a one-thread pool) or on a pool of the planned size.
//! - A parallel drive whose wall time was not below its busy time (no speedup) is followed by
//!   [`SERIAL_AFTER_LOSS`] serial drives before the planner is asked again.

use super::Hook;
use crate::exec::{self, pool, Phase, Stats};
use crate::model::Seconds;
use crate::report::RunReport;
use crate::sample::Sample;
use crate::{Options, Plan};
use rayon::iter::plumbing::{Consumer, Folder, UnindexedConsumer};
use rayon::iter::ParallelIterator;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Drives that run serially after a parallel drive of the same pipeline measured no speedup,
/// before the planner decides again: 16, as many calls as a reused plan serves.
pub const SERIAL_AFTER_LOSS: u32 = 16;

/// Pipelines remembered per process; beyond it the memory starts over.
const REMEMBERED: usize = 256;

/// A pipeline that is not indexed, planned from its last drive; made by
/// [`AmorsizeUnindexedExt::amorsize`].
#[must_use = "a parallel iterator does nothing until a consumer drives it"]
#[derive(Clone)]
pub struct AmorsizeUnindexed<P> {
    base: P,
    options: Options,
    hook: Option<Hook>,
}

impl<P: fmt::Debug> fmt::Debug for AmorsizeUnindexed<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmorsizeUnindexed")
            .field("base", &self.base)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<P> AmorsizeUnindexed<P> {
    pub(super) fn new(base: P, options: Options) -> Self {
        AmorsizeUnindexed {
            base,
            options,
            hook: None,
        }
    }

    /// Calls `hook` with the plan and what the drive measured, once the pipeline has run
    /// (as [`Amorsize::on_report`](super::Amorsize::on_report)). The first drive in a process
    /// reports a fixed plan of the pool it ran on (nothing was planned); a drive serial after a
    /// lost parallel one, a serial plan that warns of the length it assumed.
    pub fn on_report(mut self, hook: impl Fn(&RunReport) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }
}

/// What the last drive of a pipeline measured.
#[derive(Clone, Copy, Debug)]
struct Seen {
    items: usize,
    /// Time per item inside the pieces (summed over the workers), seconds.
    item_time: Seconds,
    /// Serial drives left before the planner decides again.
    serial_left: u32,
}

fn memory() -> &'static Mutex<HashMap<&'static str, Seen>> {
    static MEMORY: std::sync::OnceLock<Mutex<HashMap<&'static str, Seen>>> =
        std::sync::OnceLock::new();
    MEMORY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Items, pieces and busy nanoseconds the pieces of one drive counted.
#[derive(Default)]
struct Meter {
    items: AtomicU64,
    pieces: AtomicU64,
    nanos: AtomicU64,
}

impl<P: ParallelIterator> ParallelIterator for AmorsizeUnindexed<P> {
    type Item = P::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        let start = Instant::now();
        let key = std::any::type_name::<(P, C)>();
        let remembered = memory()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied();
        let plan = remembered.map(|seen| decide::<P::Item>(seen, &self.options));
        let meter = Meter::default();
        let timed = Timed {
            base: consumer,
            meter: &meter,
        };
        let base = self.base;
        let nested = pool::nested();
        let workers = match &plan {
            _ if nested => pool::nested_threads(),
            Some(plan) => plan.workers().get(),
            None => rayon::current_num_threads(),
        };
        let result = if nested {
            pool::install_nested(|| base.drive_unindexed(timed))
        } else {
            match pool::pool(workers) {
                Ok(pool) => pool.install(|| base.drive_unindexed(timed)),
                // rayon's own pool still runs it.
                Err(_) => base.drive_unindexed(timed),
            }
        };
        let wall = start.elapsed();
        let items = meter.items.load(Relaxed) as usize;
        let busy = Duration::from_nanos(meter.nanos.load(Relaxed));
        let item_time = if items > 0 {
            busy.as_secs_f64() / items as f64
        } else {
            0.0
        };
        let parallel = workers > 1;
        let serial_left = match remembered {
            Some(seen)
                if seen.serial_left > 0 && plan.as_ref().is_some_and(|p| !p.is_parallel()) =>
            {
                seen.serial_left - 1
            }
            // No speedup measured: the workers' busy time did not exceed the wall time.
            _ if parallel && items > 0 && busy <= wall => SERIAL_AFTER_LOSS,
            _ => 0,
        };
        {
            let mut memory = memory().lock().unwrap_or_else(PoisonError::into_inner);
            if memory.len() >= REMEMBERED && !memory.contains_key(key) {
                memory.clear();
            }
            memory.insert(
                key,
                Seen {
                    items,
                    item_time,
                    serial_left,
                },
            );
        }
        if let Some(hook) = &self.hook {
            let plan = plan.unwrap_or_else(|| {
                let workers = NonZeroUsize::new(workers).unwrap_or(NonZeroUsize::MIN);
                Plan::fixed(workers, NonZeroUsize::MIN)
            });
            let stats = Stats {
                workers,
                chunks: meter.pieces.load(Relaxed) as usize,
                wall,
                busy,
                nested,
                phases: vec![Phase::new(workers, items, wall)],
                ..Stats::default()
            };
            hook(&exec::report_of(&plan, items, 0, stats));
        }
        result
    }
}

/// The plan for a drive after one that measured `seen`.
fn decide<T>(seen: Seen, options: &Options) -> Plan {
    if seen.serial_left > 0 && options.workers.is_none() {
        let mut plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
        plan.push_warning(crate::plan::Warning::UnknownLength {
            assumed: seen.items,
        });
        return plan;
    }
    let figures = Sample {
        count: seen.items,
        item_time: seen.item_time,
        measured: seen.item_time * seen.items as f64,
        result_bytes: std::mem::size_of::<T>() as u64,
        cpu_skipped: true,
        ..Sample::default()
    };
    crate::plan::plan_sample(&figures, seen.items, options)
}

/// A consumer that counts the items each piece folds and the time the piece takes.
struct Timed<'m, C> {
    base: C,
    meter: &'m Meter,
}

impl<'m, T, C: Consumer<T>> Consumer<T> for Timed<'m, C> {
    type Folder = TimedFolder<'m, C::Folder>;
    type Reducer = C::Reducer;
    type Result = C::Result;

    fn split_at(self, index: usize) -> (Self, Self, Self::Reducer) {
        let (left, right, reducer) = self.base.split_at(index);
        let meter = self.meter;
        (
            Timed { base: left, meter },
            Timed { base: right, meter },
            reducer,
        )
    }

    fn into_folder(self) -> Self::Folder {
        TimedFolder {
            base: self.base.into_folder(),
            meter: self.meter,
            items: 0,
            start: Instant::now(),
        }
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

impl<T, C: UnindexedConsumer<T>> UnindexedConsumer<T> for Timed<'_, C> {
    fn split_off_left(&self) -> Self {
        Timed {
            base: self.base.split_off_left(),
            meter: self.meter,
        }
    }

    fn to_reducer(&self) -> Self::Reducer {
        self.base.to_reducer()
    }
}

/// The folder of one piece, counting.
struct TimedFolder<'m, F> {
    base: F,
    meter: &'m Meter,
    items: u64,
    start: Instant,
}

impl<T, F: Folder<T>> Folder<T> for TimedFolder<'_, F> {
    type Result = F::Result;

    fn consume(mut self, item: T) -> Self {
        self.items += 1;
        self.base = self.base.consume(item);
        self
    }

    fn consume_iter<I: IntoIterator<Item = T>>(mut self, iter: I) -> Self {
        let mut items = 0;
        self.base = self
            .base
            .consume_iter(iter.into_iter().inspect(|_| items += 1));
        self.items += items;
        self
    }

    fn complete(self) -> F::Result {
        let took = self.start.elapsed();
        self.meter.items.fetch_add(self.items, Relaxed);
        self.meter.pieces.fetch_add(1, Relaxed);
        self.meter
            .nanos
            .fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
        self.base.complete()
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

/// `.amorsize()` for the pipelines rayon cannot index: `filter`, `filter_map`, `flat_map`,
/// `flatten`, `par_bridge`, `while_some`, `skip_any`/`take_any`, `positions`, a hash map's or a
/// string's items, ranges of 64- and 128-bit integers and inclusive ranges wider than 16 bits, and `map`/`inspect`/`cloned`/`copied`/`map_with`/`map_init`/`update` over
/// them. Planned from the pipeline's last drive (see [`AmorsizeUnindexed`]'s module notes).
///
/// # Examples
///
/// ```
/// use rayon::prelude::*;
/// use amorsize::prelude::*;
///
/// let v: Vec<u64> = (0..10_000).collect();
/// for _ in 0..3 {
///     let even: usize = v.par_iter().filter(|x| *x % 2 == 0).amorsize().count();
///     assert_eq!(even, 5000);
/// }
/// let words: usize = "a b c\nd e".par_lines().flat_map_iter(|l| l.split(' ')).amorsize().count();
/// assert_eq!(words, 5);
/// ```
pub trait AmorsizeUnindexedExt: ParallelIterator {
    /// Plans the pipeline from its last drive in this process (the first drive runs as plain
    /// rayon and measures), then runs it serially or on a pool of the planned size.
    fn amorsize(self) -> AmorsizeUnindexed<Self> {
        AmorsizeUnindexed::new(self, Options::new())
    }

    /// [`amorsize`](AmorsizeUnindexedExt::amorsize) with these options.
    fn amorsize_with(self, options: Options) -> AmorsizeUnindexed<Self> {
        AmorsizeUnindexed::new(self, options)
    }
}

/// The pipelines that are never indexed.
macro_rules! unindexed {
    ($( [$($g:tt)*] $t:ty ),* $(,)?) => {
        $( impl<$($g)*> AmorsizeUnindexedExt for $t where $t: ParallelIterator {} )*
    };
}

/// Adaptors that are indexed exactly when their base is: not indexed over a base that is not.
macro_rules! unindexed_over {
    ($( [$($g:tt)*] $t:ty ),* $(,)?) => {
        $( impl<I: AmorsizeUnindexedExt, $($g)*> AmorsizeUnindexedExt for $t where $t: ParallelIterator {} )*
    };
}

use rayon::iter as ri;

unindexed! {
    [I, P] ri::Filter<I, P>,
    [I, P] ri::FilterMap<I, P>,
    [I, F] ri::FlatMap<I, F>,
    [I, F] ri::FlatMapIter<I, F>,
    [I] ri::Flatten<I>,
    [I] ri::FlattenIter<I>,
    [I] ri::IterBridge<I>,
    [I] ri::WhileSome<I>,
    [I] ri::SkipAny<I>,
    [I] ri::TakeAny<I>,
    [I, P] ri::SkipAnyWhile<I, P>,
    [I, P] ri::TakeAnyWhile<I, P>,
    [I, P] ri::Positions<I, P>,
    [D, S] ri::Split<D, S>,
    [] rayon::range::Iter<u64>,
    [] rayon::range::Iter<i64>,
    [] rayon::range::Iter<u128>,
    [] rayon::range::Iter<i128>,
    [] rayon::range_inclusive::Iter<u32>,
    [] rayon::range_inclusive::Iter<i32>,
    [] rayon::range_inclusive::Iter<u64>,
    [] rayon::range_inclusive::Iter<i64>,
    [] rayon::range_inclusive::Iter<u128>,
    [] rayon::range_inclusive::Iter<i128>,
    [] rayon::range_inclusive::Iter<usize>,
    [] rayon::range_inclusive::Iter<isize>,
    ['a] rayon::str::Lines<'a>,
    ['a] rayon::str::Chars<'a>,
    ['a] rayon::str::CharIndices<'a>,
    ['a] rayon::str::Bytes<'a>,
    ['a] rayon::str::SplitWhitespace<'a>,
    ['a] rayon::str::SplitAsciiWhitespace<'a>,
    ['a, K, V] rayon::collections::hash_map::Iter<'a, K, V>,
    ['a, K, V] rayon::collections::hash_map::IterMut<'a, K, V>,
    [K, V] rayon::collections::hash_map::IntoIter<K, V>,
    ['a, T] rayon::collections::hash_set::Iter<'a, T>,
    [T] rayon::collections::hash_set::IntoIter<T>,
    ['a, K, V] rayon::collections::btree_map::Iter<'a, K, V>,
    [K, V] rayon::collections::btree_map::IntoIter<K, V>,
    ['a, T] rayon::collections::btree_set::Iter<'a, T>,
    [T] rayon::collections::btree_set::IntoIter<T>,
}

unindexed_over! {
    [F] ri::Map<I, F>,
    [F] ri::Inspect<I, F>,
    [] ri::Cloned<I>,
    [] ri::Copied<I>,
    [T, F] ri::MapWith<I, T, F>,
    [INIT, F] ri::MapInit<I, INIT, F>,
    [F] ri::Update<I, F>,
    [] ri::PanicFuse<I>,
    [] ri::Intersperse<I>,
    [B] ri::Chain<I, B>,
}
