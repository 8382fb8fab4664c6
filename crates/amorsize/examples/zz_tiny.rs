#![allow(clippy::print_stdout)]
use std::time::{Duration, Instant};
fn spin(x: u64, n: u64) -> u64 {
    let mut a = x | 1;
    for _ in 0..n {
        a ^= a << 13;
        a ^= a >> 7;
        a ^= a << 17;
    }
    std::hint::black_box(a)
}
fn main() {
    let items: Vec<u64> = (0..1000).collect();
    let n: u64 = std::env::args().nth(1).map_or(4, |s| s.parse().unwrap());
    let f = move |x: &u64| spin(*x, n);
    let _ = amorsize::execute(&items, f).unwrap();
    let (mut s, mut a) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let t = Instant::now();
        std::hint::black_box(items.iter().map(f).collect::<Vec<_>>());
        s.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(amorsize::execute(&items, f).unwrap());
        a.push(t.elapsed());
    }
    s.sort();
    a.sort();
    let (s, a): (Duration, Duration) = (s[1000], a[1000]);
    println!(
        "serial {s:?} amorsize {a:?} ratio amorsize/serial {:.2}",
        a.as_secs_f64() / s.as_secs_f64()
    );
}
