//! What went wrong with the cache, as warnings: a cache problem never fails a run.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

/// A problem with the cache file. The run goes on without the cache (or with a rebuilt one);
/// the [`Display`](fmt::Display) text says what happened and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheWarning {
    /// The file could not be opened or created (a read-only or missing directory, no
    /// permission): the run goes without a cache.
    Unavailable {
        /// The cache file.
        path: PathBuf,
        /// What the system or SQLite said.
        reason: String,
    },
    /// The file was corrupt, truncated, or of another schema version; it was rebuilt empty.
    Rebuilt {
        /// The cache file.
        path: PathBuf,
        /// Why it was rebuilt.
        reason: String,
    },
    /// Other processes held the file locked for longer than the cache waits; this read or write
    /// was skipped.
    Busy {
        /// The cache file.
        path: PathBuf,
    },
    /// The disk (or the file's size limit) is full; the cache stops writing for this process.
    Full {
        /// The cache file.
        path: PathBuf,
    },
    /// Writing to the file failed at the system level (over a disk quota or a file size limit,
    /// a failing disk); the cache stops writing for this process.
    WriteFailed {
        /// The cache file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// The file cannot be written (read-only file or directory); the cache stops writing for
    /// this process.
    ReadOnly {
        /// The cache file.
        path: PathBuf,
    },
    /// Any other failure; the cache is left alone for the rest of this process.
    Failed {
        /// The cache file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
}

#[cfg_attr(not(feature = "cache"), allow(dead_code))]
impl CacheWarning {
    /// A small number per variant, so that each kind is reported once.
    fn kind_bit(&self) -> u32 {
        match self {
            CacheWarning::Unavailable { .. } => 1,
            CacheWarning::Rebuilt { .. } => 2,
            CacheWarning::Busy { .. } => 4,
            CacheWarning::Full { .. } => 8,
            CacheWarning::ReadOnly { .. } => 16,
            CacheWarning::Failed { .. } => 32,
            CacheWarning::WriteFailed { .. } => 64,
        }
    }
}

impl fmt::Display for CacheWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str =
            "set AMORSIZE_CACHE to a writable file, or AMORSIZE_CACHE=off to run without a cache";
        match self {
            CacheWarning::Unavailable { path, reason } => write!(
                f,
                "cache {} cannot be used ({reason}); running without it: {HINT}",
                path.display()
            ),
            CacheWarning::Rebuilt { path, reason } => write!(
                f,
                "cache {} was rebuilt empty ({reason}); calibrations and past runs are measured again",
                path.display()
            ),
            CacheWarning::Busy { path } => write!(
                f,
                "cache {} was locked by other processes for too long; skipped one read or write",
                path.display()
            ),
            CacheWarning::Full { path } => write!(
                f,
                "cache {} cannot grow: the disk is full; the cache stops recording for this \
                 process (free some space, or `amorsize cache clear`)",
                path.display()
            ),
            CacheWarning::WriteFailed { path, reason } => write!(
                f,
                "cache {} cannot be written ({reason}: over a disk quota or a file size limit, or \
                 a failing disk); the cache stops recording for this process",
                path.display()
            ),
            CacheWarning::ReadOnly { path } => write!(
                f,
                "cache {} is read-only; the cache stops recording for this process: {HINT}",
                path.display()
            ),
            CacheWarning::Failed { path, reason } => write!(
                f,
                "cache {} failed ({reason}); running without it: {HINT}",
                path.display()
            ),
        }
    }
}

/// Warnings of this process not yet taken, each kind once per process.
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
struct Registry {
    seen: u32,
    pending: Vec<CacheWarning>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    seen: 0,
    pending: Vec::new(),
});

/// Records `warning` for [`take_warnings`], unless a warning of its kind was recorded before in
/// this process. Returns whether it was new.
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) fn report(warning: CacheWarning) -> bool {
    // A poisoned lock only means a panic elsewhere while pushing; the data is still usable.
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let bit = warning.kind_bit();
    if registry.seen & bit != 0 {
        return false;
    }
    registry.seen |= bit;
    registry.pending.push(warning);
    true
}

/// The cache warnings of this process not taken yet, oldest first; each kind of warning is
/// reported once per process. A caller that shows warnings to people (the CLI, a report) drains
/// them here.
pub fn take_warnings() -> Vec<CacheWarning> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut registry.pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_names_the_file() {
        let path = PathBuf::from("/x/amorsize.db");
        let all = [
            CacheWarning::Unavailable {
                path: path.clone(),
                reason: "r".into(),
            },
            CacheWarning::Rebuilt {
                path: path.clone(),
                reason: "r".into(),
            },
            CacheWarning::Busy { path: path.clone() },
            CacheWarning::Full { path: path.clone() },
            CacheWarning::ReadOnly { path: path.clone() },
            CacheWarning::Failed {
                path: path.clone(),
                reason: "r".into(),
            },
            CacheWarning::WriteFailed {
                path: path.clone(),
                reason: "r".into(),
            },
        ];
        let mut bits = 0;
        for w in &all {
            assert!(w.to_string().contains("/x/amorsize.db"), "{w}");
            assert_eq!(bits & w.kind_bit(), 0, "kinds share a bit");
            bits |= w.kind_bit();
        }
    }
}
