//! Locating this process's cgroups and reading their CPU and memory limits.
//!
//! The cgroup of each hierarchy comes from `/proc/self/cgroup`, the place it is mounted from
//! `/proc/self/mountinfo` (`cgroups(7)`): the directory is the mount point joined with the
//! cgroup path minus the mount's root. Limits apply along the whole path, so every level from
//! the process's cgroup up to the mount point is read and the tightest limit kept.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::{Fs, Need};
use super::parse::cgroup::{
    parse_cfs, parse_cpu_max, parse_memory_limit, parse_memory_stat, parse_memory_usage,
    parse_v1_memory_limit,
};
use super::parse::mountinfo::{parse_mountinfo_lines, Mount};
use super::parse::proc_cgroup::{parse_proc_cgroup, CgroupEntry};
use super::source::{Figure, Source, WarningKind};

const PROC_CGROUP: &str = "/proc/self/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Which cgroup hierarchies the process is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// No cgroup with a CPU or memory controller was found.
    None,
    /// cgroup v1 controllers only.
    V1,
    /// The cgroup v2 unified hierarchy only.
    V2,
    /// Both: v1 controllers beside a mounted v2 hierarchy (systemd's "hybrid" layout).
    Hybrid,
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupVersion::None => "none",
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Hybrid => "hybrid (v1 and v2)",
        })
    }
}

/// The process's cgroup directory in each hierarchy that can limit it, as paths on the probed
/// machine; `None` where the hierarchy was not found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDirs {
    /// In the cgroup v2 unified hierarchy.
    pub v2: Option<PathBuf>,
    /// In the cgroup v1 hierarchy with the `cpu` controller.
    pub cpu_v1: Option<PathBuf>,
    /// In the cgroup v1 hierarchy with the `memory` controller.
    pub memory_v1: Option<PathBuf>,
}

/// One located hierarchy: the process's cgroup directory and the mount point above it, both
/// as paths on the probed machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    mount_point: PathBuf,
    leaf: PathBuf,
}

impl Hierarchy {
    /// The directories from the process's cgroup up to the mount point, innermost first.
    fn levels(&self) -> impl Iterator<Item = &Path> {
        self.leaf
            .ancestors()
            .take_while(move |dir| dir.starts_with(&self.mount_point))
    }
}

/// The hierarchies that carry CPU and memory limits for this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Located {
    v2: Option<Hierarchy>,
    cpu_v1: Option<Hierarchy>,
    memory_v1: Option<Hierarchy>,
}

impl Located {
    pub(crate) fn dirs(&self) -> CgroupDirs {
        let leaf = |h: &Option<Hierarchy>| h.as_ref().map(|h| h.leaf.clone());
        CgroupDirs {
            v2: leaf(&self.v2),
            cpu_v1: leaf(&self.cpu_v1),
            memory_v1: leaf(&self.memory_v1),
        }
    }

    pub(crate) fn version(&self) -> CgroupVersion {
        let v1 = self.cpu_v1.is_some() || self.memory_v1.is_some();
        match (v1, self.v2.is_some()) {
            (false, false) => CgroupVersion::None,
            (true, false) => CgroupVersion::V1,
            (false, true) => CgroupVersion::V2,
            (true, true) => CgroupVersion::Hybrid,
        }
    }
}

/// Finds the process's cgroup directories for the v2 hierarchy and the v1 `cpu` and `memory`
/// controllers.
pub(crate) fn locate(fs: &mut Fs) -> Located {
    const CONSEQUENCE: &str = "cgroup limits not checked";
    let Some(entries) = fs.load(
        Path::new(PROC_CGROUP),
        Need::Required,
        CONSEQUENCE,
        parse_proc_cgroup,
    ) else {
        return Located::default();
    };
    if entries.is_empty() {
        fs.warn(
            WarningKind::Malformed,
            Some(Path::new(PROC_CGROUP)),
            format!("empty; {CONSEQUENCE}"),
        );
        return Located::default();
    }
    let Some(mounts) = read_mounts(fs) else {
        return Located::default();
    };
    // Which hierarchies lack a mount, to say so below.
    let mut unmounted = Vec::new();
    let mut find = |fs: &mut Fs, entry: Option<&CgroupEntry>, is_mount: &dyn Fn(&Mount) -> bool| {
        let entry = entry?;
        let candidates: Vec<&Mount> = mounts.iter().filter(|m| is_mount(m)).collect();
        if candidates.is_empty() {
            unmounted.push(entry.clone());
            return None;
        }
        resolve(fs, entry, &candidates)
    };
    let located = Located {
        v2: find(fs, entries.iter().find(|e| e.is_v2()), &|m| {
            m.fs_type == "cgroup2"
        }),
        cpu_v1: find(fs, entries.iter().find(|e| e.has_controller("cpu")), &|m| {
            m.has_v1_controller("cpu")
        }),
        memory_v1: find(
            fs,
            entries.iter().find(|e| e.has_controller("memory")),
            &|m| m.has_v1_controller("memory"),
        ),
    };
    // Kernels list a `0::` line even when only v1 is mounted, so an unmounted v2 hierarchy is
    // news only when nothing else was found.
    for entry in unmounted {
        if !entry.is_v2() || located.version() == CgroupVersion::None {
            fs.warn(
                WarningKind::Missing,
                Some(Path::new(MOUNTINFO)),
                format!(
                    "no mount for the cgroup \"{}:{}:{}\"; its limits not checked",
                    entry.hierarchy,
                    entry.controllers.join(","),
                    entry.path
                ),
            );
        }
    }
    located
}

/// The mounts of `/proc/self/mountinfo`. A malformed line is skipped, not fatal: the cgroup
/// mounts on the other lines still carry the limits, and losing them would be worse.
fn read_mounts(fs: &mut Fs) -> Option<Vec<Mount>> {
    let path = Path::new(MOUNTINFO);
    let text = fs.read(path, Need::Required, "cgroup limits not checked")?;
    let mut mounts = Vec::new();
    let mut bad = Vec::new();
    for line in parse_mountinfo_lines(&text) {
        match line {
            Ok(mount) => mounts.push(mount),
            Err(err) => bad.push(err),
        }
    }
    if let Some(first) = bad.first() {
        fs.warn(
            WarningKind::Malformed,
            Some(path),
            format!(
                "{} malformed line(s) skipped, the first: {first}; mounts on them not considered",
                bad.len()
            ),
        );
    }
    Some(mounts)
}

/// The directory of `entry`'s cgroup under the mount whose root contains it (the longest such
/// root, when the hierarchy is mounted more than once).
fn resolve(fs: &mut Fs, entry: &CgroupEntry, mounts: &[&Mount]) -> Option<Hierarchy> {
    let path = Path::new(&entry.path);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        fs.warn(
            WarningKind::Malformed,
            Some(Path::new(PROC_CGROUP)),
            format!(
                "cgroup path {:?} climbs with \"..\"; limits read at the mount point only",
                entry.path
            ),
        );
    }
    let best = mounts
        .iter()
        .filter_map(|m| Some((m, path.strip_prefix(&m.root).ok()?)))
        .filter(|(_, rel)| rel.components().all(|c| matches!(c, Component::Normal(_))))
        .max_by_key(|(m, _)| m.root.len());
    match best {
        Some((mount, rel)) => Some(Hierarchy {
            mount_point: PathBuf::from(&mount.mount_point),
            // `components` drops the trailing `/` that joining an empty `rel` leaves.
            leaf: Path::new(&mount.mount_point)
                .join(rel)
                .components()
                .collect(),
        }),
        None => {
            let mount = mounts.first()?;
            // With a cgroup namespace the path may not lie under the mount's root (it shows as
            // `/..`); the mount point is then the only level known to be the process's.
            fs.warn(
                WarningKind::Inconsistent,
                Some(Path::new(MOUNTINFO)),
                format!(
                    "cgroup {:?} is not under the root {:?} of the mount at {}; limits read at the mount point only",
                    entry.path, mount.root, mount.mount_point
                ),
            );
            Some(Hierarchy {
                mount_point: PathBuf::from(&mount.mount_point),
                leaf: PathBuf::from(&mount.mount_point),
            })
        }
    }
}

/// The tightest CPU quota along the located hierarchies, in CPUs.
pub(crate) fn cpu_quota(fs: &mut Fs, located: &Located) -> Figure<Option<f64>> {
    const CONSEQUENCE: &str = "this level's CPU quota ignored";
    let mut tightest: Option<(f64, Source)> = None;
    let mut keep = |cpus: f64, source: Source| {
        if tightest.as_ref().map_or(true, |(best, _)| cpus < *best) {
            tightest = Some((cpus, source));
        }
    };
    if let Some(v2) = &located.v2 {
        for dir in v2.levels() {
            let path = dir.join("cpu.max");
            if let Some(Some(cpus)) = fs.load(&path, Need::Optional, CONSEQUENCE, parse_cpu_max) {
                keep(cpus, Source::file(path));
            }
        }
    }
    if let Some(v1) = &located.cpu_v1 {
        for dir in v1.levels() {
            let quota_path = dir.join("cpu.cfs_quota_us");
            let period_path = dir.join("cpu.cfs_period_us");
            let Some(quota) = fs.read(&quota_path, Need::Optional, CONSEQUENCE) else {
                continue;
            };
            let Some(period) = fs.read(&period_path, Need::Required, CONSEQUENCE) else {
                continue;
            };
            match parse_cfs(&quota, &period) {
                Ok(Some(cpus)) => keep(
                    cpus,
                    Source::CfsQuota {
                        quota: quota_path,
                        period: period_path,
                    },
                ),
                Ok(None) => {}
                Err(err) => fs.warn(
                    WarningKind::Malformed,
                    Some(&quota_path),
                    format!("with {}: {err}; {CONSEQUENCE}", period_path.display()),
                ),
            }
        }
    }
    match tightest {
        Some((cpus, source)) => Figure::new(Some(cpus), source),
        None => Figure::new(None, Source::Absent),
    }
}

/// Memory limits found along the located hierarchies, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MemoryLimits {
    /// The tightest hard limit (`memory.max`, v1 `memory.limit_in_bytes`).
    pub(crate) max: Figure<Option<u64>>,
    /// The tightest v2 soft limit (`memory.high`), above which the kernel throttles and
    /// reclaims.
    pub(crate) high: Figure<Option<u64>>,
    /// The least room left under any level's limit: the smaller of its `max` and `high`,
    /// minus its working set (usage less inactive page cache).
    pub(crate) headroom: Figure<Option<u64>>,
}

/// Reads the memory limits and usage at every level of the located hierarchies.
pub(crate) fn memory_limits(fs: &mut Fs, located: &Located) -> MemoryLimits {
    const CONSEQUENCE: &str = "this level's memory limit ignored";
    let mut max = Tightest::default();
    let mut high = Tightest::default();
    let mut headroom = Tightest::default();
    let mut level = |fs: &mut Fs, limits: [(Option<u64>, PathBuf); 2], usage: Usage| {
        let Some((limit, limit_path)) = limits
            .into_iter()
            .filter_map(|(limit, path)| Some((limit?, path)))
            .min_by_key(|(limit, _)| *limit)
        else {
            return;
        };
        match usage.read(fs, limit_path.clone()) {
            Some((used, source)) => headroom.keep(limit.saturating_sub(used), source),
            None => headroom.keep(limit, Source::file(limit_path)),
        }
    };
    if let Some(v2) = &located.v2 {
        for dir in v2.levels() {
            let max_path = dir.join("memory.max");
            let high_path = dir.join("memory.high");
            let level_max = fs
                .load(&max_path, Need::Optional, CONSEQUENCE, parse_memory_limit)
                .flatten();
            let level_high = fs
                .load(&high_path, Need::Optional, CONSEQUENCE, parse_memory_limit)
                .flatten();
            if let Some(bytes) = level_max {
                max.keep(bytes, Source::file(&max_path));
            }
            if let Some(bytes) = level_high {
                high.keep(bytes, Source::file(&high_path));
            }
            let usage = Usage {
                usage: dir.join("memory.current"),
                stat: dir.join("memory.stat"),
                inactive_key: "inactive_file",
            };
            level(fs, [(level_max, max_path), (level_high, high_path)], usage);
        }
    }
    if let Some(v1) = &located.memory_v1 {
        for dir in v1.levels() {
            let limit_path = dir.join("memory.limit_in_bytes");
            let level_max = fs
                .load(
                    &limit_path,
                    Need::Optional,
                    CONSEQUENCE,
                    parse_v1_memory_limit,
                )
                .flatten();
            if let Some(bytes) = level_max {
                max.keep(bytes, Source::file(&limit_path));
            }
            let usage = Usage {
                usage: dir.join("memory.usage_in_bytes"),
                stat: dir.join("memory.stat"),
                // Hierarchical, like `memory.usage_in_bytes` (cgroup-v1/memory.rst, 5.2).
                inactive_key: "total_inactive_file",
            };
            level(fs, [(level_max, limit_path), (None, PathBuf::new())], usage);
        }
    }
    MemoryLimits {
        max: max.figure(),
        high: high.figure(),
        headroom: headroom.figure(),
    }
}

/// Where one cgroup level's memory usage is read.
struct Usage {
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1).
    usage: PathBuf,
    /// `memory.stat` beside it.
    stat: PathBuf,
    /// The key of the reclaimable page cache in `memory.stat`.
    inactive_key: &'static str,
}

impl Usage {
    /// The working set in bytes, usage minus inactive page cache (which the kernel reclaims
    /// before it lets the limit bite, as `MemAvailable` counts it available), with the source
    /// of the room left under `limit`. Without `memory.stat` the whole usage counts: less
    /// room, never more.
    fn read(self, fs: &mut Fs, limit: PathBuf) -> Option<(u64, Source)> {
        let usage = fs.load(
            &self.usage,
            Need::Required,
            "room under the limit taken as the whole limit",
            parse_memory_usage,
        )?;
        let key = self.inactive_key;
        let inactive = fs
            .load(
                &self.stat,
                Need::Optional,
                "inactive page cache counted as used",
                |text| parse_memory_stat(text, key),
            )
            .flatten();
        let source = Source::Headroom {
            limit,
            usage: self.usage,
            inactive_file: inactive.map(|_| self.stat),
        };
        Some((usage.saturating_sub(inactive.unwrap_or(0)), source))
    }
}

/// The smallest value seen, with its source.
#[derive(Default)]
pub(crate) struct Tightest(Option<(u64, Source)>);

impl Tightest {
    pub(crate) fn keep(&mut self, value: u64, source: Source) {
        if self.0.as_ref().map_or(true, |(best, _)| value < *best) {
            self.0 = Some((value, source));
        }
    }

    pub(crate) fn figure(self) -> Figure<Option<u64>> {
        match self.0 {
            Some((value, source)) => Figure::new(Some(value), source),
            None => Figure::new(None, Source::Absent),
        }
    }
}
