//! amorsize decides, for a batch of work, whether to run it serially or in parallel, on how
//! many workers and in chunks of what size — from measurements taken on this machine and this
//! workload — then runs it that way and reports how close the prediction was.
//!
//! The pipeline, one module each: [`probe`] (the machine) → [`sample`] (the workload) →
//! [`model`] (pure cost arithmetic) → [`plan`] (the decision) → [`exec`] (running it) →
//! [`report`] (predicted against measured), with [`cache`] remembering calibrations and runs.
#![deny(missing_docs)]

pub mod cache;
mod error;
pub mod exec;
pub mod model;
pub mod plan;
pub mod probe;
pub mod report;
pub mod sample;

pub use error::{Error, ErrorKind, Result};
pub use exec::tune::{tune, Tuning};
pub use exec::{execute, execute_iter, stream, try_execute, Progress, Run, Stream};
pub use plan::{Mode, Options, Plan};

// The README's Rust examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
