//! The plan as a report for people (the original's verbose output).

use super::{Mode, Plan};
use crate::fmt::{bytes, seconds};
use std::fmt;

/// The memory line(s) of a plan: what was measured of an item's memory and where from, or
/// that it was not.
fn write_memory(
    f: &mut fmt::Formatter<'_>,
    w: &crate::model::Workload,
    backend: crate::model::Backend,
) -> fmt::Result {
    use crate::model::{Backend, MemorySource};
    match &w.item_memory {
        // A command's memory is its jobs' peak RSS; there is no Rust function to count.
        None if backend == Backend::Commands => {}
        Some(m) => writeln!(
            f,
            "  memory: {} live at an item's peak, {} allocated per item, results {} each \
             (counted by amorsize::alloc::Counting)",
            bytes(m.peak),
            bytes(m.allocated),
            bytes(w.result_bytes)
        )?,
        None => writeln!(
            f,
            "  memory: not measured per item (install amorsize::alloc::Counting as the global \
             allocator to measure it); results {} each (their size_of only)",
            bytes(w.result_bytes)
        )?,
    }
    if w.worker_memory > 0 && w.memory_source != MemorySource::Counted {
        writeln!(
            f,
            "  memory per worker: {} ({})",
            bytes(w.worker_memory),
            w.worker_memory_source()
        )?;
    }
    Ok(())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_headline(f)?;
        if let Some(w) = &self.workload {
            write_workload(f, w)?;
            write_memory(f, w, self.backend)?;
        }
        self.write_prediction(f)?;
        self.write_limits(f)?;
        self.write_capacity(f)?;
        if let Some(c) = &self.costs {
            write_costs(f, c)?;
        }
        if let Some(s) = &self.sample {
            writeln!(
                f,
                "  sample: {} items, {} measured",
                s.count,
                seconds(s.measured)
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

impl Plan {
    /// The decision, why, and whether it was reused.
    fn write_headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "amorsize plan")?;
        if let Some(name) = &self.name {
            write!(f, " for {name:?}")?;
        }
        match self.mode {
            Mode::Serial => writeln!(f, ": serial")?,
            Mode::Parallel => writeln!(
                f,
                ": parallel on {} {}, chunks of {} items",
                self.workers, self.backend, self.chunk
            )?,
        }
        writeln!(f, "  why: {}", self.reason)?;
        if let Some(reuse) = self.reuse {
            writeln!(
                f,
                "  reused: planned {} ago from a full sample of this workload (the workload, \
                 terms and sample shown are that plan's); not sampled again (call {} of at most \
                 {})",
                seconds(reuse.age),
                reuse.call,
                crate::plan::recall::RECALL_TIMES
            )?;
        }
        Ok(())
    }

    /// The predicted times, the terms of the parallel plan chosen or refused, and the
    /// costliest of them.
    fn write_prediction(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(s), Some(p)) = (self.predicted_serial, self.predicted) {
            writeln!(
                f,
                "  predicted: {} (serial {}, speedup {:.2}×)",
                seconds(p),
                seconds(s),
                self.predicted_speedup().unwrap_or(1.0)
            )?;
        }
        if let Some(p) = &self.prediction {
            let label = if self.is_parallel() {
                "chosen"
            } else {
                "best refused"
            };
            writeln!(
                f,
                "  {label} parallel plan: {} workers × chunks of {} → {} ({:.2}×)",
                p.candidate.workers,
                p.candidate.chunk,
                seconds(p.total()),
                p.speedup()
            )?;
            writeln!(f, "    {:<16}{:>12}", "compute", seconds(p.compute))?;
            for (term, cost) in p.overheads() {
                writeln!(f, "    {:<16}{:>12}", term.to_string(), seconds(cost))?;
            }
        }
        if let Some(b) = self.bottleneck() {
            writeln!(
                f,
                "  bottleneck: {} ({}): {}",
                b.term,
                seconds(b.cost),
                b.remedy
            )?;
        }
        Ok(())
    }

    /// The limits on the workers, the binding one marked.
    fn write_limits(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limits.is_empty() {
            return Ok(());
        }
        writeln!(f, "  limits on workers:")?;
        let binding = self.binding_limit().map(|l| l.kind);
        for l in &self.limits {
            writeln!(
                f,
                "    {:<22}{:>6}  {}{}",
                l.kind.to_string(),
                l.workers,
                l.source,
                if Some(l.kind) == binding {
                    "  (binding)"
                } else {
                    ""
                }
            )?;
        }
        Ok(())
    }

    /// The cores the workers may count on, with other programs' load when it was read.
    fn write_capacity(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(caps) = &self.caps else {
            return Ok(());
        };
        let capacity = caps.capacity();
        match &caps.load {
            Some(load) => writeln!(
                f,
                "  capacity: {:.2} of {:.2} cores for {} workers ({:.1} other runnable \
                 threads; {})",
                capacity.relative_cores(self.workers.get()),
                capacity.cores,
                self.workers,
                load.competing,
                load.source
            ),
            None => writeln!(
                f,
                "  capacity: {:.2} cores (other programs' load not read)",
                capacity.cores
            ),
        }
    }
}

/// The workload line: items, time per item, spread, CPU share and the function's own threads.
fn write_workload(f: &mut fmt::Formatter<'_>, w: &crate::model::Workload) -> fmt::Result {
    writeln!(
        f,
        "  workload: {} items of {} (cv {:.2}, CPU {:.0} % of wall{})",
        w.items,
        seconds(w.item_time),
        w.cv,
        w.cpu_fraction * 100.0,
        if w.self_parallelism > 1.0 {
            format!(", {:.1} CPUs per call", w.self_parallelism)
        } else {
            String::new()
        }
    )
}

/// The backend's costs, each fallback marked.
fn write_costs(f: &mut fmt::Formatter<'_>, c: &crate::model::Costs) -> fmt::Result {
    let fallback = |used: bool| if used { " (fallback)" } else { "" };
    writeln!(
        f,
        "  costs ({}): worker start {}{}, chunk dispatch {}{}, transfer {}/KiB",
        c.backend,
        seconds(c.worker_start),
        fallback(c.fallbacks.worker_start),
        seconds(c.chunk_dispatch),
        fallback(c.fallbacks.chunk_dispatch),
        seconds(c.transfer_per_byte * 1024.0)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_loaded_plan_says_the_capacity_and_where_it_came_from() {
        use crate::model::{Backend, Costs, Sharing, Workload};
        use crate::plan::{decide, Caps, Load, Options};
        let mut caps = Caps::cores(2, "test");
        caps.load = Some(Load {
            competing: 1.0,
            sharing: Sharing::PerSession,
            source: "runnable threads in /proc/loadavg".into(),
        });
        let costs = Costs::zero(Backend::Threads);
        let plan = decide(&Workload::new(1000, 1e-3), &costs, &caps, &Options::new());
        // One other session busy on 2 cores: the process keeps one, and parallel cannot pay.
        assert!(!plan.is_parallel(), "{plan}");
        let text = plan.to_string();
        assert!(text.contains("capacity: 1.00 of 2.00 cores"), "{text}");
        assert!(text.contains("/proc/loadavg"), "{text}");
        assert!(
            text.contains("other programs keep 1.0 threads runnable"),
            "{text}"
        );
        let json = plan.to_json();
        assert!(json.contains("\"competing\": 1.0"), "{json}");
        assert!(json.contains("per_session"), "{json}");
        // Without the load, the same work goes parallel on both cores.
        caps.load = None;
        let quiet = decide(&Workload::new(1000, 1e-3), &costs, &caps, &Options::new());
        assert_eq!(quiet.workers().get(), 2, "{quiet}");
        assert!(quiet.to_string().contains("capacity: 2.00 cores"));
    }
}
