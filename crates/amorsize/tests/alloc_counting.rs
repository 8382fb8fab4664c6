//! The counting allocator installed as this binary's global allocator: the sample counts
//! each item's memory, a result's heap bytes count as its memory, and the memory cap applies
//! to threads. A binary of its own, as the global allocator is per program.

use amorsize::alloc::Counting;
use amorsize::model::{Backend, Costs, MemorySource};
use amorsize::plan::{decide, Caps, LimitKind};
use amorsize::sample::{sample_slice, SampleBounds};
use amorsize::Options;
use std::alloc::System;

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting::new(System);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Works in 1 MiB of scratch, then returns 1 KiB.
fn scratch_then_small(x: &u64) -> Vec<u8> {
    let scratch = vec![*x as u8; MIB as usize];
    let sum = std::hint::black_box(&scratch)
        .iter()
        .map(|&b| u64::from(b))
        .sum::<u64>();
    vec![sum as u8; KIB as usize]
}

#[test]
fn the_counters_see_allocations_on_this_thread_only() {
    assert!(amorsize::alloc::installed());
    let ((), here) = amorsize::alloc::measure(|| {
        std::thread::scope(|s| {
            s.spawn(|| drop(std::hint::black_box(vec![0u8; 8 * MIB as usize])));
        });
    });
    // Spawning a thread allocates a little here; the other thread's 8 MiB is its own.
    assert!(here.peak < MIB, "{here:?}");
    let (v, counted) = amorsize::alloc::measure(|| vec![0u64; 1000]);
    assert_eq!(
        (counted.allocated, counted.peak, counted.retained),
        (8000, 8000, 8000)
    );
    drop(v);
}

#[test]
fn the_sample_counts_each_items_peak_and_what_its_result_keeps() {
    let items: Vec<u64> = (0..200).collect();
    let bounds = SampleBounds::default().items(5, 5);
    let sampled = sample_slice(&items, &scratch_then_small, &bounds).unwrap();
    let m = sampled.figures.memory.expect("counted");
    assert!(m.peak >= MIB + KIB, "{m:?}");
    assert!(m.peak < 2 * MIB, "{m:?}");
    assert!(m.allocated >= MIB + KIB, "{m:?}");
    assert_eq!(m.retained, KIB);
    let vec_size = std::mem::size_of::<Vec<u8>>() as u64;
    assert_eq!(sampled.figures.result_bytes, vec_size + KIB);
    let w = amorsize::model::Workload::from_sample(&sampled.figures, 1000);
    assert_eq!(w.worker_memory, m.peak);
    assert_eq!(w.memory_source, MemorySource::Counted);
}

#[test]
fn the_counted_peak_caps_threads() {
    let items: Vec<u64> = (0..200).collect();
    let bounds = SampleBounds::default().items(5, 5);
    let sampled = sample_slice(&items, &scratch_then_small, &bounds).unwrap();
    let w = amorsize::model::Workload::from_sample(&sampled.figures, 10_000);
    let w = amorsize::model::Workload {
        item_time: 10e-3,
        cpu_fraction: 1.0,
        self_parallelism: 1.0,
        ..w
    };
    // Room for about five items in flight: 80 % of it holds four.
    let caps = Caps {
        available_memory: Some(5 * w.worker_memory),
        ..Caps::cores(16, "test")
    };
    let plan = decide(&w, &Costs::zero(Backend::Threads), &caps, &Options::new());
    let binding = plan.binding_limit().unwrap();
    assert_eq!(binding.kind, LimitKind::Memory, "{plan}");
    assert_eq!(plan.workers().get(), 4, "{plan}");
    let text = plan.to_string();
    assert!(
        text.contains("counted by amorsize::alloc::Counting"),
        "{text}"
    );
    assert!(
        text.contains("peak live heap of one item, counted"),
        "{text}"
    );
}

#[test]
fn a_planned_call_carries_the_counted_figures() {
    let items: Vec<u64> = (0..400).collect();
    // Fixed workers: the planner samples rather than settling from a first glance.
    let options = Options::new().workers(std::num::NonZeroUsize::new(2).unwrap());
    let plan = options.optimize(&items, scratch_then_small).unwrap();
    let w = plan.workload().unwrap();
    let m = w.item_memory.expect("counted");
    assert!(m.peak >= MIB, "{plan}");
    assert_eq!(w.memory_source, MemorySource::Counted);
    assert_eq!(w.result_bytes, std::mem::size_of::<Vec<u8>>() as u64 + KIB);
    assert!(plan.to_string().contains("allocated per item"), "{plan}");
}
