//! Prints why `.amorsize()` ran a rayon pipeline the way it did: the plan with its reasons,
//! then what the run measured (the sample's items, the phases and sheds of the closed loop).
//!
//! `cargo run --release --example pipeline_report [items] [rounds per item]`

// An example prints what it shows.
#![allow(clippy::print_stdout)]

use amorsize::prelude::*;
use rayon::prelude::*;

/// About `rounds` dependent multiplications: a stand-in for the user's per-item work.
fn work(x: u64, rounds: u64) -> u64 {
    (0..rounds).fold(x, |z, _| {
        z.wrapping_mul(6_364_136_223_846_793_005).rotate_left(7) ^ 1
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let items: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let v: Vec<u64> = (0..items).collect();
    for call in 1..=3 {
        let total = v
            .par_iter()
            .map(|&x| work(x, rounds) & 0xFF)
            .amorsize()
            .on_report(move |run| println!("call {call}: {}\n{run}\n", run.plan))
            .sum::<u64>();
        println!("sum {total}");
    }
}
