//! A map planned and run across processes with timely-dataflow.
//!
//! ```text
//! cargo run --release -p amorsize --features cluster --example cluster -- --local 3
//! cargo run --release -p amorsize --features cluster --example cluster -- --hostfile hosts.txt --process 0
//! ```
//!
//! Options: `--workers W` (threads per process, default 1), `--items N` (default 4000),
//! `--work-us U` (microseconds of work per item, default 500). With a hostfile every host
//! runs the same command with its own `--process`.
#![allow(clippy::print_stdout)]

use amorsize::cluster::{self, Choice, Hosts};
use amorsize::exec::process;
use amorsize::model::network::predict_network;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// About `item.1` microseconds of arithmetic on `item.0`.
fn work(item: &(u64, u32)) -> u64 {
    let (seed, micros) = *item;
    let until = Instant::now() + Duration::from_micros(micros as u64);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rounds = 0u64;
    while Instant::now() < until || rounds == 0 {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        rounds += 1;
    }
    std::hint::black_box(x);
    // The result depends only on the seed, not on how fast the machine spun.
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
        .rotate_left((seed % 63) as u32)
}

struct Args {
    hosts: Hosts,
    items: usize,
    micros: u32,
}

fn parse() -> Result<Args, String> {
    let mut local = None;
    let mut hostfile = None;
    let mut process = 0usize;
    let mut workers = 1usize;
    let mut items = 4000usize;
    let mut micros = 500u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--local" => local = Some(number(value()?)?),
            "--hostfile" => hostfile = Some(value()?),
            "--process" => process = number(value()?)?,
            "--workers" => workers = number(value()?)?,
            "--items" => items = number(value()?)?,
            "--work-us" => micros = number(value()?)? as u32,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let hosts = match (local, hostfile) {
        (Some(n), None) => Hosts::local(n),
        (None, Some(path)) => Hosts::hostfile(path, process).map_err(|e| e.to_string())?,
        _ => return Err("give --local N or --hostfile PATH --process P".into()),
    };
    Ok(Args {
        hosts: hosts.workers(workers),
        items,
        micros,
    })
}

fn main() -> ExitCode {
    let function = process::register("cluster-example.work", work);
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Every process but 0 serves here and exits; process 0 goes on with the cluster.
    let mut cluster = match cluster::init(args.hosts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&mut cluster, function, args.items, args.micros) {
        Ok(()) => match cluster.shutdown() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    cluster: &mut cluster::Cluster,
    function: process::Function<(u64, u32), u64>,
    items: usize,
    micros: u32,
) -> amorsize::Result<()> {
    print!("{}", cluster.calibration());
    let input: Vec<(u64, u32)> = (0..items as u64).map(|i| (i, micros)).collect();
    let expected: Vec<u64> = input.iter().map(work).collect();

    let outcome = cluster.execute(function, &input, &amorsize::Options::new())?;
    println!("{}", outcome.plan);
    println!(
        "planned run: {} — predicted {:.3} s, measured {:.3} s; results {}",
        match outcome.plan.choice {
            Choice::Cluster => "on the cluster",
            Choice::Threads => "on this machine",
        },
        outcome.plan.predicted(),
        outcome.measured.as_secs_f64(),
        check(&outcome.results, &expected)
    );

    // The best cluster shape, run whether or not it was chosen: its prediction checked.
    if let Some(best) = outcome.plan.prediction {
        let all = amorsize::model::Workload {
            items: input.len(),
            ..outcome.plan.workload.clone()
        };
        let predicted = predict_network(&all, &outcome.plan.links, best.shape, cluster::FLOW, true);
        let began = Instant::now();
        let results = cluster.run(function, &input, best.shape)?;
        println!(
            "forced on the cluster: {} — predicted {:.3} s, measured {:.3} s; results {}",
            best.shape,
            predicted.total(),
            began.elapsed().as_secs_f64(),
            check(&results, &expected)
        );
    }
    Ok(())
}

fn check(results: &[u64], expected: &[u64]) -> String {
    if results == expected {
        format!("equal to the serial map ({} items)", results.len())
    } else {
        let first = results.iter().zip(expected).position(|(a, b)| a != b);
        format!(
            "DIFFERENT from the serial map ({} results, {} expected, first difference at {first:?})",
            results.len(),
            expected.len()
        )
    }
}
