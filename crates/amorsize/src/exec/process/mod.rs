//! Worker processes: this executable started again in worker mode, with chunks of
//! serde-encoded items and results moved over pipes.
//!
//! Use it for work that needs a process of its own: code that is not thread-safe, may crash,
//! leaks or keeps global state. Every process pays for it in start-up and serialization, which
//! [`execute`] measures and weighs before it uses workers at all.
//!
//! # Setup
//!
//! A worker is the current executable re-executed with an environment variable set, so
//! `main` must register the functions workers run and then call [`init`], before anything
//! else; in a worker, `init` serves chunks and exits, elsewhere it returns at once:
//!
//! ```no_run
//! use amorsize::exec::process::{self, ProcessOptions};
//! use amorsize::{Options, Plan};
//! use std::num::NonZeroUsize;
//!
//! fn square(x: &u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> amorsize::Result<()> {
//!     let square = process::register("square", square);
//!     process::init();
//!
//!     let items: Vec<u64> = (0..10_000).collect();
//!     // Planned: sampled, measured, on worker processes only if they pay.
//!     let outcome = process::execute(square, &items, &Options::new(), &ProcessOptions::new())?;
//!     println!("{}", outcome.plan());
//!     assert_eq!(outcome.into_results()?[3], 9);
//!
//!     // Fixed: always on two worker processes, isolated from this one.
//!     let plan = Plan::fixed(NonZeroUsize::new(2).unwrap(), NonZeroUsize::new(500).unwrap());
//!     let outcome = process::run(square, &items, &plan, &ProcessOptions::new().retries(1))?;
//!     assert_eq!(outcome.into_results()?[3], 9);
//!     Ok(())
//! }
//! ```
//!
//! # Wire and faults
//!
//! Items and results travel as [postcard](https://docs.rs/postcard) encodings in
//! length-prefixed frames (see `wire.rs`). A value that fails to serialize is an
//! [`ErrorKind::Serialization`](crate::ErrorKind) failure naming its item. A worker that
//! panics reports the panic and goes on; one that aborts, segfaults, is killed or overruns
//! [`ProcessOptions::chunk_timeout`] is detected, its chunk is named in the error, and the
//! results of other chunks are kept ([`Outcome`]). On Linux workers receive SIGKILL when the
//! process that started them dies, so none is left behind, whatever happens to the parent; on
//! the other Unixes a worker whose parent died ends at its next read or write of its pipes.
//!
//! # Platforms
//!
//! Every Unix (Linux, macOS, the BSDs). Elsewhere (Windows) every function that would start a
//! worker fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).

mod costs;
mod execute;
mod memory;
mod options;
mod outcome;
mod pool;
mod registry;
mod run;
mod stream;
#[cfg(unix)]
mod sys;
#[cfg(not(unix))]
#[path = "unsupported.rs"]
mod sys;
mod wire;
mod worker;

pub use costs::{
    calibration, calibration_if_measured, ProcessCalibration, FALLBACK_PIPE_PER_BYTE,
    FALLBACK_PROCESS_DISPATCH, FALLBACK_PROCESS_START,
};
pub use execute::execute;
pub use memory::measured_peak_rss;
pub use options::ProcessOptions;
pub use outcome::{Failure, Outcome, RunStats};
pub use pool::Pool;
pub use registry::{register, Function};
pub use stream::{start, Running};

use crate::plan::Plan;
use crate::Result;
use outcome::Gather;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The name of the function the cost probes send empty and padded chunks to.
pub(super) const NOOP: &str = "amorsize.noop";

/// Enters worker mode when this process was started as a worker: serves chunks until its
/// parent closes the pipe, then exits the process. Otherwise returns at once.
///
/// Call it at the top of `main`, after the [`register`] calls: a worker knows only the
/// functions registered before it.
pub fn init() {
    register_builtins();
    if worker::is_worker() {
        std::process::exit(worker::serve());
    }
}

fn register_builtins() {
    fn noop(_: &()) {}
    register::<(), ()>(NOOP, noop);
}

/// Runs `plan` on worker processes of the [global](Pool::global) pool; see [`Pool::run`].
///
/// # Errors
///
/// As [`Pool::run`].
pub fn run<T, R>(
    function: Function<T, R>,
    items: &[T],
    plan: &Plan,
    options: &ProcessOptions,
) -> Result<Outcome<R>>
where
    T: Serialize + Sync,
    R: DeserializeOwned + Send,
{
    Pool::global().run(function, items, plan, options)
}

/// Stops the idle workers of the global pool and waits for them to exit.
pub fn shutdown() {
    Pool::global().shutdown();
}

impl Pool {
    /// Runs `function` on every item on `plan.workers()` worker processes, in chunks of
    /// `plan.chunk_size()` items, whatever the plan's mode: a serial plan runs on one worker,
    /// still isolated from this process. No sample is taken.
    ///
    /// # Errors
    ///
    /// Only when the run cannot go on: no worker process can be started (on Windows,
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)), or workers do not know the
    /// function. An item that fails is in [`Outcome::failures`] instead.
    pub fn run<T, R>(
        &self,
        function: Function<T, R>,
        items: &[T],
        plan: &Plan,
        options: &ProcessOptions,
    ) -> Result<Outcome<R>>
    where
        T: Serialize + Sync,
        R: DeserializeOwned + Send,
    {
        sys::supported()?;
        #[allow(clippy::single_range_in_vec_init)]
        let tasks = run::chunks(&[0..items.len()], plan.chunk_size().get());
        let gather = Gather::new(items.len());
        let target = run::Target {
            pool: self,
            sink: &gather,
            cancel: &run::Cancel::default(),
        };
        let stats = run::run(
            function,
            items,
            tasks,
            plan.workers().get(),
            options,
            target,
        )?;
        Ok(gather.into_outcome(plan.clone(), stats))
    }
}

#[cfg(all(test, not(unix)))]
mod tests {
    use crate::{ErrorKind, Options, Plan};
    use std::num::NonZeroUsize;

    fn double(x: &u32) -> u32 {
        x * 2
    }

    #[test]
    fn every_way_to_worker_processes_says_they_are_unsupported_here() {
        let f = super::register("test.double", double);
        let items = [1u32, 2, 3];
        let planned = super::execute(f, &items, &Options::new(), &super::ProcessOptions::new());
        let err = planned.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("threads"), "{err}");
        let plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
        let fixed = super::run(f, &items, &plan, &super::ProcessOptions::new());
        assert_eq!(fixed.unwrap_err().kind(), ErrorKind::Unsupported);
        let calibrated = super::calibration();
        assert_eq!(calibrated.unwrap_err().kind(), ErrorKind::Unsupported);
    }
}

/// The cluster backend runs the same registered functions and moves the same slots.
#[cfg(feature = "cluster")]
pub(crate) use registry::lookup as lookup_call;

/// Takes item `index`'s slot (as a registered function's call writes it) from the front of
/// `slots`: its result, or the error it failed with.
#[cfg(feature = "cluster")]
pub(crate) fn decode_slot<R: DeserializeOwned>(slots: &mut &[u8], index: usize) -> Result<R> {
    let undecodable = |e: postcard::Error| {
        crate::Error::new(
            crate::ErrorKind::Serialization,
            format!(
                "the result of item {index} could not be decoded as {}: {e}",
                std::any::type_name::<R>()
            ),
        )
        .with_item(index)
    };
    let (&tag, rest) = slots.split_first().ok_or_else(|| {
        crate::Error::new(
            crate::ErrorKind::Serialization,
            format!("the reply ended before item {index}'s result"),
        )
        .with_item(index)
    })?;
    if tag == wire::SLOT_OK {
        let (value, rest) = postcard::take_from_bytes::<R>(rest).map_err(undecodable)?;
        *slots = rest;
        return Ok(value);
    }
    let (failure, rest) =
        postcard::take_from_bytes::<wire::ItemFailure>(rest).map_err(undecodable)?;
    *slots = rest;
    let kind = match failure.kind {
        wire::FailureKind::Panicked => crate::ErrorKind::Panicked,
        wire::FailureKind::Serialization => crate::ErrorKind::Serialization,
    };
    Err(crate::Error::new(kind, failure.message).with_item(index))
}
