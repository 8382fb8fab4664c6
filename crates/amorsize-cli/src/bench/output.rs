//! The benchmark's output: a table for people, JSON for programs.

use super::measure::Strategy;
use super::report::Target;
use super::Run;
use amorsize::fmt::duration;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::time::Duration;

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".to_owned(), f)
}

/// Writes the terminal table, the targets and where the charts went.
pub fn table(out: &mut impl Write, run: &Run) -> io::Result<()> {
    writeln!(
        out,
        "amorsize bench ({} scale, median of {} rounds or more) on {}",
        run.scale.name(),
        run.rounds,
        machine_line()
    )?;
    if let Some((before, after)) = run.capacity {
        writeln!(
            out,
            "parallel capacity measured: {before:.2} CPUs at the start, {after:.2} at the end \
             (of {}; lower means other programs share the machine)",
            run.cpus
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>6} {:>6} {:>5} {:>5} {:>6} {:>10}",
        "workload",
        "items",
        "rounds",
        "per item",
        "serial",
        "rayon",
        "naive",
        "oracle",
        "w×chunk",
        "ser cold",
        "amz cold",
        "amz warm",
        "÷best",
        "cold÷",
        "pred",
        "meas",
        "err",
        "plan"
    )?;
    for row in &run.rows {
        let t = |s| duration(row.time(s));
        let oracle = row.measured.oracle;
        writeln!(
            out,
            "{:<10} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>6.2} {:>6} {:>5} {:>5.2} {:>6} {:>10}",
            row.kind.name(),
            row.measured.items,
            row.measured.rounds(),
            duration(row.time(Strategy::Serial) / row.measured.items.max(1) as u32),
            t(Strategy::Serial),
            t(Strategy::Rayon),
            t(Strategy::Naive),
            t(Strategy::Oracle),
            format!("{}×{}", oracle.workers, oracle.chunk),
            row.cold_serial_time().map_or_else(|| "–".to_owned(), duration),
            row.cold_time().map_or_else(|| "–".to_owned(), duration),
            t(Strategy::Amorsize),
            row.ratio(),
            opt(row.cold_ratio(), |v| format!("{v:.2}")),
            opt(row.predicted(), |v| format!("{v:.2}")),
            row.speedup(Strategy::Amorsize),
            opt(row.error(), |v| format!("{:+.0}%", v * 100.0)),
            row.plan_text(),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "÷best: amorsize (warm) ÷ the fastest of serial, rayon, naive and oracle; cold÷: the same \
         for the first call in a fresh process; ser cold: the serial loop as the first call in a \
         fresh process. pred/meas: amorsize's predicted and measured \
         speedup over serial; err = pred ÷ meas − 1."
    )?;
    writeln!(out)?;
    writeln!(out, "targets")?;
    for target in &run.targets {
        let worst = target
            .worst
            .map(|k| format!(" ({})", k.name()))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<4} {:<56} {:>8} {:<7}{worst}",
            if target.met { "met" } else { "MISS" },
            target.name,
            format_target(target),
            target.goal,
        )?;
    }
    for path in &run.charts {
        writeln!(out, "chart: {}", path.display())?;
    }
    Ok(())
}

/// The machine in one line: CPU model, CPUs, cores, quota, kernel.
pub fn machine_line() -> String {
    let m = amorsize::probe::machine();
    let mut line = format!(
        "{}, {} logical CPUs, {} usable cores",
        m.cpu_model().unwrap_or("unknown CPU"),
        m.logical_cpus(),
        m.usable_cores()
    );
    if let Some(q) = m.cpu_quota() {
        line.push_str(&format!(", CPU quota {q:.2}"));
    }
    if let Some(k) = m.kernel_release() {
        line.push_str(&format!(", Linux {k}"));
    }
    line
}

/// Writes the table and the targets as Markdown, for the README.
pub fn markdown(out: &mut impl Write, run: &Run) -> io::Result<()> {
    writeln!(
        out,
        "Machine: {}. Scale: {}, median of {} rounds or more (column `rounds`); run took {}.",
        machine_line(),
        run.scale.name(),
        run.rounds,
        duration(run.wall)
    )?;
    if let Some((before, after)) = run.capacity {
        writeln!(
            out,
            "Parallel capacity measured (CPUs' worth of work delivered to {} threads at once): \
             {before:.2} at the start, {after:.2} at the end.",
            run.cpus
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| workload | items | rounds | per item | serial | rayon | naive | oracle (w×chunk) | serial first call | amorsize first call | amorsize warm | ÷ best other | predicted | measured | error | plan |"
    )?;
    writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )?;
    for row in &run.rows {
        let t = |s| duration(row.time(s));
        let oracle = row.measured.oracle;
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}×{}) | {} | {} | {} | {:.2} | {} | {:.2}× | {} | {} |",
            row.kind.name(),
            row.measured.items,
            row.measured.rounds(),
            duration(row.time(Strategy::Serial) / row.measured.items.max(1) as u32),
            t(Strategy::Serial),
            t(Strategy::Rayon),
            t(Strategy::Naive),
            t(Strategy::Oracle),
            oracle.workers,
            oracle.chunk,
            row.cold_serial_time().map_or_else(|| "–".to_owned(), duration),
            row.cold_time().map_or_else(|| "–".to_owned(), duration),
            t(Strategy::Amorsize),
            row.ratio(),
            opt(row.predicted(), |v| format!("{v:.2}×")),
            row.speedup(Strategy::Amorsize),
            opt(row.error(), |v| format!("{:+.0} %", v * 100.0)),
            row.plan_text(),
        )?;
    }
    writeln!(out)?;
    writeln!(out, "| target | goal | measured | |")?;
    writeln!(out, "|---|---|--:|---|")?;
    for target in &run.targets {
        let worst = target
            .worst
            .map(|k| format!(" ({})", k.name()))
            .unwrap_or_default();
        writeln!(
            out,
            "| {} | {} | {}{worst} | {} |",
            target.name.replace('|', "\\|"),
            target.goal,
            format_target(target),
            if target.met { "met" } else { "**missed**" }
        )?;
    }
    Ok(())
}

fn format_target(t: &Target) -> String {
    if !t.value.is_finite() {
        "–".to_owned()
    } else if t.goal.contains('%') {
        format!("{:.1} %", t.value * 100.0)
    } else if t.goal.contains("µs") {
        format!("{:.0} µs", t.value)
    } else {
        format!("{:.3}", t.value)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The whole run as JSON.
pub fn json(run: &Run) -> Value {
    let workloads: Vec<Value> = run
        .rows
        .iter()
        .map(|row| {
            let m = &row.measured;
            let mut times = serde_json::Map::new();
            let mut all = serde_json::Map::new();
            let mut speedups = serde_json::Map::new();
            for s in Strategy::ALL {
                times.insert(s.name().into(), json!(secs(row.time(s))));
                all.insert(
                    s.name().into(),
                    json!(m.times[s as usize]
                        .iter()
                        .map(|&d| secs(d))
                        .collect::<Vec<_>>()),
                );
                speedups.insert(s.name().into(), json!(row.speedup(s)));
            }
            let cold: Vec<f64> = row.cold.amorsize.iter().map(|c| secs(c.time)).collect();
            let cold_serial: Vec<f64> = row.cold.serial.iter().copied().map(secs).collect();
            let (best, best_time) = row.best_other();
            json!({
                "name": row.kind.name(),
                "about": row.kind.about(),
                "items": m.items,
                "rounds": m.rounds(),
                "serial_item_time_s": secs(row.time(Strategy::Serial)) / m.items.max(1) as f64,
                "time_s": times,
                "times_s": all,
                "speedup": speedups,
                "amorsize_cold": {
                    "time_s": row.cold_time().map(secs),
                    "times_s": cold,
                    "ratio_to_best_other": row.cold_ratio(),
                    "plan": row.cold.amorsize.first().map(|c| c.plan.clone()),
                    "serial_time_s": row.cold_serial_time().map(secs),
                    "serial_times_s": cold_serial,
                    "beyond_serial_s": row.cold_overhead(),
                },
                "best_other": { "strategy": best.name(), "time_s": secs(best_time) },
                "ratio_to_best_other": row.ratio(),
                "predicted_speedup": row.predicted(),
                "measured_speedup": row.speedup(Strategy::Amorsize),
                "prediction_error": row.error(),
                "plan": serde_json::to_value(&m.plan).unwrap_or(Value::Null),
                "oracle": {
                    "workers": m.oracle.workers.get(),
                    "chunk": m.oracle.chunk.get(),
                    "trials": m.trials.len(),
                    "tune_time_s": secs(m.tune_time),
                },
                "curve": m.curve.iter().map(|p| json!({
                    "workers": p.workers,
                    "predicted_speedup": p.predicted,
                    "measured_speedup": row.speedup_of(p.time),
                    "time_s": secs(p.time),
                    "oracle_grid_speedup": m.best_trial(p.workers).map(|t| row.speedup_of(t)),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let targets: Vec<Value> = run
        .targets
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "goal": t.goal,
                "value": t.value.is_finite().then_some(t.value),
                "worst": t.worst.map(|k| k.name()),
                "met": t.met,
            })
        })
        .collect();
    json!({
        "scale": run.scale.name(),
        "rounds": run.rounds,
        "logical_cpus": run.cpus,
        "machine_summary": machine_line(),
        "parallel_capacity": run.capacity.map(|(before, after)| json!({
            "start": before,
            "end": after,
        })),
        "machine": serde_json::to_value(amorsize::probe::machine()).unwrap_or(Value::Null),
        "calibration": {
            "ns_per_round": run.calibration.ns_per_round,
            "ns_per_step": run.calibration.ns_per_step,
            "ns_per_sorted": run.calibration.ns_per_sorted,
            "measured": run.calibration_measured,
        },
        "wall_time_s": secs(run.wall),
        "workloads": workloads,
        "targets": targets,
        "charts": run.charts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}
