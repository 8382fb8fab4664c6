//! What the counting allocator adds to an allocation: a 64-byte allocation and its release,
//! through the system allocator directly and through `Counting<System>`, side by side in one
//! run (neither is this binary's global allocator, so both pay the same call).
//!
//! `cargo bench -p amorsize --bench alloc`

use amorsize::alloc::Counting;
use divan::black_box;
use std::alloc::{GlobalAlloc, Layout, System};

fn main() {
    divan::main();
}

static COUNTING: Counting<System> = Counting::new(System);

fn round_trip<A: GlobalAlloc>(a: &A) {
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: a non-zero size; the block is freed at once with the same layout.
    unsafe {
        let p = a.alloc(black_box(layout));
        a.dealloc(black_box(p), layout);
    }
}

#[divan::bench]
fn system_64b() {
    round_trip(black_box(&System));
}

#[divan::bench]
fn counting_64b() {
    round_trip(black_box(&COUNTING));
}
