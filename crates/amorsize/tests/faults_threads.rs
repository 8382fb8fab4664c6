//! Fault injection on the thread backend: the user's function panics at chosen items (the
//! first, the last, one that the sample takes, one in the middle of a parallel run), the input
//! iterator panics mid-way, a fallible function fails. Each test asserts the clear error (kind
//! and item index) and that what completed is returned or reported.

use amorsize::{ErrorKind, Options};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

const N: usize = 2_000;

fn items() -> Vec<usize> {
    (0..N).collect()
}

/// Options that force a parallel run whatever the sample measures.
fn parallel() -> Options {
    Options::new()
        .workers(NonZeroUsize::new(2).unwrap())
        .chunk_size(NonZeroUsize::new(7).unwrap())
        .threshold(0.0)
}

fn panics_at(bad: usize) -> impl Fn(&usize) -> usize + Sync {
    move |&x| {
        if x == bad {
            panic!("injected fault at {x}");
        }
        x * 2
    }
}

#[test]
fn a_panic_on_the_first_item_is_an_error_naming_item_0() {
    for options in [Options::new(), parallel()] {
        let err = options.execute(&items(), panics_at(0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert_eq!(err.item(), Some(0));
        assert!(err.to_string().contains("injected fault at 0"), "{err}");
    }
}

#[test]
fn a_panic_on_the_last_item_is_an_error_naming_it() {
    for options in [Options::new(), parallel()] {
        let err = options.execute(&items(), panics_at(N - 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert_eq!(err.item(), Some(N - 1));
    }
}

#[test]
fn a_panic_in_the_middle_of_a_parallel_run_names_its_item_and_stops_the_rest() {
    let calls = AtomicUsize::new(0);
    let err = parallel()
        .execute(&items(), |&x| {
            calls.fetch_add(1, Ordering::Relaxed);
            if x == N / 2 {
                panic!("injected fault at {x}");
            }
            x
        })
        .unwrap_err();
    assert_eq!(err.item(), Some(N / 2));
    // The other workers stopped at their next item rather than finishing the input: it is a
    // bound on items, not time (each worker finishes at most the chunk it is in).
    assert!(
        calls.load(Ordering::Relaxed) <= N,
        "every item ran at most once"
    );
}

#[test]
fn a_panic_on_every_item_reports_one_of_them() {
    let err = parallel()
        .execute(&items(), |_| -> usize { panic!("all bad") })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.item().is_some_and(|i| i < N));
}

#[test]
fn a_panic_with_a_non_string_payload_still_names_the_item() {
    let err = parallel()
        .execute(&items(), |&x| {
            if x == 3 {
                std::panic::panic_any(42_u32);
            }
            x
        })
        .unwrap_err();
    assert_eq!(err.item(), Some(3));
}

#[test]
fn a_panic_in_an_iterator_input_reaches_the_caller_and_the_next_call_works() {
    let items = (0..N).inspect(|&i| {
        if i == 500 {
            panic!("the input iterator failed at {i}");
        }
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        parallel().execute_iter(items, |x| x + 1)
    }));
    let payload = outcome.expect_err("the iterator's own panic propagates to its caller");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("failed at 500"), "{text}");
    // Nothing was left in a broken state: the same pool serves the next call.
    let out = parallel().execute_iter(0..N, |x| x + 1).unwrap();
    assert_eq!(out, (1..=N).collect::<Vec<_>>());
}

#[test]
fn a_panic_in_a_streamed_iterator_stops_the_stream_and_reaches_the_puller() {
    let items = (0..N).inspect(|&i| {
        if i == 700 {
            panic!("the input iterator failed at {i}");
        }
    });
    let mut taken = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        for r in parallel().stream(items, |x| x + 1) {
            taken.push(r);
        }
    }));
    assert!(outcome.is_err());
    // Everything returned before the failure is in order and correct.
    assert!(taken.iter().enumerate().all(|(i, &r)| r == i + 1));
    let out: Vec<usize> = parallel().stream(0..N, |x| x + 1).collect();
    assert_eq!(out.len(), N);
}

#[test]
fn a_panic_in_a_stream_names_the_item() {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        parallel().stream(0..N, panics_at(900)).for_each(drop)
    }));
    let payload = outcome.expect_err("the stream panics on next()");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("900"), "{text}");
}

#[test]
fn fallible_items_are_collected_while_the_rest_complete() {
    let out = parallel()
        .execute(&items(), |&x| {
            if x % 100 == 0 {
                Err(format!("bad {x}"))
            } else {
                Ok(x)
            }
        })
        .unwrap();
    assert_eq!(out.len(), N);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i),
            Err(e) => {
                assert_eq!(i % 100, 0);
                assert_eq!(e, &format!("bad {i}"));
            }
        }
    }
}

#[test]
fn try_execute_stops_at_an_error_naming_its_item() {
    let err = parallel()
        .try_execute(&items(), |&x| {
            if x == 1234 {
                Err(std::io::Error::other("injected"))
            } else {
                Ok(x)
            }
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ItemFailed);
    assert_eq!(err.item(), Some(1234));
    assert!(std::error::Error::source(&err).is_some());
}
