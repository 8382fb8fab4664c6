//! Missing and malformed files: never a panic, always a fallback that says what and where.

use std::path::Path;

use amorsize::probe::{Fallback, Machine, Source};

use crate::support::Tree;

/// Every file the probe reads in a v2 container tree, relative to the root (`/proc/cpuinfo`
/// and `thread_siblings_list` are read only when the files before them fail).
const FILES: &[&str] = &[
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/cpu1/topology/core_cpus_list",
    "sys/devices/system/cpu/cpu1/topology/physical_package_id",
    "proc/meminfo",
    "proc/self/status",
    "proc/self/cgroup",
    "proc/self/mountinfo",
    "sys/fs/cgroup/job/cpu.max",
    "sys/fs/cgroup/job/memory.max",
    "sys/fs/cgroup/job/memory.high",
    "sys/fs/cgroup/job/memory.current",
];

fn container() -> Tree {
    let tree = Tree::host(4, 2);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/cpu.max", "150000 100000\n");
    tree.file("sys/fs/cgroup/job/memory.max", "536870912\n");
    tree.file("sys/fs/cgroup/job/memory.high", "max\n");
    tree.file("sys/fs/cgroup/job/memory.current", "1048576\n");
    tree
}

fn assert_sane(m: &Machine) {
    assert!(m.logical_cpus() >= 1);
    assert!(m.affinity_cpus() >= 1 && m.affinity_cpus() <= m.logical_cpus());
    assert!(m.usable_cores() >= 1 && m.usable_cores() <= m.affinity_cpus());
    if let Some(workers) = m.quota_workers() {
        assert!(workers >= 1);
    }
    if let (Some(total), Some(available)) = (m.total_memory(), m.available_memory()) {
        assert!(available <= total || m.memory().host_available().get().is_some());
    }
}

#[test]
fn the_container_tree_reads_clean() {
    let m = Machine::read(container().root());
    assert_sane(&m);
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn garbage_in_any_file_is_named_in_a_warning() {
    for garbage in ["garbage\n", "", "-1 -1 -1\n", "\u{0}\u{1}:\n:::\n"] {
        for file in FILES {
            let tree = container();
            tree.file(file, garbage);
            let m = Machine::read(tree.root());
            assert_sane(&m);
            let on_machine = Path::new("/").join(file);
            let named = m.warnings().iter().any(|w| w.path() == Some(&on_machine));
            assert!(named, "{file} holding {garbage:?}: {:?}", m.warnings());
        }
    }
}

#[test]
fn garbage_in_cpuinfo_when_it_is_needed() {
    let tree = container();
    tree.remove("sys/devices/system/cpu/online");
    tree.file("proc/cpuinfo", "processor : zero\n");
    let m = Machine::read(tree.root());
    assert_sane(&m);
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.path() == Some(Path::new("/proc/cpuinfo"))));
}

#[test]
fn invalid_utf8_is_a_warning() {
    let tree = container();
    std::fs::write(tree.root().join("proc/meminfo"), [0xff, 0xfe, b'\n']).unwrap();
    let m = Machine::read(tree.root());
    assert_eq!(m.total_memory(), Some(512 << 20));
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.path() == Some(Path::new("/proc/meminfo"))));
}

#[test]
fn missing_any_file_never_panics() {
    for file in FILES {
        let tree = container();
        tree.remove(file);
        let m = Machine::read(tree.root());
        assert_sane(&m);
    }
}

#[test]
fn empty_root_falls_back_everywhere() {
    let tree = Tree::empty();
    let m = Machine::read(tree.root());
    assert_sane(&m);
    assert_eq!(
        (m.logical_cpus(), m.affinity_cpus(), m.usable_cores()),
        (1, 1, 1)
    );
    assert_eq!(
        m.cpu().logical().source(),
        &Source::Fallback {
            fallback: Fallback::OneCpu
        }
    );
    assert_eq!(
        m.cpu().affinity().source(),
        &Source::Fallback {
            fallback: Fallback::AllOnlineCpus
        }
    );
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.total_memory(), None);
    for file in [
        "/sys/devices/system/cpu/online",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/self/cgroup",
    ] {
        assert!(
            m.warnings()
                .iter()
                .any(|w| w.path() == Some(Path::new(file))),
            "no warning for {file}: {:?}",
            m.warnings()
        );
    }
}

#[test]
fn cgroup_paths_cannot_climb_out_of_the_mount() {
    let tree = container();
    tree.file("proc/self/cgroup", "0::/../../../etc\n");
    let m = Machine::read(tree.root());
    assert_sane(&m);
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.path() == Some(Path::new("/proc/self/cgroup"))));
}

#[test]
fn a_malformed_mountinfo_line_keeps_the_others() {
    let tree = container();
    tree.file(
        "proc/self/mountinfo",
        "garbage line\n30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(1.5));
    let warning = &m.warnings()[0];
    assert_eq!(warning.path(), Some(Path::new("/proc/self/mountinfo")));
    assert!(warning.message().contains("1 malformed line(s) skipped"));
}

#[test]
fn malformed_core_cpus_list_does_not_fall_back_to_older_file() {
    let tree = container();
    tree.file(
        "sys/devices/system/cpu/cpu1/topology/core_cpus_list",
        "1,x\n",
    );
    let m = Machine::read(tree.root());
    assert_eq!(
        m.cpu().usable_cores().source(),
        &Source::File {
            path: "/proc/cpuinfo".into()
        }
    );
    assert_eq!(m.usable_cores(), 2);
}
