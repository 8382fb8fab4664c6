//! What names the machine beyond its counts: the CPU model and the kernel release.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fs::{Fs, Need};
use super::parse::cpuinfo::parse_cpu_model;
use super::source::{Figure, Source, WarningKind};

const CPUINFO: &str = "/proc/cpuinfo";
/// The kernel release, as `uname -r` prints it (`proc_sys_kernel(5)`).
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// The CPU model and kernel release, each with its source.
///
/// Serialized as `{"cpu_model": Figure<string | null>, "kernel": Figure<string | null>}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct System {
    cpu_model: Figure<Option<String>>,
    kernel: Figure<Option<String>>,
}

impl Default for System {
    fn default() -> Self {
        System {
            cpu_model: Figure::new(None, Source::Absent),
            kernel: Figure::new(None, Source::Absent),
        }
    }
}

impl System {
    /// The CPU model (`model name` in `/proc/cpuinfo`, or its equivalent elsewhere).
    pub fn cpu_model(&self) -> &Figure<Option<String>> {
        &self.cpu_model
    }

    /// The kernel release (`/proc/sys/kernel/osrelease`, as `uname -r`, or its equivalent
    /// elsewhere).
    pub fn kernel(&self) -> &Figure<Option<String>> {
        &self.kernel
    }

    /// Figures read by a platform's system calls.
    pub(crate) fn native(
        cpu_model: Figure<Option<String>>,
        kernel: Figure<Option<String>>,
    ) -> Self {
        System { cpu_model, kernel }
    }
}

/// Reads both under `fs`'s root. Their absence bounds nothing, so a missing file is silent;
/// an empty kernel release is a warning.
pub(crate) fn probe(fs: &mut Fs) -> System {
    let consequence = "CPU model unknown";
    let cpu_model = fs
        .read(Path::new(CPUINFO), Need::Optional, consequence)
        .and_then(|text| parse_cpu_model(&text));
    let kernel = fs
        .read(
            Path::new(OSRELEASE),
            Need::Optional,
            "kernel release unknown",
        )
        .and_then(|text| {
            let release = text.trim().to_owned();
            if release.is_empty() {
                fs.warn(
                    WarningKind::Malformed,
                    Some(Path::new(OSRELEASE)),
                    "empty; kernel release unknown",
                );
                return None;
            }
            Some(release)
        });
    let figure = |value: Option<String>, path: &str| match value {
        Some(value) => Figure::new(Some(value), Source::file(path)),
        None => Figure::new(None, Source::Absent),
    };
    System {
        cpu_model: figure(cpu_model, CPUINFO),
        kernel: figure(kernel, OSRELEASE),
    }
}
