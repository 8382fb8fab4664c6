//! Pure parsers for the text formats the probe reads: no file, no clock, only `&str` in and a
//! typed value or a [`ParseError`] out. They never panic, whatever the input (property tests
//! hold them to it), so a malformed system file becomes a warning, not a crash.
//!
//! Formats and their references:
//! - CPU lists (`/sys/devices/system/cpu/online`, `Cpus_allowed_list`): [`cpu_list`], see
//!   the kernel's `Documentation/admin-guide/cputopology.rst`;
//! - cgroup v2 `cpu.max`, `memory.max`/`memory.high`/`memory.current` and cgroup v1
//!   `cpu.cfs_quota_us`/`cpu.cfs_period_us`, `memory.limit_in_bytes`/`memory.usage_in_bytes`:
//!   [`cgroup`], see `Documentation/admin-guide/cgroup-v2.rst` and
//!   `Documentation/scheduler/sched-bwc.rst`;
//! - `/proc/self/cgroup` and `/proc/self/mountinfo`: [`proc_cgroup`], [`mountinfo`], see
//!   `cgroups(7)` and `proc_pid_mountinfo(5)`;
//! - `/proc/cpuinfo`, `/proc/meminfo`, `/proc/self/status`: [`cpuinfo`], [`meminfo`],
//!   [`status`], see `proc_cpuinfo(5)`, `proc_meminfo(5)`, `proc_pid_status(5)`;
//! - `/proc/loadavg` and `/proc/sys/kernel/sched_autogroup_enabled`: [`loadavg`],
//!   [`autogroup`], see `proc_loadavg(5)` and `sched(7)`; `/proc/self/task/*/stat`:
//!   [`task_stat`], see `proc_pid_stat(5)`; `/proc/stat`: [`proc_stat`], see `proc_stat(5)`.
//! - Windows' processor core records (`GetLogicalProcessorInformationEx`), bytes rather than
//!   text: [`processor_cores`].

pub mod autogroup;
pub mod cgroup;
pub mod cpu_list;
pub mod cpuinfo;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod proc_cgroup;
pub mod proc_stat;
pub mod processor_cores;
pub mod status;
pub mod task_stat;

use std::fmt;

/// Why a text could not be parsed: what was expected and the offending text (shortened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    expected: &'static str,
    found: String,
}

impl ParseError {
    /// A parse error: `expected` says what the format wants, `found` is the offending text.
    pub(crate) fn new(expected: &'static str, found: &str) -> Self {
        // Keep messages short whatever the file holds.
        const MAX_SHOWN: usize = 60;
        let mut shown: String = found.chars().take(MAX_SHOWN).collect();
        if found.chars().nth(MAX_SHOWN).is_some() {
            shown.push('…');
        }
        ParseError {
            expected,
            found: shown,
        }
    }

    /// What the format expected.
    pub fn expected(&self) -> &str {
        self.expected
    }

    /// The text found instead (at most 60 characters).
    pub fn found(&self) -> &str {
        &self.found
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found {:?}", self.expected, self.found)
    }
}

impl std::error::Error for ParseError {}

/// Parses a decimal unsigned integer, with surrounding whitespace allowed.
pub(crate) fn parse_u64(text: &str, expected: &'static str) -> Result<u64, ParseError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| ParseError::new(expected, text.trim()))
}
