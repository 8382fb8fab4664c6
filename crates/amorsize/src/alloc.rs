//! An opt-in counting allocator: with it, the sample measures how much memory the user's
//! function allocates per item, how much of it is live at the peak, and how much the result
//! keeps, and the planner caps threads by memory as it caps worker processes.
//!
//! Install it as the program's global allocator, around the allocator the program uses
//! anyway (the system's below):
//!
//! ```
//! use amorsize::alloc::Counting;
//! use std::alloc::System;
//!
//! #[global_allocator]
//! static ALLOCATOR: Counting<System> = Counting::new(System);
//!
//! let (v, counted) = amorsize::alloc::measure(|| vec![0u8; 4096]);
//! assert!(amorsize::alloc::installed());
//! assert_eq!(counted.allocated, 4096);
//! assert_eq!(counted.retained, 4096);
//! drop(v);
//! ```
//!
//! The counters are per thread (thread-local, const-initialised, so counting never
//! allocates), so that an item's allocations are attributed to the thread that runs it,
//! whatever other threads do meanwhile. Memory freed by another thread than the one that
//! allocated it lowers that other thread's count: a thread's live count is the net of what it
//! allocated and freed, which may be negative.
//!
//! Counting costs two thread-local additions per allocation and a comparison; the allocator
//! underneath does the work.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// A [`GlobalAlloc`] that counts, per thread, the bytes allocated and the live bytes at their
/// peak, then hands every request to `A`.
#[derive(Debug, Default)]
pub struct Counting<A> {
    inner: A,
}

impl<A> Counting<A> {
    /// Counts the allocations `inner` serves.
    pub const fn new(inner: A) -> Self {
        Counting { inner }
    }
}

/// Set by the first allocation counted: the counting allocator is the global one.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// One thread's counters, in bytes.
#[derive(Clone, Copy)]
struct Counters {
    /// Everything allocated by this thread so far (reallocations count their growth).
    allocated: u64,
    /// Allocated less freed by this thread.
    live: i64,
    /// The highest `live` since the innermost open [`measure`] began.
    peak: i64,
}

thread_local! {
    // A `const` initialiser and a type without `Drop`: access neither allocates nor registers
    // a destructor, so the allocator may use it (std's `thread_local!` docs, "const").
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { allocated: 0, live: 0, peak: 0 })
    };
}

/// Adds `grown` bytes to this thread's counters (negative when freeing).
fn count(grown: i64) {
    // The unit tests below drive a `Counting` that is not the global allocator: it must not
    // claim to be installed for the other tests of the library.
    if !cfg!(test) && !INSTALLED.load(Relaxed) {
        INSTALLED.store(true, Relaxed);
    }
    // A thread being torn down after its thread-locals: its allocations go uncounted.
    let _ = COUNTERS.try_with(|c| {
        let mut n = c.get();
        if grown > 0 {
            n.allocated = n.allocated.wrapping_add(grown as u64);
        }
        n.live = n.live.wrapping_add(grown);
        n.peak = n.peak.max(n.live);
        c.set(n);
    });
}

fn size(layout: Layout) -> i64 {
    i64::try_from(layout.size()).unwrap_or(i64::MAX)
}

// SAFETY: every method forwards to `A`'s method of the same contract with the caller's
// arguments unchanged, and returns its result unchanged; counting touches only this thread's
// counters, never the memory handed out, and does not allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (a non-zero size), passed on as is.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            count(size(layout));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            count(size(layout));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from `inner`)
        // with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        count(-size(layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout` and that
        // `new_size` is valid for it; `inner` gets exactly those.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(i64::try_from(new_size).unwrap_or(i64::MAX) - size(layout));
        }
        p
    }
}

/// Whether [`Counting`] is the program's global allocator (it has counted an allocation).
/// Without it every figure of [`measure`] reads 0, and the plan says memory was not measured.
pub fn installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// What [`measure`] counted on the calling thread while its closure ran, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Bytes allocated in all (a reallocation counts its growth).
    pub allocated: u64,
    /// The most bytes live at once above what was live when the closure began.
    pub peak: u64,
    /// Bytes still live when it returned, above what was live when it began: what its result
    /// (and anything it leaked or cached) keeps. 0 when it freed more than it allocated.
    pub retained: u64,
}

/// Runs `f` and counts what it allocated on this thread (all zeros without [`Counting`]
/// installed, see [`installed`]). Measurements nest: an outer one sees the inner one's peak.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Counted) {
    let Ok(before) = COUNTERS.try_with(|c| {
        let n = c.get();
        // The peak is counted from here; the outer measurement's comes back when done.
        c.set(Counters { peak: n.live, ..n });
        n
    }) else {
        return (f(), Counted::default());
    };
    // Restores the outer peak even when `f` unwinds.
    let restore = RestorePeak(before.peak);
    let result = f();
    let counted = COUNTERS
        .try_with(|c| {
            let n = c.get();
            Counted {
                allocated: n.allocated.wrapping_sub(before.allocated),
                peak: n.peak.saturating_sub(before.live).max(0) as u64,
                retained: n.live.saturating_sub(before.live).max(0) as u64,
            }
        })
        .unwrap_or_default();
    drop(restore);
    (result, counted)
}

/// On drop, raises this thread's peak back to at least the outer measurement's.
struct RestorePeak(i64);

impl Drop for RestorePeak {
    fn drop(&mut self) {
        let _ = COUNTERS.try_with(|c| {
            let n = c.get();
            c.set(Counters {
                peak: n.peak.max(self.0),
                ..n
            });
        });
    }
}

#[cfg(test)]
mod tests {
    //! The counters driven through a `Counting` that is not the global allocator (Miri runs
    //! these: .ci/miri); the installed allocator is tested in `tests/alloc_counting.rs`.
    use super::*;
    use std::alloc::System;

    static COUNTING: Counting<System> = Counting::new(System);

    fn with_block<R>(bytes: usize, f: impl FnOnce(*mut u8, Layout) -> R) -> R {
        let layout = Layout::from_size_align(bytes, 8).unwrap();
        // SAFETY: a non-zero size, freed below with the same layout.
        let p = unsafe { COUNTING.alloc(layout) };
        assert!(!p.is_null());
        let r = f(p, layout);
        // SAFETY: `p` came from `COUNTING` with `layout`.
        unsafe { COUNTING.dealloc(p, layout) };
        r
    }

    #[test]
    fn a_measurement_sees_the_peak_and_what_stays() {
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let (kept, counted) = measure(|| {
            with_block(4000, |_, _| ());
            // SAFETY: a non-zero size; freed at the end of the test with the same layout.
            unsafe { COUNTING.alloc(layout) }
        });
        assert!(!kept.is_null());
        assert_eq!(counted.allocated, 5000);
        assert_eq!(counted.peak, 4000);
        assert_eq!(counted.retained, 1000);
        // SAFETY: `kept` came from `COUNTING` with `layout`.
        unsafe { COUNTING.dealloc(kept, layout) };
    }

    #[test]
    fn growth_by_realloc_counts_and_nested_peaks_reach_the_outer_one() {
        let ((), outer) = measure(|| {
            let ((), inner) = measure(|| {
                let layout = Layout::from_size_align(100, 8).unwrap();
                // SAFETY: a non-zero size.
                let p = unsafe { COUNTING.alloc_zeroed(layout) };
                assert!(!p.is_null());
                // SAFETY: `p` came from `COUNTING` with `layout`; 300 is a valid size.
                let q = unsafe { COUNTING.realloc(p, layout, 300) };
                assert!(!q.is_null());
                let grown = Layout::from_size_align(300, 8).unwrap();
                // SAFETY: `q` is the block reallocated to 300 bytes.
                unsafe { COUNTING.dealloc(q, grown) };
            });
            assert_eq!((inner.allocated, inner.peak, inner.retained), (300, 300, 0));
        });
        assert_eq!((outer.allocated, outer.peak, outer.retained), (300, 300, 0));
    }

    #[test]
    fn a_panic_inside_keeps_the_outer_peak() {
        let ((), outer) = measure(|| {
            with_block(2000, |_, _| ());
            let caught = std::panic::catch_unwind(|| measure(|| panic!("inside")));
            assert!(caught.is_err());
        });
        assert_eq!(outer.peak, 2000);
    }

    #[test]
    fn counters_are_per_thread() {
        let ((), counted) = measure(|| {
            std::thread::scope(|s| {
                s.spawn(|| with_block(1 << 20, |_, _| ()));
            });
        });
        // The other thread's megabyte is not this thread's (only the spawn's own
        // bookkeeping, were `COUNTING` global, which it is not here).
        assert_eq!(counted.peak, 0);
    }

    #[test]
    fn a_block_freed_by_another_thread_lowers_that_threads_count() {
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a non-zero size; freed by the other thread with the same layout.
        let p = unsafe { COUNTING.alloc(layout) } as usize;
        let ((), there) = std::thread::scope(|s| {
            s.spawn(|| {
                measure(|| {
                    // SAFETY: `p` came from `COUNTING` with `layout`, and is freed once.
                    unsafe { COUNTING.dealloc(p as *mut u8, layout) };
                })
            })
            .join()
            .unwrap()
        });
        assert_eq!((there.allocated, there.peak, there.retained), (0, 0, 0));
    }
}
