//! From finished jobs to [`Measured`] figures, the one-off process start probe, and the limits
//! of this process (`ulimit -u`, `ulimit -n`, the argument-length budget).

use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use super::decide::{Limits, Measured};
use super::job::{self, JobRecord};
use super::sys;
use super::template::{Job, Template};
use amorsize::model::Seconds;

/// One job's figures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Obs {
    pub inputs: usize,
    pub wall: Seconds,
    pub cpu: Seconds,
    pub rss: u64,
    pub out: u64,
    /// When it ended, in seconds since the Unix epoch.
    pub end: Seconds,
}

impl Obs {
    pub(crate) fn of(job: &JobRecord) -> Obs {
        Obs {
            inputs: job.inputs.len(),
            wall: job.runtime.as_secs_f64(),
            cpu: job.cpu.as_secs_f64(),
            rss: job.max_rss,
            out: (job.stdout.len() + job.stderr.len()) as u64,
            end: (job.start + job.runtime)
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// Summarizes observed jobs. With jobs of two batch sizes, the fixed and per-input times come
/// from the line through the fastest times at the smallest and the largest size: the fastest,
/// because a busy machine only ever adds time to a job, and two sizes are compared.
///
/// The per-input time is also estimated from CPU time (the per-input CPU time ÷ the CPU
/// ratio), and the smaller estimate is kept: on a busy machine a few milliseconds of wall-time
/// noise between two jobs would otherwise read as a large per-input cost and shrink the
/// batches to a few inputs, while CPU time is not inflated by waiting for a CPU. Erring low is
/// safe: the batch is also bounded by balance across the job slots.
pub(crate) fn summarize(obs: &[Obs], start_cost: Seconds) -> Measured {
    let n = obs.len();
    if n == 0 {
        return Measured {
            start_cost,
            ..Measured::default()
        };
    }
    let wall: Seconds = obs.iter().map(|o| o.wall).sum();
    let cpu: Seconds = obs.iter().map(|o| o.cpu).sum();
    let mean = wall / n as f64;
    let var = if n < 2 {
        0.0
    } else {
        obs.iter().map(|o| (o.wall - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    };
    let fastest_at = |size: usize| {
        obs.iter()
            .filter(|o| o.inputs == size)
            .map(|o| o.wall)
            .fold(f64::INFINITY, f64::min)
    };
    let small = obs.iter().map(|o| o.inputs).min().unwrap_or(1);
    let large = obs.iter().map(|o| o.inputs).max().unwrap_or(1);
    let cpu_ratio = if wall > 0.0 { cpu / wall } else { 0.0 };
    let (fixed, per_input) = if large > small {
        let mean_cpu_at = |size: usize| {
            let at: Vec<f64> = obs
                .iter()
                .filter(|o| o.inputs == size)
                .map(|o| o.cpu)
                .collect();
            at.iter().sum::<f64>() / at.len().max(1) as f64
        };
        let span = (large - small) as f64;
        let (ts, tl) = (fastest_at(small), fastest_at(large));
        let by_wall = ((tl - ts) / span).max(0.0);
        let by_cpu = ((mean_cpu_at(large) - mean_cpu_at(small)) / span).max(0.0)
            / cpu_ratio.max(1.0 / super::decide::MAX_OVERSUBSCRIPTION as f64);
        let c = by_wall.min(by_cpu);
        ((ts - c * small as f64).max(0.0), c)
    } else {
        (mean, 0.0)
    };
    Measured {
        jobs: n,
        inputs: obs.iter().map(|o| o.inputs).sum(),
        job_time: mean,
        cpu_ratio,
        cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        peak_rss: obs.iter().map(|o| o.rss).max().unwrap_or(0),
        output_bytes: obs.iter().map(|o| o.out).sum::<u64>() / n as u64,
        start_cost,
        start_cost_fallback: false,
        fixed_per_job: fixed,
        per_input,
    }
}

/// Jobs finished per second over `obs`, from their end times (not from when the runner saw
/// them, which lags when it is busy).
pub(crate) fn throughput(obs: &[Obs]) -> Option<f64> {
    let first = obs.iter().map(|o| o.end).fold(f64::INFINITY, f64::min);
    let last = obs.iter().map(|o| o.end).fold(f64::NEG_INFINITY, f64::max);
    (obs.len() >= 2 && last > first).then(|| (obs.len() - 1) as f64 / (last - first))
}

/// The start cost used when the probe cannot start `true` (named so that a report shows it):
/// a typical fork + exec + reap of a small static program on Linux, about a millisecond.
pub const FALLBACK_START_COST: Seconds = 1e-3;

/// Runs of `true` the start probe times; the median is kept.
const START_PROBES: usize = 5;

/// The time to start and reap a process that does nothing, through the same path as a job
/// (process group, captured output): measured once per process. `None` when `true` could not
/// be started, in which case the caller uses [`FALLBACK_START_COST`] and says so.
pub(crate) fn start_cost() -> Option<Seconds> {
    static COST: OnceLock<Option<Seconds>> = OnceLock::new();
    *COST.get_or_init(|| {
        let template = Template::parse(["true"]).ok()?;
        let mut times = Vec::with_capacity(START_PROBES);
        for _ in 0..START_PROBES {
            let none = Job {
                inputs: &[],
                seq: 1,
                slot: 1,
            };
            let started = job::start(&template, &none, false).ok()?;
            sys::wait_ended(started.pid).ok()?;
            let ended = job::finish(started).ok()?;
            if ended.status != sys::Status::Exited(0) {
                return None;
            }
            times.push(ended.runtime.as_secs_f64());
        }
        amorsize::stats::median(&times)
    })
}

/// POSIX asks `xargs` to leave 2048 bytes of `ARG_MAX` free (XCU xargs, "-s size"); so do we.
pub(crate) const ARG_HEADROOM: usize = 2048;

/// `ARG_MAX` as the standard guarantees at least (`_POSIX_ARG_MAX`), used when `sysconf` fails.
pub(crate) const FALLBACK_ARG_MAX: usize = 4096;

/// Bytes of the argument area one job's inputs may take: `ARG_MAX` less the environment, the
/// headroom and the command's own words; for a shell script, also no more than one argument
/// may hold.
pub(crate) fn arg_budget(template: &Template) -> usize {
    let arg_max = sys::arg_max().unwrap_or(FALLBACK_ARG_MAX);
    let env: usize = std::env::vars_os()
        .map(|(k, v)| k.as_bytes().len() + v.as_bytes().len() + 2 + std::mem::size_of::<usize>())
        .sum();
    let total = arg_max
        .saturating_sub(env)
        .saturating_sub(ARG_HEADROOM)
        .saturating_sub(template.base_cost());
    match template.single_arg_limit() {
        Some(single) => total.min(single.saturating_sub(template.base_cost())),
        None => total,
    }
}

/// The limits this run works within; `mean_cost` is the mean [`Template::input_cost`] of the
/// inputs seen so far, when there are some.
pub(crate) fn limits(template: &Template, mean_cost: Option<usize>, budget: usize) -> Limits {
    let machine = amorsize::probe::machine();
    let mut cpus = machine.affinity_cpus().max(1);
    if let Some(q) = machine.quota_workers() {
        cpus = cpus.min(q);
    }
    Limits {
        cpus,
        process_limit: sys::process_limit(),
        processes_per_job: if template.uses_shell() { 2 } else { 1 },
        open_files_limit: sys::open_files_limit(),
        available_memory: machine.available_memory(),
        inputs_per_command_line: template
            .batches()
            .then_some(mean_cost)
            .flatten()
            .map(|c| (budget / c.max(1)).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(inputs: usize, wall: f64, cpu: f64) -> Obs {
        Obs {
            inputs,
            wall,
            cpu,
            rss: 1000,
            out: 10,
            end: 0.0,
        }
    }

    #[test]
    fn two_sizes_give_fixed_and_per_input_costs() {
        let m = summarize(
            &[
                obs(1, 0.0011, 0.001),
                obs(11, 0.0021, 0.002),
                obs(1, 0.0011, 0.001),
            ],
            0.0005,
        );
        assert!((m.per_input - 0.0001).abs() < 1e-9);
        assert!((m.fixed_per_job - 0.001).abs() < 1e-9);
        assert_eq!(m.inputs, 13);
        assert_eq!(m.peak_rss, 1000);
    }

    #[test]
    fn wall_noise_does_not_read_as_per_input_cost() {
        // The 64-input job waited 10 ms longer for a CPU; its CPU time says inputs cost ~nothing.
        let m = summarize(&[obs(1, 0.002, 0.001), obs(64, 0.012, 0.001064)], 0.001);
        // By wall time it would be 159 µs an input; by CPU time about 7 µs.
        assert!(m.per_input < 1e-5, "{}", m.per_input);
        assert!(m.fixed_per_job > 0.0019);
    }

    #[test]
    fn cpu_ratio_is_cpu_over_wall() {
        let m = summarize(&[obs(1, 0.05, 0.001), obs(1, 0.05, 0.001)], 0.0);
        assert!((m.cpu_ratio - 0.02).abs() < 1e-9);
        assert_eq!(m.cv, 0.0);
        assert_eq!(summarize(&[], 0.1).jobs, 0);
    }

    #[test]
    fn throughput_counts_intervals_between_ends() {
        let at = |end| Obs {
            end,
            ..obs(1, 0.1, 0.0)
        };
        assert_eq!(throughput(&[at(10.0), at(10.5), at(11.0)]), Some(2.0));
        assert_eq!(throughput(&[at(10.0)]), None);
        assert_eq!(throughput(&[at(10.0), at(10.0)]), None);
    }

    #[test]
    fn the_start_probe_measures_something() {
        let cost = start_cost().expect("`true` should start");
        assert!(cost > 0.0);
    }
}
