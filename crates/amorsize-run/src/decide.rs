//! The command plan: how many jobs at once and how many inputs per job, from what the sampled
//! jobs measured and what the machine allows — with the reasons.
//!
//! The arithmetic is pure (no clock, no system call): [`Measured`] and [`Limits`] come in,
//! a [`CommandPlan`] comes out, so the laws are tested without running anything.

use std::fmt;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use amorsize::model::{Backend, Costs, Seconds, Transfer, Workload};
use amorsize::plan::{self, Caps};
use amorsize::{Options, Plan};

/// What the sampled jobs (and the start-cost probe) measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Jobs measured.
    pub jobs: usize,
    /// Inputs those jobs took.
    pub inputs: usize,
    /// Mean wall time of one job.
    pub job_time: Seconds,
    /// Child CPU time (user + system, from `wait4`) ÷ wall time, summed over the jobs: near 0
    /// the jobs wait (sleep, I/O, network), near 1 each keeps one CPU busy, above 1 a job runs
    /// several threads or processes of its own.
    pub cpu_ratio: f64,
    /// Coefficient of variation of the job wall times.
    pub cv: f64,
    /// The largest peak resident memory of a job, in bytes.
    pub peak_rss: u64,
    /// Mean bytes of output per job.
    pub output_bytes: u64,
    /// Time to start and reap a process that does nothing (measured once per run).
    pub start_cost: Seconds,
    /// Set when the start cost could not be measured and `FALLBACK_START_COST` stands in.
    pub start_cost_fallback: bool,
    /// With `{+}`: the fixed time of one invocation, whatever its inputs.
    pub fixed_per_job: Seconds,
    /// With `{+}`: the time each input adds to an invocation.
    pub per_input: Seconds,
}

/// What bounds the number of jobs on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// CPUs the jobs may use (affinity mask, cgroup quota).
    pub cpus: usize,
    /// `ulimit -u`: processes this user may have, when limited.
    pub process_limit: Option<u64>,
    /// Processes one job holds (2 for a shell script: the shell and the command).
    pub processes_per_job: usize,
    /// `ulimit -n`: files this process may hold open, when limited.
    pub open_files_limit: Option<u64>,
    /// Memory available now, in bytes, when known.
    pub available_memory: Option<u64>,
    /// How many inputs fit on one command line, at the mean input size.
    pub inputs_per_command_line: Option<usize>,
}

/// Jobs may wait for at most this many times the CPUs: beyond it the runner's own start and reap
/// work, not the jobs, would set the pace, and a sample that measured almost no CPU time would
/// ask for thousands of processes.
pub const MAX_OVERSUBSCRIPTION: usize = 64;

/// Of `ulimit -u`, the share the jobs may take: other processes of the same user count against
/// the same limit, and we cannot see how many there are without reading the system.
pub(crate) const PROCESS_LIMIT_SHARE: f64 = 0.5;

/// Open files the runner keeps for itself (standard streams, job log, channels).
pub(crate) const RESERVED_FILES: u64 = 64;

/// Files a running job holds in the runner: two output files, and two more while it starts.
pub(crate) const FILES_PER_JOB: u64 = 4;

/// With `{+}`, the fixed cost of an invocation may be at most this share of its time.
pub(crate) const FIXED_COST_SHARE: f64 = 0.05;

/// With `{+}`, jobs per parallel slot at least, so that the last jobs balance out (the original
/// library's and Python `Pool.map`'s choice of about four chunks per worker).
pub(crate) const JOBS_PER_SLOT: usize = 4;

/// Parallelism predicted to gain less than this is refused: the planner's default threshold
/// (`plan::options::DEFAULT_THRESHOLD`), a margin for the model's error.
pub(crate) const THRESHOLD: f64 = 1.2;

/// Why the plan is what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The jobs mostly wait, so more of them than CPUs keep the CPUs busy.
    Waiting {
        /// CPU time ÷ wall time of a job.
        cpu_ratio: f64,
        /// Jobs that keep the CPUs busy.
        jobs: usize,
    },
    /// The jobs keep a CPU busy: one per CPU.
    CpuBound {
        /// CPU time ÷ wall time of a job.
        cpu_ratio: f64,
    },
    /// Each job keeps several CPUs busy by itself.
    SelfParallel {
        /// CPU time ÷ wall time of a job.
        cpu_ratio: f64,
    },
    /// The job count was capped.
    Capped {
        /// What capped it.
        by: Cap,
        /// The cap.
        jobs: usize,
    },
    /// The user fixed the job count.
    UserJobs,
    /// The user fixed the inputs per job (`-N`, `--batch`).
    UserBatch,
    /// With `{+}`: the batch size and how it follows from the costs.
    Batched {
        /// Fixed time of one invocation.
        fixed: Seconds,
        /// Time each input adds.
        per_input: Seconds,
    },
    /// The batch was capped by the command-line length.
    ArgumentLength {
        /// Inputs that fit on one command line.
        inputs: usize,
    },
    /// Parallel jobs would not pay: one at a time.
    Serial {
        /// The speedup parallel jobs would have given.
        speedup: f64,
    },
}

/// What bounded the job count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// No more jobs than there are left to run.
    JobsLeft,
    /// [`MAX_OVERSUBSCRIPTION`] × CPUs.
    Oversubscription,
    /// `ulimit -u`.
    ProcessLimit,
    /// `ulimit -n`.
    OpenFiles,
    /// Available memory ÷ peak RSS of a job.
    Memory,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Waiting { cpu_ratio, jobs } => write!(
                f,
                "jobs mostly wait (CPU {:.1}% of wall time): {jobs} at once keep the CPUs busy",
                cpu_ratio * 100.0
            ),
            Reason::CpuBound { cpu_ratio } => write!(
                f,
                "jobs are CPU-bound (CPU {:.0}% of wall time): one per CPU",
                cpu_ratio * 100.0
            ),
            Reason::SelfParallel { cpu_ratio } => write!(
                f,
                "each job keeps {cpu_ratio:.1} CPUs busy by itself: fewer jobs than CPUs"
            ),
            Reason::Capped { by, jobs } => {
                let what = match by {
                    Cap::JobsLeft => "the jobs left to run",
                    Cap::Oversubscription => "the oversubscription limit (64 × CPUs)",
                    Cap::ProcessLimit => "half the process limit (ulimit -u)",
                    Cap::OpenFiles => "the open-file limit (ulimit -n)",
                    Cap::Memory => "available memory ÷ peak memory of a job",
                };
                write!(f, "capped at {jobs} by {what}")
            }
            Reason::UserJobs => f.write_str("job count fixed by -j"),
            Reason::UserBatch => f.write_str("inputs per job fixed by -N or --batch"),
            Reason::Batched { fixed, per_input } => write!(
                f,
                "an invocation costs {} plus {} per input: batches keep the fixed cost near {:.0}%",
                secs(*fixed),
                secs(*per_input),
                FIXED_COST_SHARE * 100.0
            ),
            Reason::ArgumentLength { inputs } => write!(
                f,
                "about {inputs} inputs fit on one command line (ARG_MAX less the environment)"
            ),
            Reason::Serial { speedup } => write!(
                f,
                "parallel jobs would gain only {speedup:.2}× (below {THRESHOLD}×): one at a time"
            ),
        }
    }
}

/// A duration for people, as the library's plans write it.
pub(crate) use amorsize::fmt::seconds as secs;

/// The decision for the rest of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandPlan {
    /// Jobs running at once.
    pub jobs: NonZeroUsize,
    /// Inputs per job (1 without `{+}`).
    pub batch: NonZeroUsize,
    /// Inputs left to run when the plan was made.
    pub inputs_left: usize,
    /// Predicted wall time of the rest.
    pub predicted: Seconds,
    /// Predicted wall time of the rest, one job at a time.
    pub predicted_serial: Seconds,
    /// What the sample measured.
    pub measured: Measured,
    /// What the machine allows.
    pub limits: Limits,
    /// The workload, as the library's model sees it (per input).
    pub workload: Workload,
    /// The backend's costs, as the library's model sees them.
    pub costs: Costs,
    /// Why (the batch size, the user's choices, caps the planner does not know).
    pub reasons: Vec<Reason>,
    /// The library planner's decision on the job count, with its own reasons and limits.
    pub planner: Plan,
    /// With hosts (`-S`, `--slf`): the plan of each host; `jobs` and `batch` above are this
    /// machine's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::hosts::HostPlan>,
}

/// What the user fixed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fixed {
    pub jobs: Option<NonZeroUsize>,
    pub batch: Option<NonZeroUsize>,
    pub batches: bool,
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

/// Time of one job of `batch` inputs.
fn job_time(m: &Measured, batch: usize, batches: bool) -> Seconds {
    if batches {
        m.fixed_per_job + m.per_input * batch as f64
    } else {
        m.job_time
    }
}

/// Predicted wall time of `jobs_left` jobs of `t` seconds each, `jobs` at once: whole rounds of
/// jobs, but never faster than the CPUs can supply the CPU time they need.
pub(crate) fn predict(
    m: &Measured,
    limits: &Limits,
    jobs_left: usize,
    t: Seconds,
    jobs: usize,
) -> Seconds {
    if jobs_left == 0 {
        return 0.0;
    }
    let rounds = jobs_left.div_ceil(jobs.max(1)) as f64;
    let cpu_bound = jobs_left as f64 * t * m.cpu_ratio / limits.cpus.max(1) as f64;
    let cpu_bound = if jobs > 1 { cpu_bound } else { 0.0 };
    (rounds * t).max(cpu_bound)
}

/// The job count the measurements ask for, before caps.
fn wanted_jobs(m: &Measured, cpus: usize, reasons: &mut Vec<Reason>) -> usize {
    let r = m.cpu_ratio;
    if r > 1.0 {
        reasons.push(Reason::SelfParallel { cpu_ratio: r });
        ((cpus as f64 / r).floor() as usize).max(1)
    } else {
        let floor = 1.0 / MAX_OVERSUBSCRIPTION as f64;
        let jobs = ((cpus as f64 / r.max(floor)).round() as usize).max(cpus);
        if jobs > cpus {
            reasons.push(Reason::Waiting { cpu_ratio: r, jobs });
        } else {
            reasons.push(Reason::CpuBound { cpu_ratio: r });
        }
        jobs
    }
}

/// Decides the job count and batch size for `inputs_left` inputs.
///
/// The job count is the library planner's ([`amorsize::plan::decide`]): each job is one item of a
/// workload whose item time is a job's measured wall time and whose CPU demand is its measured
/// CPU ratio, on the caps of this machine (cores, memory by peak RSS, `ulimit -u`); the runner
/// adds the open-file cap the planner does not know. The batch size (with `{+}`) is sized here,
/// from the invocation's fixed and per-input costs, before the job count is planned for jobs
/// of that size.
pub(crate) fn decide(
    m: &Measured,
    limits: &Limits,
    inputs_left: usize,
    fixed: Fixed,
) -> CommandPlan {
    let mut reasons = Vec::new();
    let cpus = limits.cpus.max(1);
    let batch = if let Some(b) = fixed.batch {
        reasons.push(Reason::UserBatch);
        b.get()
    } else if !fixed.batches {
        1
    } else {
        reasons.push(Reason::Batched {
            fixed: m.fixed_per_job,
            per_input: m.per_input,
        });
        // The slots the batches are spread over: the user's, or what the CPU ratio asks for.
        let slots = fixed
            .jobs
            .map_or_else(|| wanted_jobs(m, cpus, &mut Vec::new()), |j| j.get());
        let amortize = if m.per_input > 0.0 {
            (m.fixed_per_job / (FIXED_COST_SHARE * m.per_input))
                .ceil()
                .min(1e12) as usize
        } else {
            usize::MAX
        };
        let balance = inputs_left.div_ceil(slots.max(1) * JOBS_PER_SLOT);
        let mut b = amortize.min(balance).max(1);
        if let Some(fit) = limits.inputs_per_command_line {
            if b > fit {
                b = fit.max(1);
                reasons.push(Reason::ArgumentLength { inputs: fit });
            }
        }
        b
    };
    let jobs_left = inputs_left.div_ceil(batch);
    let t = job_time(m, batch, fixed.batches);
    let r = m.cpu_ratio.max(0.0);
    // One job is one item of the planner's workload.
    let workload = Workload {
        items: jobs_left,
        item_time: t,
        cpu_fraction: r.min(1.0),
        cv: m.cv,
        self_parallelism: r.max(1.0),
        result_bytes: m.output_bytes,
        worker_memory: m.peak_rss,
        memory_source: if m.peak_rss > 0 {
            amorsize::model::MemorySource::ChildPeak
        } else {
            amorsize::model::MemorySource::NotMeasured
        },
        transfer: Transfer::default(),
        ..Workload::default()
    };
    let costs = Costs {
        backend: Backend::Commands,
        // A job slot is a thread of the runner; the process start is inside each job's
        // measured time (and, with `{+}`, in the fixed cost of an invocation).
        worker_start: 0.0,
        chunk_dispatch: 0.0,
        transfer_per_byte: 0.0,
        fallbacks: Default::default(),
    };
    let caps = Caps {
        cores: cpus,
        cores_source: "CPUs of the affinity mask, within the CPU quota".to_owned(),
        quota: None,
        // The planner's memory cap keeps `amorsize::model::MEMORY_HEADROOM` of it for the jobs'
        // peak RSS (the rest is left to the page cache and to other programs).
        available_memory: limits.available_memory,
        processes: limits.process_limit.map(|n| {
            ((n as f64 * PROCESS_LIMIT_SHARE) as usize / limits.processes_per_job.max(1)).max(1)
        }),
        load: None,
    };
    let mut options = Options::new().chunk_size(NonZeroUsize::MIN);
    if let Some(j) = fixed.jobs {
        reasons.push(Reason::UserJobs);
        options = options.workers(j);
    }
    let planned = plan::decide(&workload, &costs, &caps, &options);
    let mut jobs = planned.workers().get();
    if fixed.jobs.is_none() {
        if let Some(n) = limits.open_files_limit {
            let cap = (n.saturating_sub(RESERVED_FILES) / FILES_PER_JOB).max(1) as usize;
            if jobs > cap {
                jobs = cap;
                reasons.push(Reason::Capped {
                    by: Cap::OpenFiles,
                    jobs,
                });
            }
        }
    }
    let serial = jobs_left as f64 * t;
    let predicted = if jobs == planned.workers().get() {
        planned.predicted_time().map_or_else(
            || predict(m, limits, jobs_left, t, jobs),
            |d| d.as_secs_f64(),
        )
    } else {
        predict(m, limits, jobs_left, t, jobs)
    };
    CommandPlan {
        jobs: nz(jobs),
        batch: nz(batch),
        inputs_left,
        predicted,
        predicted_serial: serial,
        measured: m.clone(),
        limits: limits.clone(),
        workload,
        costs,
        reasons,
        planner: planned,
        hosts: Vec::new(),
    }
}

impl fmt::Display for CommandPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.measured;
        writeln!(
            f,
            "plan: {} job{} at once, {} input{} per job, {} inputs left",
            self.jobs,
            if self.jobs.get() == 1 { "" } else { "s" },
            self.batch,
            if self.batch.get() == 1 { "" } else { "s" },
            self.inputs_left
        )?;
        writeln!(
            f,
            "predicted: {} (one at a time: {}, speedup {:.1}×)",
            secs(self.predicted),
            secs(self.predicted_serial),
            self.predicted_serial / self.predicted.max(f64::MIN_POSITIVE)
        )?;
        writeln!(
            f,
            "measured: {} jobs ({} inputs): {} wall per job, CPU {:.1}% of wall, cv {:.2}, peak RSS {} KiB; process start {}",
            m.jobs,
            m.inputs,
            secs(m.job_time),
            m.cpu_ratio * 100.0,
            m.cv,
            m.peak_rss / 1024,
            secs(m.start_cost)
        )?;
        let remote_only = self.hosts.iter().any(|h| {
            h.reasons.iter().any(|r| {
                matches!(
                    r,
                    crate::hosts::HostReason::PerCore {
                        measured: false,
                        ..
                    }
                )
            })
        });
        if remote_only {
            writeln!(
                f,
                "  (no job ran on this machine: the CPU share is a fallback of 100%, as the CPU \
                 time of a remote job is not measured)"
            )?;
        }
        if m.start_cost_fallback {
            writeln!(
                f,
                "  (process start could not be measured: a 1 ms fallback stands in)"
            )?;
        }
        writeln!(f, "limits: {} CPUs", self.limits.cpus)?;
        writeln!(f, "  - job count: {}", self.planner.reason())?;
        if let Some(limit) = self.planner.binding_limit() {
            writeln!(
                f,
                "  - bound by {}: {} ({})",
                limit.kind, limit.workers, limit.source
            )?;
        }
        for r in &self.reasons {
            writeln!(f, "  - {r}")?;
        }
        if !self.hosts.is_empty() {
            writeln!(
                f,
                "hosts:\n  {:<20} {:>5} {:>11} {:>10} {:>5} {:>6}",
                "host", "cores", "round trip", "job time", "jobs", "batch"
            )?;
            for h in &self.hosts {
                let g = &h.figures;
                writeln!(
                    f,
                    "  {:<20} {:>5} {:>11} {:>10} {:>5} {:>6}",
                    g.host,
                    format!("{}{}", g.cores, if g.cores_given { "*" } else { "" }),
                    if g.host == ":" {
                        "-".to_owned()
                    } else {
                        secs(g.round_trip)
                    },
                    g.job_time.map_or_else(|| "-".to_owned(), secs),
                    h.jobs,
                    h.batch
                )?;
            }
            if self.hosts.iter().any(|h| h.figures.cores_given) {
                writeln!(f, "  (* cores given as N/host)")?;
            }
            for h in &self.hosts {
                for r in &h.reasons {
                    writeln!(f, "  - {}: {r}", h.figures.host)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(cpu_ratio: f64) -> Measured {
        Measured {
            jobs: 4,
            inputs: 4,
            job_time: 0.05,
            cpu_ratio,
            start_cost: 0.001,
            fixed_per_job: 0.001,
            per_input: 0.00001,
            ..Measured::default()
        }
    }

    fn limits(cpus: usize) -> Limits {
        Limits {
            cpus,
            process_limit: None,
            processes_per_job: 1,
            open_files_limit: None,
            available_memory: None,
            inputs_per_command_line: None,
        }
    }

    #[test]
    fn waiting_work_runs_above_the_cpu_count() {
        let p = decide(&measured(0.02), &limits(2), 1000, Fixed::default());
        assert!(p.jobs.get() > 2);
        assert!(p.jobs.get() <= 2 * MAX_OVERSUBSCRIPTION);
    }

    #[test]
    fn cpu_bound_work_runs_one_per_cpu() {
        let p = decide(&measured(0.97), &limits(4), 1000, Fixed::default());
        assert_eq!(p.jobs.get(), 4);
        let p = decide(&measured(3.0), &limits(4), 1000, Fixed::default());
        assert_eq!(p.jobs.get(), 1);
    }

    #[test]
    fn caps_hold() {
        let mut l = limits(2);
        l.process_limit = Some(20);
        l.open_files_limit = Some(1024);
        let p = decide(&measured(0.0), &l, 1000, Fixed::default());
        assert_eq!(p.jobs.get(), 10);
        let mut m = measured(0.0);
        m.peak_rss = 1 << 30;
        l.available_memory = Some(5 << 30);
        let p = decide(&m, &l, 1000, Fixed::default());
        assert_eq!(p.jobs.get(), 4);
        let p = decide(&measured(0.0), &limits(2), 3, Fixed::default());
        assert_eq!(p.jobs.get(), 3);
    }

    #[test]
    fn user_jobs_win() {
        let fixed = Fixed {
            jobs: NonZeroUsize::new(7),
            ..Fixed::default()
        };
        let p = decide(&measured(0.9), &limits(2), 2, fixed);
        assert_eq!(p.jobs.get(), 7);
    }

    #[test]
    fn batches_amortize_and_balance() {
        let fixed = Fixed {
            batches: true,
            ..Fixed::default()
        };
        let p = decide(&measured(1.0), &limits(2), 20_000, fixed);
        // Fixed 1 ms, 10 µs per input: at least 2000 inputs to keep the fixed cost at 5 %,
        // at most 20000 / (2 × 4) for balance.
        assert_eq!(p.batch.get(), 2000);
        let mut l = limits(2);
        l.inputs_per_command_line = Some(300);
        let p = decide(&measured(1.0), &l, 20_000, fixed);
        assert_eq!(p.batch.get(), 300);
    }

    #[test]
    fn the_prediction_never_beats_the_cpus() {
        for jobs in 1..50 {
            let m = measured(1.0);
            let p = predict(&m, &limits(2), 100, 0.05, jobs);
            assert!(p >= 100.0 * 0.05 / 2.0 - 1e-12);
        }
    }
}
