//! The first calls of a process on work that pays in parallel: 1000 items of numerical
//! integration (about 100–150 µs each), run `CALLS` times; each call prints its time, plan,
//! measured speedup and any shed. Run it in a loop of fresh processes to count how often a
//! first call sheds a run that pays:
//!
//! ```text
//! cargo run --release --example first_calls -- 60000 2
//! ```

// An example prints its findings.
#![allow(clippy::print_stdout)]

use std::time::Instant;

/// The integral of 4 ÷ (1 + x²) over [0, 1] by the midpoint rule in `steps` steps.
fn integrate(seed: u64, steps: u64) -> u64 {
    let h = 1.0 / steps.max(1) as f64;
    let shift = (seed % 1024) as f64 * 1e-9;
    let mut sum = 0.0f64;
    for i in 0..steps {
        let x = (i as f64 + 0.5) * h + shift;
        sum += 4.0 / (1.0 + x * x);
    }
    (sum * h * 1e12) as u64
}

fn main() -> Result<(), amorsize::Error> {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60_000);
    let calls: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let items: Vec<u64> = (0..1000).collect();
    let f = |x: &u64| integrate(*x, steps);
    let t = Instant::now();
    let serial: Vec<u64> = items.iter().map(f).collect();
    println!("serial loop {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    for call in 0..calls {
        let t = Instant::now();
        let run = amorsize::Options::new().run(&items, f)?;
        let took = t.elapsed();
        assert_eq!(run.results, serial);
        let report = &run.report;
        let sheds: Vec<String> = report
            .sheds
            .iter()
            .map(|s| {
                format!(
                    "{}→{} after {} items ({:.1} ms) at {:.2}×",
                    s.from,
                    s.to,
                    s.after_items,
                    s.at.as_secs_f64() * 1e3,
                    s.measured_speedup
                )
            })
            .collect();
        println!(
            "call {call}: {:.1} ms, {} × {}, measured {}, sheds [{}]",
            took.as_secs_f64() * 1e3,
            report.plan.workers(),
            report.plan.chunk_size(),
            report
                .measured_speedup()
                .map_or("–".to_owned(), |s| format!("{s:.2}×")),
            sheds.join("; ")
        );
    }
    Ok(())
}
