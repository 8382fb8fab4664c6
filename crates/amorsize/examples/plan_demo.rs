//! Prints the plans amorsize makes for a few workloads on this machine.
//!
//! `cargo run --release -p amorsize --example plan_demo`
#![allow(clippy::print_stdout)]

use std::time::Duration;

fn spin(x: &u64, rounds: u64) -> u64 {
    let mut a = *x;
    for i in 0..rounds {
        a = std::hint::black_box(a.wrapping_mul(31) ^ i);
    }
    a
}

fn main() {
    let items: Vec<u64> = (0..10_000).collect();
    let tiny = amorsize::Options::new()
        .name("100 tiny items")
        .optimize(&items[..100], |x| spin(x, 0))
        .unwrap();
    println!("{tiny}");
    println!("{:?}\n", amorsize::calibrate::threads());
    for (label, rounds) in [
        ("~1 ns items", 0),
        ("~1 µs items", 1_000),
        ("~100 µs items", 100_000),
    ] {
        let plan = amorsize::Options::new()
            .name(label)
            .optimize(&items, |x| spin(x, rounds))
            .unwrap();
        println!("{plan}");
    }
    let (sleepy, _) = amorsize::Options::new()
        .name("sleeping 1 ms")
        .optimize_iter(0..200u64, |_| std::thread::sleep(Duration::from_millis(1)))
        .unwrap();
    println!("{sleepy}");
}
