//! What the benchmark found: per workload, the figures derived from the measured times; over
//! the suite, the targets amorsize is held to.

use super::cold::Cold;
use super::measure::{Measured, Strategy};
use super::timing::median;
use super::workloads::Kind;
use std::time::Duration;

/// One workload's measurements.
#[derive(Clone, Debug)]
pub struct Row {
    /// Which workload.
    pub kind: Kind,
    /// The in-process measurements.
    pub measured: Measured,
    /// The first calls in fresh processes, amorsize's and the loop's.
    pub cold: Cold,
}

/// The strategies amorsize is compared with: what a user would otherwise pick.
const OTHERS: [Strategy; 4] = [
    Strategy::Serial,
    Strategy::Rayon,
    Strategy::Naive,
    Strategy::Oracle,
];

impl Row {
    /// The median time of `s`.
    pub fn time(&self, s: Strategy) -> Duration {
        self.measured.median(s)
    }

    /// The median time of amorsize's first call in a fresh process, when measured.
    pub fn cold_time(&self) -> Option<Duration> {
        let times: Vec<Duration> = self.cold.amorsize.iter().map(|c| c.time).collect();
        (!times.is_empty()).then(|| median(&times))
    }

    /// The median time of the serial loop's first call in a fresh process, when measured.
    pub fn cold_serial_time(&self) -> Option<Duration> {
        (!self.cold.serial.is_empty()).then(|| median(&self.cold.serial))
    }

    /// What amorsize's first call in a fresh process costs beyond the loop's, in seconds
    /// (negative when it was faster), when both were measured.
    pub fn cold_overhead(&self) -> Option<f64> {
        Some(self.cold_time()?.as_secs_f64() - self.cold_serial_time()?.as_secs_f64())
    }

    /// The fastest of the other strategies.
    pub fn best_other(&self) -> (Strategy, Duration) {
        OTHERS
            .iter()
            .map(|&s| (s, self.time(s)))
            .min_by_key(|&(_, t)| t)
            .unwrap_or((Strategy::Serial, self.time(Strategy::Serial)))
    }

    /// Speedup of `t` over the serial loop.
    pub fn speedup_of(&self, t: Duration) -> f64 {
        ratio(self.time(Strategy::Serial), t)
    }

    /// Speedup of `s` over the serial loop.
    pub fn speedup(&self, s: Strategy) -> f64 {
        self.speedup_of(self.time(s))
    }

    /// amorsize (warm) ÷ the best of the others: 1 is as good as the best, below 1 better.
    pub fn ratio(&self) -> f64 {
        ratio(self.time(Strategy::Amorsize), self.best_other().1)
    }

    /// amorsize's first call in a fresh process ÷ the best of the others.
    pub fn cold_ratio(&self) -> Option<f64> {
        self.cold_time().map(|t| ratio(t, self.best_other().1))
    }

    /// The speedup amorsize's plan predicted for the whole call (the serial sample included),
    /// which is what the benchmark measures.
    pub fn predicted(&self) -> Option<f64> {
        self.measured.plan.predicted_call_speedup()
    }

    /// predicted ÷ measured − 1, for the warm runs.
    pub fn error(&self) -> Option<f64> {
        let measured = self.speedup(Strategy::Amorsize);
        self.predicted()
            .filter(|_| measured > 0.0)
            .map(|p| p / measured - 1.0)
    }

    /// The plan in a few words: `serial`, or `4 × 128`.
    pub fn plan_text(&self) -> String {
        let plan = &self.measured.plan;
        if plan.is_parallel() {
            format!("{} × {}", plan.workers(), plan.chunk_size())
        } else {
            "serial".to_owned()
        }
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    let b = b.as_secs_f64();
    if b > 0.0 {
        a.as_secs_f64() / b
    } else {
        f64::NAN
    }
}

/// A target from the benchmark's brief and what was measured against it.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is promised.
    pub name: &'static str,
    /// The bound, in words.
    pub goal: &'static str,
    /// The measured figure (NaN when nothing could be measured).
    pub value: f64,
    /// The workload behind the figure, when one workload decides it.
    pub worst: Option<Kind>,
    /// Whether the figure meets the bound.
    pub met: bool,
}

/// Workloads whose serial time exceeds this are held to the tighter prediction bound: below
/// it, timer and scheduling noise are a large part of the time.
pub const LONG_WORKLOAD: Duration = Duration::from_millis(10);

/// Work the first call is held to the loop's time for: below it, a first call's planning is
/// a large share of the work, so it must cost next to nothing ([`COLD_OVERHEAD`]).
pub const SHORT_WORKLOAD: Duration = Duration::from_millis(1);

/// What a first call on work under [`SHORT_WORKLOAD`] may cost beyond the loop's first call.
pub const COLD_OVERHEAD: f64 = 50e-6;

/// Evaluates the brief's targets over `rows`.
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let min_by = |f: &dyn Fn(&Row) -> f64| {
        rows.iter()
            .map(|r| (f(r), r.kind))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    let max_by = |f: &dyn Fn(&Row) -> Option<f64>, filter: &dyn Fn(&Row) -> bool| {
        rows.iter()
            .filter(|r| filter(r))
            .filter_map(|r| f(r).map(|v| (v, r.kind)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let (vs_serial, slowest) = min_by(&|r| r.speedup(Strategy::Amorsize)).unzip();
    let (worst_ratio, worst) = max_by(&|r| Some(r.ratio()), &|_| true).unzip();
    let geomean = geometric_mean(rows.iter().map(Row::ratio));
    let errors: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.error().map(f64::abs))
        .collect();
    let median_error = amorsize::stats::median(&errors);
    let (max_long_error, worst_error) = max_by(&|r| r.error().map(f64::abs), &|r| {
        r.time(Strategy::Serial) > LONG_WORKLOAD
    })
    .unzip();

    let cold_geomean = geometric_mean(rows.iter().filter_map(Row::cold_ratio));
    let (cold_overhead, cold_worst) = max_by(&Row::cold_overhead, &|r| {
        r.time(Strategy::Serial) < SHORT_WORKLOAD
    })
    .unzip();

    let target = |name, goal, value: Option<f64>, worst, ok: &dyn Fn(f64) -> bool| {
        let value = value.unwrap_or(f64::NAN);
        Target {
            name,
            goal,
            value,
            worst,
            met: value.is_finite() && ok(value),
        }
    };
    let mut targets = vec![
        target(
            "no negative scaling (amorsize ÷ serial speedup, worst)",
            "≥ 0.95",
            vs_serial,
            slowest,
            &|v| v >= 0.95,
        ),
        target(
            "amorsize ÷ best of the others (worst)",
            "≤ 1.10",
            worst_ratio,
            worst,
            &|v| v <= 1.10,
        ),
        target(
            "amorsize ÷ best of the others (geometric mean)",
            "≤ 1.03",
            geomean,
            None,
            &|v| v <= 1.03,
        ),
        target(
            "prediction error |predicted ÷ measured − 1| (median)",
            "≤ 10 %",
            median_error,
            None,
            &|v| v <= 0.10,
        ),
        target(
            "prediction error on workloads over 10 ms (max)",
            "≤ 25 %",
            max_long_error,
            worst_error,
            &|v| v <= 0.25,
        ),
    ];
    if cold_geomean.is_some() {
        targets.push(target(
            "first call in a fresh process ÷ best (geometric mean)",
            "≤ 1.15",
            cold_geomean,
            None,
            &|v| v <= 1.15,
        ));
        targets.push(target(
            "first call on work under 1 ms, beyond the loop's first (µs)",
            "≤ 50 µs",
            cold_overhead.map(|s| s * 1e6),
            cold_worst,
            &|v| v <= COLD_OVERHEAD * 1e6,
        ));
    }
    targets
}

/// The geometric mean of positive finite values; `None` when there are none.
pub fn geometric_mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let logs: Vec<f64> = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::ln)
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_mean_of_ratios() {
        let g = geometric_mean([2.0, 0.5, 1.0].into_iter()).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        assert!(geometric_mean([f64::NAN, -1.0].into_iter()).is_none());
    }
}
