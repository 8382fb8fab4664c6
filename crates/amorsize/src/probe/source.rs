//! Where each figure of the probe came from, and what went wrong on the way.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a figure came from.
///
/// Serialized with a `kind` tag: `{"kind": "file", "path": "/proc/meminfo"}`,
/// `{"kind": "cfs_quota", "quota": "...", "period": "..."}`,
/// `{"kind": "headroom", "limit": "...", "usage": "...", "inactive_file": "..." | null}`, `{"kind": "topology", "dir": "..."}`,
/// `{"kind": "runnable", "loadavg": "...", "tasks": "..." | null}`,
/// `{"kind": "cpu_time", "stat": "...", "own": "..."}`,
/// `{"kind": "syscall", "name": "sched_getaffinity"}`, `{"kind": "sysctl", "name": "hw.physicalcpu"}`,
/// `{"kind": "fallback", "fallback": "..."}`,
/// `{"kind": "absent"}`, `{"kind": "given"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Read from this file; the path is as on the probed machine (`/proc/meminfo`), whatever
    /// root directory the probe read from.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A cgroup v1 CPU quota: `cpu.cfs_quota_us` divided by `cpu.cfs_period_us`.
    CfsQuota {
        /// The `cpu.cfs_quota_us` file.
        quota: PathBuf,
        /// The `cpu.cfs_period_us` file beside it.
        period: PathBuf,
    },
    /// Room under a cgroup memory limit: the limit file minus the usage file beside it, plus
    /// the inactive page cache of `memory.stat` when it was read (the kernel reclaims that
    /// cache before the limit bites).
    Headroom {
        /// The limit (`memory.max`, `memory.high`, v1 `memory.limit_in_bytes`).
        limit: PathBuf,
        /// The usage (`memory.current`, v1 `memory.usage_in_bytes`).
        usage: PathBuf,
        /// The `memory.stat` whose `inactive_file` (v1: `total_inactive_file`) was taken off
        /// the usage; `None` when it was missing.
        inactive_file: Option<PathBuf>,
    },
    /// Read from the per-CPU sysfs topology files (`cpuN/topology/core_cpus_list` or
    /// `thread_siblings_list`, and `physical_package_id`) under this directory.
    Topology {
        /// The directory holding the `cpuN` directories.
        dir: PathBuf,
    },
    /// Runnable threads counted by the kernel (the fourth field of `/proc/loadavg`) less this
    /// process's own runnable threads (their `stat` files under `/proc/self/task`, when they
    /// were read).
    Runnable {
        /// The `/proc/loadavg` file.
        loadavg: PathBuf,
        /// The `/proc/self/task` directory, when this process's threads were counted there.
        tasks: Option<PathBuf>,
        /// Readings taken, the least of which counts (more than one when the first saw other
        /// threads and nothing else told a passing one from a steady load).
        #[serde(default = "one_reading")]
        readings: u32,
    },
    /// CPU time other programs used: the busy time of `/proc/stat` less this process's
    /// (`utime + stime` of `/proc/self/stat`), between two readings.
    CpuTime {
        /// The `/proc/stat` file.
        stat: PathBuf,
        /// This process's `stat` file.
        own: PathBuf,
    },
    /// Asked the kernel with this system call (or the platform's API function, or the
    /// standard library's function named by its path).
    Syscall {
        /// The system call.
        name: String,
    },
    /// Read with `sysctl(3)` under these names (macOS, the BSDs).
    Sysctl {
        /// The names, e.g. `hw.physicalcpu`.
        name: String,
    },
    /// Nothing was found; this documented assumption stands in (see the warnings for why).
    Fallback {
        /// The assumption made.
        fallback: Fallback,
    },
    /// No file sets this figure: no limit where limits were looked for, or the files that
    /// would give it were missing or malformed (see the warnings).
    Absent,
    /// Set by the caller, not probed ([`Machine::fixed`](super::Machine::fixed)).
    Given,
}

impl Source {
    /// A [`Source::File`].
    pub(crate) fn file(path: impl Into<PathBuf>) -> Self {
        Source::File { path: path.into() }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path } => write!(f, "{}", path.display()),
            Source::CfsQuota { quota, period } => {
                write!(f, "{} / {}", quota.display(), period.display())
            }
            Source::Headroom {
                limit,
                usage,
                inactive_file,
            } => {
                write!(f, "{} − {}", limit.display(), usage.display())?;
                match inactive_file {
                    Some(stat) => write!(f, " + inactive_file in {}", stat.display()),
                    None => Ok(()),
                }
            }
            Source::Topology { dir } => write!(f, "{}/cpu*/topology", dir.display()),
            Source::Runnable {
                loadavg,
                tasks,
                readings,
            } => {
                write!(f, "runnable threads in {}", loadavg.display())?;
                match tasks {
                    Some(tasks) => write!(f, " less this process's in {}", tasks.display())?,
                    None => f.write_str(" less the reader")?,
                }
                if *readings > 1 {
                    write!(f, ", the least of {readings} readings")?;
                }
                Ok(())
            }
            Source::CpuTime { stat, own } => write!(
                f,
                "CPU time in {} less this process's in {}",
                stat.display(),
                own.display()
            ),
            Source::Syscall { name } => write!(f, "{name}()"),
            Source::Sysctl { name } => write!(f, "sysctl {name}"),
            Source::Fallback { fallback } => write!(f, "fallback: {fallback}"),
            Source::Absent => f.write_str("not found"),
            Source::Given => f.write_str("given"),
        }
    }
}

/// An assumption that stands in for a figure the machine did not give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fallback {
    /// The number of logical CPUs could not be read: assume one, the only count that cannot
    /// oversubscribe the machine.
    OneCpu,
    /// The affinity mask could not be read: assume every online CPU is allowed (the kernel's
    /// default mask).
    AllOnlineCpus,
    /// The system did not say which CPUs share a core (on Linux: neither sysfs topology nor
    /// `/proc/cpuinfo`): count every allowed logical CPU as a core (an overestimate on
    /// machines with SMT).
    CoresAreCpus,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fallback::OneCpu => "assumed one CPU",
            Fallback::AllOnlineCpus => "assumed all online CPUs",
            Fallback::CoresAreCpus => "counted each CPU as a core",
        })
    }
}

/// A figure with the place it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure<T> {
    value: T,
    source: Source,
}

impl<T> Figure<T> {
    /// A figure of `value` from `source`.
    pub(crate) fn new(value: T, source: Source) -> Self {
        Figure { value, source }
    }

    /// The value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Where it came from.
    pub fn source(&self) -> &Source {
        &self.source
    }
}

impl<T: Copy> Figure<T> {
    /// The value, copied.
    pub fn get(&self) -> T {
        self.value
    }
}

/// What kind of trouble the probe met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// A file that should be there was not.
    Missing,
    /// A file was there but could not be read.
    Unreadable,
    /// A file held something other than its documented format.
    Malformed,
    /// Two sources disagreed, or a value made no sense with the others.
    Inconsistent,
}

/// Something the probe could not read as expected, and what it did instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    kind: WarningKind,
    path: Option<PathBuf>,
    message: String,
}

impl Warning {
    /// A warning of `kind` about `path` (as on the probed machine).
    pub(crate) fn new(
        kind: WarningKind,
        path: Option<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        Warning {
            kind,
            path,
            message: message.into(),
        }
    }

    /// What kind of trouble.
    pub fn kind(&self) -> WarningKind {
        self.kind
    }

    /// The file involved (as on the probed machine), when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// What happened and what the probe did instead.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.message)
    }
}

fn one_reading() -> u32 {
    1
}
