//! Thread pools, reused across runs: rayon's global pool when its size is the one planned,
//! otherwise a pool of that size from a small registry.
//!
//! Building a pool starts its threads (tens of µs each); reusing one costs nothing. The
//! registry keeps at most [`MAX_POOLS`] sizes; the least recently used is dropped beyond that
//! (rayon ends a dropped pool's threads once their queued work is done).

use crate::{Error, ErrorKind, Result};
use rayon::{Scope, ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex, PoisonError};

/// Pool sizes kept alive at once besides the global pool.
pub(crate) const MAX_POOLS: usize = 4;

/// A pool that runs a plan's workers.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// rayon's global pool.
    Global,
    /// A pool of another size, shared through the registry.
    Own(Arc<ThreadPool>),
}

impl Pool {
    /// Creates a scope on the calling thread whose spawned jobs run in this pool.
    pub(crate) fn in_place_scope<'scope, R>(&self, op: impl FnOnce(&Scope<'scope>) -> R) -> R {
        match self {
            Pool::Global => rayon::in_place_scope(op),
            Pool::Own(pool) => pool.in_place_scope(op),
        }
    }

    /// Runs `op` in this pool and waits for it: rayon's `join`s inside it (a producer bridged
    /// to a consumer) run on this pool's threads. On the global pool `op` starts on the calling
    /// thread, and its first `join` moves the work into the pool, as rayon does.
    pub(crate) fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match self {
            Pool::Global => op(),
            Pool::Own(pool) => pool.install(op),
        }
    }

    /// Runs `job` on a thread of this pool, some time later.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        match self {
            Pool::Global => rayon::spawn(job),
            Pool::Own(pool) => pool.spawn(job),
        }
    }
}

/// Whether the calling thread is a worker of a rayon pool (amorsize's pools are rayon pools),
/// or works in a run on one as its worker 0 ([`working_in`]).
///
/// A run started there is *nested*: it runs on that pool's threads instead of starting more,
/// so nested parallelism never oversubscribes the cores and never waits on threads that are
/// themselves waiting.
pub(crate) fn nested() -> bool {
    rayon::current_thread_index().is_some() || WORKING_IN.with(|w| w.borrow().is_some())
}

thread_local! {
    /// The pool of the run the calling thread works in as its worker 0, while it does
    /// ([`working_in`]).
    static WORKING_IN: std::cell::RefCell<Option<Pool>> = const { std::cell::RefCell::new(None) };
}

/// Runs `op` on the calling thread as a worker of a run on `pool`: a run started inside `op`
/// (the user's function starting another) is nested ([`nested`]) and its jobs go to `pool`
/// ([`lent`]), as they would from one of the pool's own threads.
pub(crate) fn working_in<R>(pool: &Pool, op: impl FnOnce() -> R) -> R {
    /// Puts back what the thread worked in before, on unwinding too.
    struct Restore(Option<Pool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            WORKING_IN.with(|w| *w.borrow_mut() = before);
        }
    }
    let _restore = Restore(WORKING_IN.with(|w| w.replace(Some(pool.clone()))));
    op()
}

/// The pool a nested run started on the calling thread sends its jobs to, when that is not
/// the current rayon pool: the pool of the run the thread works in as worker 0, outside any
/// pool ([`working_in`]). `None` on a pool's own thread, and outside any run.
pub(crate) fn lent() -> Option<Pool> {
    if rayon::current_thread_index().is_some() {
        return None;
    }
    WORKING_IN.with(|w| w.borrow().clone())
}

/// Threads of the pool a nested run on the calling thread uses ([`lent`], else the current
/// rayon pool).
pub(crate) fn nested_threads() -> usize {
    match lent() {
        Some(Pool::Own(pool)) => pool.current_num_threads(),
        Some(Pool::Global) | None => rayon::current_num_threads(),
    }
}

/// Runs `op` in the pool a nested run on the calling thread uses ([`lent`], else the current
/// one, where `op` simply runs).
pub(crate) fn install_nested<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    match lent() {
        Some(pool) => pool.install(op),
        None => op(),
    }
}

/// A scope on the calling thread whose jobs run in the pool a nested run uses ([`lent`], else
/// the current one).
pub(crate) fn nested_scope<'scope, R>(op: impl FnOnce(&Scope<'scope>) -> R) -> R {
    match lent() {
        Some(pool) => pool.in_place_scope(op),
        None => rayon::in_place_scope(op),
    }
}

/// A pool of `workers` threads of the caller's own, outside the registry (so that keeping
/// it does not push out the pools runs share).
///
/// # Errors
///
/// As [`pool`].
pub(crate) fn dedicated(workers: usize, name: &'static str) -> Result<Pool> {
    build(workers, name).map(|p| Pool::Own(Arc::new(p)))
}

fn build(workers: usize, name: &'static str) -> Result<ThreadPool> {
    let pool = ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("could not start a pool of {workers} worker threads; try fewer workers"),
            )
            .with_source(e)
        })?;
    pool.broadcast(|context| crate::probe::visit_cpu(context.index()));
    // One more thread beside those just started: the watcher of heavy first items.
    super::watch::start();
    Ok(pool)
}

/// Spreads the threads of rayon's global pool over the cores once per process, as [`build`]
/// does for the pools it starts ([`crate::probe::visit_cpu`]): each visits a CPU of its own.
fn spread_global() {
    static SPREAD: std::sync::Once = std::sync::Once::new();
    SPREAD.call_once(|| {
        rayon::broadcast(|context| crate::probe::visit_cpu(context.index()));
        super::watch::start();
    });
}

/// A pool with `workers` threads, reused when one exists.
///
/// # Errors
///
/// An [`ErrorKind::Io`] error when the operating system refuses to start the threads.
pub(crate) fn pool(workers: usize) -> Result<Pool> {
    pool_within(workers, workers)
}

/// A pool with `workers` threads or a few more, reused when one exists: for runs that start
/// exactly `workers` jobs, each a worker's loop, which a larger pool runs with the same
/// concurrency. Plans for waiting work size their workers from a sample that varies from call
/// to call (21 workers, then 18, then 25); without this, each new size would start a pool of
/// its own, a millisecond of thread starts on a call of a few milliseconds. Up to twice the
/// workers, the smallest such pool is taken.
///
/// # Errors
///
/// As [`pool`].
pub(crate) fn pool_at_least(workers: usize) -> Result<Pool> {
    pool_within(workers, workers.saturating_mul(2))
}

/// Where among `sizes` the smallest of `workers..=most` is, if any is.
fn fitting(sizes: impl Iterator<Item = usize>, workers: usize, most: usize) -> Option<usize> {
    sizes
        .enumerate()
        .filter(|(_, n)| (workers..=most).contains(n))
        .min_by_key(|(_, n)| *n)
        .map(|(at, _)| at)
}

/// The global pool when it has exactly `workers` threads, else the registry's smallest pool of
/// `workers..=most` threads, else a new one of `workers`.
fn pool_within(workers: usize, most: usize) -> Result<Pool> {
    if workers == rayon::current_num_threads() {
        spread_global();
        return Ok(Pool::Global);
    }
    static REGISTRY: Mutex<Vec<(usize, Arc<ThreadPool>)>> = Mutex::new(Vec::new());
    // A panic while holding this lock leaves the list itself intact, so a poisoned lock is
    // still usable.
    let mut pools = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(at) = fitting(pools.iter().map(|(n, _)| *n), workers, most) {
        // Most recently used last.
        let entry = pools.remove(at);
        let pool = Arc::clone(&entry.1);
        pools.push(entry);
        return Ok(Pool::Own(pool));
    }
    let pool = Arc::new(build(workers, "amorsize")?);
    if pools.len() >= MAX_POOLS {
        pools.remove(0);
    }
    pools.push((workers, Arc::clone(&pool)));
    Ok(Pool::Own(pool))
}

#[cfg(test)]
mod tests {
    use super::fitting;

    #[test]
    fn the_smallest_pool_with_enough_threads_is_taken() {
        let sizes = || [3, 25, 21, 40].into_iter();
        assert_eq!(fitting(sizes(), 18, 36), Some(2));
        assert_eq!(fitting(sizes(), 21, 21), Some(2));
        assert_eq!(fitting(sizes(), 22, 44), Some(1));
        assert_eq!(fitting(sizes(), 4, 8), None);
        assert_eq!(fitting(sizes(), 41, 82), None);
        assert_eq!(fitting(std::iter::empty(), 2, 4), None);
    }
}
