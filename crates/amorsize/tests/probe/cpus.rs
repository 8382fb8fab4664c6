//! Logical CPUs, affinity and physical cores.

use amorsize::probe::{Fallback, Machine, Source, WarningKind};

use crate::support::Tree;

#[test]
fn bare_host_without_smt() {
    let tree = Tree::host(4, 1);
    let m = Machine::read(tree.root());
    assert_eq!(
        (m.logical_cpus(), m.affinity_cpus(), m.usable_cores()),
        (4, 4, 4)
    );
    assert_eq!(
        m.cpu().logical().source(),
        &Source::File {
            path: "/sys/devices/system/cpu/online".into()
        }
    );
    assert_eq!(
        m.cpu().affinity().source(),
        &Source::File {
            path: "/proc/self/status".into()
        }
    );
    assert!(matches!(
        m.cpu().usable_cores().source(),
        Source::Topology { .. }
    ));
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn smt_two_threads_per_core_counts_cores_once() {
    let tree = Tree::host(8, 2);
    let m = Machine::read(tree.root());
    assert_eq!(
        (m.logical_cpus(), m.affinity_cpus(), m.usable_cores()),
        (8, 8, 4)
    );
}

#[test]
fn affinity_narrower_than_the_machine() {
    // CPUs 0 and 4 are the two threads of core 0; CPU 1 is core 1.
    let tree = Tree::host(8, 2);
    tree.file("proc/self/status", "Name:\tx\nCpus_allowed_list:\t0-1,4\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.logical_cpus(), 8);
    assert_eq!(m.affinity_cpus(), 3);
    assert_eq!(m.cpu().affinity_list().to_string(), "0-1,4");
    assert_eq!(m.usable_cores(), 2);
}

#[test]
fn affinity_naming_offline_cpus_keeps_online_ones() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/status", "Cpus_allowed_list:\t0-127\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.affinity_cpus(), 4);
    assert!(m.warnings().is_empty());
}

#[test]
fn affinity_without_online_cpus_falls_back_to_all() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/status", "Cpus_allowed_list:\t64-65\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.affinity_cpus(), 4);
    assert_eq!(
        m.cpu().affinity().source(),
        &Source::Fallback {
            fallback: Fallback::AllOnlineCpus
        }
    );
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.kind() == WarningKind::Inconsistent));
}

#[test]
fn older_kernels_thread_siblings_list() {
    let tree = Tree::host(4, 2);
    for cpu in 0..4 {
        tree.remove(&format!(
            "sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list"
        ));
    }
    let m = Machine::read(tree.root());
    assert_eq!(m.usable_cores(), 2);
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn missing_topology_falls_back_to_cpuinfo() {
    let tree = Tree::host(8, 2);
    tree.remove("sys/devices/system/cpu/cpu3/topology/thread_siblings_list");
    tree.remove("sys/devices/system/cpu/cpu3/topology/core_cpus_list");
    let m = Machine::read(tree.root());
    assert_eq!(m.usable_cores(), 4);
    assert_eq!(
        m.cpu().usable_cores().source(),
        &Source::File {
            path: "/proc/cpuinfo".into()
        }
    );
    let warning = &m.warnings()[0];
    assert_eq!(warning.kind(), WarningKind::Missing);
    assert_eq!(
        warning.path().unwrap(),
        std::path::Path::new("/sys/devices/system/cpu/cpu3/topology/thread_siblings_list")
    );
    assert!(warning.message().contains("/proc/cpuinfo"));
}

#[test]
fn cpuinfo_without_core_ids_counts_cpus_as_cores() {
    // ARM writes no "physical id" or "core id".
    let tree = Tree::host(4, 2);
    for cpu in 0..4 {
        tree.remove(&format!(
            "sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list"
        ));
        tree.remove(&format!(
            "sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        ));
    }
    tree.file(
        "proc/cpuinfo",
        "processor\t: 0\nBogoMIPS\t: 48.00\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\n\n",
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.usable_cores(), 4);
    assert_eq!(
        m.cpu().usable_cores().source(),
        &Source::Fallback {
            fallback: Fallback::CoresAreCpus
        }
    );
}

#[test]
fn garbage_online_list_counts_cpuinfo_processors() {
    let tree = Tree::host(4, 1);
    tree.file("sys/devices/system/cpu/online", "zero to three\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.logical_cpus(), 4);
    assert_eq!(
        m.cpu().logical().source(),
        &Source::File {
            path: "/proc/cpuinfo".into()
        }
    );
    let warning = &m.warnings()[0];
    assert_eq!(warning.kind(), WarningKind::Malformed);
    assert!(warning.message().contains("zero to three"));
}

#[test]
fn two_packages_do_not_merge_equal_core_numbers() {
    let tree = Tree::host(4, 1);
    // Two packages with cores 0 and 1 each: four cores though core lists repeat nothing.
    for cpu in 2..4 {
        tree.file(
            &format!("sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"),
            "1\n",
        );
    }
    tree.remove("sys/devices/system/cpu/cpu0/topology/core_cpus_list");
    tree.remove("sys/devices/system/cpu/cpu0/topology/thread_siblings_list");
    let cpuinfo = "processor : 0\nphysical id : 0\ncore id : 0\n\nprocessor : 1\nphysical id : 0\ncore id : 1\n\n\
                   processor : 2\nphysical id : 1\ncore id : 0\n\nprocessor : 3\nphysical id : 1\ncore id : 1\n";
    tree.file("proc/cpuinfo", cpuinfo);
    let m = Machine::read(tree.root());
    assert_eq!(m.usable_cores(), 4);
}
