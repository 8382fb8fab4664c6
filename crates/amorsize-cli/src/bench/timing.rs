//! Timing side by side: every strategy runs once per round, in an order that rotates from
//! round to round, so that a slow moment of a shared machine hurts them alike; the median of
//! the rounds counts.

use anyhow::{bail, Result};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A fingerprint of a result vector, to check that every strategy computed the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    len: usize,
    /// Wrapping sum: the same in any order.
    sum: u64,
    /// Position-weighted hash: differs when results come back out of order.
    ordered: u64,
}

impl Digest {
    /// The digest of `results`.
    pub fn of(results: &[u64]) -> Digest {
        let mut sum = 0u64;
        let mut ordered = 0u64;
        for (i, &r) in results.iter().enumerate() {
            sum = sum.wrapping_add(r);
            ordered = ordered.wrapping_add(r.rotate_left((i % 64) as u32) ^ i as u64);
        }
        Digest {
            len: results.len(),
            sum,
            ordered,
        }
    }

    /// Checks `results` against this digest; `ordered` says whether the strategy promises input
    /// order (rayon's `par_bridge` does not).
    pub fn check(&self, results: &[u64], ordered: bool, who: &str) -> Result<()> {
        let got = Digest::of(results);
        let same = got.len == self.len && got.sum == self.sum;
        if !same || (ordered && got.ordered != self.ordered) {
            bail!(
                "{who} computed different results from the serial loop ({} results, want {})",
                got.len,
                self.len
            );
        }
        Ok(())
    }
}

/// Times `run`, checks its results against `want` after the clock stops, and drops them
/// outside the timed region.
pub fn timed(
    want: &Digest,
    ordered: bool,
    who: &str,
    run: impl FnOnce() -> Result<Vec<u64>>,
) -> Result<Duration> {
    let start = Instant::now();
    let results = black_box(run()?);
    let elapsed = start.elapsed();
    want.check(&results, ordered, who)?;
    drop(results);
    Ok(elapsed)
}

/// One warm-up round (not counted), then `rounds` rounds of every runner, rotating the order.
/// Returns each runner's times in round order.
pub fn interleaved(
    rounds: usize,
    runners: &mut [&mut dyn FnMut() -> Result<Duration>],
) -> Result<Vec<Vec<Duration>>> {
    let m = runners.len();
    for run in runners.iter_mut() {
        run()?;
    }
    let mut times = vec![Vec::with_capacity(rounds); m];
    for round in 0..rounds {
        for k in 0..m {
            let j = (round + k) % m;
            times[j].push((runners[j])()?);
        }
    }
    Ok(times)
}

/// The median (the upper one of an even count); zero for no times.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_tells_order_from_content() {
        let a = [1, 2, 3];
        let d = Digest::of(&a);
        assert!(d.check(&[1, 2, 3], true, "x").is_ok());
        assert!(d.check(&[3, 2, 1], false, "x").is_ok());
        assert!(d.check(&[3, 2, 1], true, "x").is_err());
        assert!(d.check(&[1, 2], false, "x").is_err());
        assert!(d.check(&[1, 2, 4], false, "x").is_err());
    }

    #[test]
    fn interleaving_runs_everyone_each_round_plus_a_warm_up() {
        let mut a = 0;
        let mut b = 0;
        let mut ra = || {
            a += 1;
            Ok(Duration::from_millis(a))
        };
        let mut rb = || {
            b += 1;
            Ok(Duration::ZERO)
        };
        let times = interleaved(3, &mut [&mut ra, &mut rb]).unwrap();
        assert_eq!(times[0].len(), 3);
        assert_eq!(times[1].len(), 3);
        assert_eq!(a, 4);
        assert_eq!(b, 4);
        assert_eq!(median(&times[0]), Duration::from_millis(3));
    }
}
