//! Systems with neither Linux's `/proc` and `/sys` nor a platform file of their own (the BSDs,
//! illumos, ...): the logical CPUs from `std::thread::available_parallelism`, the physical
//! memory from `sysconf(_SC_PHYS_PAGES)` where Unix has it. Cores and available memory are
//! unknown, and the warnings say so.

use super::native::Raw;

/// Reads the figures.
pub(crate) fn raw() -> Raw {
    let mut raw = Raw {
        parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
        ..Raw::default()
    };
    #[cfg(unix)]
    {
        raw.total_memory = sys::physical_memory().map(|bytes| {
            (
                bytes,
                super::Source::Syscall {
                    name: "sysconf(_SC_PHYS_PAGES) × sysconf(_SC_PAGESIZE)".into(),
                },
            )
        });
    }
    raw
}

#[cfg(unix)]
mod sys {
    /// Physical memory in bytes (`sysconf(3)`: pages × page size).
    pub(super) fn physical_memory() -> Option<u64> {
        // SAFETY: `sysconf` takes a plain integer and touches no memory of ours.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        // SAFETY: as above.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let (pages, size) = (u64::try_from(pages).ok()?, u64::try_from(size).ok()?);
        pages.checked_mul(size).filter(|&bytes| bytes > 0)
    }
}
