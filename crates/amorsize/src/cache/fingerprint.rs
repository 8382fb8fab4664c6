//! What identifies a machine for the cache: a calibration measured under one fingerprint is
//! trusted only under the same fingerprint.

use serde::{Deserialize, Serialize};

/// The figures that, when any of them changes, make measured overheads stale: the CPU, how much
/// of it the process may use, the memory limit, the kernel, and this library's version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fingerprint {
    /// CPU model name (`model name` in `/proc/cpuinfo`), empty when unknown.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub logical_cpus: usize,
    /// Logical CPUs in the process's affinity mask.
    pub affinity_cpus: usize,
    /// Physical cores the process may run on.
    pub usable_cores: usize,
    /// CPU quota in CPUs (cgroup `cpu.max` quota ÷ period), when limited.
    pub cpu_quota: Option<f64>,
    /// Memory the process may use in all (machine memory or cgroup limit), in bytes, when known.
    pub memory_limit: Option<u64>,
    /// Kernel release (`uname -r`), empty when unknown.
    pub kernel: String,
    /// The amorsize version that measured, with the revision of the calibration protocol
    /// (`CALIBRATION_REVISION`).
    pub version: String,
}

/// Revision of how [`calibrate`](crate::calibrate) measures the costs; a calibration measured
/// by another revision is stale (it is part of the machine's fingerprint). Raise it with every
/// change to what the calibration times.
pub(crate) const CALIBRATION_REVISION: u32 = 3;

impl Fingerprint {
    /// This machine's fingerprint, from [`probe`](crate::probe) and this library's version.
    pub fn current() -> Fingerprint {
        let machine = crate::probe::machine();
        Fingerprint {
            cpu_model: machine.cpu_model().unwrap_or_default().to_owned(),
            logical_cpus: machine.logical_cpus(),
            affinity_cpus: machine.affinity_cpus(),
            usable_cores: machine.usable_cores(),
            cpu_quota: machine.cpu_quota(),
            memory_limit: machine.total_memory(),
            kernel: machine.kernel_release().unwrap_or_default().to_owned(),
            version: format!(
                "{}+calibration.{}",
                env!("CARGO_PKG_VERSION"),
                CALIBRATION_REVISION
            ),
        }
    }

    /// The text the cache keys rows with: the fingerprint as compact JSON, fields in declaration
    /// order, so equal fingerprints give equal keys.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn key(&self) -> String {
        // Serializing a struct of strings, integers and finite floats cannot fail; the fallback
        // keeps the signature infallible without a panic path.
        serde_json::to_string(self).unwrap_or_else(|_| format!("{self:?}"))
    }

    /// The fingerprint a key was made from, when it parses.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn from_key(key: &str) -> Option<Fingerprint> {
        serde_json::from_str(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fingerprint {
        Fingerprint {
            cpu_model: "Test CPU".into(),
            logical_cpus: 8,
            affinity_cpus: 8,
            usable_cores: 4,
            cpu_quota: Some(2.5),
            memory_limit: None,
            kernel: "6.1.0".into(),
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn key_round_trips_and_tells_fingerprints_apart() {
        let a = sample();
        assert_eq!(Fingerprint::from_key(&a.key()), Some(a.clone()));
        let mut b = a.clone();
        b.kernel = "6.2.0".into();
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), sample().key());
    }
}
