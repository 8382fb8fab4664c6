//! CPU quota and memory limits from cgroup v1, v2, hybrid and nested hierarchies.

use std::path::PathBuf;

use amorsize::probe::{CgroupVersion, Machine, Source, WarningKind};

use crate::support::{Tree, GIB, MIB};

const V1_MOUNTS: &str = "\
22 1 8:1 / / rw,relatime - overlay overlay rw
31 22 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
34 31 0:31 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
";

fn file(path: &str) -> Source {
    Source::File {
        path: PathBuf::from(path),
    }
}

fn headroom(limit: &str, usage: &str) -> Source {
    Source::Headroom {
        limit: limit.into(),
        usage: usage.into(),
        inactive_file: None,
    }
}

#[test]
fn bare_host_has_no_limits() {
    let tree = Tree::host(4, 1);
    let m = Machine::read(tree.root());
    assert_eq!(m.cgroup().version(), CgroupVersion::V2);
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.quota_workers(), None);
    assert_eq!(m.cgroup().cpu_quota().source(), &Source::Absent);
    assert_eq!(m.total_memory(), Some(16 * GIB));
    assert_eq!(m.available_memory(), Some(10 * GIB));
    assert_eq!(m.memory().available().source(), &file("/proc/meminfo"));
}

#[test]
fn v2_container_with_one_and_a_half_cpus_and_512_mib() {
    let tree = Tree::host(8, 2);
    tree.file("proc/self/cgroup", "0::/system.slice/docker-abc.scope\n");
    let dir = "sys/fs/cgroup/system.slice/docker-abc.scope";
    tree.file(&format!("{dir}/cpu.max"), "150000 100000\n");
    tree.file(&format!("{dir}/memory.max"), &format!("{}\n", 512 * MIB));
    tree.file(&format!("{dir}/memory.high"), "max\n");
    tree.file(
        &format!("{dir}/memory.current"),
        &format!("{}\n", 100 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cgroup().version(), CgroupVersion::V2);
    assert_eq!(m.cpu_quota(), Some(1.5));
    assert_eq!(m.quota_workers(), Some(2));
    assert_eq!(
        m.cgroup().cpu_quota().source(),
        &file("/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.max")
    );
    assert_eq!(m.total_memory(), Some(512 * MIB));
    assert_eq!(m.available_memory(), Some(412 * MIB));
    assert_eq!(
        m.memory().available().source(),
        &headroom(
            "/sys/fs/cgroup/system.slice/docker-abc.scope/memory.max",
            "/sys/fs/cgroup/system.slice/docker-abc.scope/memory.current"
        )
    );
    assert_eq!(m.cgroup().memory_high().get(), None);
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn v2_container_with_its_own_cgroup_namespace() {
    // Inside a cgroup namespace the process sits at "/" and the mount root is its own cgroup.
    let tree = Tree::host(4, 1);
    tree.file("sys/fs/cgroup/cpu.max", "max 100000\n");
    tree.file("sys/fs/cgroup/memory.max", "max\n");
    tree.file("sys/fs/cgroup/memory.current", "4096\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.total_memory(), Some(16 * GIB));
    tree.file("sys/fs/cgroup/cpu.max", "250000 100000\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(2.5));
    assert_eq!(m.quota_workers(), Some(3));
}

#[test]
fn v1_container() {
    let tree = Tree::host(8, 1);
    tree.file("proc/self/cgroup", "5:pids:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
    tree.file("proc/self/mountinfo", V1_MOUNTS);
    tree.file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n");
    tree.file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    tree.file(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        &format!("{}\n", GIB),
    );
    tree.file(
        "sys/fs/cgroup/memory/memory.usage_in_bytes",
        &format!("{}\n", 256 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cgroup().version(), CgroupVersion::V1);
    assert_eq!(m.cgroup().dirs().v2, None);
    assert_eq!(
        m.cgroup().dirs().cpu_v1,
        Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
    );
    assert_eq!(m.cpu_quota(), Some(2.0));
    assert_eq!(m.quota_workers(), Some(2));
    assert_eq!(
        m.cgroup().cpu_quota().source(),
        &Source::CfsQuota {
            quota: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us".into(),
            period: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us".into(),
        }
    );
    assert_eq!(m.total_memory(), Some(GIB));
    assert_eq!(m.available_memory(), Some(768 * MIB));
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn v1_unlimited_values() {
    let tree = Tree::host(8, 1);
    tree.file(
        "proc/self/cgroup",
        "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
    );
    tree.file("proc/self/mountinfo", V1_MOUNTS);
    tree.file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    tree.file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    tree.file(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    tree.file("sys/fs/cgroup/memory/memory.usage_in_bytes", "12345\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.cgroup().memory_max().get(), None);
    assert_eq!(m.total_memory(), Some(16 * GIB));
    assert_eq!(m.available_memory(), Some(10 * GIB));
}

#[test]
fn hybrid_host_v1_memory_beside_v2() {
    // systemd's hybrid layout: v1 controllers, the unified hierarchy mounted beside them.
    let tree = Tree::host(2, 1);
    tree.file("proc/self/cgroup", "4:memory:/jobs/7\n1:cpu:/\n0::/\n");
    tree.file(
        "proc/self/mountinfo",
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
         32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
         35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
    );
    tree.file("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
    tree.file("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    tree.file(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    tree.file(
        "sys/fs/cgroup/memory/jobs/7/memory.limit_in_bytes",
        &format!("{}\n", 2 * GIB),
    );
    tree.file(
        "sys/fs/cgroup/memory/jobs/7/memory.usage_in_bytes",
        &format!("{}\n", GIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cgroup().version(), CgroupVersion::Hybrid);
    let dirs = m.cgroup().dirs();
    assert_eq!(
        dirs.memory_v1,
        Some(PathBuf::from("/sys/fs/cgroup/memory/jobs/7"))
    );
    assert_eq!(dirs.cpu_v1, Some(PathBuf::from("/sys/fs/cgroup/cpu")));
    assert_eq!(dirs.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.total_memory(), Some(2 * GIB));
    assert_eq!(m.available_memory(), Some(GIB));
}

#[test]
fn nested_cgroups_keep_the_tighter_parent() {
    let tree = Tree::host(8, 1);
    tree.file("proc/self/cgroup", "0::/a/b\n");
    tree.file("sys/fs/cgroup/a/cpu.max", "50000 100000\n");
    tree.file("sys/fs/cgroup/a/b/cpu.max", "400000 100000\n");
    tree.file("sys/fs/cgroup/a/memory.max", &format!("{}\n", GIB));
    tree.file(
        "sys/fs/cgroup/a/memory.current",
        &format!("{}\n", 900 * MIB),
    );
    tree.file("sys/fs/cgroup/a/b/memory.max", &format!("{}\n", 2 * GIB));
    tree.file(
        "sys/fs/cgroup/a/b/memory.current",
        &format!("{}\n", 100 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(0.5));
    assert_eq!(m.quota_workers(), Some(1));
    assert_eq!(
        m.cgroup().cpu_quota().source(),
        &file("/sys/fs/cgroup/a/cpu.max")
    );
    assert_eq!(m.total_memory(), Some(GIB));
    assert_eq!(m.available_memory(), Some(124 * MIB));
    assert_eq!(
        m.memory().available().source(),
        &headroom(
            "/sys/fs/cgroup/a/memory.max",
            "/sys/fs/cgroup/a/memory.current"
        )
    );
}

#[test]
fn memory_high_is_respected() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", 512 * MIB));
    tree.file("sys/fs/cgroup/job/memory.high", &format!("{}\n", 256 * MIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 200 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.cgroup().memory_max().get(), Some(512 * MIB));
    assert_eq!(m.cgroup().memory_high().get(), Some(256 * MIB));
    assert_eq!(m.total_memory(), Some(256 * MIB));
    assert_eq!(m.available_memory(), Some(56 * MIB));
}

#[test]
fn usage_above_the_limit_leaves_no_room() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.high", &format!("{}\n", 256 * MIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 300 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.available_memory(), Some(0));
}

#[test]
fn max_values_mean_no_limit() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/cpu.max", "max 100000\n");
    tree.file("sys/fs/cgroup/job/memory.max", "max\n");
    tree.file("sys/fs/cgroup/job/memory.high", "max\n");
    tree.file("sys/fs/cgroup/job/memory.current", "1000\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), None);
    assert_eq!(m.cgroup().memory_max().get(), None);
    assert_eq!(m.cgroup().memory_headroom().get(), None);
    assert_eq!(m.total_memory(), Some(16 * GIB));
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn mount_points_with_escaped_spaces() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file(
        "proc/self/mountinfo",
        "30 22 0:26 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n",
    );
    tree.file("sys/fs/my cgroup/job/cpu.max", "300000 100000\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(3.0));
    assert_eq!(
        m.cgroup().cpu_quota().source(),
        &file("/sys/fs/my cgroup/job/cpu.max")
    );
}

#[test]
fn the_longest_matching_mount_root_wins() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/outer/inner\n");
    tree.file(
        "proc/self/mountinfo",
        "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
         31 22 0:26 /outer /mnt/outer rw - cgroup2 cgroup2 rw\n",
    );
    tree.file("mnt/outer/inner/cpu.max", "100000 100000\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(1.0));
    assert_eq!(
        m.cgroup().cpu_quota().source(),
        &file("/mnt/outer/inner/cpu.max")
    );
}

#[test]
fn cgroup_outside_the_mount_root_reads_the_mount_point() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/elsewhere\n");
    tree.file(
        "proc/self/mountinfo",
        "30 22 0:26 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    tree.file("sys/fs/cgroup/cpu.max", "100000 100000\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.cpu_quota(), Some(1.0));
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.kind() == WarningKind::Inconsistent
            && w.path() == Some(std::path::Path::new("/proc/self/mountinfo"))));
}

#[test]
fn inactive_page_cache_counts_as_available() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", GIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 900 * MIB),
    );
    tree.file(
        "sys/fs/cgroup/job/memory.stat",
        &format!(
            "anon {}\nfile {}\ninactive_file {}\n",
            300 * MIB,
            600 * MIB,
            500 * MIB
        ),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.available_memory(), Some(624 * MIB));
    assert_eq!(
        m.memory().available().source(),
        &Source::Headroom {
            limit: "/sys/fs/cgroup/job/memory.max".into(),
            usage: "/sys/fs/cgroup/job/memory.current".into(),
            inactive_file: Some("/sys/fs/cgroup/job/memory.stat".into()),
        }
    );
}

#[test]
fn v1_counts_the_hierarchical_inactive_cache() {
    let tree = Tree::host(8, 1);
    tree.file("proc/self/cgroup", "4:memory:/docker/abc\n");
    tree.file("proc/self/mountinfo", V1_MOUNTS);
    tree.file(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        &format!("{}\n", GIB),
    );
    tree.file(
        "sys/fs/cgroup/memory/memory.usage_in_bytes",
        &format!("{}\n", GIB),
    );
    tree.file(
        "sys/fs/cgroup/memory/memory.stat",
        &format!("inactive_file 0\ntotal_inactive_file {}\n", 256 * MIB),
    );
    let m = Machine::read(tree.root());
    assert_eq!(m.available_memory(), Some(256 * MIB));
}

#[test]
fn malformed_memory_stat_counts_the_whole_usage() {
    let tree = Tree::host(4, 1);
    tree.file("proc/self/cgroup", "0::/job\n");
    tree.file("sys/fs/cgroup/job/memory.max", &format!("{}\n", GIB));
    tree.file(
        "sys/fs/cgroup/job/memory.current",
        &format!("{}\n", 900 * MIB),
    );
    tree.file("sys/fs/cgroup/job/memory.stat", "inactive_file lots\n");
    let m = Machine::read(tree.root());
    assert_eq!(m.available_memory(), Some(124 * MIB));
    assert!(m
        .warnings()
        .iter()
        .any(|w| w.path() == Some(std::path::Path::new("/sys/fs/cgroup/job/memory.stat"))));
}
