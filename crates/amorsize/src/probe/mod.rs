//! What the machine offers: CPUs, physical cores, CPU quota and memory, and what each backend
//! costs here. This is the only module that reads the system.
//!
//! [`machine()`] probes this machine once per process; [`Machine::read`] probes a copy of
//! another machine's `/proc` and `/sys` under a root directory. On Linux the probe reads
//! `/proc` and `/sys`; on macOS `sysctl(3)`, on Windows the Win32 API, on other systems what
//! the standard library tells (one file per platform: `macos.rs`, `windows.rs`, `other.rs`). Every figure carries its
//! [`Source`]; whatever could not be read is replaced by a documented [`Fallback`] or left
//! unknown, and listed in [`Machine::warnings`]. The text formats are parsed by the pure
//! functions of [`parse`].
//!
//! # Examples
//!
//! ```
//! let machine = amorsize::probe::machine();
//! assert!(machine.usable_cores() <= machine.affinity_cpus());
//! assert!(machine.affinity_cpus() <= machine.logical_cpus());
//! if let Some(workers) = machine.quota_workers() {
//!     assert!(workers >= 1);
//! }
//! ```

mod affinity;
pub(crate) use affinity::visit_cpu;
mod cgroup;
mod cpu_set;
mod cpus;
mod fresh;
mod fs;
mod load;
#[cfg(target_os = "macos")]
mod macos;
mod memory;
// Built on Linux too, where nothing calls it, so that its tests run there.
#[cfg_attr(target_os = "linux", allow(dead_code))]
mod native;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod other;
pub mod parse;
mod source;
mod system;
#[cfg(windows)]
mod windows;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use cgroup::{CgroupDirs, CgroupVersion};
pub use cpu_set::CpuSet;
pub use cpus::Cpus;
pub use load::{cpu_load_now, read_cpu_load, CpuLoad, Sharing};
pub use memory::Memory;
pub use source::{Fallback, Figure, Source, Warning, WarningKind};
pub use system::System;

/// The machine's figures that bound a plan, each with the place it came from.
///
/// # JSON
///
/// `amorsize info --json` prints this struct; its field names are stable:
///
/// ```text
/// {
///   "root": "/",                                  directory the files were read under
///   "cpu": {
///     "logical":       Figure<usize>,             online logical CPUs
///     "affinity":      Figure<usize>,             online CPUs in the affinity mask
///     "affinity_list": "0-3,8",                   those CPUs, kernel list format
///     "usable_cores":  Figure<usize>,             distinct (package, core) pairs among them
///     "performance_cores": Figure<usize> | null   the fastest kind, where cores differ
///   },
///   "cgroup": {
///     "version":         "none" | "v1" | "v2" | "hybrid",
///     "dirs": { "v2": path | null,                the process's cgroup directory in the v2,
///               "cpu_v1": path | null,            v1 cpu and v1 memory hierarchies; limits
///               "memory_v1": path | null },       are read from there up to the mount point
///     "cpu_quota":       Figure<f64 | null>,      CPUs (1.5 = 150 ms per 100 ms), tightest level
///     "quota_workers":   usize | null,            workers the quota allows (see quota_workers())
///     "memory_max":      Figure<u64 | null>,      tightest hard limit, bytes
///     "memory_high":     Figure<u64 | null>,      tightest v2 memory.high, bytes
///     "memory_headroom": Figure<u64 | null>       least room under any level's limit, bytes
///   },
///   "memory": {
///     "host_total":     Figure<u64 | null>,       MemTotal, bytes
///     "host_available": Figure<u64 | null>,       MemAvailable, bytes
///     "total":          Figure<u64 | null>,       tightest of MemTotal and cgroup limits
///     "available":      Figure<u64 | null>        tightest of MemAvailable and headrooms
///   },
///   "system": {
///     "cpu_model": Figure<string | null>,         model name in /proc/cpuinfo
///     "kernel":    Figure<string | null>          /proc/sys/kernel/osrelease (uname -r)
///   },
///   "warnings": [ { "kind": "missing" | "unreadable" | "malformed" | "inconsistent",
///                   "path": "/proc/..." | null, "message": "..." } ]
/// }
/// ```
///
/// A `Figure<T>` is `{"value": T, "source": Source}`; a [`Source`] is an object tagged by
/// `"kind"`: `{"kind": "file", "path": ...}`, `{"kind": "cfs_quota", "quota": ..., "period": ...}`,
/// `{"kind": "headroom", "limit": ..., "usage": ..., "inactive_file": ... | null}`,
/// `{"kind": "topology", "dir": ...}`, `{"kind": "runnable", "loadavg": ..., "tasks": ...}`,
/// `{"kind": "syscall", "name": ...}`, `{"kind": "sysctl", "name": ...}`,
/// `{"kind": "fallback", "fallback": "one_cpu" | "all_online_cpus" | "cores_are_cpus"}`,
/// `{"kind": "absent"}` or `{"kind": "given"}`. Paths are as on the probed machine, whatever
/// the root. New fields may be added; these will not be renamed or removed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Machine {
    root: PathBuf,
    cpu: Cpus,
    cgroup: Cgroup,
    memory: Memory,
    #[serde(default)]
    system: System,
    warnings: Vec<Warning>,
}

/// What the process's cgroups allow (see [`Machine`] for the JSON form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cgroup {
    version: CgroupVersion,
    dirs: CgroupDirs,
    cpu_quota: Figure<Option<f64>>,
    quota_workers: Option<usize>,
    memory_max: Figure<Option<u64>>,
    memory_high: Figure<Option<u64>>,
    memory_headroom: Figure<Option<u64>>,
}

impl Cgroup {
    /// Which cgroup hierarchies were found.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The process's cgroup directory in each hierarchy that can limit it.
    pub fn dirs(&self) -> &CgroupDirs {
        &self.dirs
    }

    /// The tightest CPU quota along the hierarchy, in CPUs.
    pub fn cpu_quota(&self) -> &Figure<Option<f64>> {
        &self.cpu_quota
    }

    /// The tightest hard memory limit (`memory.max`, v1 `memory.limit_in_bytes`), in bytes.
    pub fn memory_max(&self) -> &Figure<Option<u64>> {
        &self.memory_max
    }

    /// The tightest soft memory limit (v2 `memory.high`), in bytes. Above it the kernel
    /// throttles the cgroup and reclaims hard, so the probe treats it as a limit too.
    pub fn memory_high(&self) -> &Figure<Option<u64>> {
        &self.memory_high
    }

    /// The least room left under any level's limit (its `memory.max` or `memory.high`,
    /// whichever is smaller, minus its working set: usage less the inactive page cache of
    /// `memory.stat`, which the kernel reclaims first), in bytes.
    pub fn memory_headroom(&self) -> &Figure<Option<u64>> {
        &self.memory_headroom
    }

    fn none(cpu_quota: Option<f64>) -> Self {
        let given = |q: Option<f64>| {
            Figure::new(
                q,
                if q.is_some() {
                    Source::Given
                } else {
                    Source::Absent
                },
            )
        };
        Cgroup {
            version: CgroupVersion::None,
            dirs: CgroupDirs::default(),
            cpu_quota: given(cpu_quota),
            quota_workers: cpu_quota.map(workers_for_quota),
            memory_max: Figure::new(None, Source::Absent),
            memory_high: Figure::new(None, Source::Absent),
            memory_headroom: Figure::new(None, Source::Absent),
        }
    }
}

/// The worker count a quota of `cpus` allows: rounded to the nearest whole CPU (halves up),
/// at least one.
///
/// Why nearest: `w` CPU-bound workers under a quota `q` get `min(w, q)` CPUs of throughput,
/// and each worker beyond `q` adds throttling stalls at the end of every CFS period. Rounding
/// down wastes up to a whole CPU of quota (1.9 → 1); rounding up oversubscribes by up to a
/// whole CPU (2.1 → 3). Nearest bounds both to half a CPU. The exact fraction stays available
/// from [`Machine::cpu_quota`] for the cost model to cap its predicted speedup.
fn workers_for_quota(cpus: f64) -> usize {
    if !(cpus.is_finite() && cpus > 0.0) {
        return 1;
    }
    // `as` saturates for values beyond usize; a quota of 2⁶⁴ CPUs is no real limit anyway.
    (cpus.round() as usize).max(1)
}

impl Machine {
    /// Probes the machine whose files lie under `root`: `/` for this one, or a directory holding
    /// a copy of another machine's `proc/` and `sys/` (for tests, or to diagnose that machine).
    ///
    /// At `/` the affinity mask comes from `sched_getaffinity(2)`; under any other root from
    /// `proc/self/status` (`Cpus_allowed_list`). On a system other than Linux, `/` is probed
    /// with that system's calls instead (see the [module](self) documentation). Never fails: unreadable or malformed files are
    /// replaced by fallbacks or left unknown, and listed in [`warnings`](Self::warnings).
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::probe::{Fallback, Machine, Source};
    ///
    /// // An empty directory: nothing to read, every figure falls back and says so.
    /// let empty = std::env::temp_dir().join("amorsize-doc-empty-root");
    /// std::fs::create_dir_all(&empty).unwrap();
    /// let machine = Machine::read(&empty);
    /// assert_eq!(machine.logical_cpus(), 1);
    /// assert_eq!(
    ///     machine.cpu().logical().source(),
    ///     &Source::Fallback { fallback: Fallback::OneCpu }
    /// );
    /// assert_eq!(machine.total_memory(), None);
    /// assert!(!machine.warnings().is_empty());
    /// ```
    pub fn read(root: &Path) -> Machine {
        #[cfg(not(target_os = "linux"))]
        if root == Path::new("/") {
            return native::machine(platform::raw());
        }
        let mut fs = fs::Fs::new(root);
        let cpu = cpus::probe(&mut fs);
        let located = cgroup::locate(&mut fs);
        let cpu_quota = cgroup::cpu_quota(&mut fs, &located);
        let limits = cgroup::memory_limits(&mut fs, &located);
        let memory = memory::probe(&mut fs, &limits);
        let system = system::probe(&mut fs);
        let cgroup = Cgroup {
            version: located.version(),
            dirs: located.dirs(),
            quota_workers: cpu_quota.get().map(workers_for_quota),
            cpu_quota,
            memory_max: limits.max,
            memory_high: limits.high,
            memory_headroom: limits.headroom,
        };
        Machine {
            root: fs.root().to_path_buf(),
            cpu,
            cgroup,
            memory,
            system,
            warnings: fs.into_warnings(),
        }
    }

    /// A machine with the given figures instead of probed ones (for planning for another
    /// machine, and for tests): `logical_cpus` CPUs, all in the affinity mask, of which
    /// `usable_cores` cores (clamped to `1..=logical_cpus`), no quota and unknown memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::probe::Machine;
    ///
    /// let m = Machine::fixed(8, 4).with_cpu_quota(2.5).with_memory(1 << 30, 1 << 29);
    /// assert_eq!((m.logical_cpus(), m.usable_cores()), (8, 4));
    /// assert_eq!(m.quota_workers(), Some(3));
    /// assert_eq!(m.available_memory(), Some(1 << 29));
    /// ```
    pub fn fixed(logical_cpus: usize, usable_cores: usize) -> Machine {
        Machine {
            root: PathBuf::new(),
            cpu: Cpus::given(logical_cpus, usable_cores),
            cgroup: Cgroup::none(None),
            memory: Memory::given(None, None),
            system: System::default(),
            warnings: Vec::new(),
        }
    }

    /// This machine with a CPU quota of `cpus` (ignored unless positive and finite).
    pub fn with_cpu_quota(mut self, cpus: f64) -> Machine {
        let quota = (cpus.is_finite() && cpus > 0.0).then_some(cpus);
        self.cgroup = Cgroup::none(quota);
        self
    }

    /// This machine with `total` bytes of memory, of which `available` are available (clamped
    /// to `total`).
    pub fn with_memory(mut self, total: u64, available: u64) -> Machine {
        self.memory = Memory::given(Some(total), Some(available.min(total)));
        self
    }

    /// Logical CPUs online on the machine.
    pub fn logical_cpus(&self) -> usize {
        self.cpu.logical().get()
    }

    /// Logical CPUs in this process's affinity mask (online ones only, so at most
    /// [`logical_cpus`](Self::logical_cpus)).
    pub fn affinity_cpus(&self) -> usize {
        self.cpu.affinity().get()
    }

    /// Physical cores this process may run on: distinct (package, core) pairs among the CPUs
    /// of the affinity mask (so at most [`affinity_cpus`](Self::affinity_cpus)).
    pub fn usable_cores(&self) -> usize {
        self.cpu.usable_cores().get()
    }

    /// The cgroup CPU quota in CPUs (e.g. `1.5`), the tightest along the cgroup hierarchy;
    /// `None` when there is no quota.
    pub fn cpu_quota(&self) -> Option<f64> {
        self.cgroup.cpu_quota.get()
    }

    /// The number of CPU-bound workers the quota allows; `None` when there is no quota.
    ///
    /// Rounding policy: the quota rounded to the nearest whole CPU, halves up, at least one
    /// (1.5 → 2, 2.4 → 2, 0.3 → 1). `w` CPU-bound workers under a quota `q` get `min(w, q)` CPUs
    /// of throughput, and every worker beyond `q` adds throttling stalls at the end of each
    /// CFS period; rounding down wastes up to a whole CPU of quota, rounding up oversubscribes
    /// by up to one. Nearest bounds both to half a CPU. The exact fraction is
    /// [`cpu_quota`](Self::cpu_quota), for capping a predicted speedup.
    pub fn quota_workers(&self) -> Option<usize> {
        self.cgroup.quota_workers
    }

    /// Memory this process may use in all, in bytes: the tightest of `MemTotal` and the cgroup
    /// limits (`memory.max`, `memory.high`, v1 `memory.limit_in_bytes`); `None` when unknown.
    pub fn total_memory(&self) -> Option<u64> {
        self.memory.total().get()
    }

    /// Memory available to this process when probed, in bytes: the tightest of `MemAvailable`
    /// and, at each cgroup level, its limit (`memory.max` or `memory.high`, whichever is
    /// smaller) minus its working set (usage less inactive page cache, as `MemAvailable`
    /// counts that cache available); `None` when unknown. For a fresher figure, see
    /// [`available_memory_now`].
    pub fn available_memory(&self) -> Option<u64> {
        self.memory.available().get()
    }

    /// The load other programs put on the CPUs now: at `/`, [`cpu_load_now`]; under another
    /// root, that root's files ([`read_cpu_load`]); unknown for [`fixed`](Self::fixed) figures.
    pub fn cpu_load_now(&self) -> CpuLoad {
        if self.root.as_os_str().is_empty() {
            CpuLoad::unknown()
        } else if self.root == Path::new("/") {
            cpu_load_now()
        } else {
            read_cpu_load(&self.root)
        }
    }

    /// The directory the files were read under (`/` for this machine; empty for
    /// [`fixed`](Self::fixed) figures).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// CPU figures with their sources.
    pub fn cpu(&self) -> &Cpus {
        &self.cpu
    }

    /// What the cgroups allow, with sources.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Memory figures with their sources.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The CPU model (`model name` in `/proc/cpuinfo`), when known.
    pub fn cpu_model(&self) -> Option<&str> {
        self.system.cpu_model().value().as_deref()
    }

    /// The kernel release (`uname -r`), when known.
    pub fn kernel_release(&self) -> Option<&str> {
        self.system.kernel().value().as_deref()
    }

    /// The CPU model and kernel release with their sources.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// What could not be read as expected, and what the probe did instead.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// The machine, once probed.
static MACHINE: OnceLock<Machine> = OnceLock::new();

/// The system calls of the platform this is built for.
#[cfg(target_os = "macos")]
use macos as platform;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
use other as platform;
#[cfg(windows)]
use windows as platform;

/// This machine, probed once per process.
pub fn machine() -> &'static Machine {
    MACHINE.get_or_init(|| Machine::read(Path::new("/")))
}

/// This machine if [`machine`] has probed it already in this process; never probes.
pub fn machine_if_probed() -> Option<&'static Machine> {
    MACHINE.get()
}

/// An upper bound on the cores this process can use, without the full probe when it has not
/// run yet: the usable cores once [`machine`] has been read, else the CPUs of the affinity
/// mask (one system call), else std's `available_parallelism`. A call that a few items prove
/// serial on this bound (more cores can only make parallel look better) spares the probe's
/// half a millisecond of file reads.
pub fn cores_bound() -> usize {
    if let Some(machine) = MACHINE.get() {
        return machine.usable_cores().max(1);
    }
    affinity::sched_affinity()
        .map(|set| set.len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// How long [`available_memory_now`] reuses a reading: memory moves fast enough under load
/// that a figure much older is stale, and a second is long against reading a few small files.
pub(crate) const AVAILABLE_MEMORY_TTL: Duration = Duration::from_secs(1);

/// This machine's available memory (as [`Machine::available_memory`]), read again when the
/// last reading is older than a second (`AVAILABLE_MEMORY_TTL`).
///
/// # Examples
///
/// ```
/// let now = amorsize::probe::available_memory_now();
/// if let (Some(now), Some(total)) = (now, amorsize::probe::machine().total_memory()) {
///     assert!(now <= total);
/// }
/// ```
pub fn available_memory_now() -> Option<u64> {
    static LAST: Mutex<fresh::Fresh<Option<u64>>> = Mutex::new(fresh::Fresh::new());
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    last.get(Instant::now(), AVAILABLE_MEMORY_TTL, || {
        read_available_memory(Path::new("/")).get()
    })
}

/// The memory available now under `root` (as [`Machine::available_memory`], with its source),
/// reading only `/proc/meminfo` and the cgroup memory files.
///
/// # Examples
///
/// ```
/// use amorsize::probe::{read_available_memory, Source};
///
/// let empty = std::env::temp_dir().join("amorsize-doc-empty-memory-root");
/// std::fs::create_dir_all(&empty).unwrap();
/// let figure = read_available_memory(&empty);
/// assert_eq!((figure.get(), figure.source()), (None, &Source::Absent));
/// ```
pub fn read_available_memory(root: &Path) -> Figure<Option<u64>> {
    #[cfg(not(target_os = "linux"))]
    if root == Path::new("/") {
        return native::machine(platform::raw()).memory.available().clone();
    }
    let mut fs = fs::Fs::new(root);
    let located = cgroup::locate(&mut fs);
    let limits = cgroup::memory_limits(&mut fs, &located);
    memory::probe(&mut fs, &limits).available().clone()
}
