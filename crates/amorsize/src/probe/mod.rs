//! What the machine offers: CPUs, physical cores, CPU quota and memory, and what each backend
//! costs here. This is the only module that reads the system.

pub mod overhead;

use std::sync::OnceLock;

/// The machine's figures that bound a plan.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    logical_cpus: usize,
    affinity_cpus: usize,
    usable_cores: usize,
    cpu_quota: Option<f64>,
    total_memory: Option<u64>,
    available_memory: Option<u64>,
}

impl Machine {
    /// Logical CPUs online on the machine.
    pub fn logical_cpus(&self) -> usize {
        self.logical_cpus
    }

    /// Logical CPUs in this process's affinity mask (at most [`logical_cpus`](Self::logical_cpus)).
    pub fn affinity_cpus(&self) -> usize {
        self.affinity_cpus
    }

    /// Physical cores this process may run on: distinct (package, core) pairs among the CPUs of
    /// the affinity mask.
    pub fn usable_cores(&self) -> usize {
        self.usable_cores
    }

    /// The cgroup CPU quota in CPUs (e.g. `1.5`), the tightest along the cgroup hierarchy;
    /// `None` when there is no quota.
    pub fn cpu_quota(&self) -> Option<f64> {
        self.cpu_quota
    }

    /// The number of CPU-bound workers the quota allows: the quota rounded to the nearest whole
    /// CPU, at least one; `None` when there is no quota.
    pub fn quota_workers(&self) -> Option<usize> {
        self.cpu_quota.map(|q| (q.round() as usize).max(1))
    }

    /// Memory this process may use in all, in bytes: the tightest of the machine's memory and
    /// the cgroup limits; `None` when unknown.
    pub fn total_memory(&self) -> Option<u64> {
        self.total_memory
    }

    /// Memory available to this process now, in bytes, when probed: the tightest of
    /// `MemAvailable` and each cgroup limit minus its usage; `None` when unknown.
    pub fn available_memory(&self) -> Option<u64> {
        self.available_memory
    }
}

/// This machine, probed once per process.
pub fn machine() -> &'static Machine {
    static MACHINE: OnceLock<Machine> = OnceLock::new();
    MACHINE.get_or_init(|| {
        // First version: the standard library's view; the full probe (sysfs, cgroups, meminfo)
        // replaces these figures.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Machine {
            logical_cpus: cpus,
            affinity_cpus: cpus,
            usable_cores: cpus,
            cpu_quota: None,
            total_memory: None,
            available_memory: None,
        }
    })
}
