//! Times what finding the thread costs takes in a fresh process: opening (or creating) the
//! cache file, probing the machine, and the calibration itself (measured, or read back from
//! the file). Run it twice on one file to see both cases:
//!
//! ```text
//! d=$(mktemp -d); for k in 1 2; do AMORSIZE_CACHE=$d/a.db \
//!   cargo run --release -p amorsize --example costs_worth; done
//! ```
//!
//! The figures behind `amorsize::calibrate::COSTS_WORTH` and its neighbours.
#![allow(clippy::print_stdout)]

use std::time::Instant;

fn main() {
    let existed = amorsize::cache::location()
        .path()
        .is_some_and(|p| p.exists());
    let t = Instant::now();
    amorsize::cache::with_default(|_| ());
    let open = t.elapsed();
    let t = Instant::now();
    std::hint::black_box(amorsize::probe::machine());
    let probe = t.elapsed();
    let t = Instant::now();
    let calibration = amorsize::calibrate::threads();
    let costs = t.elapsed();
    println!(
        "cache file {}: open {open:?}; probe {probe:?}; thread costs {costs:?} (of which \
         measuring or reading {:?})",
        if existed { "existed" } else { "created" },
        calibration.took
    );
}
