//! The closed loop's rule: after the first parallel segment, keep going in parallel only when
//! it ran faster than the serial loop ran the sample.

use crate::model::Seconds;

/// Wall time the first parallel segment should last at least, so that waking the pool's
/// threads (tens of µs) is a small part of what it measures: 1 ms.
pub const SEGMENT_TIME: Seconds = 1e-3;

/// Chunks each worker runs in the first segment at least: 2, so that every worker has
/// finished one and started the next before the segment is judged.
pub const SEGMENT_CHUNKS_PER_WORKER: usize = 2;

/// The first segment is at most this share of the items left: a quarter, so that what the
/// check decides applies to most of the input.
pub const SEGMENT_MAX_SHARE: f64 = 0.25;

/// Items in the first parallel segment for `workers` workers with chunks of `chunk` items of
/// `item_time` seconds each (serially), `left` items left; `None` when the rest is too short
/// for a segment to be worth checking (it runs in parallel at once).
pub(crate) fn segment_items(
    workers: usize,
    chunk: usize,
    item_time: Seconds,
    left: usize,
) -> Option<usize> {
    let by_chunks = workers
        .saturating_mul(chunk)
        .saturating_mul(SEGMENT_CHUNKS_PER_WORKER);
    let by_time = if item_time > 0.0 && item_time.is_finite() {
        let items = SEGMENT_TIME * workers as f64 / item_time;
        if items >= usize::MAX as f64 {
            usize::MAX
        } else {
            // Rounded up, past the last bit of floating-point error (2 ms ÷ 1 µs is 2000).
            (items * (1.0 - 1e-12)).ceil() as usize
        }
    } else {
        0
    };
    let segment = by_chunks.max(by_time).max(1);
    ((segment as f64) <= left as f64 * SEGMENT_MAX_SHARE).then_some(segment)
}

/// Whether parallel paid over a segment of `items` items that took `wall` seconds, against
/// the serial loop's `item_time` per item: it did when the parallel rate (items ÷ wall) is
/// above the serial rate (1 ÷ item_time). Without a usable serial figure (zero, not finite)
/// there is nothing to compare against, and parallel stays.
pub fn parallel_pays(item_time: Seconds, items: usize, wall: Seconds) -> bool {
    if !(item_time > 0.0 && item_time.is_finite()) {
        return true;
    }
    if !(wall >= 0.0 && wall.is_finite()) {
        return false;
    }
    // items ÷ wall > 1 ÷ item_time, without dividing by a zero wall time.
    wall < items as f64 * item_time
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_segment_slower_than_the_serial_loop_sheds() {
        // 1000 items of 1 µs: 1 ms serially.
        assert!(parallel_pays(1e-6, 1000, 0.6e-3));
        assert!(!parallel_pays(1e-6, 1000, 1.0e-3));
        assert!(!parallel_pays(1e-6, 1000, 2.0e-3));
        assert!(parallel_pays(0.0, 1000, 2.0e-3));
        assert!(!parallel_pays(1e-6, 1000, f64::NAN));
    }

    #[test]
    fn short_rests_get_no_segment() {
        assert_eq!(segment_items(2, 10, 1e-3, 100), None);
        // 2 workers × 1 ms ÷ 1 µs = 2000 items, beyond 2 × 2 × 10 chunks' 40.
        assert_eq!(segment_items(2, 10, 1e-6, 100_000), Some(2000));
        assert_eq!(segment_items(2, 10, 1e-6, 7999), None);
        // Slow items: two chunks per worker.
        assert_eq!(segment_items(4, 3, 1e-2, 1000), Some(24));
    }

    proptest! {
        #[test]
        fn faster_than_serial_is_kept_slower_is_shed(
            item_time in 1e-9f64..1.0,
            items in 1usize..1_000_000,
            speedup in 0.01f64..100.0,
        ) {
            let wall = items as f64 * item_time / speedup;
            let pays = parallel_pays(item_time, items, wall);
            if speedup > 1.0 + 1e-9 {
                prop_assert!(pays);
            }
            if speedup < 1.0 - 1e-9 {
                prop_assert!(!pays);
            }
            // A slower segment never pays where a faster one did not.
            if !pays {
                prop_assert!(!parallel_pays(item_time, items, wall * 1.5));
            }
        }

        #[test]
        fn segments_are_a_bounded_share_of_the_rest(
            workers in 1usize..256,
            chunk in 1usize..100_000,
            item_time in 0.0f64..1.0,
            left in 0usize..100_000_000,
        ) {
            if let Some(s) = segment_items(workers, chunk, item_time, left) {
                prop_assert!(s >= 1);
                prop_assert!(s as f64 <= left as f64 * SEGMENT_MAX_SHARE);
                prop_assert!(s >= workers * chunk * SEGMENT_CHUNKS_PER_WORKER || s as f64 >= SEGMENT_TIME * workers as f64 / item_time * (1.0 - 1e-9));
            }
        }
    }
}
