//! The fuzzing engine shared by the `fuzz_*` tests: inputs mutated from realistic samples of
//! a format (bit flips, inserted tokens from the format's own dictionary, deleted and duplicated
//! ranges, splices of other samples, truncations, random bytes), a watchdog that aborts with the
//! input on a hang, and the figures of each run printed for the record.
//!
//! `AMORSIZE_FUZZ_ITERS` sets the inputs per target (default: a short run for CI);
//! `AMORSIZE_FUZZ_SEED` changes the seed (the default is fixed, so a failure reproduces).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Realistic samples of a format and the words it is made of.
pub struct Corpus {
    /// Well-formed (and a few ill-formed) samples to mutate.
    pub seeds: &'static [&'static str],
    /// Tokens that mutations insert.
    pub dictionary: &'static [&'static str],
}

/// Inputs per target in the default (CI) run.
const DEFAULT_ITERS: u64 = if cfg!(debug_assertions) {
    3_000
} else {
    50_000
};

/// A parser call that makes no progress for this long is a hang. It is not a timing assertion:
/// a correct parser takes microseconds on inputs of a few kilobytes, so only a real hang (an
/// endless loop) trips it.
const HANG: Duration = Duration::from_secs(30);

/// Longest generated input: enough to hold many records, small enough to stay fast.
const MAX_LEN: usize = 8 * 1024;

/// splitmix64: tiny, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, corpus: &Corpus, input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = corpus.dictionary[rng.below(corpus.dictionary.len())].as_bytes();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, token.iter().copied());
            }
            2 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + rng.below(16)).min(input.len());
                input.drain(a..b);
            }
            3 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(64)).min(input.len());
                let copy = input[a..b].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            4 => {
                let other = corpus.seeds[rng.below(corpus.seeds.len())].as_bytes();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, other.iter().copied());
            }
            5 => input.truncate(rng.below(input.len() + 1)),
            6 => {
                let at = rng.below(input.len() + 1);
                input.insert(at, (rng.next() & 0xFF) as u8);
            }
            _ => {
                let digits = rng.next().to_string();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, digits.bytes());
            }
        }
    }
    input.truncate(MAX_LEN);
}

/// Figures of one parser's run, printed for the record.
#[derive(Default)]
struct Figures {
    inputs: u64,
    ok: u64,
    err: u64,
    longest_input: usize,
    slowest: Duration,
}

/// Feeds generated inputs (`AMORSIZE_FUZZ_ITERS`, default [`DEFAULT_ITERS`]) to `parse`, which returns whether the input parsed; it
/// panics (failing the test, with the input shown) when an invariant breaks.
pub fn fuzz(name: &str, corpus: &Corpus, parse: impl Fn(&str) -> bool) {
    let iters = std::env::var("AMORSIZE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS);
    let seed = std::env::var("AMORSIZE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_u64);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));

    // The watchdog: progress is a counter the loop bumps; if it stalls, show the input.
    let progress = Arc::new(AtomicU64::new(0));
    let current = Arc::new(Mutex::new(String::new()));
    let done = Arc::new(AtomicU64::new(0));
    let watchdog = {
        let (progress, current, done) = (progress.clone(), current.clone(), done.clone());
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut last = u64::MAX;
            let mut since = Instant::now();
            while done.load(Ordering::Relaxed) == 0 {
                std::thread::sleep(Duration::from_millis(100));
                let now = progress.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > HANG {
                    let input = current.lock().map(|s| s.clone()).unwrap_or_default();
                    eprintln!("{name}: no progress for {HANG:?} on input {input:?}");
                    std::process::abort();
                }
            }
        })
    };

    let started = Instant::now();
    let mut figures = Figures::default();
    for i in 0..iters {
        let mut bytes = if rng.below(16) == 0 {
            (0..rng.below(256))
                .map(|_| (rng.next() & 0xFF) as u8)
                .collect()
        } else {
            corpus.seeds[rng.below(corpus.seeds.len())]
                .as_bytes()
                .to_vec()
        };
        mutate(&mut rng, corpus, &mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(mut slot) = current.try_lock() {
            slot.clone_from(&text);
        }
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&text)));
        let took = t0.elapsed();
        match outcome {
            Ok(true) => figures.ok += 1,
            Ok(false) => figures.err += 1,
            Err(_) => panic!("{name} panicked (or broke an invariant) on input {text:?}"),
        }
        figures.inputs += 1;
        figures.longest_input = figures.longest_input.max(text.len());
        figures.slowest = figures.slowest.max(took);
        progress.store(i + 1, Ordering::Relaxed);
    }
    done.store(1, Ordering::Relaxed);
    watchdog.join().expect("the watchdog thread never panics");
    let elapsed = started.elapsed();
    println!(
        "{name:<22} {:>9} inputs  {:>8} ok  {:>9} err  longest {:>5} B  slowest {:>9.1?}  total {:>7.2?}",
        figures.inputs, figures.ok, figures.err, figures.longest_input, figures.slowest, elapsed
    );
    assert_eq!(figures.inputs, iters);
}
