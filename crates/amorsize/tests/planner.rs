//! The planner's acceptance tests: synthetic workloads and a fake clock, no timing.

use amorsize::model::{Backend, Costs, Fallbacks, Transfer, Workload};
use amorsize::plan::{self, decide, Caps, LimitKind, Plan, Reason, Warning};
use amorsize::sample::{sample_iter_with, sample_slice_with, Clock, Reading, SampleBounds};
use amorsize::{ErrorKind, Options};
use std::cell::Cell;
use std::num::NonZeroUsize;

/// Thread costs of the order measured on ordinary Linux machines.
fn threads() -> Costs {
    Costs {
        worker_start: 50e-6,
        chunk_dispatch: 2e-6,
        ..Costs::zero(Backend::Threads)
    }
}

fn caps(cores: usize) -> Caps {
    Caps::cores(cores, "test machine")
}

#[test]
fn tiny_work_is_serial_because_too_small() {
    let plan = decide(
        &Workload::new(100, 50e-9),
        &threads(),
        &caps(8),
        &Options::new(),
    );
    assert!(!plan.is_parallel());
    assert_eq!(plan.workers().get(), 1);
    assert!(matches!(plan.reason(), Reason::TooSmall { .. }), "{plan}");
    assert!(plan.to_string().contains("too small"), "{plan}");
}

#[test]
fn a_real_sample_plans_for_the_items_it_did_not_run() {
    // Timing-free checks only: what a real sample decides depends on the machine's load.
    let items: Vec<u32> = (0..200).collect();
    let (plan, sampled) = plan::plan_slice(&items, &|x: &u32| x + 1, &Options::new()).unwrap();
    let sample = plan.sample().expect("the sample's figures are in the plan");
    assert_eq!(sample.count, sampled.results.len());
    assert_eq!(plan.items(), Some(items.len() - sample.count));
    assert!(sample.count >= 3 && sample.count <= 10, "{sample:?}");
    assert!(!plan.to_string().is_empty());
}

#[test]
fn ten_ms_items_times_a_hundred_use_every_core() {
    for cores in [2, 3, 4, 8, 16] {
        let plan = decide(
            &Workload::new(100, 10e-3),
            &threads(),
            &caps(cores),
            &Options::new(),
        );
        assert!(plan.is_parallel(), "{plan}");
        assert_eq!(plan.workers().get(), cores, "{plan}");
        assert!(matches!(plan.reason(), Reason::Faster { .. }));
        let speedup = plan.predicted_speedup().unwrap();
        assert!(speedup <= cores as f64 && speedup > 1.2, "{plan}");
    }
}

#[test]
fn memory_for_one_item_per_worker_caps_the_workers() {
    let gib = 1u64 << 30;
    let work = Workload {
        worker_memory: gib,
        ..Workload::new(1000, 10e-3)
    };
    // Workers may fill 80 % of it (MEMORY_HEADROOM): 3.2 GiB, three of them.
    let caps = Caps {
        available_memory: Some(4 * gib),
        ..caps(8)
    };
    let plan = decide(&work, &threads(), &caps, &Options::new());
    assert_eq!(plan.workers().get(), 3, "{plan}");
    assert_eq!(plan.binding_limit().unwrap().kind, LimitKind::Memory);
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::MemoryCapsWorkers { workers: 3, .. })));
}

#[test]
fn high_spread_gets_smaller_chunks_than_uniform_items() {
    let costs = Costs {
        chunk_dispatch: 100e-6,
        ..threads()
    };
    let uniform = decide(
        &Workload::new(10_000, 1e-3),
        &costs,
        &caps(4),
        &Options::new(),
    );
    let spread = decide(
        &Workload {
            cv: 2.0,
            ..Workload::new(10_000, 1e-3)
        },
        &costs,
        &caps(4),
        &Options::new(),
    );
    assert!(uniform.is_parallel() && spread.is_parallel());
    assert!(
        spread.chunk_size() < uniform.chunk_size(),
        "cv 2: {}, cv 0: {}",
        spread.chunk_size(),
        uniform.chunk_size()
    );
    assert!(spread
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::HighSpread { .. })));
}

#[test]
fn waiting_work_uses_more_workers_than_cores() {
    let sleepy = Workload {
        cpu_fraction: 0.02,
        ..Workload::new(200, 50e-3)
    };
    let plan = decide(&sleepy, &threads(), &caps(2), &Options::new());
    assert!(plan.workers().get() > 2, "{plan}");
    assert!(plan.workers().get() <= 2 * plan::WAITING_WORKERS_PER_CORE);
    assert!(plan.predicted_speedup().unwrap() > 2.0);
}

#[test]
fn cpu_bound_work_never_uses_more_workers_than_cores() {
    for cores in [1, 2, 5] {
        let plan = decide(
            &Workload::new(100_000, 1e-3),
            &threads(),
            &caps(cores),
            &Options::new(),
        );
        assert!(plan.workers().get() <= cores, "{plan}");
    }
    let one = decide(
        &Workload::new(100, 1.0),
        &threads(),
        &caps(1),
        &Options::new(),
    );
    assert!(matches!(
        one.reason(),
        Reason::OneWorker {
            limit: LimitKind::Cores
        }
    ));
}

#[test]
fn a_function_with_threads_of_its_own_gets_fewer_workers() {
    let nested = Workload {
        self_parallelism: 4.0,
        ..Workload::new(1000, 10e-3)
    };
    let plan = decide(&nested, &threads(), &caps(8), &Options::new());
    assert_eq!(plan.workers().get(), 2, "{plan}");
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::NestedParallelism { .. })));
}

#[test]
fn a_quota_below_the_cores_caps_the_workers_and_says_so() {
    let quota = Caps {
        quota: Some(2.4),
        ..caps(8)
    };
    let plan = decide(
        &Workload::new(1000, 10e-3),
        &threads(),
        &quota,
        &Options::new(),
    );
    assert_eq!(plan.workers().get(), 2, "{plan}");
    assert_eq!(plan.binding_limit().unwrap().kind, LimitKind::Quota);
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::QuotaBelowCores { .. })));
}

#[test]
fn work_dominated_by_serialization_is_refused_with_that_reason() {
    let work = Workload {
        transfer: Transfer {
            input_time: 2e-3,
            output_time: 1e-3,
            input_bytes: 1 << 20,
            output_bytes: 1 << 10,
        },
        ..Workload::new(1000, 1e-3)
    };
    let costs = Costs {
        worker_start: 5e-3,
        chunk_dispatch: 50e-6,
        transfer_per_byte: 1e-9,
        ..Costs::zero(Backend::Processes)
    };
    let plan = decide(&work, &costs, &caps(8), &Options::new());
    assert!(!plan.is_parallel(), "{plan}");
    assert!(
        matches!(plan.reason(), Reason::TransferDominates { .. }),
        "{plan}"
    );
    assert_eq!(
        plan.bottleneck().unwrap().term,
        amorsize::model::Term::Transfer
    );
    assert_eq!(plan.backend(), Backend::Processes);
}

#[test]
fn fallback_constants_are_reported() {
    let costs = Costs {
        fallbacks: Fallbacks {
            worker_start: true,
            ..Fallbacks::default()
        },
        ..threads()
    };
    let plan = decide(
        &Workload::new(100, 10e-3),
        &costs,
        &caps(4),
        &Options::new(),
    );
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::FallbackUsed { cost, .. } if cost == "worker start")));
    assert!(plan.to_string().contains("fallback"));
}

#[test]
fn fixed_workers_and_chunk_are_kept_with_a_prediction() {
    let options = Options::new()
        .workers(NonZeroUsize::new(3).unwrap())
        .chunk_size(NonZeroUsize::new(7).unwrap());
    let plan = decide(&Workload::new(1000, 1e-9), &threads(), &caps(8), &options);
    assert_eq!((plan.workers().get(), plan.chunk_size().get()), (3, 7));
    assert!(plan.is_parallel());
    assert_eq!(plan.reason(), &Reason::Fixed);
    assert!(plan.predicted_speedup().unwrap() < 1.0);
}

#[test]
fn max_workers_and_the_threshold_are_honoured() {
    let work = Workload::new(1000, 10e-3);
    let capped = decide(
        &work,
        &threads(),
        &caps(8),
        &Options::new().max_workers(NonZeroUsize::new(3).unwrap()),
    );
    assert_eq!(capped.workers().get(), 3);
    assert_eq!(capped.binding_limit().unwrap().kind, LimitKind::MaxWorkers);
    let strict = decide(&work, &threads(), &caps(2), &Options::new().threshold(2.5));
    assert!(!strict.is_parallel(), "{strict}");
}

#[test]
fn empty_input_is_serial_with_nothing_to_run() {
    let plan = decide(
        &Workload::new(0, 1.0),
        &threads(),
        &caps(4),
        &Options::new(),
    );
    assert!(!plan.is_parallel());
    assert_eq!(plan.reason(), &Reason::Empty);
}

#[test]
fn plans_with_nonsense_figures_stay_serial_and_finite() {
    let nonsense = Workload {
        item_time: f64::NAN,
        cv: f64::INFINITY,
        cpu_fraction: -3.0,
        ..Workload::new(100, 0.0)
    };
    let plan = decide(&nonsense, &threads(), &caps(4), &Options::new());
    assert!(!plan.is_parallel());
    assert!(Plan::from_json(&plan.to_json()).is_ok());
}

#[test]
fn a_plan_round_trips_through_json_and_explains_itself() {
    let plan = decide(
        &Workload::new(500, 2e-3),
        &threads(),
        &caps(4),
        &Options::new().name("resize"),
    );
    let text = plan.to_string();
    for needle in [
        "resize",
        "parallel",
        "why:",
        "compute",
        "tail imbalance",
        "limits",
        "binding",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let loaded = Plan::from_json(&plan.to_json()).unwrap();
    assert_eq!(loaded, plan);
    assert_eq!(loaded.workers(), plan.workers());
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(json["reason"]["reason"], "faster");
    let err = Plan::from_json("{\"mode\": 3}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_panicking_sample_is_an_error_naming_the_item() {
    let items: Vec<u32> = (0..5).collect();
    let err = plan::plan_slice(
        &items,
        &|x: &u32| {
            assert!(*x != 1, "boom on one");
            *x
        },
        &Options::new(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.item(), Some(1));
    assert!(err.to_string().contains("boom on one"), "{err}");

    let err = plan::plan_iter(
        0..100u32,
        &|x: &u32| {
            assert!(*x != 2, "boom on two");
        },
        &Options::new(),
    )
    .unwrap_err();
    assert_eq!(err.item(), Some(2));
}

#[test]
fn iterator_items_are_never_lost_nor_run_twice() {
    let planned = plan::plan_iter(
        (0..100_000u64).filter(|x| x % 3 != 0),
        &|x: &u64| x * 2,
        &Options::new(),
    )
    .unwrap();
    let expected: Vec<u64> = (0..100_000).filter(|x| x % 3 != 0).collect();
    assert_eq!(planned.sampled.results.len(), planned.prefix.len());
    for (i, r) in &planned.sampled.results {
        assert_eq!(*r, planned.prefix[*i] * 2);
    }
    // Unknown length (a filter): planned for an assumed length, and said so.
    assert!(planned
        .plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::UnknownLength { .. })));
    let all: Vec<u64> = planned.prefix.into_iter().chain(planned.rest).collect();
    assert_eq!(all, expected);

    let (_, preserved) = amorsize::optimize_iter(0..10u8, |x| *x).unwrap();
    assert_eq!(preserved.collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
}

/// A clock that advances by fixed steps at each reading: wall by `step`, the thread's CPU by
/// `cpu` × `step`, the process's CPU by `process` × that.
struct FakeClock {
    readings: Cell<u32>,
    step: f64,
    cpu: f64,
    process: f64,
}

impl FakeClock {
    fn new(step: f64) -> Self {
        FakeClock {
            readings: Cell::new(0),
            step,
            cpu: 1.0,
            process: 1.0,
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Reading {
        let k = self.readings.get();
        self.readings.set(k + 1);
        let wall = f64::from(k) * self.step;
        Reading {
            wall,
            thread_cpu: wall * self.cpu,
            process_cpu: wall * self.cpu * self.process,
            // Work that is not all CPU blocks at every item.
            blocked: if self.cpu < 1.0 { u64::from(k) } else { 0 },
        }
    }
}

#[test]
fn sampling_stops_once_the_target_time_is_measured() {
    let items: Vec<u32> = (0..100_000).collect();
    let bounds = SampleBounds::default();
    // 10 µs per item: 100 µs after 10 items.
    let s = sample_slice_with(&items, &|x: &u32| *x, &bounds, &FakeClock::new(10e-6)).unwrap();
    assert_eq!(s.figures.count, 10);
    assert!((s.figures.item_time - 10e-6).abs() < 1e-12);
    assert!(s.figures.cv < 1e-9);
    // 1 ms per item: the minimum of 3.
    let s = sample_slice_with(&items, &|x: &u32| *x, &bounds, &FakeClock::new(1e-3)).unwrap();
    assert_eq!(s.figures.count, bounds.min_items);
    // 1 ns per item: the cap (5 % of the input, at most 1000).
    let s = sample_slice_with(&items, &|x: &u32| *x, &bounds, &FakeClock::new(1e-9)).unwrap();
    assert_eq!(s.figures.count, 1000);
    let small: Vec<u32> = (0..100).collect();
    let s = sample_slice_with(&small, &|x: &u32| *x, &bounds, &FakeClock::new(1e-9)).unwrap();
    assert_eq!(s.figures.count, 5);
}

#[test]
fn a_slice_is_sampled_across_its_length_and_results_keep_their_indices() {
    let items: Vec<u32> = (0..10_000).collect();
    let s = sample_slice_with(
        &items,
        &|x: &u32| x + 1,
        &SampleBounds::default(),
        &FakeClock::new(1e-9),
    )
    .unwrap();
    let indices: Vec<usize> = s.results.iter().map(|(i, _)| *i).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    assert!(indices.iter().any(|&i| i < 2500) && indices.iter().any(|&i| i >= 7500));
    assert!(s.results.iter().all(|(i, r)| *r == items[*i] + 1));
    assert!(!s.figures.complete);
}

#[test]
fn a_sample_of_waiting_items_times_a_longer_span() {
    let items: Vec<u32> = (0..100_000).collect();
    let bounds = SampleBounds::default();
    let busy = sample_slice_with(&items, &|x: &u32| *x, &bounds, &FakeClock::new(200e-6)).unwrap();
    let waiting = FakeClock {
        cpu: 0.1,
        ..FakeClock::new(200e-6)
    };
    let s = sample_slice_with(&items, &|x: &u32| *x, &bounds, &waiting).unwrap();
    assert_eq!(busy.figures.count, bounds.min_items);
    // The span goes on to WAITING_SPAN (on this clock every reading is a step, the extra
    // readings too): more items than the minimum, far fewer than the cap.
    let steps = amorsize::sample::WAITING_SPAN / 200e-6;
    assert!(
        s.figures.count > 2 * bounds.min_items,
        "{}",
        s.figures.count
    );
    assert!((s.figures.count as f64) < steps, "{}", s.figures.count);
    assert!((s.figures.cpu_fraction - 0.1).abs() < 1e-9);
    // A short input's budget still stops it: 100 items of 200 µs allow 1 ms.
    let short: Vec<u32> = (0..100).collect();
    let s = sample_slice_with(&short, &|x: &u32| *x, &bounds, &waiting).unwrap();
    assert!(
        s.figures.count <= bounds.min_items + 2,
        "{}",
        s.figures.count
    );
}

#[test]
fn cpu_and_process_time_tell_waiting_and_nested_work() {
    let waiting = FakeClock {
        cpu: 0.1,
        ..FakeClock::new(1e-3)
    };
    let mut iter = 0..100u32;
    let (prefix, s) = sample_iter_with(
        &mut iter,
        &|x: &u32| *x,
        &SampleBounds::default(),
        Some(100),
        &waiting,
    )
    .unwrap();
    assert_eq!(prefix, vec![0, 1, 2]);
    assert!((s.figures.cpu_fraction - 0.1).abs() < 1e-9);
    assert_eq!(s.figures.self_parallelism, 1.0);

    // A thread that never blocked was preempted, not waiting: CPU-bound.
    struct Preempted(FakeClock);
    impl Clock for Preempted {
        fn now(&self) -> Reading {
            Reading {
                blocked: 0,
                ..self.0.now()
            }
        }
    }
    let preempted = Preempted(FakeClock {
        cpu: 0.3,
        ..FakeClock::new(1e-3)
    });
    let (_, s) = sample_iter_with(
        &mut (0..100u32),
        &|x: &u32| *x,
        &SampleBounds::default(),
        None,
        &preempted,
    )
    .unwrap();
    assert_eq!(s.figures.cpu_fraction, 1.0);

    let nested = FakeClock {
        process: 4.0,
        ..FakeClock::new(1e-3)
    };
    let (_, s) = sample_iter_with(
        &mut (0..100u32),
        &|x: &u32| *x,
        &SampleBounds::default(),
        None,
        &nested,
    )
    .unwrap();
    assert!((s.figures.self_parallelism - 4.0).abs() < 1e-9);
    assert!(!s.figures.complete);

    // Over a span of microseconds, other threads of the process (a pool spinning before it
    // sleeps) cannot be told from the function's own: no nested parallelism is read.
    let spinning = FakeClock {
        process: 4.0,
        ..FakeClock::new(1e-6)
    };
    let (_, s) = sample_iter_with(
        &mut (0..100_000u32),
        &|x: &u32| *x,
        &SampleBounds::default(),
        None,
        &spinning,
    )
    .unwrap();
    assert!(s.figures.measured < amorsize::sample::MIN_NESTED_SPAN);
    assert_eq!(s.figures.self_parallelism, 1.0);

    // An iterator shorter than the sample is sampled whole.
    let (prefix, s) = sample_iter_with(
        &mut (0..2u32),
        &|x: &u32| *x,
        &SampleBounds::default(),
        None,
        &nested,
    )
    .unwrap();
    assert_eq!(prefix.len(), 2);
    assert!(s.figures.complete);
}

#[test]
fn a_fully_sampled_input_leaves_nothing_to_run() {
    let items = [1u8, 2];
    let (plan, sampled) = plan::plan_slice(&items, &|x: &u8| *x, &Options::new()).unwrap();
    assert_eq!(sampled.results.len(), 2);
    assert_eq!(plan.reason(), &Reason::Empty);
    assert!(!plan.is_parallel());
}

/// A clock whose every item takes its own time: `times[k]` for the k-th timed interval.
struct Varying {
    times: Vec<f64>,
    readings: Cell<usize>,
    elapsed: Cell<f64>,
}

impl Clock for Varying {
    fn now(&self) -> Reading {
        Reading {
            wall: self.elapsed.get(),
            ..Reading::default()
        }
    }

    fn wall(&self) -> f64 {
        // Readings come in pairs around each item: the second of a pair advances the clock.
        let k = self.readings.get();
        self.readings.set(k + 1);
        if k % 2 == 1 {
            let t = self.times[(k / 2) % self.times.len()];
            self.elapsed.set(self.elapsed.get() + t);
        }
        self.elapsed.get()
    }
}

#[test]
fn the_spread_of_item_times_is_measured() {
    let items: Vec<u32> = (0..1000).collect();
    let clock = Varying {
        times: vec![1e-3, 3e-3],
        readings: Cell::new(0),
        elapsed: Cell::new(0.0),
    };
    let bounds = SampleBounds::default().items(4, 4);
    let s = sample_slice_with(&items, &|x: &u32| *x, &bounds, &clock).unwrap();
    assert_eq!(s.figures.count, 4);
    assert!((s.figures.item_time - 2e-3).abs() < 1e-12);
    // Sample standard deviation of (1, 3, 1, 3) ms is 1.155 ms: cv 0.577.
    assert!(
        (s.figures.cv - 0.5773502691896258).abs() < 1e-9,
        "{}",
        s.figures.cv
    );
}

#[test]
fn waiting_items_are_seen_waiting_after_the_glance() {
    // The glance runs the first items before the CPU clocks are read; the sample must still
    // run items between their readings, or sleeping work would read as CPU-bound.
    let items: Vec<u32> = (0..40).collect();
    let (plan, sampled) = plan::plan_slice(
        &items,
        &|_: &u32| std::thread::sleep(std::time::Duration::from_millis(1)),
        &Options::new(),
    )
    .unwrap();
    let figures = plan.sample().expect("sampled");
    assert!(!figures.cpu_skipped);
    assert!(
        figures.cpu_fraction < 0.5,
        "sleeping items read as {:.0} % CPU",
        figures.cpu_fraction * 100.0
    );
    assert!(sampled.results.len() >= 2);
}

#[test]
fn a_sample_too_small_to_trust_must_clear_a_wider_margin() {
    // 1000 items measured in 1 µs in all: below MIN_TRUSTED_SAMPLE, for a whole input of about
    // 100 ms. Two workers can reach at most 2×, under the 1.5 × 1.5 = 2.25 the margin asks.
    let mut untrusted = amorsize::sample::Sample::default();
    untrusted.count = 1000;
    untrusted.item_time = 1e-6;
    untrusted.measured = 1e-6;
    let options = Options::new()
        .threshold(1.5)
        .max_workers(NonZeroUsize::new(2).unwrap());
    let plan = plan::plan_sample(&untrusted, 100_000, &options);
    assert!(!plan.is_parallel(), "{plan}");
    assert!(
        (plan.threshold() - 2.25).abs() < 1e-12,
        "{}",
        plan.threshold()
    );
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::SampleTooSmall { .. })));
    // A sample that measured enough is held to the caller's threshold.
    let mut trusted = untrusted.clone();
    trusted.measured = 1e-3;
    let plan = plan::plan_sample(&trusted, 100_000, &options);
    assert!(
        (plan.threshold() - 1.5).abs() < 1e-12,
        "{}",
        plan.threshold()
    );
    assert!(!plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::SampleTooSmall { .. })));
}

#[test]
fn the_sample_stops_once_it_costs_a_twentieth_of_the_estimated_work() {
    let bounds = SampleBounds::default();
    // 16 items of 10 ms: one item is already more than 5 % of the 160 ms they take.
    let few: Vec<u32> = (0..16).collect();
    let s = sample_slice_with(&few, &|x: &u32| *x, &bounds, &FakeClock::new(10e-3)).unwrap();
    assert!(s.figures.count < bounds.min_items, "{}", s.figures.count);
    // The same items, many of them: the minimum of 3.
    let many: Vec<u32> = (0..100_000).collect();
    let s = sample_slice_with(&many, &|x: &u32| *x, &bounds, &FakeClock::new(10e-3)).unwrap();
    assert_eq!(s.figures.count, bounds.min_items);
}
