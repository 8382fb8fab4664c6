//! Shell commands as workers: the runner behind `amorsize run`, built on the public planning
//! API of [`amorsize`] (its model, its planner and its machine probe).
//!
//! A [`Template`] (the user's command with GNU parallel's replacement strings) runs over a
//! stream of [`Inputs`], read as jobs need them, so that jobs start while the inputs are still
//! coming and memory stays bounded by the jobs in flight. The first
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
//! With [`RunOptions::hosts`] the jobs run on other machines too, over OpenSSH: each host is a
//! provider of job slots for the same scheduler, planned from its own measurements
//! ([`hosts`]).
//!
//! # Examples
//!
//! ```
//! use amorsize_run::{self as command, Inputs, JobRecord, Observer, RunOptions, Template};
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
//! let inputs = Inputs::from_values(["a", "b", "c"]);
//! let options = RunOptions::new().keep_order(true);
//! let mut out = Collect(Vec::new());
//! let summary = command::run(&template, inputs, &options, &AtomicUsize::new(0), &mut out).unwrap();
//! assert_eq!(out.0, ["hello a\n", "hello b\n", "hello c\n"]);
//! assert_eq!(summary.exit_code(), 0);
//! ```

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

mod decide;
mod error;
mod halt;
pub mod hosts;
mod job;
pub mod joblog;
mod measure;
mod runner;
pub mod source;
mod sys;
mod template;

pub use decide::{Cap, CommandPlan, Limits, Measured, Reason, MAX_OVERSUBSCRIPTION};
pub use halt::{Halt, HaltHow, HaltOn, Threshold, MIN_JOBS_FOR_PERCENT};
pub use job::{Exit, JobRecord, Stopped};
pub use measure::FALLBACK_START_COST;
pub use runner::KILL_GRACE;
pub use template::{quote, Batching, Job, Placeholder, Record, Template, MAX_ARG_STRLEN, SHELL};

pub use error::{Error, ErrorKind, Result};

/// How a command run goes. Start from [`RunOptions::new`] (measured job count and batch size,
/// output as jobs finish, no timeout, never halt) and change what you need.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub(crate) jobs: Jobs,
    pub(crate) dry_run: bool,
    pub(crate) line_buffer: bool,
    pub(crate) batch: Option<NonZeroUsize>,
    pub(crate) keep_order: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) halt: Halt,
    pub(crate) plan_only: bool,
    pub(crate) skip: BTreeSet<usize>,
    pub(crate) hosts: Option<hosts::Hosts>,
}

impl RunOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run exactly `n` jobs at once instead of measuring (`-j N`).
    pub fn jobs(mut self, n: NonZeroUsize) -> Self {
        self.jobs = Jobs::Fixed(n);
        self
    }

    /// How many jobs run at once, in any of GNU parallel's forms (`-j`).
    pub fn job_count(mut self, jobs: Jobs) -> Self {
        self.jobs = jobs;
        self
    }

    /// Hand each job's standard output to [`Observer::line`] a whole line at a time, as the
    /// job writes it, rather than whole when the job ends (`--line-buffer`): lines of
    /// different jobs interleave, each line stays whole. Standard error still comes whole
    /// with [`Observer::finished`].
    pub fn line_buffer(mut self, yes: bool) -> Self {
        self.line_buffer = yes;
        self
    }

    /// Start nothing: each job's command line is its output (`--dry-run`).
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Give each job exactly `n` inputs (with `{+}`, `-X` or `-m` fewer when they do not fit
    /// on one command line) instead of measuring (`-N`, `--batch N`).
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

    /// Run the jobs on these hosts (`-S`, `--slf`), planned per host.
    pub fn hosts(mut self, hosts: hosts::Hosts) -> Self {
        self.hosts = Some(hosts);
        self
    }
}

/// A host taken out of the run: it could not be reached, or it dropped during the run. Its
/// jobs run on the other hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDown {
    /// The sshlogin.
    pub host: String,
    /// What ssh said.
    pub why: String,
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

    /// With [`RunOptions::line_buffer`], a whole line of a job's standard output (the last
    /// may lack its newline), as soon as the job has written it.
    ///
    /// # Errors
    ///
    /// An error stops the run and is returned by [`run`].
    fn line(&mut self, line: &OutputLine) -> std::io::Result<()> {
        let _ = line;
        Ok(())
    }

    /// A host was taken out of the run; its jobs run on the others.
    ///
    /// # Errors
    ///
    /// An error stops the run and is returned by [`run`].
    fn host_down(&mut self, down: &HostDown) -> std::io::Result<()> {
        let _ = down;
        Ok(())
    }

    /// Inputs done (run or skipped) out of all (when the input's length is known), after each
    /// job.
    fn progress(&mut self, done: usize, total: Option<usize>) {
        let _ = (done, total);
    }
}

/// A line of a job's standard output, with [`RunOptions::line_buffer`].
#[derive(Clone, Debug)]
pub struct OutputLine {
    /// The job's number.
    pub seq: usize,
    /// The job's input values (what `--tag` prints).
    pub args: std::sync::Arc<[OsString]>,
    /// The line, with its newline when it has one.
    pub line: Vec<u8>,
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
    /// Hosts taken out of the run.
    pub hosts_down: Vec<HostDown>,
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

/// How many jobs run at once: measured (the default), or one of GNU parallel's `-j` forms.
///
/// # Examples
///
/// ```
/// use amorsize_run::Jobs;
///
/// assert_eq!("auto".parse::<Jobs>().unwrap(), Jobs::Auto);
/// assert_eq!("+2".parse::<Jobs>().unwrap().resolve(4, 256), Some(6));
/// assert_eq!("-1".parse::<Jobs>().unwrap().resolve(4, 256), Some(3));
/// assert_eq!("50%".parse::<Jobs>().unwrap().resolve(4, 256), Some(2));
/// assert_eq!("0".parse::<Jobs>().unwrap().resolve(4, 256), Some(256));
/// assert!("x".parse::<Jobs>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Jobs {
    /// Measured from the sampled jobs (`auto`).
    #[default]
    Auto,
    /// Exactly this many (`N`).
    Fixed(NonZeroUsize),
    /// The CPUs plus (or minus) this many, at least one (`+N`, `-N`).
    CpusPlus(i64),
    /// This percentage of the CPUs, at least one (`N%`).
    Percent(f64),
    /// As many as the machine's limits allow (`0`): open files, `ulimit -u`, and
    /// [`MAX_OVERSUBSCRIPTION`] × the CPUs.
    Max,
}

impl Jobs {
    /// The job count on `cpus` CPUs, with `max` the most the limits allow; `None` for
    /// [`Jobs::Auto`].
    pub fn resolve(self, cpus: usize, max: usize) -> Option<usize> {
        let cpus = cpus.max(1) as f64;
        let n = match self {
            Jobs::Auto => return None,
            Jobs::Fixed(n) => n.get() as f64,
            Jobs::CpusPlus(k) => cpus + k as f64,
            Jobs::Percent(p) => (cpus * p / 100.0).floor(),
            Jobs::Max => max as f64,
        };
        Some((n.max(1.0).min(usize::MAX as f64 / 2.0)) as usize)
    }
}

impl FromStr for Jobs {
    type Err = Error;

    fn from_str(s: &str) -> Result<Jobs> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "-j {s:?}: expected `auto`, a number of jobs, `0` (as many as the limits \
                     allow), `+N` or `-N` (CPUs plus or minus N) or `N%` (a share of the CPUs)"
                ),
            )
        };
        let t = s.trim();
        if t == "auto" {
            return Ok(Jobs::Auto);
        }
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| bad())?;
            return if p.is_finite() && p > 0.0 {
                Ok(Jobs::Percent(p))
            } else {
                Err(bad())
            };
        }
        if t.starts_with('+') || t.starts_with('-') {
            return t.parse::<i64>().map(Jobs::CpusPlus).map_err(|_| bad());
        }
        match t.parse::<usize>().map_err(|_| bad())? {
            0 => Ok(Jobs::Max),
            n => Ok(Jobs::Fixed(NonZeroUsize::new(n).ok_or_else(bad)?)),
        }
    }
}

impl fmt::Display for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jobs::Auto => f.write_str("auto"),
            Jobs::Fixed(n) => write!(f, "{n}"),
            Jobs::CpusPlus(k) => write!(f, "{k:+}"),
            Jobs::Percent(p) => write!(f, "{p}%"),
            Jobs::Max => f.write_str("0"),
        }
    }
}

/// Where a run's inputs come from: records pulled one at a time as jobs need them, so that a
/// run over a stream starts its first jobs before the stream ends.
pub struct Inputs<'a> {
    pub(crate) iter: Box<dyn Iterator<Item = std::io::Result<Record>> + Send + 'a>,
    pub(crate) len: Option<usize>,
}

impl fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs").field("len", &self.len).finish()
    }
}

impl<'a> Inputs<'a> {
    /// Inputs pulled from `iter`; `len` is their number when known (for progress and the
    /// plan), `None` for a stream. An error from `iter` stops the run and is returned.
    pub fn new(
        iter: impl Iterator<Item = std::io::Result<Record>> + Send + 'a,
        len: Option<usize>,
    ) -> Self {
        Inputs {
            iter: Box::new(iter),
            len,
        }
    }

    /// Inputs of one value each, all known.
    pub fn from_values<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let all: Vec<Record> = values.into_iter().map(|v| vec![v.into()]).collect();
        Self::from_records(all)
    }

    /// Inputs of several values each (`:::` sources, `--colsep` columns), all known.
    pub fn from_records(records: Vec<Record>) -> Self {
        let len = records.len();
        Inputs::new(records.into_iter().map(Ok), Some(len))
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
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when the observer fails or the inputs cannot be
/// read. Every job started has ended
/// by the time `run` returns.
pub fn run(
    template: &Template,
    inputs: Inputs<'_>,
    options: &RunOptions,
    cancel: &AtomicUsize,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    runner::run(template, inputs, options, cancel, observer)
}
