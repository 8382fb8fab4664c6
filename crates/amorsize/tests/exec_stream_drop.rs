//! Dropping a stream early stops its workers and waits for them: nothing of the stream keeps
//! running and no thread is left behind. One test in this binary, so that no other test's
//! threads change the count.

use amorsize::Options;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn an_early_dropped_stream_stops_its_workers_and_leaves_no_thread() {
    let options = Options::new()
        .workers(NonZeroUsize::new(3).unwrap())
        .chunk_size(NonZeroUsize::new(4).unwrap())
        .threshold(0.0);
    // The pool is built once and reused: build it before counting.
    assert_eq!(options.stream(0..100u32, |x| *x).count(), 100);
    let before = threads();

    let running = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (r, s) = (Arc::clone(&running), Arc::clone(&started));
    let mut stream = options.stream(0u64.., move |x| {
        r.fetch_add(1, Ordering::SeqCst);
        s.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        r.fetch_sub(1, Ordering::SeqCst);
        *x
    });
    for expected in 0..20 {
        assert_eq!(stream.next(), Some(expected));
    }
    drop(stream);
    // Joined: no call of the function is still running, and none starts later.
    assert_eq!(running.load(Ordering::SeqCst), 0);
    let after_drop = started.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(started.load(Ordering::SeqCst), after_drop);
    // Bounded: two chunks per worker at most beyond what was taken (plus the sample).
    assert!(
        after_drop <= 20 + 2 * 3 * 4 + 4 + 16,
        "{after_drop} items computed"
    );
    assert_eq!(threads(), before);
}
