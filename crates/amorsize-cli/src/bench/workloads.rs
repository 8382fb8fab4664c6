//! The built-in workloads: real computations across the space amorsize must handle, from
//! nanoseconds per item to milliseconds, uniform to heavily skewed, CPU-bound, memory-bound and
//! waiting, over a slice or an iterator.

use super::kernels::{
    block_sum, integrate, locked, mix, record, sort_digest, spin, Calibration, Rng,
};
use std::time::Duration;

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    /// A hash per item: nanoseconds, where parallelism cannot pay.
    Tiny,
    /// About 1 µs of integer work per item.
    Fast,
    /// About 100 µs of floating-point work per item.
    Medium,
    /// About 10 ms per item (sorting), few items.
    Slow,
    /// Log-normal costs, coefficient of variation 1.5.
    Lognormal,
    /// 2 % of the items 100 times slower than the rest, at random places.
    Bimodal,
    /// Cost growing along the input, from almost nothing to twice the mean.
    Sorted,
    /// Sums over an array larger than the caches: bound by memory bandwidth.
    Memory,
    /// A sleep per item, as a call waiting on I/O.
    Waiting,
    /// Items pulled from an iterator rather than a slice.
    Iterator,
    /// Short records formatted, split and parsed: ~150 ns and small allocations per item,
    /// where parallel copies can contend in the allocator.
    Records,
    /// Work that holds one shared lock: parallel is slower than the loop.
    Locked,
    /// Three items of ~75 ms: a serial sample would take most of the work.
    Heavy,
    /// A small batch, ~0.3 ms in all: waking the workers is not free.
    Small,
}

impl Kind {
    /// Every workload, in the order of the table.
    pub const ALL: [Kind; 14] = [
        Kind::Tiny,
        Kind::Fast,
        Kind::Medium,
        Kind::Slow,
        Kind::Lognormal,
        Kind::Bimodal,
        Kind::Sorted,
        Kind::Memory,
        Kind::Waiting,
        Kind::Iterator,
        Kind::Records,
        Kind::Locked,
        Kind::Heavy,
        Kind::Small,
    ];

    /// The workload's name on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tiny => "tiny",
            Kind::Fast => "fast",
            Kind::Medium => "medium",
            Kind::Slow => "slow",
            Kind::Lognormal => "lognormal",
            Kind::Bimodal => "bimodal",
            Kind::Sorted => "sorted",
            Kind::Memory => "memory",
            Kind::Waiting => "waiting",
            Kind::Iterator => "iterator",
            Kind::Records => "records",
            Kind::Locked => "locked",
            Kind::Heavy => "heavy",
            Kind::Small => "small",
        }
    }

    /// What the workload computes, in a few words.
    pub fn about(self) -> &'static str {
        match self {
            Kind::Tiny => "one 64-bit hash per item (ns)",
            Kind::Fast => "integer mixing, ~1 µs per item",
            Kind::Medium => "numerical integration, ~100 µs per item",
            Kind::Slow => "sorting random arrays, ~10 ms per item, few items",
            Kind::Lognormal => "integer mixing, log-normal cost, CV 1.5, mean ~20 µs",
            Kind::Bimodal => "integer mixing, 5 µs; 2 % of items 100× slower",
            Kind::Sorted => "integer mixing, cost rising along the input, mean ~20 µs",
            Kind::Memory => "sums of 32 KiB blocks of a large array",
            Kind::Waiting => "sleep 200 µs per item (as I/O)",
            Kind::Iterator => "integer mixing, ~5 µs per item, from an iterator",
            Kind::Records => "format, split and parse a record, ~150 ns, allocating",
            Kind::Locked => "integer mixing under one shared lock, ~2 µs per item",
            Kind::Heavy => "sorting random arrays, 3 items of ~75 ms",
            Kind::Small => "integer mixing, 300 items of ~1 µs",
        }
    }
}

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Sizes that only check the run works end to end (tests).
    Smoke,
    /// Small sizes: the whole suite in well under 20 s on 2 cores (CI).
    Quick,
    /// The real benchmark: under 2 minutes on 2 cores.
    Full,
}

impl Scale {
    /// The scale's name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Full => "full",
        }
    }

    /// Picks the figure for this scale.
    fn pick<T>(self, smoke: T, quick: T, full: T) -> T {
        match self {
            Scale::Smoke => smoke,
            Scale::Quick => quick,
            Scale::Full => full,
        }
    }

    /// Smoke runs shrink the time per item too, so the whole suite takes a second or two.
    fn per_item(self, target: Duration) -> Duration {
        match self {
            Scale::Smoke => target / 100,
            Scale::Quick | Scale::Full => target,
        }
    }
}

/// Elements of the memory-bound workload's blocks: 32 KiB of `u64`, larger than a page and
/// small enough that a few thousand blocks make a large array.
const BLOCK_LEN: usize = 4096;

/// Seed of every generated input, so that all strategies and child processes see the same one.
const SEED: u64 = 0x5EED;

/// A workload, built: its input and the parameters of its function.
#[derive(Debug)]
pub struct Workload {
    kind: Kind,
    /// The slice input (seeds or per-item costs); for the iterator workload, its length only
    /// matters.
    items: Vec<u64>,
    /// The large array of the memory-bound workload (empty for the others).
    data: Vec<u64>,
    /// Rounds, steps, elements or microseconds: the knob of the workload's kernel.
    param: u64,
}

/// A consumer of a workload, generic over its function so that every strategy runs the
/// closure inlined, as a user's code would.
pub trait Visit {
    /// What the visit produces.
    type Out;

    /// The workload is a function over a slice.
    fn slice<F>(self, items: &[u64], f: F) -> Self::Out
    where
        F: Fn(&u64) -> u64 + Sync + Send;

    /// The workload is a function over the items of an iterator; `make` builds a fresh one.
    fn iter<I, M, F>(self, make: M, f: F) -> Self::Out
    where
        I: Iterator<Item = u64> + Send,
        M: Fn() -> I,
        F: Fn(&u64) -> u64 + Sync + Send;
}

impl Workload {
    /// Builds `kind` at `scale`, with kernels sized by `cal`.
    pub fn build(kind: Kind, scale: Scale, cal: &Calibration) -> Workload {
        let us = |n: u64| scale.per_item(Duration::from_micros(n));
        let mut rng = Rng::new(SEED ^ kind as u64);
        let seeds = |n: usize| (0..n as u64).map(mix).collect::<Vec<u64>>();
        let (items, data, param) = match kind {
            Kind::Tiny => (seeds(scale.pick(1_000, 50_000, 200_000)), vec![], 0),
            Kind::Fast => (
                seeds(scale.pick(200, 5_000, 50_000)),
                vec![],
                cal.rounds(us(1)),
            ),
            Kind::Medium => (seeds(scale.pick(8, 100, 1_000)), vec![], cal.steps(us(100))),
            Kind::Slow => (
                seeds(scale.pick(4, 4, 16)),
                vec![],
                cal.sort_len(us(10_000)) as u64,
            ),
            Kind::Lognormal => {
                // CV² = e^(σ²) − 1, so σ² = ln(1 + CV²); μ = −σ²/2 keeps the mean factor at 1.
                let sigma2 = (1.0f64 + 1.5 * 1.5).ln();
                let mean = cal.rounds(us(20)) as f64;
                let n = scale.pick(100, 500, 5_000);
                let items = (0..n)
                    .map(|_| {
                        let factor = (sigma2.sqrt() * rng.normal() - sigma2 / 2.0).exp();
                        (mean * factor).round().max(1.0) as u64
                    })
                    .collect();
                (items, vec![], 0)
            }
            Kind::Bimodal => {
                let base = cal.rounds(us(5));
                let n = scale.pick(200, 600, 6_000);
                let items = (0..n)
                    .map(|_| {
                        if rng.next_f64() < 0.02 {
                            base * 100
                        } else {
                            base
                        }
                    })
                    .collect();
                (items, vec![], 0)
            }
            Kind::Sorted => {
                let mean = cal.rounds(us(20)) as f64;
                let n = scale.pick(100, 500, 5_000);
                let items = (0..n)
                    .map(|i| (2.0 * mean * (i + 1) as f64 / n as f64).round().max(1.0) as u64)
                    .collect();
                (items, vec![], 0)
            }
            Kind::Memory => {
                // 256 MiB at full scale: larger than the last-level caches of common servers
                // (this one's included), so every pass streams from memory.
                let len = scale.pick(1 << 16, 4 << 20, 32 << 20);
                let data: Vec<u64> = (0..len as u64).map(|i| i ^ SEED).collect();
                let blocks = (len / BLOCK_LEN) as u64;
                ((0..blocks).collect(), data, BLOCK_LEN as u64)
            }
            Kind::Waiting => (
                seeds(scale.pick(10, 48, 400)),
                vec![],
                us(200).as_micros() as u64,
            ),
            Kind::Iterator => (
                vec![0; scale.pick(100, 2_000, 15_000)],
                vec![],
                cal.rounds(us(5)),
            ),
            Kind::Records => (seeds(scale.pick(1_000, 50_000, 500_000)), vec![], 0),
            // Eight lock hand-overs per item, each round of mixing a few ns.
            Kind::Locked => (seeds(scale.pick(200, 5_000, 50_000)), vec![], 8),
            Kind::Heavy => (seeds(3), vec![], cal.sort_len(us(75_000)) as u64),
            Kind::Small => (seeds(300), vec![], cal.rounds(us(1))),
        };
        Workload {
            kind,
            items,
            data,
            param,
        }
    }

    /// Hands the workload's input and function to `v`.
    pub fn visit<V: Visit>(&self, v: V) -> V::Out {
        let p = self.param;
        match self.kind {
            Kind::Tiny => v.slice(&self.items, |&x| mix(x)),
            Kind::Fast => v.slice(&self.items, move |&x| spin(x, p)),
            Kind::Medium => v.slice(&self.items, move |&x| integrate(x, p)),
            Kind::Slow => v.slice(&self.items, move |&x| sort_digest(x, p as usize)),
            Kind::Lognormal | Kind::Bimodal | Kind::Sorted => {
                v.slice(&self.items, |&rounds| spin(rounds, rounds))
            }
            Kind::Memory => {
                let data = &self.data;
                v.slice(&self.items, move |&b| {
                    block_sum(data, b as usize, p as usize)
                })
            }
            Kind::Waiting => v.slice(&self.items, move |&x| {
                std::thread::sleep(Duration::from_micros(p));
                mix(x)
            }),
            Kind::Iterator => {
                let n = self.items.len() as u64;
                v.iter(move || (0..n).map(mix), move |&x| spin(x, p))
            }
            Kind::Records => v.slice(&self.items, |&x| record(x)),
            Kind::Locked => v.slice(&self.items, move |&x| locked(x, p)),
            Kind::Heavy => v.slice(&self.items, move |&x| sort_digest(x, p as usize)),
            Kind::Small => v.slice(&self.items, move |&x| spin(x, p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the items a visit sees and sums the function over them.
    struct Sum;

    impl Visit for Sum {
        type Out = (usize, u64);

        fn slice<F>(self, items: &[u64], f: F) -> (usize, u64)
        where
            F: Fn(&u64) -> u64 + Sync + Send,
        {
            (items.len(), items.iter().map(f).fold(0, u64::wrapping_add))
        }

        fn iter<I, M, F>(self, make: M, f: F) -> (usize, u64)
        where
            I: Iterator<Item = u64> + Send,
            M: Fn() -> I,
            F: Fn(&u64) -> u64 + Sync + Send,
        {
            make().fold((0, 0), |(n, s), x| (n + 1, s.wrapping_add(f(&x))))
        }
    }

    #[test]
    fn every_workload_builds_and_is_deterministic() {
        let cal = Calibration::nominal();
        for kind in Kind::ALL {
            let a = Workload::build(kind, Scale::Smoke, &cal);
            let b = Workload::build(kind, Scale::Smoke, &cal);
            let (n, sum) = a.visit(Sum);
            assert_eq!(n, a.items.len(), "{kind:?}");
            assert!(n > 0, "{kind:?}");
            assert_eq!(b.visit(Sum), (n, sum), "{kind:?}");
        }
    }

    #[test]
    fn lognormal_costs_have_the_promised_spread() {
        let w = Workload::build(Kind::Lognormal, Scale::Full, &Calibration::nominal());
        let xs: Vec<f64> = w.items.iter().map(|&r| r as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        let cv = sd / mean;
        assert!((1.1..2.0).contains(&cv), "cv {cv}");
    }

    #[test]
    fn bimodal_has_about_two_percent_slow_items() {
        let w = Workload::build(Kind::Bimodal, Scale::Full, &Calibration::nominal());
        let base = *w.items.iter().min().unwrap();
        let slow = w.items.iter().filter(|&&r| r == base * 100).count();
        let share = slow as f64 / w.items.len() as f64;
        assert!((0.01..0.03).contains(&share), "{share}");
    }
}
