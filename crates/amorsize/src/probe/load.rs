//! What other programs ask of the CPUs at the moment of reading: their runnable threads, and
//! how the scheduler shares the cores with them. Read on every plan that could go parallel,
//! so it costs a few file reads of a few dozen bytes (about 15 µs on a 2-core VM), reused for
//! [`LOAD_TTL`]; the sharing, a kernel setting, is read once per process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fresh::Fresh;
use super::fs::{Fs, Need};
use super::parse::{autogroup, loadavg, task_stat};
use super::source::{Figure, Source};
use crate::model::Sharing;

const LOADAVG: &str = "/proc/loadavg";
const AUTOGROUP: &str = "/proc/sys/kernel/sched_autogroup_enabled";
const TASKS: &str = "/proc/self/task";

/// How long [`cpu_load_now`] reuses a reading: long enough that back-to-back small plans share
/// one (each reading is a few file reads), short against how long other programs' load holds.
/// A snapshot of runnable threads is no more precise than that: a build's compiler processes
/// come and go within a second.
pub const LOAD_TTL: Duration = Duration::from_millis(100);

/// Other programs' runnable threads at the moment of reading, and how the cores are shared
/// with them.
///
/// Serialized as `{"competing": Figure<u32 | null>, "sharing": Figure<"per_thread" |
/// "per_session">}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuLoad {
    competing: Figure<Option<u32>>,
    sharing: Figure<Sharing>,
}

impl CpuLoad {
    /// Nothing known: no competing threads counted, shared per thread.
    pub fn unknown() -> CpuLoad {
        CpuLoad {
            competing: Figure::new(None, Source::Absent),
            sharing: Figure::new(Sharing::PerThread, Source::Absent),
        }
    }

    /// Runnable threads of other processes, system-wide: the kernel's count less this
    /// process's own runnable threads (the reader among them); `None` when unknown, which the
    /// planner reads as "no load": every usable core counts.
    pub fn competing(&self) -> &Figure<Option<u32>> {
        &self.competing
    }

    /// How the scheduler shares the cores: per session when autogrouping is on, else per
    /// thread (also when the file is missing: kernels without autogrouping lack it).
    pub fn sharing(&self) -> &Figure<Sharing> {
        &self.sharing
    }
}

/// Reads the load under `root` (`/` for this machine), now. Never fails: what cannot be read
/// is unknown.
///
/// Only this process's threads are told apart from the others', as `/proc/self/task` lists
/// them; a runnable thread of this process that is not the reader (a pool's worker finishing
/// its spin) is not competition.
///
/// # Examples
///
/// ```
/// use amorsize::probe::{read_cpu_load, Source};
///
/// let empty = std::env::temp_dir().join("amorsize-doc-empty-load-root");
/// std::fs::create_dir_all(&empty).unwrap();
/// let load = read_cpu_load(&empty);
/// assert_eq!((load.competing().get(), load.competing().source()), (None, &Source::Absent));
/// ```
pub fn read_cpu_load(root: &Path) -> CpuLoad {
    let mut fs = Fs::new(root);
    let sharing = read_sharing(&mut fs);
    read_competing(&mut fs, sharing)
}

/// How the scheduler shares the cores under `fs`'s root.
fn read_sharing(fs: &mut Fs) -> Figure<Sharing> {
    match fs.load(
        Path::new(AUTOGROUP),
        Need::Optional,
        "shared per thread",
        autogroup::parse_autogroup_enabled,
    ) {
        Some(on) => Figure::new(
            if on {
                Sharing::PerSession
            } else {
                Sharing::PerThread
            },
            Source::file(AUTOGROUP),
        ),
        None => Figure::new(Sharing::PerThread, Source::Absent),
    }
}

/// Other programs' runnable threads under `fs`'s root, with the `sharing` read before.
fn read_competing(fs: &mut Fs, sharing: Figure<Sharing>) -> CpuLoad {
    let unknown = "load unknown; every usable core counts";
    let Some(load) = fs.load(
        Path::new(LOADAVG),
        Need::Optional,
        unknown,
        loadavg::parse_loadavg,
    ) else {
        return CpuLoad {
            competing: Figure::new(None, Source::Absent),
            sharing,
        };
    };
    // The reader is runnable; a copy of the file may count nobody.
    let mut own = 1;
    let mut tasks = None;
    if load.runnable > 1 {
        if let Some(others) = own_runnable_others(fs) {
            own += others;
            tasks = Some(PathBuf::from(TASKS));
        }
    }
    CpuLoad {
        competing: Figure::new(
            Some(load.runnable.saturating_sub(own)),
            Source::Runnable {
                loadavg: PathBuf::from(LOADAVG),
                tasks,
            },
        ),
        sharing,
    }
}

/// This process's runnable threads other than the caller, from `/proc/self/task/*/stat`;
/// `None` when the directory cannot be listed. A thread that exits while listed is skipped.
fn own_runnable_others(fs: &Fs) -> Option<u32> {
    let dir = fs.root().join(TASKS.trim_start_matches('/'));
    // Under another root, or where the kernel does not name the caller, no task is known to
    // be the caller: one runnable task stands for it.
    let me = if fs.is_host_root() {
        this_thread_id()
    } else {
        None
    };
    let mut runnable = 0u32;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        if me.is_some() && name.to_str() == me.as_deref() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if task_stat::parse_state(&text) == Ok('R') {
            runnable += 1;
        }
    }
    Some(if me.is_some() {
        runnable
    } else {
        runnable.saturating_sub(1)
    })
}

/// The calling thread's id as `/proc/self/task` names it (`/proc/thread-self` links to
/// `/proc/self/task/<tid>`, since Linux 3.17); `None` when it cannot be read.
fn this_thread_id() -> Option<String> {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|tid| !tid.is_empty())
}

/// This machine's load ([`read_cpu_load`] at `/`), read again once the last reading is older
/// than [`LOAD_TTL`].
///
/// # Examples
///
/// ```
/// let load = amorsize::probe::cpu_load_now();
/// if let Some(others) = load.competing().get() {
///     assert!(others < 1 << 22, "a thread count, not garbage");
/// }
/// ```
pub fn cpu_load_now() -> CpuLoad {
    static SHARING: OnceLock<Figure<Sharing>> = OnceLock::new();
    static LAST: Mutex<Fresh<CpuLoad>> = Mutex::new(Fresh::new());
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    last.get(Instant::now(), LOAD_TTL, || {
        let mut fs = Fs::new(Path::new("/"));
        let sharing = SHARING.get_or_init(|| read_sharing(&mut Fs::new(Path::new("/"))));
        read_competing(&mut fs, sharing.clone())
    })
}
