//! No thread is left behind: by an early-dropped stream (whose workers stop and are waited
//! for), by a batch whose function panics, or by many back-to-back runs (pools are reused).
//! One test in this binary, so that no other test's threads change the count.

use amorsize::Options;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn no_thread_is_left_behind() {
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
    // Bounded: CHUNKS_AHEAD chunks per worker at most beyond what was taken (plus the sample).
    assert!(
        after_drop <= 20 + amorsize::exec::CHUNKS_AHEAD * 3 * 4 + 4 + 16,
        "{after_drop} items computed"
    );
    assert_eq!(threads(), before);

    // A panicking batch returns only once its workers are done, and leaves no thread.
    let items: Vec<u32> = (0..1000).collect();
    for at in [0, 500, 999] {
        let err =
            amorsize::Plan::fixed(NonZeroUsize::new(3).unwrap(), NonZeroUsize::new(7).unwrap())
                .run(&items, |&x| {
                    assert!(x != at, "panic at {at}");
                    x
                })
                .unwrap_err();
        assert_eq!(err.item(), Some(at as usize));
        assert_eq!(threads(), before);
    }

    // Back-to-back runs reuse their pools.
    for round in 0..300u32 {
        let out = options.execute(&items, |x| x ^ round).unwrap();
        assert_eq!(out[999], 999 ^ round);
    }
    assert_eq!(threads(), before);
}
