//! The computations the workloads are made of, a deterministic generator for their inputs, and
//! the calibration that sizes them to a target time per item on this machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The increment of splitmix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): 2^64 ÷ φ, odd.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijective 64-bit mix (same source as [`GOLDEN`]).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic pseudo-random generator (splitmix64), so every run and every child process
/// builds the same inputs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal variate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // in (0, 1], so ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `rounds` dependent steps of [`mix`]: integer work that the compiler can neither skip nor
/// vectorise, so its cost is proportional to `rounds`.
#[inline]
pub fn spin(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        x = mix(x.wrapping_add(GOLDEN));
    }
    x
}

/// The midpoint rule over `steps` steps for ∫₀¹ 4 ÷ (1 + x²) dx = π, offset by `seed` so
/// that each item computes something different: floating-point work with a division.
#[inline]
pub fn integrate(seed: u64, steps: u64) -> u64 {
    let h = 1.0 / steps.max(1) as f64;
    let shift = (seed % 1024) as f64 * 1e-9;
    let mut sum = 0.0f64;
    for i in 0..steps {
        let x = (i as f64 + 0.5) * h + shift;
        sum += 4.0 / (1.0 + x * x);
    }
    (sum * h * 1e12) as u64
}

/// Sorts `len` pseudo-random numbers generated from `seed` and returns a digest of the order:
/// allocation, memory traffic and unpredictable branches, as in real data processing.
pub fn sort_digest(seed: u64, len: usize) -> u64 {
    let mut rng = Rng::new(seed);
    let mut v: Vec<u32> = (0..len).map(|_| rng.next_u64() as u32).collect();
    v.sort_unstable();
    v.iter()
        .step_by(len / 64 + 1)
        .fold(seed, |acc, &x| mix(acc ^ u64::from(x)))
}

/// Formats a short record from `seed`, splits it at its commas and parses the fields back: a
/// few small allocations and some text per item, as in log or CSV processing. Every thread's
/// items go through the allocator, which is where parallel copies of it contend.
pub fn record(seed: u64) -> u64 {
    let line = format!(
        "{},{:x},item-{},{}",
        seed,
        mix(seed),
        seed % 1000,
        seed as f64 / 7.0
    );
    let fields: Vec<&str> = line.split(',').collect();
    let a: u64 = fields[0].parse().unwrap_or(0);
    let b = u64::from_str_radix(fields[1], 16).unwrap_or(0);
    let c = fields[2].len() as u64;
    let d: f64 = fields[3].parse().unwrap_or(0.0);
    a ^ b ^ c ^ d.to_bits()
}

/// One shared counter behind a lock, for [`locked`].
static SHARED: std::sync::Mutex<u64> = std::sync::Mutex::new(0);

/// `rounds` steps of [`mix`], each under one process-wide lock: work that serializes on a
/// lock, which two workers only slow down (each hand-over of a contended lock costs a wake-up).
pub fn locked(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        // The count is shared; the result depends on the item alone (the bench compares
        // results across strategies).
        *shared = shared.wrapping_add(1);
        x = mix(x.wrapping_add(GOLDEN));
    }
    x
}

/// Sums one block of a large array: streaming reads, a few instructions per 8 bytes, so the
/// memory bus rather than the core sets the pace once the array is larger than the caches.
#[inline]
pub fn block_sum(data: &[u64], block: usize, block_len: usize) -> u64 {
    let start = (block * block_len) % data.len().max(1);
    let end = (start + block_len).min(data.len());
    data[start..end]
        .iter()
        .fold(0u64, |acc, &x| acc.wrapping_add(x))
}

/// What one unit of each kernel costs on this machine, measured once at the start so that the
/// workloads hit their target time per item here, whatever the CPU's speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Nanoseconds per round of [`spin`].
    pub ns_per_round: f64,
    /// Nanoseconds per step of [`integrate`].
    pub ns_per_step: f64,
    /// Nanoseconds per element of [`sort_digest`] near the sizes the slow workload uses.
    pub ns_per_sorted: f64,
}

impl Calibration {
    /// Measures each kernel (median of a few runs, each long enough to dwarf timer overhead).
    pub fn measure() -> Self {
        Calibration {
            ns_per_round: per_unit(100_000, |n| spin(black_box(7), n)),
            ns_per_step: per_unit(100_000, |n| integrate(black_box(7), n)),
            ns_per_sorted: per_unit(200_000, |n| sort_digest(black_box(7), n as usize)),
        }
    }

    /// Fixed figures for smoke runs, where only the shape of the output matters and measuring
    /// would cost more than the run. Reported as such in the output.
    pub fn nominal() -> Self {
        Calibration {
            ns_per_round: NOMINAL_NS_PER_ROUND,
            ns_per_step: NOMINAL_NS_PER_STEP,
            ns_per_sorted: NOMINAL_NS_PER_SORTED,
        }
    }

    /// Rounds of [`spin`] that take about `target`.
    pub fn rounds(&self, target: Duration) -> u64 {
        units(target, self.ns_per_round)
    }

    /// Steps of [`integrate`] that take about `target`.
    pub fn steps(&self, target: Duration) -> u64 {
        units(target, self.ns_per_step)
    }

    /// Elements for [`sort_digest`] that take about `target`.
    pub fn sort_len(&self, target: Duration) -> usize {
        units(target, self.ns_per_sorted) as usize
    }

    /// The three figures, for passing to a child process.
    pub fn to_arg(self) -> String {
        format!(
            "{},{},{}",
            self.ns_per_round, self.ns_per_step, self.ns_per_sorted
        )
    }

    /// Parses [`to_arg`](Self::to_arg)'s text.
    pub fn from_arg(text: &str) -> anyhow::Result<Self> {
        let parts: Vec<f64> = text
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("bad calibration {text:?}: {e}"))?;
        match parts[..] {
            [r, s, o] if [r, s, o].iter().all(|x| x.is_finite() && *x > 0.0) => Ok(Calibration {
                ns_per_round: r,
                ns_per_step: s,
                ns_per_sorted: o,
            }),
            _ => anyhow::bail!("bad calibration {text:?}: want three positive numbers"),
        }
    }
}

/// How many CPUs' worth of work this machine delivers right now: the same integer work run on
/// `threads` threads at once, against one thread alone. On an idle machine it is close to the
/// number of cores; when other programs share the machine it is lower, and no strategy can
/// beat it, which explains a benchmark's low speedups.
pub fn parallel_capacity(threads: usize, work: Duration, cal: &Calibration) -> f64 {
    let rounds = cal.rounds(work);
    let once = || {
        let start = Instant::now();
        black_box(spin(black_box(11), rounds));
        start.elapsed()
    };
    let alone = once();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(once);
        }
    });
    let together = start.elapsed();
    threads as f64 * alone.as_secs_f64() / together.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Smoke-run stand-ins for the measured kernel costs: about what a 3 GHz x86 core does.
const NOMINAL_NS_PER_ROUND: f64 = 3.0;
/// See [`NOMINAL_NS_PER_ROUND`].
const NOMINAL_NS_PER_STEP: f64 = 1.5;
/// See [`NOMINAL_NS_PER_ROUND`].
const NOMINAL_NS_PER_SORTED: f64 = 40.0;

fn units(target: Duration, ns_per_unit: f64) -> u64 {
    ((target.as_secs_f64() * 1e9 / ns_per_unit).round() as u64).max(1)
}

/// Median nanoseconds per unit of `run(n)` over five runs.
fn per_unit(n: u64, run: impl Fn(u64) -> u64) -> f64 {
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(run(black_box(n)));
            start.elapsed().as_secs_f64() * 1e9 / n as f64
        })
        .collect();
    amorsize::stats::median(&times)
        .unwrap_or(0.0)
        .max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_uniform_enough() {
        let a: Vec<u64> = {
            let mut r = Rng::new(1);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(1);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(9);
        let mean = (0..10_000).map(|_| r.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn integration_computes_pi() {
        let pi = integrate(0, 10_000) as f64 / 1e12;
        assert!((pi - std::f64::consts::PI).abs() < 1e-6, "{pi}");
    }

    #[test]
    fn calibration_round_trips_through_an_argument() {
        let c = Calibration::nominal();
        assert_eq!(Calibration::from_arg(&c.to_arg()).unwrap(), c);
        assert!(Calibration::from_arg("1,2").is_err());
        assert!(Calibration::from_arg("1,-2,3").is_err());
        assert!(Calibration::from_arg("a,b,c").is_err());
    }

    #[test]
    fn block_sum_wraps_around_the_array() {
        let data: Vec<u64> = (0..10).collect();
        assert_eq!(block_sum(&data, 0, 4), 6);
        assert_eq!(block_sum(&data, 2, 4), 8 + 9);
        assert_eq!(block_sum(&data, 3, 4), 2 + 3 + 4 + 5);
    }
}
