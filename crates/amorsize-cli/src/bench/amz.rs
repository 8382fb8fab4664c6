//! The amorsize calls the benchmark times: exactly what a user writes, planning included.
//! The counted calls are [`execute`] and [`execute_iter`], but for the first: it and the
//! uncounted warm-up go through [`run_slice`] or [`run_iter`] instead, the same work which also
//! returns the plan the table shows. The first call in a fresh process is an [`execute`] too
//! (its plan comes from a second call).

use amorsize::{Options, Plan};
use std::num::NonZeroUsize;

/// `Options::new().run(items, f)` — the same work as [`amorsize::execute`], which also returns
/// the plan it chose — optionally held to `workers` workers (for the worker curve).
///
/// # Errors
///
/// What amorsize reports (a panic of `f`, threads that cannot start).
pub fn run_slice<F>(
    items: &[u64],
    f: &F,
    workers: Option<NonZeroUsize>,
) -> anyhow::Result<(Vec<u64>, Plan)>
where
    F: Fn(&u64) -> u64 + Sync,
{
    let options = match workers {
        Some(w) => Options::new().workers(w),
        None => Options::new(),
    };
    let run = options.run(items, f)?;
    Ok((run.results, run.report.plan))
}

/// `Options::new().run_iter(iter, f)` — the same work as [`amorsize::execute_iter`], which
/// also returns the plan it chose.
///
/// # Errors
///
/// As [`run_slice`].
pub fn run_iter<I, F>(iter: I, f: &F) -> anyhow::Result<(Vec<u64>, Plan)>
where
    I: Iterator<Item = u64>,
    F: Fn(&u64) -> u64 + Sync,
{
    let run = Options::new().run_iter(iter, f)?;
    Ok((run.results, run.report.plan))
}

/// `amorsize::execute(items, f)`.
///
/// # Errors
///
/// As [`run_slice`].
pub fn execute<F>(items: &[u64], f: &F) -> anyhow::Result<Vec<u64>>
where
    F: Fn(&u64) -> u64 + Sync,
{
    Ok(amorsize::execute(items, f)?)
}

/// `amorsize::execute_iter(iter, f)`.
///
/// # Errors
///
/// As [`run_slice`].
pub fn execute_iter<I, F>(iter: I, f: &F) -> anyhow::Result<Vec<u64>>
where
    I: Iterator<Item = u64>,
    F: Fn(&u64) -> u64 + Sync,
{
    Ok(amorsize::execute_iter(iter, f)?)
}
