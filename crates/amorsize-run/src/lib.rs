//! Shell commands as workers: the runner behind `amorsize run`, built on the public planning
//! API of [`amorsize`] (its model, its planner and its machine probe).
//!
//! A [`Template`] (the user's command with `{}` or `{+}`) runs over a list of inputs. The first
//! jobs are the sample: they run as real jobs (their output is kept, they are never run again)
//! while the runner measures each one's wall time, CPU time and peak memory (from `wait4`), and
//! once per run the cost of starting a process. From these figures and the machine's limits
//! [`CommandPlan`] picks how many jobs run at once — more than the CPUs when the jobs mostly
//! wait, fewer when each keeps several CPUs busy, never more than memory, `ulimit -u` and
//! `ulimit -n` allow — and, with `{+}`, how many inputs each job takes. The runner keeps
//! measuring and changes the job count when the figures drift.
//!
//! Every job runs in a process group of its own, with its output captured whole; a timeout, a
//! `--halt now` or an interruption ends the job's whole group. Finished jobs go to an
//! [`Observer`] (in input order with [`RunOptions::keep_order`]), which prints them and writes
//! the [`joblog`].
//!
//! # Examples
//!
//! ```
//! use amorsize_run::{self as command, JobRecord, Observer, RunOptions, Template};
//! use std::sync::atomic::AtomicUsize;
//!
//! struct Collect(Vec<String>);
//! impl Observer for Collect {
//!     fn finished(&mut self, job: &JobRecord) -> std::io::Result<()> {
//!         self.0.push(String::from_utf8_lossy(&job.stdout).into_owned());
//!         Ok(())
//!     }
//! }
//!
//! let template = Template::parse(["echo", "hello {}"]).unwrap();
//! let inputs = ["a".into(), "b".into(), "c".into()];
//! let options = RunOptions::new().keep_order(true);
//! let mut out = Collect(Vec::new());
//! let summary = command::run(&template, &inputs, &options, &AtomicUsize::new(0), &mut out).unwrap();
//! assert_eq!(out.0, ["hello a\n", "hello b\n", "hello c\n"]);
//! assert_eq!(summary.exit_code(), 0);
//! ```

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

mod decide;
mod error;
mod halt;
mod job;
pub mod joblog;
mod measure;
mod runner;
mod sys;
mod template;

pub use decide::{
    Cap, CommandPlan, Limits, Measured, Reason, FILES_PER_JOB, FIXED_COST_SHARE, JOBS_PER_SLOT,
    MAX_OVERSUBSCRIPTION, MEMORY_SHARE, PROCESS_LIMIT_SHARE, RESERVED_FILES, THRESHOLD,
};
pub use halt::{Halt, HaltHow, HaltOn, Threshold, MIN_JOBS_FOR_PERCENT};
pub use job::{Exit, JobRecord, Stopped};
pub use measure::{ARG_HEADROOM, FALLBACK_ARG_MAX, FALLBACK_START_COST};
pub use runner::KILL_GRACE;
pub use template::{Placeholder, Template, MAX_ARG_STRLEN, SHELL};

pub use error::{Error, ErrorKind, Result};

/// How a command run goes. Start from [`RunOptions::new`] (measured job count and batch size,
/// output as jobs finish, no timeout, never halt) and change what you need.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub(crate) jobs: Option<NonZeroUsize>,
    pub(crate) batch: Option<NonZeroUsize>,
    pub(crate) keep_order: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) halt: Halt,
    pub(crate) plan_only: bool,
    pub(crate) skip: BTreeSet<usize>,
}

impl RunOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run exactly `n` jobs at once instead of measuring (`-j N`).
    pub fn jobs(mut self, n: NonZeroUsize) -> Self {
        self.jobs = Some(n);
        self
    }

    /// With `{+}`, give each job exactly `n` inputs (fewer when they do not fit on one command
    /// line) instead of measuring (`--batch N`).
    pub fn batch(mut self, n: NonZeroUsize) -> Self {
        self.batch = Some(n);
        self
    }

    /// Hand finished jobs to the observer in input order (`-k`).
    pub fn keep_order(mut self, yes: bool) -> Self {
        self.keep_order = yes;
        self
    }

    /// End a job (its whole process group) that runs longer than `d`.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Stop early on failures or successes.
    pub fn halt(mut self, halt: Halt) -> Self {
        self.halt = halt;
        self
    }

    /// Run only the sample, report the plan, and start nothing more (`--plan`).
    pub fn plan_only(mut self, yes: bool) -> Self {
        self.plan_only = yes;
        self
    }

    /// Skip these job numbers (1-based): they ran before (`--resume`).
    pub fn skip(mut self, jobs: BTreeSet<usize>) -> Self {
        self.skip = jobs;
        self
    }
}

/// Receives what a run produces. Called on the thread that called [`run`], one call at a time.
pub trait Observer {
    /// The plan, once the sample is measured.
    ///
    /// # Errors
    ///
    /// An error stops the run (every running job is ended) and is returned by [`run`].
    fn planned(&mut self, plan: &CommandPlan) -> std::io::Result<()> {
        let _ = plan;
        Ok(())
    }

    /// A finished job, with its whole output (in input order with
    /// [`RunOptions::keep_order`]). Jobs ended by an interruption come with
    /// [`Stopped::Cancelled`].
    ///
    /// # Errors
    ///
    /// An error (a closed pipe, a full disk) stops the run and is returned by [`run`].
    fn finished(&mut self, job: &JobRecord) -> std::io::Result<()>;

    /// Inputs done (run or skipped) out of all, after each job.
    fn progress(&mut self, done: usize, total: usize) {
        let _ = (done, total);
    }
}

/// A change of the job count during the run, after the measurements drifted.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adaptation {
    /// Jobs finished when it changed.
    pub after_jobs: usize,
    /// Jobs at once before.
    pub from: usize,
    /// Jobs at once after.
    pub to: usize,
    /// CPU time ÷ wall time measured over the recent jobs.
    pub cpu_ratio: f64,
    /// Mean wall time of the recent jobs, in seconds.
    pub job_time: f64,
    /// Jobs finished per second over the recent jobs.
    pub throughput: f64,
    /// Set when this undoes a larger job count that did not finish jobs faster.
    pub reverted: bool,
}

/// How a run went.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Jobs that exited with 0.
    pub succeeded: usize,
    /// Jobs that failed: a non-zero exit, a signal, a timeout.
    pub failed: usize,
    /// Jobs ended by an interruption or `--halt now` (neither failed nor succeeded).
    pub cancelled: usize,
    /// Jobs skipped because they ran before.
    pub skipped: usize,
    /// Inputs never started (after a halt, an interruption or `--plan`).
    pub not_run: usize,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<i32>,
    /// Whether `--halt` stopped the run.
    pub halted: bool,
    /// The plan made from the sample (none when nothing ran).
    pub plan: Option<CommandPlan>,
    /// Changes of the job count during the run.
    pub adaptations: Vec<Adaptation>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// GNU parallel's exit status for "more than 100 jobs failed".
pub const MAX_FAILED_STATUS: u8 = 101;

impl Summary {
    /// The exit status, as GNU parallel's: 0 when every job succeeded, else the number of failed
    /// jobs up to [`MAX_FAILED_STATUS`]; 128 + the signal number when a signal interrupted the
    /// run (the shell convention).
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted {
            return 128u8.saturating_add(signal.clamp(0, 127) as u8);
        }
        self.failed.min(MAX_FAILED_STATUS as usize) as u8
    }
}

/// Runs `template` over `inputs`.
///
/// `cancel` is the interruption flag: when it becomes non-zero, that number is taken as a signal,
/// forwarded to every running job's process group (SIGKILL follows after [`KILL_GRACE`]), and no
/// new job starts. The command-line tool sets it from its SIGINT and SIGTERM handlers.
///
/// # Errors
///
/// [`ErrorKind::WorkerFailed`](crate::ErrorKind::WorkerFailed) when a job cannot be started (a
/// missing program, a command line too long) — once, not once per input — or when every sampled
/// job of a shell script exits with 127 (the shell's "not found");
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when the observer fails. Every job started has ended
/// by the time `run` returns.
pub fn run(
    template: &Template,
    inputs: &[OsString],
    options: &RunOptions,
    cancel: &AtomicUsize,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    runner::run(template, inputs, options, cancel, observer)
}
