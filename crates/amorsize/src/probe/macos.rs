//! macOS: the figures `sysctl(3)` gives (`sysctl -a hw kern` lists them; Apple's
//! `<sys/sysctl.h>`), one system call each.
//!
//! - logical CPUs: `hw.logicalcpu`; physical cores: `hw.physicalcpu`;
//! - on Apple silicon, which has performance and efficiency cores, `hw.nperflevels` is 2 and
//!   `hw.perflevel0.physicalcpu` counts the performance cores (level 0 is the fastest);
//! - memory: `hw.memsize`, and the kernel's share of it still available,
//!   `kern.memorystatus_level` (a percentage: free, purgeable and file-backed pages, which the
//!   kernel reclaims before it compresses or swaps; `memory_pressure` prints it as "System-wide
//!   memory free percentage");
//! - CPU model `machdep.cpu.brand_string`, kernel release `kern.osrelease`.
//!
//! macOS has no CPU affinity masks for processes, so every CPU is allowed.

use std::ffi::CStr;

use super::native::Raw;
use super::source::Source;

/// Reads the figures.
pub(crate) fn raw() -> Raw {
    let mut raw = Raw {
        parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
        ..Raw::default()
    };
    let count = |name: &CStr, raw: &mut Raw, consequence: &str| -> Option<(usize, Source)> {
        match sys::int(name) {
            Some(n) if n > 0 => Some((n as usize, sysctl(name))),
            _ => {
                raw.failed(&format!("sysctl {}", name.to_string_lossy()), consequence);
                None
            }
        }
    };
    raw.logical = count(
        c"hw.logicalcpu",
        &mut raw,
        "counting CPUs with std::thread::available_parallelism",
    );
    raw.cores = count(c"hw.physicalcpu", &mut raw, "counting each CPU as a core");
    // One level of cores (Intel Macs) has no second kind to tell apart; a missing name is
    // normal there, and no warning.
    if sys::int(c"hw.nperflevels").is_some_and(|levels| levels > 1) {
        raw.performance_cores = count(
            c"hw.perflevel0.physicalcpu",
            &mut raw,
            "performance cores unknown",
        );
    }
    raw.total_memory = match sys::u64(c"hw.memsize") {
        Some(bytes) if bytes > 0 => Some((bytes, sysctl(c"hw.memsize"))),
        _ => {
            raw.failed("sysctl hw.memsize", "total memory unknown");
            None
        }
    };
    raw.available_memory = match (
        raw.total_memory.as_ref(),
        sys::int(c"kern.memorystatus_level"),
    ) {
        (Some((total, _)), Some(percent)) if (0..=100).contains(&percent) => Some((
            total / 100 * percent as u64,
            Source::Sysctl {
                name: "kern.memorystatus_level × hw.memsize".into(),
            },
        )),
        _ => {
            raw.failed("sysctl kern.memorystatus_level", "available memory unknown");
            None
        }
    };
    raw.cpu_model =
        sys::string(c"machdep.cpu.brand_string").map(|s| (s, sysctl(c"machdep.cpu.brand_string")));
    raw.kernel = sys::string(c"kern.osrelease").map(|s| (s, sysctl(c"kern.osrelease")));
    raw
}

fn sysctl(name: &CStr) -> Source {
    Source::Sysctl {
        name: name.to_string_lossy().into_owned(),
    }
}

/// `sysctlbyname(3)` for the three kinds of value the probe reads.
mod sys {
    use std::ffi::CStr;

    /// A 32-bit integer value (`CTLTYPE_INT`).
    pub(super) fn int(name: &CStr) -> Option<i32> {
        let mut value: i32 = 0;
        let mut len = std::mem::size_of::<i32>();
        // SAFETY: `name` is NUL-terminated; `value` is a live, writable i32 and `len` says
        // its size, so the kernel writes at most that many bytes; no new value is set.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                (&mut value as *mut i32).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0 && len == std::mem::size_of::<i32>()).then_some(value)
    }

    /// A 64-bit integer value (`CTLTYPE_QUAD`).
    pub(super) fn u64(name: &CStr) -> Option<u64> {
        let mut value: u64 = 0;
        let mut len = std::mem::size_of::<u64>();
        // SAFETY: as in `int`, for a live, writable u64.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                (&mut value as *mut u64).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0 && len == std::mem::size_of::<u64>()).then_some(value)
    }

    /// A string value (`CTLTYPE_STRING`): asked its length first, then read.
    pub(super) fn string(name: &CStr) -> Option<String> {
        let mut len = 0usize;
        // SAFETY: a null buffer asks only for the value's size, written to `len`.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 || len == 0 {
            return None;
        }
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is live and writable for `len` bytes, which the kernel writes at most.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return None;
        }
        buf.truncate(len);
        let text = CStr::from_bytes_until_nul(&buf).ok()?;
        Some(text.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::Source;

    #[test]
    fn this_machine_is_read_without_fallbacks() {
        let m = crate::probe::machine();
        let assumed = |s: &Source| matches!(s, Source::Fallback { .. });
        assert!(!assumed(m.cpu().logical().source()), "{:?}", m.cpu());
        assert!(!assumed(m.cpu().usable_cores().source()), "{:?}", m.cpu());
        assert!(m.usable_cores() >= 1 && m.usable_cores() <= m.logical_cpus());
        let (total, available) = (m.total_memory(), m.available_memory());
        assert!(total.is_some_and(|t| available.is_some_and(|a| a <= t)));
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
    }
}
