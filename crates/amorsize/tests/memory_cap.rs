//! Memory as a limit on workers: fixture cgroup limits (v1 and v2) drive the cap through the
//! probe, the caps and the planner; a plan without the counting allocator says memory was not
//! measured. (The counting allocator has its own binary: alloc_counting.rs.)

#[path = "probe/support.rs"]
mod support;

use amorsize::model::{workers_within_memory, Backend, Costs, MemorySource, Workload};
use amorsize::plan::{decide, Caps, LimitKind, Warning};
use amorsize::probe::Machine;
use amorsize::Options;
use support::{Tree, GIB, MIB};

const V1_MOUNTS: &str = "\
22 1 8:1 / / rw,relatime - overlay overlay rw
31 22 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
33 31 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
";

/// 10 000 CPU-bound items of 10 ms, each worker needing `per_worker` bytes.
fn heavy(per_worker: u64) -> Workload {
    Workload {
        worker_memory: per_worker,
        memory_source: MemorySource::WorkerPeak,
        ..Workload::new(10_000, 10e-3)
    }
}

/// Plans `w` on free workers within what `machine` allows.
fn plan_on(machine: &Machine, w: &Workload) -> amorsize::Plan {
    let caps = Caps::from_machine(machine);
    decide(w, &Costs::zero(Backend::Processes), &caps, &Options::new())
}

#[test]
fn a_v2_memory_max_caps_the_workers() {
    // 16 cores, 10 GiB available on the host, but a cgroup of 1 GiB with 200 MiB used.
    let tree = Tree::host(16, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{GIB}\n"));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 200 * MIB),
    );
    let machine = Machine::read(tree.root());
    assert_eq!(machine.available_memory(), Some(824 * MIB));
    let plan = plan_on(&machine, &heavy(100 * MIB));
    let binding = plan.binding_limit().unwrap();
    assert_eq!(binding.kind, LimitKind::Memory, "{plan}");
    // 80 % of 824 MiB is 659 MiB: 6 workers of 100 MiB.
    assert_eq!(binding.workers, 6);
    assert_eq!(plan.workers().get(), 6, "{plan}");
    assert!(plan
        .warnings()
        .iter()
        .any(|w| matches!(w, Warning::MemoryCapsWorkers { workers: 6, .. })));
    let text = plan.to_string();
    assert!(
        text.contains("824.0 MiB available ÷ 100.0 MiB per worker"),
        "{text}"
    );
}

#[test]
fn a_v2_memory_high_below_max_caps_the_workers_too() {
    let tree = Tree::host(16, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", 4 * GIB));
    tree.file("sys/fs/cgroup/job/memory.high", &format!("{}\n", 500 * MIB));
    tree.file("sys/fs/cgroup/job/memory.current", "0\n");
    let plan = plan_on(&Machine::read(tree.root()), &heavy(100 * MIB));
    assert_eq!(plan.workers().get(), 4, "{plan}");
}

#[test]
fn a_v1_memory_limit_caps_the_workers() {
    let tree = Tree::host(16, 1);
    tree.file("proc/self/cgroup", "4:memory:/docker/abc\n");
    tree.file("proc/self/mountinfo", V1_MOUNTS);
    tree.file(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        &format!("{GIB}\n"),
    );
    tree.file(
        "sys/fs/cgroup/memory/memory.usage_in_bytes",
        &format!("{}\n", 512 * MIB),
    );
    let machine = Machine::read(tree.root());
    assert_eq!(machine.available_memory(), Some(512 * MIB));
    let plan = plan_on(&machine, &heavy(64 * MIB));
    let binding = plan.binding_limit().unwrap();
    assert_eq!(binding.kind, LimitKind::Memory, "{plan}");
    assert_eq!(
        Some(binding.workers),
        workers_within_memory(512 * MIB, 64 * MIB)
    );
    assert_eq!(plan.workers().get(), 6, "{plan}");
}

#[test]
fn without_a_cgroup_limit_the_host_memory_caps() {
    // 10 GiB available: 8 GiB of room holds 16 workers of 512 MiB, the cores 16 too; at
    // 1 GiB each, 8.
    let tree = Tree::host(16, 1);
    let machine = Machine::read(tree.root());
    let plan = plan_on(&machine, &heavy(GIB));
    assert_eq!(plan.binding_limit().unwrap().kind, LimitKind::Memory);
    assert_eq!(plan.workers().get(), 8, "{plan}");
}

#[test]
fn unmeasured_memory_does_not_cap_and_the_plan_says_so() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", MIB));
    tree.file("sys/fs/cgroup/job/memory.current", "0\n");
    let plan = plan_on(&Machine::read(tree.root()), &Workload::new(10_000, 10e-3));
    assert!(plan.limits().iter().all(|l| l.kind != LimitKind::Memory));
    assert_eq!(plan.workers().get(), 4, "{plan}");
    let text = plan.to_string();
    assert!(text.contains("memory: not measured per item"), "{text}");
}

#[test]
fn a_sampled_plan_without_the_counting_allocator_says_memory_was_not_measured() {
    let items: Vec<u64> = (0..2000).collect();
    let plan = amorsize::optimize(&items, |x| vec![*x; 16]).unwrap();
    assert!(!amorsize::alloc::installed());
    let w = plan.workload().unwrap();
    assert_eq!(w.item_memory, None);
    assert_eq!(w.memory_source, MemorySource::NotMeasured);
    // The result's size_of only: a Vec's three words.
    assert_eq!(w.result_bytes, std::mem::size_of::<Vec<u64>>() as u64);
    assert!(plan
        .to_string()
        .contains("install amorsize::alloc::Counting"));
}
