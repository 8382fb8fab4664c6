//! Total and available memory: `/proc/meminfo` bounded by the cgroup limits.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cgroup::{MemoryLimits, Tightest};
use super::fs::{Fs, Need};
use super::parse::meminfo::{parse_meminfo, MemInfo};
use super::source::{Figure, Source, WarningKind};

const MEMINFO: &str = "/proc/meminfo";

/// What the probe found about memory, in bytes, each figure with its source.
///
/// Serialized as `{"host_total": Figure, "host_available": Figure, "total": Figure,
/// "available": Figure}`, values in bytes or `null` (see [`Machine`](super::Machine)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Memory {
    host_total: Figure<Option<u64>>,
    host_available: Figure<Option<u64>>,
    total: Figure<Option<u64>>,
    available: Figure<Option<u64>>,
}

impl Memory {
    /// The machine's memory, `MemTotal`.
    pub fn host_total(&self) -> &Figure<Option<u64>> {
        &self.host_total
    }

    /// The machine's available memory, `MemAvailable`.
    pub fn host_available(&self) -> &Figure<Option<u64>> {
        &self.host_available
    }

    /// Memory the process may use in all: the tightest of `MemTotal`, the cgroup hard limits
    /// and `memory.high`.
    pub fn total(&self) -> &Figure<Option<u64>> {
        &self.total
    }

    /// Memory available to the process: the tightest of `MemAvailable` and, at every cgroup
    /// level, the smaller of `memory.max` and `memory.high` (v1: `memory.limit_in_bytes`)
    /// minus the level's working set (usage less inactive page cache).
    pub fn available(&self) -> &Figure<Option<u64>> {
        &self.available
    }

    /// Figures read by a platform's system calls (no cgroups there): the host's are the
    /// process's.
    pub(crate) fn native(total: Figure<Option<u64>>, available: Figure<Option<u64>>) -> Self {
        Memory {
            host_total: total.clone(),
            host_available: available.clone(),
            total,
            available,
        }
    }

    /// Figures given by the caller rather than probed.
    pub(crate) fn given(total: Option<u64>, available: Option<u64>) -> Self {
        let given = |value: Option<u64>| {
            Figure::new(
                value,
                if value.is_some() {
                    Source::Given
                } else {
                    Source::Absent
                },
            )
        };
        Memory {
            host_total: given(total),
            host_available: given(available),
            total: given(total),
            available: given(available),
        }
    }
}

/// Reads `/proc/meminfo` and combines it with the cgroup limits.
pub(crate) fn probe(fs: &mut Fs, limits: &MemoryLimits) -> Memory {
    let path = Path::new(MEMINFO);
    let info = match fs.load(path, Need::Required, "host memory unknown", parse_meminfo) {
        Some(info) => {
            if info.total.is_none() {
                fs.warn(
                    WarningKind::Malformed,
                    Some(path),
                    "no MemTotal line; host memory unknown",
                );
            }
            if info.available.is_none() {
                // MemAvailable exists since Linux 3.14; without it only cgroup limits bound it.
                fs.warn(
                    WarningKind::Missing,
                    Some(path),
                    "no MemAvailable line; available memory bounded by cgroup limits only",
                );
            }
            info
        }
        None => MemInfo::default(),
    };
    let from_meminfo = |value: Option<u64>| match value {
        Some(bytes) => Figure::new(Some(bytes), Source::file(MEMINFO)),
        None => Figure::new(None, Source::Absent),
    };
    let host_total = from_meminfo(info.total);
    let host_available = from_meminfo(info.available);
    let total = tightest([&host_total, &limits.max, &limits.high]);
    let available = tightest([&host_available, &limits.headroom]);
    Memory {
        host_total,
        host_available,
        total,
        available,
    }
}

fn tightest<const N: usize>(figures: [&Figure<Option<u64>>; N]) -> Figure<Option<u64>> {
    let mut best = Tightest::default();
    for figure in figures {
        if let Some(bytes) = figure.get() {
            best.keep(bytes, figure.source().clone());
        }
    }
    best.figure()
}
