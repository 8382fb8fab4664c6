//! Logical CPUs, the affinity mask and the physical cores within it.
//!
//! Sysfs layout: `Documentation/admin-guide/cputopology.rst` (`/sys/devices/system/cpu/online`,
//! `cpuN/topology/{core_cpus_list, thread_siblings_list, physical_package_id}`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::{Fs, Need};
use super::parse::ParseError;
use super::parse::{cpu_list::parse_cpu_list, cpuinfo::parse_cpuinfo, status::parse_cpus_allowed};
use super::source::{Fallback, Figure, Source, WarningKind};
use super::{affinity, CpuSet};

const CPU_DIR: &str = "/sys/devices/system/cpu";
const ONLINE: &str = "/sys/devices/system/cpu/online";
const CPUINFO: &str = "/proc/cpuinfo";
const STATUS: &str = "/proc/self/status";

/// What the probe found about CPUs, each figure with its source.
///
/// Serialized as `{"logical": Figure, "affinity": Figure, "affinity_list": "0-3",
/// "usable_cores": Figure, "performance_cores": Figure | null}` (see
/// [`Machine`](super::Machine) for the whole document).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cpus {
    logical: Figure<usize>,
    affinity: Figure<usize>,
    affinity_list: CpuSet,
    usable_cores: Figure<usize>,
    #[serde(default)]
    performance_cores: Option<Figure<usize>>,
}

impl Cpus {
    /// Logical CPUs online on the machine.
    pub fn logical(&self) -> &Figure<usize> {
        &self.logical
    }

    /// How many logical CPUs the process's affinity mask allows (online ones only).
    pub fn affinity(&self) -> &Figure<usize> {
        &self.affinity
    }

    /// The CPUs of the affinity mask (online ones only).
    pub fn affinity_list(&self) -> &CpuSet {
        &self.affinity_list
    }

    /// Distinct physical cores, (package, core) pairs, among the affinity mask's CPUs.
    pub fn usable_cores(&self) -> &Figure<usize> {
        &self.usable_cores
    }

    /// Of the [usable cores](Self::usable_cores), those of the fastest kind, where the system
    /// tells kinds apart (Apple silicon's performance cores, `hw.perflevel0.physicalcpu`;
    /// Windows' highest `EfficiencyClass`); `None` where all cores are of one kind or the
    /// system does not say.
    pub fn performance_cores(&self) -> Option<&Figure<usize>> {
        self.performance_cores.as_ref()
    }

    /// Figures read by the system calls of a platform without `/proc` and `/sys`: every CPU
    /// is in the affinity mask unless `affinity` is fewer.
    pub(crate) fn native(
        logical: Figure<usize>,
        affinity: Figure<usize>,
        usable_cores: Figure<usize>,
        performance_cores: Option<Figure<usize>>,
    ) -> Self {
        let n = u32::try_from(affinity.get()).unwrap_or(u32::MAX);
        Cpus {
            logical,
            affinity,
            affinity_list: CpuSet::from_ids((0..n).collect()),
            usable_cores,
            performance_cores,
        }
    }

    /// Figures given by the caller rather than probed.
    pub(crate) fn given(logical: usize, cores: usize) -> Self {
        let logical = logical.max(1);
        Cpus {
            logical: Figure::new(logical, Source::Given),
            affinity: Figure::new(logical, Source::Given),
            affinity_list: CpuSet::from_ids(
                (0..u32::try_from(logical).unwrap_or(u32::MAX)).collect(),
            ),
            usable_cores: Figure::new(cores.clamp(1, logical), Source::Given),
            performance_cores: None,
        }
    }
}

/// Probes the CPUs under `fs`'s root.
pub(crate) fn probe(fs: &mut Fs) -> Cpus {
    let online = online_cpus(fs);
    let (affinity_list, affinity_source) = affinity_cpus(fs, online.as_ref().map(|(set, _)| set));
    let logical = match online {
        Some((set, source)) => Figure::new(set.len(), source),
        // The CPUs the process may use exist, so they are the best lower bound left.
        None if !matches!(affinity_source, Source::Fallback { .. }) => {
            Figure::new(affinity_list.len(), affinity_source.clone())
        }
        None => Figure::new(
            1,
            Source::Fallback {
                fallback: Fallback::OneCpu,
            },
        ),
    };
    let affinity_list = if affinity_list.is_empty() {
        // Only when nothing at all could be read: CPU 0 stands for the assumed single CPU.
        CpuSet::from_ids(vec![0])
    } else {
        affinity_list
    };
    let usable_cores = usable_cores(fs, &affinity_list);
    Cpus {
        logical,
        affinity: Figure::new(affinity_list.len(), affinity_source),
        affinity_list,
        usable_cores,
        performance_cores: None,
    }
}

/// The online CPUs: sysfs `online`, else the `processor` blocks of `/proc/cpuinfo`.
fn online_cpus(fs: &mut Fs) -> Option<(CpuSet, Source)> {
    let consequence = "counting CPUs in /proc/cpuinfo";
    if let Some(set) = fs.load(
        Path::new(ONLINE),
        Need::Required,
        consequence,
        parse_cpu_list,
    ) {
        if !set.is_empty() {
            return Some((set, Source::file(ONLINE)));
        }
        fs.warn(
            WarningKind::Malformed,
            Some(Path::new(ONLINE)),
            format!("empty; {consequence}"),
        );
    }
    let consequence = "logical CPUs unknown";
    let entries = fs.load(
        Path::new(CPUINFO),
        Need::Required,
        consequence,
        parse_cpuinfo,
    )?;
    let set = CpuSet::from_ids(entries.iter().map(|e| e.processor).collect());
    if set.is_empty() {
        fs.warn(
            WarningKind::Malformed,
            Some(Path::new(CPUINFO)),
            format!("no processor lines; {consequence}"),
        );
        return None;
    }
    Some((set, Source::file(CPUINFO)))
}

/// The affinity mask, restricted to online CPUs: the kernel (at `/`) or `Cpus_allowed_list`,
/// else every online CPU.
fn affinity_cpus(fs: &mut Fs, online: Option<&CpuSet>) -> (CpuSet, Source) {
    let fallback = |online: Option<&CpuSet>| {
        (
            online.cloned().unwrap_or_default(),
            Source::Fallback {
                fallback: Fallback::AllOnlineCpus,
            },
        )
    };
    let from_kernel = if fs.is_host_root() {
        affinity::sched_affinity().map(|set| {
            (
                set,
                Source::Syscall {
                    name: "sched_getaffinity".into(),
                },
            )
        })
    } else {
        None
    };
    let found = from_kernel.or_else(|| {
        fs.load(
            Path::new(STATUS),
            Need::Required,
            "assuming every online CPU is allowed",
            parse_cpus_allowed,
        )
        .map(|set| (set, Source::file(STATUS)))
    });
    let Some((mask, source)) = found else {
        return fallback(online);
    };
    // `Cpus_allowed_list` may name possible-but-offline CPUs; only online ones can run work.
    let mask = match online {
        Some(online) => mask.intersection(online),
        None => mask,
    };
    if mask.is_empty() {
        fs.warn(
            WarningKind::Inconsistent,
            Some(Path::new(STATUS)),
            "the affinity mask holds no online CPU; assuming every online CPU is allowed",
        );
        return fallback(online);
    }
    (mask, source)
}

/// Distinct (package, core) pairs among `cpus`: sysfs topology, else `/proc/cpuinfo`, else one
/// core per CPU.
fn usable_cores(fs: &mut Fs, cpus: &CpuSet) -> Figure<usize> {
    if let Some(count) = cores_from_sysfs(fs, cpus) {
        return Figure::new(
            count,
            Source::Topology {
                dir: PathBuf::from(CPU_DIR),
            },
        );
    }
    if let Some(count) = cores_from_cpuinfo(fs, cpus) {
        return Figure::new(count, Source::file(CPUINFO));
    }
    Figure::new(
        cpus.len(),
        Source::Fallback {
            fallback: Fallback::CoresAreCpus,
        },
    )
}

/// A core is named by its package and the set of CPUs sharing it. The sibling list, unlike
/// `core_id`, is unique within a package even where dies repeat core numbers.
fn cores_from_sysfs(fs: &mut Fs, cpus: &CpuSet) -> Option<usize> {
    const CONSEQUENCE: &str = "counting cores from /proc/cpuinfo";
    let mut cores: BTreeSet<(i64, Vec<u32>)> = BTreeSet::new();
    for &cpu in cpus.ids() {
        let dir = PathBuf::from(format!("{CPU_DIR}/cpu{cpu}/topology"));
        // `core_cpus_list` since Linux 5.3; `thread_siblings_list` before (cputopology.rst).
        // The older file is the fallback only for a missing newer one: a malformed newer file
        // says the topology cannot be trusted.
        let core_cpus = dir.join("core_cpus_list");
        let siblings_path = if fs.exists(&core_cpus) {
            core_cpus
        } else {
            dir.join("thread_siblings_list")
        };
        let siblings = fs.load(&siblings_path, Need::Required, CONSEQUENCE, parse_cpu_list)?;
        // Some platforms write -1 when the package is unknown; it is still one package.
        let package = fs.load(
            &dir.join("physical_package_id"),
            Need::Required,
            CONSEQUENCE,
            parse_i64,
        )?;
        if !siblings.contains(cpu) {
            fs.warn(
                WarningKind::Inconsistent,
                Some(&siblings_path),
                format!("does not list CPU {cpu} itself; {CONSEQUENCE}"),
            );
            return None;
        }
        cores.insert((package, siblings.ids().to_vec()));
    }
    Some(cores.len())
}

fn cores_from_cpuinfo(fs: &mut Fs, cpus: &CpuSet) -> Option<usize> {
    const CONSEQUENCE: &str = "counting each CPU as a core";
    let entries = fs.load(
        Path::new(CPUINFO),
        Need::Required,
        CONSEQUENCE,
        parse_cpuinfo,
    )?;
    let ids: HashMap<u32, (Option<u32>, Option<u32>)> = entries
        .iter()
        .map(|e| (e.processor, (e.physical_id, e.core_id)))
        .collect();
    let mut cores = BTreeSet::new();
    for &cpu in cpus.ids() {
        match ids.get(&cpu) {
            Some(&(Some(package), Some(core))) => {
                cores.insert((package, core));
            }
            _ => {
                fs.warn(
                    WarningKind::Missing,
                    Some(Path::new(CPUINFO)),
                    format!("no \"physical id\" and \"core id\" for CPU {cpu}; {CONSEQUENCE}"),
                );
                return None;
            }
        }
    }
    Some(cores.len())
}

fn parse_i64(text: &str) -> Result<i64, ParseError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ParseError::new("a package number", text.trim()))
}
