//! Windows: the figures of the Win32 API (Microsoft's documentation of each function).
//!
//! - logical CPUs: `GetActiveProcessorCount(ALL_PROCESSOR_GROUPS)`, every processor group;
//! - the process's CPUs: `GetProcessAffinityMask`, where the machine has one processor group
//!   (64 CPUs or fewer); a process on a machine of several groups may run on all of them;
//! - physical cores, and the performance cores where the cores differ in
//!   `EfficiencyClass`: `GetLogicalProcessorInformationEx(RelationProcessorCore)`, parsed by
//!   [`parse_processor_cores`](super::parse::processor_cores::parse_processor_cores);
//! - memory: `GlobalMemoryStatusEx` (`ullTotalPhys`, `ullAvailPhys`).
//!
//! The CPU model and the kernel's version are left unknown (they live in the registry).

use super::native::Raw;
use super::parse::processor_cores::parse_processor_cores;
use super::source::{Source, WarningKind};
use super::Warning;

fn call(name: &str) -> Source {
    Source::Syscall { name: name.into() }
}

/// Reads the figures.
pub(crate) fn raw() -> Raw {
    let mut raw = Raw {
        parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
        ..Raw::default()
    };
    raw.logical = match sys::active_processors() {
        0 => {
            raw.failed(
                "GetActiveProcessorCount",
                "counting CPUs with std::thread::available_parallelism",
            );
            None
        }
        n => Some((n as usize, call("GetActiveProcessorCount"))),
    };
    if sys::processor_groups() == 1 {
        match sys::process_affinity() {
            Some(mask) if mask != 0 => {
                raw.affinity = Some((mask.count_ones() as usize, call("GetProcessAffinityMask")));
            }
            _ => raw.failed("GetProcessAffinityMask", "assuming every CPU is allowed"),
        }
    }
    match sys::processor_cores().map(|buf| parse_processor_cores(&buf)) {
        Some(Ok(cores)) if cores.cores > 0 => {
            let source = call("GetLogicalProcessorInformationEx");
            raw.cores = Some((cores.cores, source.clone()));
            raw.performance_cores = cores.performance.map(|n| (n, source));
        }
        Some(Ok(_)) => raw.failed(
            "GetLogicalProcessorInformationEx",
            "it listed no cores; counting each CPU as a core",
        ),
        Some(Err(e)) => raw.warnings.push(Warning::new(
            WarningKind::Malformed,
            None,
            format!("GetLogicalProcessorInformationEx: {e}; counting each CPU as a core"),
        )),
        None => raw.failed(
            "GetLogicalProcessorInformationEx",
            "counting each CPU as a core",
        ),
    }
    match sys::memory_status() {
        Some((total, available)) => {
            raw.total_memory = Some((total, call("GlobalMemoryStatusEx")));
            raw.available_memory = Some((available, call("GlobalMemoryStatusEx")));
        }
        None => raw.failed("GlobalMemoryStatusEx", "memory unknown"),
    }
    raw
}

/// The Win32 calls, each in a function with its safety argument.
mod sys {
    use windows_sys::Win32::System::SystemInformation::{
        GetLogicalProcessorInformationEx, GlobalMemoryStatusEx, RelationProcessorCore,
        MEMORYSTATUSEX, SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX,
    };
    use windows_sys::Win32::System::Threading::{
        GetActiveProcessorCount, GetActiveProcessorGroupCount, GetCurrentProcess,
        GetProcessAffinityMask, ALL_PROCESSOR_GROUPS,
    };

    /// Logical processors in every group; 0 when the call fails.
    pub(super) fn active_processors() -> u32 {
        // SAFETY: takes a plain integer and touches no memory of ours.
        unsafe { GetActiveProcessorCount(ALL_PROCESSOR_GROUPS) }
    }

    /// Processor groups; 0 when the call fails.
    pub(super) fn processor_groups() -> u16 {
        // SAFETY: takes nothing and touches no memory of ours.
        unsafe { GetActiveProcessorGroupCount() }
    }

    /// The process's affinity mask within its group.
    pub(super) fn process_affinity() -> Option<usize> {
        let (mut process, mut system) = (0usize, 0usize);
        // SAFETY: the pseudo-handle of this process is always valid; both pointers are to
        // live, writable integers of the pointer's width, which is all the call writes.
        let ok = unsafe { GetProcessAffinityMask(GetCurrentProcess(), &mut process, &mut system) };
        (ok != 0).then_some(process)
    }

    /// The `RelationProcessorCore` records, as bytes.
    pub(super) fn processor_cores() -> Option<Vec<u8>> {
        let mut len = 0u32;
        // SAFETY: a null buffer with a length of 0 asks only for the length needed, written
        // to `len`; the call fails with ERROR_INSUFFICIENT_BUFFER, as expected.
        unsafe {
            GetLogicalProcessorInformationEx(RelationProcessorCore, std::ptr::null_mut(), &mut len)
        };
        if len == 0 {
            return None;
        }
        // u64s, so that the records (whose fields need 8-byte alignment) are aligned.
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        let mut written = u32::try_from(buf.len() * 8).ok()?;
        // SAFETY: `buf` is live, writable and 8-byte aligned for `written` bytes, which is
        // what the call may write; it writes the bytes it used back to `written`.
        let ok = unsafe {
            GetLogicalProcessorInformationEx(
                RelationProcessorCore,
                buf.as_mut_ptr()
                    .cast::<SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX>(),
                &mut written,
            )
        };
        if ok == 0 {
            return None;
        }
        let bytes = buf
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(written as usize)
            .collect();
        Some(bytes)
    }

    /// Physical memory and the part available, in bytes.
    pub(super) fn memory_status() -> Option<(u64, u64)> {
        // SAFETY: an all-zero MEMORYSTATUSEX is a valid value of this plain C struct.
        let mut status: MEMORYSTATUSEX = unsafe { std::mem::zeroed() };
        status.dwLength = std::mem::size_of::<MEMORYSTATUSEX>() as u32;
        // SAFETY: `status` is live and writable, with its length set as the call requires.
        let ok = unsafe { GlobalMemoryStatusEx(&mut status) };
        (ok != 0 && status.ullTotalPhys > 0).then_some((status.ullTotalPhys, status.ullAvailPhys))
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
