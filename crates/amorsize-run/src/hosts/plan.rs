//! The plan per host: jobs at once and inputs per job on each host, from its measured round
//! trip, cores and job time. Pure arithmetic: figures in, plans out.

use std::fmt;

use amorsize::model::Seconds;
use serde::{Deserialize, Serialize};

use crate::decide::{secs, JOBS_PER_SLOT, MAX_OVERSUBSCRIPTION};
use crate::Jobs;

/// The round trip of a job (starting `ssh`, a session over the shared connection, the remote
/// shell) may be at most this share of the job's time: the batch size on a host grows until
/// it is, when the command takes several inputs per job.
pub const ROUND_TRIP_SHARE: f64 = 0.10;

/// Sessions one shared connection carries at once: OpenSSH's default `MaxSessions` (see
/// sshd_config(5)). One is kept for the runner's own copies and checks, so a host runs at
/// most one less than this many jobs at once.
pub const MAX_SESSIONS: usize = 10;

/// What was measured of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostFigures {
    /// The sshlogin (`:` for this machine).
    pub host: String,
    /// Its CPUs: `nproc` there, or the `N/` given.
    pub cores: usize,
    /// Whether `cores` is the user's `N/`.
    pub cores_given: bool,
    /// Whether `nproc` could not be read and one CPU stands in.
    pub cores_fallback: bool,
    /// The fastest of a few commands (`nproc`, `true`) run through the shared connection (0
    /// for this machine).
    pub round_trip: Seconds,
    /// Mean wall time of the host's sampled jobs, less the round trip; `None` before any ran.
    pub job_time: Option<Seconds>,
    /// Inputs per sampled job on this host, on average.
    pub inputs_per_job: f64,
}

/// How inputs per job are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BatchRule {
    /// One input per job, or the user's `-N`: the command takes no batch.
    Fixed(usize),
    /// The command takes several inputs (`{+}`, `-X`, `-m`) and the count is measured.
    Measured {
        /// The local plan's batch: the start of every host's.
        base: usize,
        /// Time each input adds to a job.
        per_input: Seconds,
        /// Fixed time of one invocation, the round trip excluded.
        fixed: Seconds,
        /// Inputs that fit on one command line.
        most: usize,
        /// Inputs left to run.
        inputs_left: usize,
    },
}

/// What applies to every host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostPolicy {
    /// Jobs per core the planner picks for this kind of job on this machine (its job count ÷
    /// its CPUs): more than one when the jobs mostly wait.
    pub jobs_per_core: f64,
    /// Whether `jobs_per_core` is measured (a job ran on this machine); otherwise one per
    /// core stands in, as the CPU time of a remote job is not measured.
    pub jobs_per_core_measured: bool,
    /// The user's `-j`, resolved on each host's cores (GNU parallel's `-j` is per host).
    pub user_jobs: Option<Jobs>,
    /// Inputs per job.
    pub batch: BatchRule,
}

/// Why a host's plan is what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum HostReason {
    /// Jobs = cores × the planner's jobs per core.
    PerCore {
        /// Jobs per core.
        jobs_per_core: f64,
        /// Whether it was measured on this machine.
        measured: bool,
    },
    /// The user fixed the job count (`-j`), per host as GNU parallel does.
    UserJobs,
    /// Capped at the sessions one connection carries.
    Sessions {
        /// The cap.
        jobs: usize,
    },
    /// Capped at [`MAX_OVERSUBSCRIPTION`] × cores.
    Oversubscription {
        /// The cap.
        jobs: usize,
    },
    /// `nproc` could not be read there: one CPU stands in.
    CoresFallback,
    /// Inputs per job raised so that the round trip stays a small share of a job.
    Amortized {
        /// The round trip.
        round_trip: Seconds,
        /// Its share of a job at this batch.
        share: f64,
    },
    /// The round trip is a large share of a job, and the command takes one input per job.
    RoundTripDominates {
        /// Its share of a job.
        share: f64,
    },
    /// The batch was capped by balance across the slots or by the command-line length.
    BatchCapped {
        /// The cap.
        inputs: usize,
    },
}

impl fmt::Display for HostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostReason::PerCore {
                jobs_per_core,
                measured: true,
            } => write!(
                f,
                "{jobs_per_core:.2} jobs per core, as planned for this machine"
            ),
            HostReason::PerCore { .. } => f.write_str(
                "one job per core: no job ran on this machine, and the CPU time of remote \
                 jobs is not measured (fallback)",
            ),
            HostReason::UserJobs => f.write_str("jobs fixed by -j (per host)"),
            HostReason::Sessions { jobs } => write!(
                f,
                "capped at {jobs}: one connection carries {MAX_SESSIONS} sessions (sshd's \
                 MaxSessions), one kept for copies and checks"
            ),
            HostReason::Oversubscription { jobs } => {
                write!(f, "capped at {jobs} ({MAX_OVERSUBSCRIPTION} × cores)")
            }
            HostReason::CoresFallback => {
                f.write_str("nproc could not be read there: 1 CPU stands in (fallback)")
            }
            HostReason::Amortized { round_trip, share } => write!(
                f,
                "batches keep the {} round trip at {:.0}% of a job (goal ≤ {:.0}%)",
                secs(*round_trip),
                share * 100.0,
                ROUND_TRIP_SHARE * 100.0
            ),
            HostReason::RoundTripDominates { share } => write!(
                f,
                "the round trip is {:.0}% of a job: -X, -m or {{+}} would batch inputs",
                share * 100.0
            ),
            HostReason::BatchCapped { inputs } => write!(
                f,
                "batch capped at {inputs} inputs (balance across slots, command-line length)"
            ),
        }
    }
}

/// The plan of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    /// What was measured.
    pub figures: HostFigures,
    /// Jobs at once there.
    pub jobs: usize,
    /// Inputs per job there.
    pub batch: usize,
    /// Why.
    pub reasons: Vec<HostReason>,
}

/// The round trip's share of a job of `job` seconds.
fn share(round_trip: Seconds, job: Seconds) -> f64 {
    let total = round_trip + job.max(0.0);
    if total > 0.0 {
        round_trip / total
    } else {
        0.0
    }
}

/// Plans every host: jobs at once from its cores and the policy, then inputs per job so that
/// the round trip stays within [`ROUND_TRIP_SHARE`] of a job (when the command takes several
/// inputs), capped by balance across all the slots and by the command-line length.
///
/// # Examples
///
/// ```
/// use amorsize_run::hosts::{plan_hosts, BatchRule, HostFigures, HostPolicy};
///
/// let far = HostFigures {
///     host: "far".into(), cores: 4, cores_given: false, cores_fallback: false,
///     round_trip: 0.05, job_time: Some(0.002), inputs_per_job: 1.0,
/// };
/// let policy = HostPolicy {
///     jobs_per_core: 1.0, jobs_per_core_measured: true, user_jobs: None,
///     batch: BatchRule::Measured {
///         base: 10, per_input: 0.001, fixed: 0.001, most: 100_000, inputs_left: 1_000_000,
///     },
/// };
/// let plan = &plan_hosts(&[far], &policy)[0];
/// assert_eq!(plan.jobs, 4);
/// // 50 ms round trip ≤ 10 % of a job: jobs of at least 0.5 s, 449 inputs of 1 ms and more.
/// assert!(plan.batch >= 449, "{}", plan.batch);
/// ```
pub fn plan_hosts(hosts: &[HostFigures], policy: &HostPolicy) -> Vec<HostPlan> {
    let mut plans: Vec<HostPlan> = hosts
        .iter()
        .map(|h| {
            let mut reasons = Vec::new();
            let cores = h.cores.max(1);
            if h.cores_fallback {
                reasons.push(HostReason::CoresFallback);
            }
            let mut jobs = match policy.user_jobs {
                Some(user) => {
                    reasons.push(HostReason::UserJobs);
                    user.resolve(cores, MAX_OVERSUBSCRIPTION * cores)
                        .unwrap_or(cores)
                        .max(1)
                }
                None => {
                    reasons.push(HostReason::PerCore {
                        jobs_per_core: policy.jobs_per_core,
                        measured: policy.jobs_per_core_measured,
                    });
                    ((cores as f64 * policy.jobs_per_core.max(0.0)).round() as usize).max(1)
                }
            };
            let over = MAX_OVERSUBSCRIPTION * cores;
            if jobs > over {
                jobs = over;
                reasons.push(HostReason::Oversubscription { jobs });
            }
            if h.host != ":" && jobs > MAX_SESSIONS - 1 {
                jobs = MAX_SESSIONS - 1;
                reasons.push(HostReason::Sessions { jobs });
            }
            HostPlan {
                figures: h.clone(),
                jobs,
                batch: 1,
                reasons,
            }
        })
        .collect();
    let slots: usize = plans.iter().map(|p| p.jobs).sum();
    for p in &mut plans {
        let rt = p.figures.round_trip;
        match policy.batch {
            BatchRule::Fixed(n) => {
                p.batch = n.max(1);
                if let Some(t) = p.figures.job_time {
                    let s = share(rt, t);
                    if n == 1 && s > ROUND_TRIP_SHARE {
                        p.reasons.push(HostReason::RoundTripDominates { share: s });
                    }
                }
            }
            BatchRule::Measured {
                base,
                per_input,
                fixed,
                most,
                inputs_left,
            } => {
                let base = base.max(1);
                let mut b = base;
                if rt > 0.0 {
                    // rt ≤ share × (rt + fixed + b × per_input), solved for b; with no
                    // measurable time per input, as many as the caps allow.
                    let need = if per_input > 0.0 {
                        ((rt * (1.0 - ROUND_TRIP_SHARE) / ROUND_TRIP_SHARE - fixed) / per_input)
                            .ceil()
                            .clamp(1.0, 1e12) as usize
                    } else {
                        usize::MAX
                    };
                    b = b.max(need);
                }
                let balance = inputs_left.div_ceil(slots.max(1) * JOBS_PER_SLOT).max(1);
                let cap = balance.min(most.max(1)).max(base.min(most.max(1)));
                if b > cap {
                    b = cap;
                    p.reasons.push(HostReason::BatchCapped { inputs: b });
                }
                p.batch = b.max(1);
                if rt > 0.0 {
                    let job = fixed + per_input * p.batch as f64;
                    p.reasons.push(HostReason::Amortized {
                        round_trip: rt,
                        share: share(rt, job),
                    });
                }
            }
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, cores: usize, rt: Seconds) -> HostFigures {
        HostFigures {
            host: name.into(),
            cores,
            cores_given: false,
            cores_fallback: false,
            round_trip: rt,
            job_time: Some(0.01),
            inputs_per_job: 1.0,
        }
    }

    fn measured(per_input: Seconds, left: usize) -> BatchRule {
        BatchRule::Measured {
            base: 1,
            per_input,
            fixed: 0.001,
            most: 1 << 20,
            inputs_left: left,
        }
    }

    fn policy(per_core: f64, batch: BatchRule) -> HostPolicy {
        HostPolicy {
            jobs_per_core: per_core,
            jobs_per_core_measured: true,
            user_jobs: None,
            batch,
        }
    }

    #[test]
    fn jobs_follow_cores_and_sessions_cap_remote_hosts() {
        let p = plan_hosts(
            &[host(":", 4, 0.0), host("a", 2, 0.01), host("b", 16, 0.01)],
            &policy(2.0, BatchRule::Fixed(1)),
        );
        assert_eq!(p[0].jobs, 8, "this machine is not capped by sessions");
        assert_eq!(p[1].jobs, 4);
        assert_eq!(p[2].jobs, MAX_SESSIONS - 1);
        assert!(p[2]
            .reasons
            .iter()
            .any(|r| matches!(r, HostReason::Sessions { .. })));
    }

    #[test]
    fn user_jobs_are_per_host() {
        let mut pol = policy(2.0, BatchRule::Fixed(1));
        pol.user_jobs = Some(Jobs::Fixed(std::num::NonZeroUsize::new(3).unwrap()));
        let p = plan_hosts(&[host(":", 1, 0.0), host("a", 8, 0.01)], &pol);
        assert_eq!((p[0].jobs, p[1].jobs), (3, 3));
    }

    #[test]
    fn one_input_jobs_say_when_the_round_trip_dominates() {
        let p = plan_hosts(&[host("a", 1, 0.1)], &policy(1.0, BatchRule::Fixed(1)));
        assert_eq!(p[0].batch, 1);
        assert!(p[0]
            .reasons
            .iter()
            .any(|r| matches!(r, HostReason::RoundTripDominates { .. })));
    }

    #[test]
    fn remote_batches_amortize_the_round_trip_and_this_machine_keeps_its_own() {
        // 10 ms round trip, 0.1 ms per input: 10 ms ≤ 10 % of a job needs ≥ 890 inputs.
        let p = plan_hosts(
            &[host(":", 2, 0.0), host("r", 2, 0.01)],
            &policy(1.0, measured(1e-4, 1_000_000)),
        );
        assert_eq!(p[0].batch, 1);
        assert!(p[1].batch >= 890, "{}", p[1].batch);
        // No time per input to measure: as many as balance allows (100 000 ÷ 4 slots ÷ 4).
        let p = plan_hosts(
            &[host(":", 2, 0.0), host("r", 2, 0.01)],
            &policy(1.0, measured(0.0, 100_000)),
        );
        assert_eq!(p[1].batch, 6250);
        assert!(p[1]
            .reasons
            .iter()
            .any(|r| matches!(r, HostReason::BatchCapped { inputs: 6250 })));
    }

    /// Laws over a grid of figures: the batch never exceeds the command line; when balance
    /// allows, the round trip is at most its share of a job; more round trip never means a
    /// smaller batch; this machine keeps the local batch.
    #[test]
    fn batch_laws() {
        for &rt in &[0.0, 1e-4, 1e-3, 0.01, 0.1, 1.0] {
            for &per_input in &[1e-6, 1e-4, 1e-2, 1.0] {
                for &left in &[1usize, 100, 10_000, 10_000_000] {
                    for &most in &[1usize, 50, 1 << 20] {
                        let rule = BatchRule::Measured {
                            base: 4.min(most),
                            per_input,
                            fixed: 0.001,
                            most,
                            inputs_left: left,
                        };
                        let pol = policy(1.0, rule);
                        let p = plan_hosts(&[host(":", 2, 0.0), host("r", 2, rt)], &pol);
                        assert!(p[1].batch >= 1 && p[1].batch <= most.max(1));
                        assert_eq!(p[0].batch, 4.min(most));
                        let capped = p[1]
                            .reasons
                            .iter()
                            .any(|r| matches!(r, HostReason::BatchCapped { .. }));
                        if !capped && rt > 0.0 {
                            let job = 0.001 + per_input * p[1].batch as f64;
                            assert!(
                                share(rt, job) <= ROUND_TRIP_SHARE + 1e-9,
                                "{rt} {per_input}"
                            );
                        }
                        let more = plan_hosts(&[host(":", 2, 0.0), host("r", 2, rt * 2.0)], &pol);
                        assert!(more[1].batch >= p[1].batch);
                    }
                }
            }
        }
    }
}
