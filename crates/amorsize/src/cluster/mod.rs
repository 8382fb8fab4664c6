//! Rust work across processes and hosts, on [timely-dataflow](https://docs.rs/timely)
//! (cargo feature `cluster`).
//!
//! One executable runs on every process (SPMD). Process 0 holds the items and gets the
//! results; every process runs the functions registered with
//! [`exec::process::register`](crate::exec::process::register), on its workers (threads).
//! A map is planned as on one machine: [`Cluster::execute`] samples the function, measures what
//! moving an item costs, and predicts hosts × workers × chunk from each process's measured
//! start-up, round trip and bytes per second ([`model::network`](crate::model::network)); it
//! runs on the cluster only when that beats the threads of this machine, and otherwise says
//! so with the figures and runs on threads.
//!
//! # Setup
//!
//! `main` registers its functions, then calls [`init`] before anything else. In process 0
//! `init` starts (for [`Hosts::local`]) or waits for (for [`Hosts::hostfile`]) the other
//! processes and returns the [`Cluster`]; in every other process it serves the dataflow and
//! exits the process when the cluster ends.
//!
//! ```no_run
//! use amorsize::cluster::{self, Hosts};
//! use amorsize::exec::process;
//!
//! fn square(x: &u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> amorsize::Result<()> {
//!     let square = process::register("square", square);
//!     let mut cluster = cluster::init(Hosts::local(3).workers(2))?;
//!     let items: Vec<u64> = (0..10_000).collect();
//!     let outcome = cluster.execute(square, &items, &amorsize::Options::new())?;
//!     println!("{}", outcome.plan);
//!     assert_eq!(outcome.results[3], 9);
//!     cluster.shutdown()
//! }
//! ```
//!
//! With a hostfile (timely's format: one `host:port` per line, process `i` on line `i`), every
//! host runs the same executable with its own number: `Hosts::hostfile("hosts.txt", i)`.
//! Process 0 also listens for the others' heartbeats at its port plus
//! [`CONTROL_PORT_OFFSET`] (or [`Hosts::control`]).
//!
//! # Faults
//!
//! timely is **fail-stop**: a computation does not survive the loss of a process. amorsize
//! makes the failure clean: every process keeps a control connection to process 0 with
//! heartbeats; a process that dies or stops answering is named in an
//! [`ErrorKind::WorkerFailed`](crate::ErrorKind) error within [`Hosts::lost_after`] (3 s by
//! default), the other processes are told to exit, and every later call on the cluster
//! returns the same error. The lost run's results are not returned; start a new cluster.
//! A panic in the function on an item is an [`ErrorKind::Panicked`](crate::ErrorKind) error
//! naming the item; the cluster stays up.

mod control;
mod costs;
mod decide;
mod engine;
mod handle;
mod hosts;
mod start;

pub use control::Lost;
pub use costs::{Calibration, FALLBACK_NETWORK_PER_BYTE, FALLBACK_ROUND_TRIP};
pub use decide::{decide, Choice, ClusterPlan};
pub use engine::FLOW;
pub use handle::{Cluster, ClusterOutcome, Results};
pub use hosts::{Hosts, CONTROL_PORT_OFFSET, DEFAULT_JOIN_TIMEOUT, DEFAULT_LOST_AFTER};

use crate::Result;

/// Joins the cluster: in process 0 returns it, started and measured; in any other process
/// serves the dataflow and exits the process when the cluster ends (status 0) or fails
/// (status 1).
///
/// A process that process 0 of a [`Hosts::local`] cluster started knows its place from its
/// environment and ignores `hosts`.
///
/// # Errors
///
/// In process 0: [`ErrorKind::Io`](crate::ErrorKind) when a port cannot be bound or a process
/// cannot be started; [`ErrorKind::WorkerFailed`](crate::ErrorKind) naming the processes that
/// did not join within [`Hosts::join_timeout`].
pub fn init(hosts: Hosts) -> Result<Cluster> {
    if let Some(hosts) = start::from_environment() {
        start::serve(hosts)
    }
    if hosts.process != 0 {
        start::serve(hosts)
    }
    start::start(hosts)
}
