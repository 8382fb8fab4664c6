//! Fixture trees of `/proc` and `/sys` in temporary directories.

#![allow(dead_code)]

use std::path::Path;

use tempfile::TempDir;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// A directory standing for a machine's root.
pub struct Tree {
    dir: TempDir,
}

impl Tree {
    /// An empty root.
    pub fn empty() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A host with `cpus` logical CPUs, `smt` threads per core (Linux numbering: the first
    /// thread of every core, then the second ones), one package, `/proc/meminfo` of 16 GiB
    /// total and 10 GiB available, every CPU allowed and the process in the root of a cgroup
    /// v2 hierarchy mounted at /sys/fs/cgroup.
    pub fn host(cpus: u32, smt: u32) -> Tree {
        let tree = Tree::empty();
        let cores = cpus / smt;
        tree.file(
            "sys/devices/system/cpu/online",
            &format!("0-{}\n", cpus - 1),
        );
        let mut cpuinfo = String::new();
        for cpu in 0..cpus {
            let core = cpu % cores;
            let siblings: Vec<String> = (0..smt).map(|t| (core + t * cores).to_string()).collect();
            let dir = format!("sys/devices/system/cpu/cpu{cpu}/topology");
            tree.file(
                &format!("{dir}/core_cpus_list"),
                &format!("{}\n", siblings.join(",")),
            );
            tree.file(
                &format!("{dir}/thread_siblings_list"),
                &format!("{}\n", siblings.join(",")),
            );
            tree.file(&format!("{dir}/physical_package_id"), "0\n");
            tree.file(&format!("{dir}/core_id"), &format!("{core}\n"));
            cpuinfo.push_str(&format!(
                "processor\t: {cpu}\nvendor_id\t: GenuineIntel\nphysical id\t: 0\n\
                 siblings\t: {cpus}\ncore id\t\t: {core}\ncpu cores\t: {cores}\n\n"
            ));
        }
        tree.file("proc/cpuinfo", &cpuinfo);
        tree.meminfo(16 * GIB, 10 * GIB);
        tree.file(
            "proc/self/status",
            &format!(
                "Name:\tamorsize\nCpus_allowed:\tff\nCpus_allowed_list:\t0-{}\n",
                cpus - 1
            ),
        );
        tree.file("proc/self/cgroup", "0::/\n");
        tree.file(
            "proc/self/mountinfo",
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
             30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        tree
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `path` (relative to the root), creating directories.
    pub fn file(&self, path: &str, text: &str) -> &Tree {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create directories");
        std::fs::write(&path, text).expect("write fixture file");
        self
    }

    /// Removes `path` (relative to the root).
    pub fn remove(&self, path: &str) -> &Tree {
        std::fs::remove_file(self.dir.path().join(path)).expect("remove fixture file");
        self
    }

    /// Writes `/proc/meminfo` with these totals (bytes, multiples of 1 KiB).
    pub fn meminfo(&self, total: u64, available: u64) -> &Tree {
        self.file(
            "proc/meminfo",
            &format!(
                "MemTotal:       {} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\nBuffers:  1 kB\n\
                 HugePages_Total:       0\n",
                total / 1024,
                available / 2048,
                available / 1024
            ),
        )
    }
}
