//! `/proc/meminfo` and the JSON form of the whole probe.

use amorsize::probe::{read_available_memory, Machine, Source, WarningKind};

use crate::support::{Tree, GIB, MIB};

#[test]
fn meminfo_gives_host_memory_in_bytes() {
    let tree = Tree::host(2, 1);
    tree.meminfo(3 * GIB, GIB);
    let m = Machine::read(tree.root());
    assert_eq!(m.memory().host_total().get(), Some(3 * GIB));
    assert_eq!(m.memory().host_available().get(), Some(GIB));
}

#[test]
fn missing_meminfo_leaves_memory_unknown_and_says_so() {
    let tree = Tree::host(2, 1);
    tree.remove("proc/meminfo");
    let m = Machine::read(tree.root());
    assert_eq!(m.total_memory(), None);
    assert_eq!(m.available_memory(), None);
    assert_eq!(m.memory().total().source(), &Source::Absent);
    let warning = &m.warnings()[0];
    assert_eq!(warning.kind(), WarningKind::Missing);
    assert_eq!(warning.path(), Some(std::path::Path::new("/proc/meminfo")));
}

#[test]
fn missing_mem_available_bounds_by_the_cgroup_only() {
    let tree = Tree::host(2, 1);
    tree.file("proc/meminfo", "MemTotal: 4194304 kB\n");
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", GIB));
    tree.file("sys/fs/cgroup/job/memory.current", "0\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.total_memory(), Some(GIB));
    assert_eq!(m.available_memory(), Some(GIB));
}

#[test]
fn json_round_trips_with_documented_names() {
    let tree = Tree::host(4, 2);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/cpu.max", "150000 100000\n");
    let m = Machine::read(tree.root());
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["cpu"]["logical"]["value"], 4);
    assert_eq!(json["cpu"]["affinity_list"], "0-3");
    assert_eq!(json["cpu"]["usable_cores"]["source"]["kind"], "topology");
    assert_eq!(json["cgroup"]["version"], "v2");
    assert_eq!(json["cgroup"]["cpu_quota"]["value"], 1.5);
    assert_eq!(
        json["cgroup"]["cpu_quota"]["source"]["path"],
        "/sys/fs/cgroup/job/cpu.max"
    );
    assert_eq!(json["cgroup"]["quota_workers"], 2);
    assert_eq!(json["memory"]["available"]["value"], 10 * GIB);
    assert!(json["warnings"].as_array().unwrap().is_empty());
    let back: Machine = serde_json::from_value(json).unwrap();
    assert_eq!(back.cpu(), m.cpu());
    assert_eq!(back.cgroup(), m.cgroup());
    assert_eq!(back.memory(), m.memory());
}

#[test]
fn available_memory_is_read_again_from_the_files() {
    let tree = Tree::host(2, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", 512 * MIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 100 * MIB),
    );
    let probed = Machine::read(tree.root());
    assert_eq!(probed.available_memory(), Some(412 * MIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 500 * MIB),
    );
    let again = read_available_memory(tree.root());
    assert_eq!(again.get(), Some(12 * MIB));
    assert_eq!(again.source(), probed.memory().available().source());
}

#[test]
fn cpu_model_and_kernel_release() {
    let tree = Tree::host(2, 1);
    assert_eq!(Machine::read(tree.root()).kernel_release(), None);
    tree.file("proc/sys/kernel/osrelease", "6.8.0-31-generic\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.kernel_release(), Some("6.8.0-31-generic"));
    assert_eq!(
        m.cpu_model(),
        None,
        "the host fixture's cpuinfo names no model"
    );
    tree.file(
        "proc/cpuinfo",
        "processor\t: 0\nmodel name\t: Example CPU\n",
    );
    assert_eq!(Machine::read(tree.root()).cpu_model(), Some("Example CPU"));
    tree.file("proc/sys/kernel/osrelease", "\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.kernel_release(), None);
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.path() == Some(std::path::Path::new("/proc/sys/kernel/osrelease"))));
}
