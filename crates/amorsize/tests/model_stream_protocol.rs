//! A model check (loom) of the stream's shutdown protocol, explored over every interleaving.
//!
//! `exec::stream` shares only a channel and a stop flag with its workers:
//! - every dispatched chunk sends exactly one message, whatever happens to it (results, a
//!   panic, or "stopped" when it saw the flag);
//! - the puller counts chunks dispatched minus messages received (`outstanding`); to shut
//!   down (the stream dropped, or a panic reported) it sets the flag and receives until
//!   `outstanding` is 0.
//!
//! This file models that protocol with loom's primitives (the production code uses rayon jobs
//! and crossbeam channels, which loom cannot instrument): the model is the protocol, line for
//! line, not the code itself. Loom fails the test on a deadlock (every thread blocked) or a
//! failed assertion in any interleaving.

use loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use loom::sync::mpsc::channel;
use loom::sync::Arc;
use loom::thread;

#[derive(Debug, PartialEq)]
enum Outcome {
    Done,
    Stopped,
    Panicked,
}

/// One chunk job of `items` items; `panics_at` makes the function panic on that item.
fn chunk_job(stop: &AtomicBool, items: usize, panics_at: Option<usize>) -> Outcome {
    for i in 0..items {
        if stop.load(Relaxed) {
            return Outcome::Stopped;
        }
        if panics_at == Some(i) {
            return Outcome::Panicked;
        }
    }
    Outcome::Done
}

/// Dispatches `chunks` jobs, takes `take` messages as a consumer would, then shuts down;
/// returns every outcome received.
fn run(chunks: usize, take: usize, panics_at: Option<(usize, usize)>) -> Vec<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let mut handles = Vec::new();
    let mut outstanding = 0usize;
    for c in 0..chunks {
        let (tx, stop) = (tx.clone(), Arc::clone(&stop));
        let panic_here = panics_at.and_then(|(chunk, item)| (chunk == c).then_some(item));
        handles.push(thread::spawn(move || {
            let outcome = chunk_job(&stop, 2, panic_here);
            tx.send(outcome).unwrap();
        }));
        outstanding += 1;
    }
    let mut seen = Vec::new();
    // The consumer: receive until it has what it wants or a panic is reported.
    while seen.len() < take && outstanding > 0 {
        let m = rx.recv().unwrap();
        outstanding -= 1;
        let panicked = m == Outcome::Panicked;
        seen.push(m);
        if panicked {
            break;
        }
    }
    // Shutdown, as `Engine::shut_down`.
    stop.store(true, Relaxed);
    while outstanding > 0 {
        seen.push(rx.recv().unwrap());
        outstanding -= 1;
    }
    // Every job has reported, so every job is finished or about to return: joining cannot
    // block, and no message is left behind.
    for h in handles {
        h.join().unwrap();
    }
    assert!(rx.try_recv().is_err(), "no message left after shutdown");
    seen
}

#[test]
fn dropping_early_receives_every_dispatched_chunk_and_never_blocks() {
    loom::model(|| {
        let seen = run(2, 1, None);
        assert_eq!(seen.len(), 2, "one message per dispatched chunk");
    });
}

#[test]
fn a_panic_in_one_chunk_stops_the_others_and_every_chunk_reports() {
    loom::model(|| {
        let seen = run(2, 2, Some((0, 1)));
        assert_eq!(seen.len(), 2);
        assert!(seen.contains(&Outcome::Panicked));
    });
}

#[test]
fn reading_to_the_end_gets_every_result_and_no_stop() {
    loom::model(|| {
        let seen = run(2, 2, None);
        assert_eq!(seen, [Outcome::Done, Outcome::Done]);
    });
}
