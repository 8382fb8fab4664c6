//! The running process's CPU affinity mask from the kernel (`sched_getaffinity(2)`), and a
//! pool thread's first placement (`sched_setaffinity(2)`).

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

/// Moves the calling thread onto the `slot`-th CPU of its affinity mask (modulo its size),
/// then gives it its whole mask back: a pool's threads, each visiting its own CPU once, start
/// spread over the cores. Left alone, the scheduler placed a new pool's two threads on one
/// CPU of two and let the other idle for 12–15 ms (`perf sched timehist`, `docs/BENCH.md`),
/// which made a first parallel run measure at the serial rate. The mask restored, the thread
/// stays where it is until the scheduler has a reason to move it. Nothing happens when the
/// mask cannot be read or set.
#[cfg(target_os = "linux")]
pub(crate) fn visit_cpu(slot: usize) {
    let Some(mask) = sched_affinity() else {
        return;
    };
    let cpus = mask.ids();
    if cpus.len() < 2 {
        return;
    }
    // The kernel has moved the thread by the time the first call returns; the second gives
    // back the mask it had.
    if set_affinity(&[cpus[slot % cpus.len()]]) {
        set_affinity(cpus);
    }
}

/// Lets the calling thread run on `cpus` only (`sched_setaffinity(2)`); whether it could.
#[cfg(target_os = "linux")]
fn set_affinity(cpus: &[u32]) -> bool {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a zeroed `cpu_set_t` is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &id in cpus.iter().filter(|&&id| (id as usize) < size * 8) {
        // SAFETY: `id` is below the set's size in bits, so the macro writes inside `set`.
        unsafe { libc::CPU_SET(id as usize, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is a live `cpu_set_t` of `size` bytes.
    unsafe { libc::sched_setaffinity(0, size, &set) == 0 }
}

/// Nothing to do where the mask is not the kernel's to set this way.
#[cfg(not(target_os = "linux"))]
pub(crate) fn visit_cpu(slot: usize) {
    let _ = slot;
}

#[cfg(all(test, target_os = "linux"))]
mod visit_tests {
    #[test]
    fn a_visit_gives_the_thread_its_whole_mask_back() {
        let before = super::sched_affinity();
        for slot in 0..3 {
            super::visit_cpu(slot);
            assert_eq!(super::sched_affinity(), before);
        }
    }
}
