//! amorsize decides, for a batch of work, whether to run it serially or in parallel, on how
//! many workers and in chunks of what size — from measurements taken on this machine and this
//! workload — then runs it that way and reports how close the prediction was.
//!
//! The pipeline, one module each: [`probe`] (the machine) → [`sample`] (the workload) →
//! [`model`] (pure cost arithmetic) → [`plan`] (the decision) → [`exec`] (running it) →
//! [`report`] (predicted against measured), with [`cache`] remembering calibrations and runs.
#![deny(missing_docs)]

pub mod adaptor;
pub mod alloc;
pub mod cache;
pub mod calibrate;
#[cfg(feature = "cluster")]
pub mod cluster;
mod error;
pub mod exec;
pub mod fmt;
pub mod model;
pub mod plan;
pub mod probe;
pub mod report;
mod runtime;
pub mod sample;
pub mod stats;
mod units;

pub use error::{Error, ErrorKind, Result};
pub use exec::tune::{tune, Tuning};
pub use exec::{execute, execute_iter, stream, try_execute, Progress, Run, Stream};
pub use plan::{Mode, Options, Plan};

/// What `use amorsize::prelude::*` brings in: `.amorsize()` on rayon pipelines.
pub mod prelude {
    pub use crate::adaptor::{AmorsizeExt, AmorsizeUnindexedExt};
}

// The README's Rust examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// An iterator given back whole after planning: the items the sample pulled, then the rest.
pub type Preserved<I> = std::iter::Chain<std::vec::IntoIter<<I as Iterator>::Item>, I>;

/// Samples `f` on a few of `items`, measures what parallelism costs here, and decides serial
/// or parallel, the workers and the chunk size, with the reasons. The defaults of [`Options`];
/// [`Options::optimize`] takes others.
///
/// # Errors
///
/// [`ErrorKind::Panicked`] with the item's index when `f` panics on a sampled item.
///
/// # Examples
///
/// ```
/// let items: Vec<u64> = (0..100).collect();
/// let plan = amorsize::optimize(&items, |x| x * x).unwrap();
/// // A microsecond of work in all: serial, unless the machine was too busy to time it.
/// println!("{plan}");
/// assert_eq!(plan.items(), Some(100 - plan.sample().unwrap().count));
/// ```
pub fn optimize<T, R, F>(items: &[T], f: F) -> Result<Plan>
where
    F: Fn(&T) -> R,
{
    Options::new().optimize(items, f)
}

/// Samples `f` on the first items of `iter` and decides; gives back the plan and the whole
/// iterator (the sampled items first), so that nothing pulled is lost.
///
/// # Errors
///
/// [`ErrorKind::Panicked`] with the item's index when `f` panics on a sampled item.
///
/// # Examples
///
/// ```
/// let lines = (0..100).map(|i| format!("line {i}"));
/// let (plan, lines) = amorsize::optimize_iter(lines, |s| s.len()).unwrap();
/// assert_eq!(lines.count(), 100);
/// assert!(plan.sample().is_some());
/// ```
pub fn optimize_iter<I, R, F>(iter: I, f: F) -> Result<(Plan, Preserved<I>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    Options::new().optimize_iter(iter, f)
}
