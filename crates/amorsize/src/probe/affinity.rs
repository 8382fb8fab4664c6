//! The running process's CPU affinity mask from the kernel (`sched_getaffinity(2)`).

use super::CpuSet;

/// The CPUs this thread may run on, or `None` when the call fails (for instance with
/// `EINVAL` on a machine with more CPUs than a `cpu_set_t` holds; the caller then reads
/// `/proc/self/status`).
#[cfg(target_os = "linux")]
pub(crate) fn sched_affinity() -> Option<CpuSet> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu_set_t` is a plain bit array; all zeros is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is a live, writable `cpu_set_t` of `size`
    // bytes, which is all the kernel writes.
    let rc = unsafe { libc::sched_getaffinity(0, size, &mut set) };
    if rc != 0 {
        return None;
    }
    let max = u32::try_from(size * 8).unwrap_or(u32::MAX);
    let ids = (0..max)
        // SAFETY: `id` is below the set's size in bits, so the macro reads inside `set`.
        .filter(|&id| unsafe { libc::CPU_ISSET(id as usize, &set) })
        .collect();
    Some(CpuSet::from_ids(ids))
}

/// Not available on this system: the caller reads `/proc/self/status` or falls back.
#[cfg(not(target_os = "linux"))]
pub(crate) fn sched_affinity() -> Option<CpuSet> {
    None
}
