//! Timing side by side: every strategy runs once per round, in an order that changes from
//! round to round ([`order`]), so that a slow moment of a shared machine hurts them alike; the
//! median of the rounds counts.

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

/// The most counted rounds a workload gets however short its round: 41.
pub const MAX_ROUNDS: usize = 41;

/// How many rounds a workload is counted over: at least `min`, and as many more as fit in
/// `budget` at the warm-up round's pace (`round`), up to [`MAX_ROUNDS`]. A round of a few
/// hundred µs is at the mercy of one preemption on a shared machine; a median of more rounds
/// of it costs little and moves less from run to run.
pub fn rounds_within(min: usize, budget: Duration, round: Duration) -> usize {
    let fit = if budget.is_zero() {
        0
    } else if round.is_zero() {
        MAX_ROUNDS
    } else {
        usize::try_from(budget.as_nanos() / round.as_nanos()).unwrap_or(usize::MAX)
    };
    min.max(fit.min(MAX_ROUNDS))
}

/// The order of the `m` runners in round `round`: each round starts one further on, and steps
/// through them by a stride coprime with `m` that changes from round to round, so that every
/// runner follows each of the others in turn (within `m` rounds when `m` is prime, as the
/// bench's five runners are; other counts still vary the neighbours). A fixed cyclic order
/// would always run one runner right after the same other one: after a pool whose threads
/// still spin for a moment once their job is done, which takes the cores from whoever runs
/// next.
pub fn order(round: usize, m: usize) -> impl Iterator<Item = usize> {
    let strides: Vec<usize> = (1..m.max(2)).filter(|&s| gcd(s, m) == 1).collect();
    let stride = strides[round % strides.len()];
    (0..m).map(move |k| (round + k * stride) % m)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One warm-up round (not counted), then rounds of every runner in a changing [`order`]:
/// `min` rounds or more, as [`rounds_within`] allows for `budget`. Returns each runner's
/// times in round order.
pub fn interleaved(
    min: usize,
    budget: Duration,
    runners: &mut [&mut dyn FnMut() -> Result<Duration>],
) -> Result<Vec<Vec<Duration>>> {
    let m = runners.len();
    let warm_up = Instant::now();
    for run in runners.iter_mut() {
        run()?;
    }
    let rounds = rounds_within(min, budget, warm_up.elapsed());
    let mut times = vec![Vec::with_capacity(rounds); m];
    for round in 0..rounds {
        for j in order(round, m) {
            times[j].push((runners[j])()?);
        }
    }
    Ok(times)
}

/// The median (the upper one of an even count); zero for no times.
pub fn median(times: &[Duration]) -> Duration {
    amorsize::stats::median_duration(times).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_rounds_get_more_of_them_up_to_a_ceiling() {
        let ms = Duration::from_millis;
        assert_eq!(rounds_within(5, ms(500), ms(200)), 5);
        assert_eq!(rounds_within(5, ms(500), ms(20)), 25);
        assert_eq!(
            rounds_within(5, ms(500), Duration::from_micros(10)),
            MAX_ROUNDS
        );
        assert_eq!(rounds_within(5, Duration::ZERO, Duration::ZERO), 5);
        assert_eq!(rounds_within(3, ms(500), Duration::ZERO), MAX_ROUNDS);
    }

    #[test]
    fn every_runner_follows_each_other_one_within_a_few_rounds() {
        for m in 1..=8 {
            for r in 0..4 * m {
                let mut seen: Vec<usize> = order(r, m).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..m).collect::<Vec<_>>(), "round {r} of {m}");
            }
        }
        for m in [2, 3, 5, 7] {
            let sequence: Vec<usize> = (0..m).flat_map(|r| order(r, m)).collect();
            for a in 0..m {
                for b in (0..m).filter(|&b| b != a) {
                    let follows = sequence.windows(2).any(|w| w == [b, a]);
                    assert!(follows, "{a} never runs right after {b} ({m} runners)");
                }
            }
        }
    }

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
        let times = interleaved(3, Duration::ZERO, &mut [&mut ra, &mut rb]).unwrap();
        assert_eq!(times[0].len(), 3);
        assert_eq!(times[1].len(), 3);
        assert_eq!(a, 4);
        assert_eq!(b, 4);
        assert_eq!(median(&times[0]), Duration::from_millis(3));
    }
}
