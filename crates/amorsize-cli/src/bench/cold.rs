//! amorsize's first call in a fresh process: nothing probed, calibrated or started yet. The
//! benchmark runs itself as a child (a hidden flag) that builds the workload, times a single
//! call of `execute` (what a user writes) and prints the time and, from a second call that is
//! not timed, the plan as one JSON line. Beside each, a child times the
//! serial loop as its first call: a fresh process's loop pays for cold caches and for the
//! pages of its results too, so that is the loop a first call is compared with.

use super::amz;
use super::kernels::Calibration;
use super::workloads::{Kind, Scale, Visit, Workload};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// The hidden flag that makes `amorsize bench` a cold-call child.
pub const CHILD_FLAG: &str = "--cold-child";

/// The hidden flag that makes the child time the serial loop instead of amorsize.
pub const LOOP_FLAG: &str = "--cold-loop";

/// What one workload's children measured.
#[derive(Clone, Debug, Default)]
pub struct Cold {
    /// amorsize's first calls.
    pub amorsize: Vec<ColdRun>,
    /// The serial loop's first calls, as many, run alternately with amorsize's.
    pub serial: Vec<Duration>,
}

/// What one child measured.
#[derive(Clone, Debug)]
pub struct ColdRun {
    /// Wall time of the first call, planning included.
    pub time: Duration,
    /// The plan it chose, as the library serializes it (null for the loop).
    pub plan: serde_json::Value,
}

/// Runs `runs` children for `kind` that time amorsize and as many that time the loop, one
/// after the other, alternately.
pub fn measure(kind: Kind, scale: Scale, cal: &Calibration, runs: usize) -> Result<Cold> {
    let mut cold = Cold::default();
    for _ in 0..runs {
        cold.amorsize.push(run_child(kind, scale, cal, false)?);
        cold.serial.push(run_child(kind, scale, cal, true)?.time);
    }
    Ok(cold)
}

/// How long the benchmark stays idle before it starts a child: the threads of its own runs
/// (rayon's, amorsize's) spin for a while after their last job before they sleep, and a child
/// started meanwhile finds them runnable, as another program's load, and plans for the cores
/// they leave it (a first call in a fresh process on an idle machine is what is measured).
const SETTLE: Duration = Duration::from_millis(20);

fn run_child(kind: Kind, scale: Scale, cal: &Calibration, serial: bool) -> Result<ColdRun> {
    std::thread::sleep(SETTLE);
    let exe = std::env::current_exe().context("finding this executable to run it as a child")?;
    let mut command = Command::new(&exe);
    command
        .arg("bench")
        .arg(CHILD_FLAG)
        .arg(kind.name())
        .arg("--scale")
        .arg(scale.name())
        .arg("--calibration")
        .arg(cal.to_arg());
    if serial {
        command.arg(LOOP_FLAG);
    }
    let output = command
        .output()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "the cold-call child for {} failed ({}): {}",
            kind.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse(&output.stdout).with_context(|| {
        format!(
            "reading the cold-call child's output for {}: {:?}",
            kind.name(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn parse(stdout: &[u8]) -> Result<ColdRun> {
    let value: serde_json::Value = serde_json::from_slice(stdout)?;
    let secs = value["time_s"]
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .context("no time_s")?;
    Ok(ColdRun {
        time: Duration::from_secs_f64(secs),
        plan: value["plan"].clone(),
    })
}

/// The child's side: builds the workload (not timed), times one call of amorsize (or of the
/// serial loop), prints one JSON line.
pub fn child(kind: Kind, scale: Scale, cal: &Calibration, serial: bool) -> Result<()> {
    let workload = Workload::build(kind, scale, cal);
    let (time, plan) = workload.visit(FirstCall { serial })?;
    let line = serde_json::json!({
        "time_s": time.as_secs_f64(),
        "plan": plan.map(|plan| serde_json::to_value(&plan)).transpose()?,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

struct FirstCall {
    /// Time the serial loop, not amorsize.
    serial: bool,
}

impl Visit for FirstCall {
    type Out = Result<(Duration, Option<amorsize::Plan>)>;

    fn slice<F>(self, items: &[u64], f: F) -> Self::Out
    where
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let start = Instant::now();
        if self.serial {
            let results: Vec<u64> = items.iter().map(&f).collect();
            let time = start.elapsed();
            std::hint::black_box(results);
            return Ok((time, None));
        }
        let results = amz::execute(items, &f)?;
        let time = start.elapsed();
        drop(results);
        // The plan, from a second call (not timed): `execute` builds none for a call the
        // glance settles, and asking for one costs the first call more than a user pays.
        let (_, plan) = amz::run_slice(items, &f, None)?;
        Ok((time, Some(plan)))
    }

    fn iter<I, M, F>(self, make: M, f: F) -> Self::Out
    where
        I: Iterator<Item = u64> + Send,
        M: Fn() -> I,
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let iter = make();
        let start = Instant::now();
        if self.serial {
            let results: Vec<u64> = iter.map(|x| f(&x)).collect();
            let time = start.elapsed();
            std::hint::black_box(results);
            return Ok((time, None));
        }
        let results = amz::execute_iter(iter, &f)?;
        let time = start.elapsed();
        drop(results);
        // The plan, from a second call (not timed), as for a slice.
        let (_, plan) = amz::run_iter(make(), &f)?;
        Ok((time, Some(plan)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_child_line_and_rejects_garbage() {
        let run = parse(br#"{"time_s": 0.25, "plan": {"mode": "serial"}}"#).unwrap();
        assert_eq!(run.time, Duration::from_millis(250));
        assert_eq!(run.plan["mode"], "serial");
        assert!(parse(b"nonsense").is_err());
        assert!(parse(br#"{"time_s": -1}"#).is_err());
    }
}
