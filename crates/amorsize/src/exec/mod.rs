//! Runs a plan: a plain loop, a rayon pool or worker processes. This is the
//! only module that starts threads or processes.
//!
//! # Threads
//!
//! [`execute`] (slices), [`execute_iter`] (any iterable), [`try_execute`] (stop at the first
//! error) and [`Plan::run`](crate::Plan::run) run a batch; every item runs exactly once, the
//! sampled ones included (their results are kept), and results come back in input order.
//!
//! - A serial plan is a plain loop on the calling thread.
//! - A parallel plan runs on a rayon pool of the planned size — rayon's global pool when the
//!   sizes match, otherwise a pool kept for reuse — whose workers claim chunks of the planned
//!   size from a shared cursor. The calling thread waits (and reports progress).
//! - While the run goes, chunk durations are measured; when their moving average drifts from
//!   the prediction by more than a factor 2, the chunk size of the rest changes (at most a
//!   halving or doubling per step), and the [`RunReport`](crate::report::RunReport) says so.
//! - A panic in the user's function stops the other workers at their next item; the caller
//!   gets [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index once
//!   every worker has returned.
//!
//! # Nesting
//!
//! A run started on a thread of a rayon pool (amorsize's pools are rayon pools, so this
//! includes a call made from inside another run's function) is *nested*: it starts no thread,
//! and runs on the pool it was called from, with the calling thread as one of its workers and
//! at most that pool's size of workers. So nested runs never oversubscribe the cores, and never
//! deadlock: the calling thread works instead of only waiting. A nested [`stream`] runs
//! serially on the thread that pulls from it.
//!
//! # Streams
//!
//! [`stream`] maps an iterator lazily, holding at most about
//! [`CHUNKS_AHEAD`] chunks per worker at once.
//! See [`Stream`].

mod adapt;
mod batch;
mod budget;
mod check;
pub(crate) use crate::runtime::pool;
pub mod process;
mod progress;
mod settings;
mod slots;
mod spill;
mod stream;
mod threads;
pub mod tune;

pub(crate) use crate::plan::ExecOptions;
pub use crate::report::{Phase, Shed};
pub use batch::{execute, execute_iter, try_execute, Run};
pub(crate) use batch::{learn, report_of};
pub(crate) use check::Check;
pub use progress::Progress;
pub use stream::{stream, Stream, CHUNKS_AHEAD};
pub(crate) use threads::{claim_size, Stats};
