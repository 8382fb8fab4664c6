//! The machine where the kernel offers no `/proc` and `/sys` (macOS, Windows, the other
//! Unixes): the figures one platform file's system calls read ([`Raw`]), put together with
//! the same fallbacks and warnings as on Linux. The putting together is pure, so that it is
//! tested on every platform.

use std::path::PathBuf;

use super::source::{Fallback, Figure, Source, Warning, WarningKind};
use super::{Cgroup, Cpus, Machine, Memory, System};

/// What a platform's system calls read, each figure with its source; `None` where the call
/// failed or the platform has no such figure.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    /// Logical CPUs online.
    pub(crate) logical: Option<(usize, Source)>,
    /// `std::thread::available_parallelism`, the stand-in when `logical` is unknown.
    pub(crate) parallelism: Option<usize>,
    /// Logical CPUs the process may run on, where the platform has affinity masks.
    pub(crate) affinity: Option<(usize, Source)>,
    /// Physical cores.
    pub(crate) cores: Option<(usize, Source)>,
    /// Cores of the fastest kind, where the platform tells kinds apart.
    pub(crate) performance_cores: Option<(usize, Source)>,
    /// Physical memory, bytes.
    pub(crate) total_memory: Option<(u64, Source)>,
    /// Memory available to programs without swapping, bytes.
    pub(crate) available_memory: Option<(u64, Source)>,
    /// The CPU's model name.
    pub(crate) cpu_model: Option<(String, Source)>,
    /// The kernel's release.
    pub(crate) kernel: Option<(String, Source)>,
    /// What the platform file could not read, and what it did instead.
    pub(crate) warnings: Vec<Warning>,
}

impl Raw {
    /// Records that the call `call` failed, with what the probe does instead.
    pub(crate) fn failed(&mut self, call: &str, consequence: &str) {
        self.warnings.push(Warning::new(
            WarningKind::Unreadable,
            None,
            format!("{call} failed; {consequence}"),
        ));
    }
}

/// The machine the figures of `raw` describe.
pub(crate) fn machine(raw: Raw) -> Machine {
    let mut warnings = raw.warnings;
    let mut warn = |message: String| {
        warnings.push(Warning::new(WarningKind::Missing, None, message));
    };
    let logical = match (raw.logical, raw.parallelism) {
        (Some((n, source)), _) if n > 0 => Figure::new(n, source),
        (_, Some(n)) if n > 0 => {
            warn(
                "logical CPUs unknown; counted those std::thread::available_parallelism names"
                    .into(),
            );
            Figure::new(
                n,
                Source::Syscall {
                    name: "std::thread::available_parallelism".into(),
                },
            )
        }
        _ => {
            warn("logical CPUs unknown; assuming one CPU, so every plan is serial".into());
            Figure::new(
                1,
                Source::Fallback {
                    fallback: Fallback::OneCpu,
                },
            )
        }
    };
    let affinity = match raw.affinity {
        Some((n, source)) if n > 0 && n <= logical.get() => Figure::new(n, source),
        // No mask, or one that makes no sense with the count: every CPU is allowed.
        _ => logical.clone(),
    };
    let usable_cores = match raw.cores {
        // Cores outside the mask are not usable; a mask of fewer CPUs than cores leaves at
        // most as many cores as CPUs.
        Some((n, source)) if n > 0 => Figure::new(n.min(affinity.get()), source),
        _ => {
            warn(format!(
                "physical cores unknown; counting each of the {} CPUs as a core",
                affinity.get()
            ));
            Figure::new(
                affinity.get(),
                Source::Fallback {
                    fallback: Fallback::CoresAreCpus,
                },
            )
        }
    };
    let performance_cores = raw
        .performance_cores
        .filter(|(n, _)| *n > 0 && *n < usable_cores.get())
        .map(|(n, source)| Figure::new(n, source));
    let memory =
        |figure: Option<(u64, Source)>, what: &str, warn: &mut dyn FnMut(String)| match figure {
            Some((bytes, source)) => Figure::new(Some(bytes), source),
            None => {
                warn(format!("{what} unknown; plans are not capped by memory"));
                Figure::new(None, Source::Absent)
            }
        };
    let total = memory(raw.total_memory, "total memory", &mut warn);
    let mut available = memory(raw.available_memory, "available memory", &mut warn);
    if let (Some(t), Some(a)) = (total.get(), available.get()) {
        if a > t {
            available = Figure::new(Some(t), available.source().clone());
        }
    }
    let text = |figure: Option<(String, Source)>| match figure {
        Some((value, source)) if !value.trim().is_empty() => {
            Figure::new(Some(value.trim().to_owned()), source)
        }
        _ => Figure::new(None, Source::Absent),
    };
    Machine {
        root: PathBuf::from("/"),
        cpu: Cpus::native(logical, affinity, usable_cores, performance_cores),
        cgroup: Cgroup::none(None),
        memory: Memory::native(total, available),
        system: System::native(text(raw.cpu_model), text(raw.kernel)),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(name: &str) -> Source {
        Source::Sysctl { name: name.into() }
    }

    #[test]
    fn the_figures_keep_their_sources() {
        let m = machine(Raw {
            logical: Some((10, sysctl("hw.logicalcpu"))),
            parallelism: Some(10),
            cores: Some((10, sysctl("hw.physicalcpu"))),
            performance_cores: Some((8, sysctl("hw.perflevel0.physicalcpu"))),
            total_memory: Some((16 << 30, sysctl("hw.memsize"))),
            available_memory: Some((9 << 30, sysctl("kern.memorystatus_level"))),
            kernel: Some(("24.1.0\n".into(), sysctl("kern.osrelease"))),
            ..Raw::default()
        });
        assert_eq!(
            (m.logical_cpus(), m.affinity_cpus(), m.usable_cores()),
            (10, 10, 10)
        );
        assert_eq!(m.cpu().usable_cores().source(), &sysctl("hw.physicalcpu"));
        let perf = m.cpu().performance_cores().expect("told apart");
        assert_eq!(
            (perf.get(), perf.source()),
            (8, &sysctl("hw.perflevel0.physicalcpu"))
        );
        assert_eq!(m.total_memory(), Some(16 << 30));
        assert_eq!(m.available_memory(), Some(9 << 30));
        assert_eq!(m.kernel_release(), Some("24.1.0"));
        assert_eq!(m.cpu_model(), None);
        assert_eq!(m.cpu_quota(), None);
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
    }

    #[test]
    fn cores_of_one_kind_name_no_performance_cores() {
        let m = machine(Raw {
            logical: Some((8, sysctl("hw.logicalcpu"))),
            cores: Some((4, sysctl("hw.physicalcpu"))),
            performance_cores: Some((4, sysctl("hw.perflevel0.physicalcpu"))),
            ..Raw::default()
        });
        assert!(m.cpu().performance_cores().is_none());
    }

    #[test]
    fn an_affinity_mask_bounds_the_usable_cores() {
        let call = |name: &str| Source::Syscall { name: name.into() };
        let m = machine(Raw {
            logical: Some((16, call("GetActiveProcessorCount"))),
            affinity: Some((2, call("GetProcessAffinityMask"))),
            cores: Some((8, call("GetLogicalProcessorInformationEx"))),
            ..Raw::default()
        });
        assert_eq!(
            (m.logical_cpus(), m.affinity_cpus(), m.usable_cores()),
            (16, 2, 2)
        );
    }

    #[test]
    fn an_unknown_count_falls_back_to_std_then_to_one_cpu_and_says_so() {
        let m = machine(Raw {
            parallelism: Some(6),
            ..Raw::default()
        });
        assert_eq!(m.logical_cpus(), 6);
        assert!(matches!(m.cpu().logical().source(), Source::Syscall { .. }));
        assert_eq!(
            m.cpu().usable_cores().source(),
            &Source::Fallback {
                fallback: Fallback::CoresAreCpus
            }
        );
        assert!(m
            .warnings()
            .iter()
            .any(|w| w.message().contains("available_parallelism")));
        assert!(m
            .warnings()
            .iter()
            .any(|w| w.message().contains("physical cores")));

        let m = machine(Raw::default());
        assert_eq!(m.logical_cpus(), 1);
        assert_eq!(
            m.cpu().logical().source(),
            &Source::Fallback {
                fallback: Fallback::OneCpu
            }
        );
        assert!(m.warnings().iter().any(|w| w.message().contains("one CPU")));
        assert!(m
            .warnings()
            .iter()
            .any(|w| w.message().contains("available memory")));
    }

    #[test]
    fn available_memory_is_at_most_the_total() {
        let m = machine(Raw {
            logical: Some((2, sysctl("hw.logicalcpu"))),
            cores: Some((2, sysctl("hw.physicalcpu"))),
            total_memory: Some((1 << 30, sysctl("hw.memsize"))),
            available_memory: Some((2 << 30, sysctl("kern.memorystatus_level"))),
            ..Raw::default()
        });
        assert_eq!(m.available_memory(), Some(1 << 30));
    }
}
