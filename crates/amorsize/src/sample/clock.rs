//! Clocks a sample reads: wall time, the calling thread's CPU time, the process's CPU time.
//! Behind a trait so that tests drive sampling with a fake clock instead of timing anything.

use crate::units::Seconds;
use std::sync::OnceLock;
use std::time::Instant;

/// One reading of the three clocks, in seconds from an arbitrary origin each.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// Wall-clock time (monotonic).
    pub wall: Seconds,
    /// CPU time of the calling thread.
    pub thread_cpu: Seconds,
    /// CPU time of the whole process (all its threads).
    pub process_cpu: Seconds,
    /// Voluntary context switches of the calling thread: each is a time it blocked (sleep,
    /// I/O, a lock). Without any, a gap between CPU and wall time is preemption by other
    /// processes, not waiting.
    pub blocked: u64,
}

impl std::ops::Sub for Reading {
    type Output = Reading;
    fn sub(self, earlier: Reading) -> Reading {
        Reading {
            wall: self.wall - earlier.wall,
            thread_cpu: self.thread_cpu - earlier.thread_cpu,
            process_cpu: self.process_cpu - earlier.process_cpu,
            blocked: self.blocked.saturating_sub(earlier.blocked),
        }
    }
}

/// What sampling reads time from.
pub trait Clock {
    /// Reads the clocks.
    fn now(&self) -> Reading;

    /// Reads the wall clock alone: what each item is timed with, because the CPU clocks are
    /// system calls (hundreds of ns) while the wall clock is read in user space (tens of ns).
    fn wall(&self) -> Seconds {
        self.now().wall
    }

    /// What one timed interval costs with nothing inside it (reading the clocks), subtracted
    /// from each item's wall time so that very fast items are not overestimated.
    fn overhead(&self) -> Seconds {
        0.0
    }

    /// What the sampler's own bookkeeping adds to each item (catching panics, counting,
    /// keeping the result), subtracted from each timed batch: small in optimized builds,
    /// hundreds of ns in debug builds, where it would make very fast items look slow.
    fn item_overhead(&self) -> Seconds {
        0.0
    }
}

/// The real clocks: `Instant` for wall time; for CPU time, on Unix (Linux, macOS, the BSDs)
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` and `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (see
/// clock_gettime(2)), on Windows `GetThreadTimes` and `GetProcessTimes` (updated at each clock
/// interrupt, about 15.6 ms by default, so a short sample may read no CPU time at all, which
/// reads as CPU-bound work).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Reading {
        Reading {
            wall: self.wall(),
            thread_cpu: sys::thread_cpu(),
            process_cpu: sys::process_cpu(),
            blocked: sys::voluntary_switches(),
        }
    }

    fn wall(&self) -> Seconds {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
    }

    /// The median of empty wall-clock intervals, measured once per process (as criterion and
    /// divan measure their timer's overhead once); the median, not the least, so that what is
    /// subtracted is what a typical item's timing pays.
    fn overhead(&self) -> Seconds {
        static OVERHEAD: OnceLock<Seconds> = OnceLock::new();
        *OVERHEAD.get_or_init(|| {
            let empty: Vec<Seconds> = (0..63)
                .map(|_| {
                    let a = self.wall();
                    let b = self.wall();
                    b - a
                })
                .collect();
            crate::stats::median(&empty).unwrap_or(0.0).max(0.0)
        })
    }

    /// Measured once per process by sampling a function that does nothing.
    fn item_overhead(&self) -> Seconds {
        static ITEM: OnceLock<Seconds> = OnceLock::new();
        *ITEM.get_or_init(|| super::noop_item_time(self))
    }
}

/// The CPU clocks on Unix. A clock that cannot be read reads 0 (then CPU figures read as
/// "unknown" and the sample assumes CPU-bound work).
#[cfg(unix)]
mod sys {
    use crate::units::Seconds;

    pub(super) fn thread_cpu() -> Seconds {
        cpu_time(libc::CLOCK_THREAD_CPUTIME_ID)
    }

    pub(super) fn process_cpu() -> Seconds {
        cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID)
    }

    fn cpu_time(clock: libc::clockid_t) -> Seconds {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and both
        // clock ids are defined by POSIX for the calling thread and process.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        if rc != 0 {
            return 0.0;
        }
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }

    /// Voluntary context switches of the calling thread (`getrusage(RUSAGE_THREAD)`, see
    /// getrusage(2): `ru_nvcsw`); 0 when unavailable, which reads as "never blocked".
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    pub(super) fn voluntary_switches() -> u64 {
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage for the duration of the call;
        // RUSAGE_THREAD is defined on these systems for the calling thread.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        if rc != 0 {
            return 0;
        }
        u64::try_from(usage.ru_nvcsw).unwrap_or(0)
    }

    /// No per-thread count of voluntary switches here (macOS has no `RUSAGE_THREAD`): 0, which
    /// reads every gap between CPU and wall time as preemption, so the sample takes work for
    /// CPU-bound, the side that never oversubscribes the cores.
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    pub(super) fn voluntary_switches() -> u64 {
        0
    }
}

/// The CPU clocks on Windows: `GetThreadTimes` and `GetProcessTimes`, kernel plus user time in
/// 100 ns units. A clock that cannot be read reads 0, as on Unix.
#[cfg(windows)]
mod sys {
    use crate::units::Seconds;
    use windows_sys::Win32::Foundation::{FILETIME, HANDLE};
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, GetCurrentThread, GetProcessTimes, GetThreadTimes,
    };

    type Times = unsafe extern "system" fn(
        HANDLE,
        *mut FILETIME,
        *mut FILETIME,
        *mut FILETIME,
        *mut FILETIME,
    ) -> windows_sys::core::BOOL;

    pub(super) fn thread_cpu() -> Seconds {
        // SAFETY: the pseudo-handle of the calling thread needs no closing and is always valid.
        cpu_time(unsafe { GetCurrentThread() }, GetThreadTimes)
    }

    pub(super) fn process_cpu() -> Seconds {
        // SAFETY: the pseudo-handle of this process needs no closing and is always valid.
        cpu_time(unsafe { GetCurrentProcess() }, GetProcessTimes)
    }

    fn cpu_time(handle: HANDLE, times: Times) -> Seconds {
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
        // SAFETY: `handle` is a pseudo-handle with query rights on itself, and the four
        // pointers are to live, writable FILETIMEs for the duration of the call.
        let ok = unsafe { times(handle, &mut created, &mut exited, &mut kernel, &mut user) };
        if ok == 0 {
            return 0.0;
        }
        let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
        (ticks(kernel) + ticks(user)) as f64 * 100e-9
    }

    /// Windows counts no voluntary switches per thread in its documented API: 0, which reads
    /// every gap between CPU and wall time as preemption, so the sample takes work for
    /// CPU-bound, the side that never oversubscribes the cores.
    pub(super) fn voluntary_switches() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clocks_never_go_back() {
        let a = SystemClock.now();
        let mut x = 0u64;
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let b = SystemClock.now();
        let d = b - a;
        assert!(
            d.wall >= 0.0 && d.thread_cpu >= 0.0 && d.process_cpu >= 0.0,
            "{d:?}"
        );
        assert!(SystemClock.overhead() >= 0.0);
    }

    #[test]
    fn working_reads_on_the_thread_clock() {
        // 50 ms of work: more than the coarsest thread clock's tick (Windows, 15.6 ms).
        let a = SystemClock.now();
        let began = std::time::Instant::now();
        let mut x = 0u64;
        while began.elapsed() < std::time::Duration::from_millis(50) {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let d = SystemClock.now() - a;
        assert!(d.thread_cpu > 0.0 && d.process_cpu > 0.0, "{d:?}");
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    #[test]
    fn sleeping_counts_as_blocking() {
        let a = SystemClock.now();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = SystemClock.now();
        assert!((b - a).blocked >= 1);
    }
}
