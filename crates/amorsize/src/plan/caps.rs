//! The machine's limits on workers, and where each figure came from.

use crate::model::{workers_within_memory, Capacity, Sharing, Workload, MEMORY_HEADROOM};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the machine lets a plan use. Built from the probe ([`Caps::from_machine`]) or filled in
/// by a backend or a test; [`decide`](crate::plan::decide) turns these into worker limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Caps {
    /// Cores the work can run on (usable physical cores within the affinity mask).
    pub cores: usize,
    /// Where `cores` came from, for the report.
    pub cores_source: String,
    /// CPU quota in CPUs (cgroup `cpu.max` or v1 CFS quota), when one is set.
    pub quota: Option<f64>,
    /// Memory available to this process in bytes, when known.
    pub available_memory: Option<u64>,
    /// Processes this user may still start (`ulimit -u` less those running), when it matters.
    pub processes: Option<usize>,
    /// What other programs' runnable threads take of the cores, when it was read.
    #[serde(default)]
    pub load: Option<Load>,
}

/// Other programs' load on the cores a plan may use, as the probe read it when planning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Load {
    /// Runnable threads of other programs on this process's cores: the system-wide count
    /// times the share of the online CPUs this process may run on.
    pub competing: f64,
    /// How the scheduler shares the cores with them.
    pub sharing: Sharing,
    /// Where the figures came from, for people.
    pub source: String,
}

impl Caps {
    /// `cores` cores and nothing else known; `source` says where the figure came from.
    pub fn cores(cores: usize, source: impl Into<String>) -> Caps {
        Caps {
            cores: cores.max(1),
            cores_source: source.into(),
            quota: None,
            available_memory: None,
            processes: None,
            load: None,
        }
    }

    /// The caps of this machine, from what [`probe`](crate::probe) found: usable physical
    /// cores (within the affinity mask), the cgroup CPU quota, the available memory and the
    /// load other programs put on the cores now ([`Machine::cpu_load_now`]), each with its
    /// source.
    ///
    /// [`Machine::cpu_load_now`]: crate::probe::Machine::cpu_load_now
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::probe::Machine;
    /// let caps = amorsize::plan::Caps::from_machine(&Machine::fixed(8, 4).with_cpu_quota(2.5));
    /// assert_eq!(caps.cores, 4);
    /// assert_eq!(caps.usable_cores(), 2.5);
    /// assert!(amorsize::plan::Caps::from_machine(amorsize::probe::machine()).cores >= 1);
    /// ```
    pub fn from_machine(machine: &crate::probe::Machine) -> Caps {
        let cores = machine.cpu().usable_cores();
        Caps {
            cores: machine.usable_cores().max(1),
            cores_source: format!("usable physical cores, {}", cores.source()),
            quota: machine.cpu_quota(),
            available_memory: machine.available_memory(),
            processes: None,
            load: Load::of_machine(machine),
        }
    }

    /// What the cores can give the workers: the [usable cores](Self::usable_cores) less what
    /// the [`load`](Self::load) takes (none when it is unknown).
    pub fn capacity(&self) -> Capacity {
        let cores = self.usable_cores();
        match &self.load {
            Some(load) => Capacity {
                cores,
                competing: load.competing,
                sharing: load.sharing,
            },
            None => Capacity::idle(cores),
        }
    }

    /// The usable cores of `machine` ([`Caps::usable_cores`] of [`Caps::from_machine`]),
    /// without building the rest.
    pub(crate) fn from_machine_cores(machine: &crate::probe::Machine) -> f64 {
        Caps {
            cores: machine.usable_cores().max(1),
            cores_source: String::new(),
            quota: machine.cpu_quota(),
            available_memory: None,
            processes: None,
            // The glance needs the most the cores could give: load only lowers it.
            load: None,
        }
        .usable_cores()
    }

    /// Cores the model may count on: the cores, or the quota when it is lower (fractional).
    pub fn usable_cores(&self) -> f64 {
        let cores = self.cores.max(1) as f64;
        match self.quota {
            Some(q) if q > 0.0 && q < cores => q,
            _ => cores,
        }
    }
}

impl Load {
    /// The load on `machine`'s cores now, when the probe could count it.
    fn of_machine(machine: &crate::probe::Machine) -> Option<Load> {
        let load = machine.cpu_load_now();
        let others = load.estimate()?;
        // The count is system-wide; other programs' threads are spread over the online CPUs,
        // and only those on this process's CPUs compete with its workers.
        let ours = machine.affinity_cpus() as f64 / machine.logical_cpus().max(1) as f64;
        let used = match load.used().get() {
            Some(used) => format!(
                ", at most the {used:.2} CPUs they used ({})",
                load.used().source()
            ),
            None => String::new(),
        };
        Some(Load {
            competing: others * ours.min(1.0),
            sharing: load.sharing().get(),
            source: format!(
                "{}{used}; {} ({})",
                load.competing().source(),
                load.sharing().get(),
                load.sharing().source()
            ),
        })
    }
}

/// What bounded the number of workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The cores (divided by the CPU one item keeps busy; above the cores for waiting work).
    Cores,
    /// The CPU quota.
    Quota,
    /// Available memory (less a headroom) ÷ memory per worker.
    Memory,
    /// Processes the user may still start.
    Processes,
    /// The caller's `max_workers` option.
    MaxWorkers,
    /// No more workers than items.
    Items,
    /// The documented ceiling for waiting work, [`WAITING_WORKERS_PER_CORE`] per core.
    Waiting,
    /// The absolute ceiling, [`MAX_WORKERS`].
    Ceiling,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Cores => "cores",
            LimitKind::Quota => "CPU quota",
            LimitKind::Memory => "memory",
            LimitKind::Processes => "process limit",
            LimitKind::MaxWorkers => "max_workers option",
            LimitKind::Items => "items",
            LimitKind::Waiting => "waiting-work ceiling",
            LimitKind::Ceiling => "absolute ceiling",
        })
    }
}

/// One limit on the workers: its kind, the most workers it allows, and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limit {
    /// What limits.
    pub kind: LimitKind,
    /// The most workers it allows.
    pub workers: usize,
    /// The figures behind it, for people.
    pub source: String,
}

/// The limit memory puts on the workers of `w`: [`MEMORY_HEADROOM`] of the available memory
/// (which the probe bounds by the cgroup's `memory.max`, `memory.high` and usage) ÷ the
/// memory one worker needs. `None` when either is unknown.
pub(crate) fn memory_limit(w: &Workload, caps: &Caps) -> Option<Limit> {
    let available = caps.available_memory?;
    let workers = workers_within_memory(available, w.worker_memory)?;
    Some(Limit {
        kind: LimitKind::Memory,
        workers,
        source: format!(
            "{:.0} % of {} available ÷ {} per worker ({})",
            MEMORY_HEADROOM * 100.0,
            crate::fmt::bytes(available),
            crate::fmt::bytes(w.worker_memory),
            w.worker_memory_source()
        ),
    })
}

/// Workers per usable core that waiting work may use at most. Work that mostly waits (sleep,
/// I/O, child processes) gains from workers beyond the cores, but each worker costs a thread or
/// process, memory and scheduler time; 16 per core covers work that waits 94 % of the time or
/// more (200 × `sleep 0.05` on 2 cores runs in 7 rounds instead of 100) while keeping a
/// runaway estimate from starting thousands of workers.
pub const WAITING_WORKERS_PER_CORE: usize = 16;

/// The most workers any plan uses, whatever the machine: beyond this, per-worker costs the model
/// does not see (scheduler, file descriptors, stacks) dominate.
pub const MAX_WORKERS: usize = 1024;
