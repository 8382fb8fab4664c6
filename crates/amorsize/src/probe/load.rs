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
use super::parse::{autogroup, loadavg, proc_stat, task_stat};
use super::source::{Figure, Source};
use std::fmt;

const LOADAVG: &str = "/proc/loadavg";
const AUTOGROUP: &str = "/proc/sys/kernel/sched_autogroup_enabled";
const TASKS: &str = "/proc/self/task";
const STAT: &str = "/proc/stat";
const SELF_STAT: &str = "/proc/self/stat";

/// How the scheduler divides the cores between this process's workers and other runnable
/// threads.
///
/// Linux's fair scheduler gives runnable entities of equal weight equal CPU time
/// (`Documentation/scheduler/sched-design-CFS.rst`; EEVDF since 6.6 keeps the same shares).
/// Without autogrouping every thread is such an entity, so `W` workers among `R` other
/// runnable threads on `C` cores get `min(W, C·W ÷ (W + R))` CPUs: more workers take a larger
/// share. With autogrouping (`sched(7)`) the entities are sessions: a process gets its
/// session's share whatever its thread count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Every runnable thread gets an equal share (no autogrouping; or the other threads are in
    /// this process's session).
    #[default]
    PerThread,
    /// Every session gets an equal share (autogrouping on); the other runnable threads are
    /// taken to be of one other session (a build, a server: a few programs run most threads),
    /// so this process keeps half the cores, or what the others leave idle when more. If they
    /// are of more sessions, it keeps less, and its workers gain less than predicted but lose
    /// nothing: a session's share does not grow with its threads, so parallel and serial get
    /// the same CPU.
    PerSession,
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sharing::PerThread => "shared per thread",
            Sharing::PerSession => "shared per session",
        })
    }
}

/// Clock ticks per CPU that must pass between two readings of CPU time before their difference
/// says how busy other programs kept the CPUs: 10 ticks, 100 ms at the usual `USER_HZ` of 100,
/// so that one tick more or less moves the figure by a tenth of a CPU at most.
pub(crate) const MIN_USAGE_TICKS: u64 = 10;

/// Clock ticks per CPU beyond which the CPU time used between two readings says little of the
/// load now: 5 s at the usual `USER_HZ` of 100.
pub(crate) const MAX_USAGE_TICKS: u64 = 500;

/// Readings of the runnable threads a process's first plan takes at most when the first
/// counts other threads: 3. With no earlier reading of the CPU time used, nothing else tells
/// a thread that was runnable for an instant (the parent that started this process, a kernel
/// thread writing a file back) from a steady load; on an idle 2-core VM, 3 of 20 readings
/// taken at a process's start counted one other thread (the shell that started it).
pub(crate) const FIRST_READINGS: u32 = 3;

/// The pause between two of a first plan's readings ([`FIRST_READINGS`]): 0.2 ms, longer than
/// a wake-up's work, short against a steady load.
pub(crate) const RECHECK_PAUSE: Duration = Duration::from_micros(200);

/// Reads the runnable threads again, up to [`FIRST_READINGS`] in all, while `load` counts
/// others, keeping the least count.
fn recheck(load: &mut CpuLoad, read: impl Fn(&mut Fs) -> CpuLoad, fs: &mut Fs) {
    let mut readings = 1;
    while readings < FIRST_READINGS && load.competing.get().is_some_and(|n| n > 0) {
        std::thread::sleep(RECHECK_PAUSE);
        readings += 1;
        let again = read(fs);
        let least = match (load.competing.get(), again.competing.get()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let tasks = match again.competing.source() {
            Source::Runnable { tasks, .. } => tasks.clone(),
            _ => None,
        };
        load.competing = Figure::new(
            least,
            Source::Runnable {
                loadavg: PathBuf::from(LOADAVG),
                tasks,
                readings,
            },
        );
    }
}

/// How long [`cpu_load_now`] reuses a reading: long enough that back-to-back small plans share
/// one (each reading is a few file reads), short against how long other programs' load holds.
/// A snapshot of runnable threads is no more precise than that: a build's compiler processes
/// come and go within a second.
pub(crate) const LOAD_TTL: Duration = Duration::from_millis(100);

/// Other programs' runnable threads at the moment of reading, and how the cores are shared
/// with them.
///
/// Serialized as `{"competing": Figure<u32 | null>, "used": Figure<f64 | null>, "sharing":
/// Figure<"per_thread" | "per_session">}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CpuLoad {
    competing: Figure<Option<u32>>,
    #[serde(default = "absent")]
    used: Figure<Option<f64>>,
    sharing: Figure<Sharing>,
}

fn absent<T>() -> Figure<Option<T>> {
    Figure::new(None, Source::Absent)
}

impl CpuLoad {
    /// Nothing known: no competing threads counted, shared per thread.
    pub fn unknown() -> CpuLoad {
        CpuLoad {
            competing: absent(),
            used: absent(),
            sharing: Figure::new(Sharing::PerThread, Source::Absent),
        }
    }

    /// CPUs other programs kept busy on average since this process's previous reading, when
    /// one was taken at least `MIN_USAGE_TICKS` (10) clock ticks per CPU before ([`cpu_load_now`] only).
    pub fn used(&self) -> &Figure<Option<f64>> {
        &self.used
    }

    /// The other runnable threads to plan with: the [`competing`](Self::competing) threads of
    /// the moment, but no more than the CPUs other programs [`used`](Self::used) over the last
    /// interval, when known. A snapshot catches short-lived threads (a compiler's helpers, a
    /// shell command) as readily as a steady load, and the time used since the last reading
    /// tells them apart; the snapshot, in turn, catches a load that has just stopped, and this
    /// process's own worker processes, which the time used counts as others'.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::probe::CpuLoad;
    /// assert_eq!(CpuLoad::unknown().estimate(), None);
    /// ```
    pub fn estimate(&self) -> Option<f64> {
        let now = f64::from(self.competing.get()?);
        Some(match self.used.get() {
            Some(used) if used.is_finite() && used >= 0.0 => now.min(used),
            _ => now,
        })
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
            competing: absent(),
            used: absent(),
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
                readings: 1,
            },
        ),
        used: absent(),
        sharing,
    }
}

/// CPU time used since boot, system-wide and by this process, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    /// All CPUs busy (`/proc/stat`).
    pub(crate) busy: u64,
    /// All CPUs in any state.
    pub(crate) total: u64,
    /// The CPUs the sums cover.
    pub(crate) cpus: u32,
    /// This process's threads (`utime + stime` of `/proc/self/stat`).
    pub(crate) own: u64,
}

/// Reads the CPU time used under `fs`'s root; `None` when either file cannot be read.
fn read_usage(fs: &mut Fs) -> Option<Usage> {
    let consequence = "other programs' CPU time unknown";
    let times = fs.load(
        Path::new(STAT),
        Need::Optional,
        consequence,
        proc_stat::parse_cpu_times,
    )?;
    let own = fs.load(
        Path::new(SELF_STAT),
        Need::Optional,
        consequence,
        task_stat::parse_cpu_ticks,
    )?;
    Some(Usage {
        busy: times.busy,
        total: times.total,
        cpus: times.cpus,
        own,
    })
}

/// CPUs other programs kept busy on average between the readings `before` and `after`: the
/// busy time less this process's, over the time that passed (total ticks ÷ CPUs). `None`
/// when less than [`MIN_USAGE_TICKS`] or more than [`MAX_USAGE_TICKS`] per CPU passed, or a
/// counter went backwards (a reading from another boot or process).
pub(crate) fn others_used(before: Usage, after: Usage) -> Option<f64> {
    let cpus = u64::from(after.cpus.max(1));
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    let own = after.own.checked_sub(before.own)?;
    if !(MIN_USAGE_TICKS..=MAX_USAGE_TICKS).contains(&(total / cpus)) {
        return None;
    }
    let elapsed = total as f64 / cpus as f64;
    Some(busy.saturating_sub(own) as f64 / elapsed)
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
/// than 100 ms (`LOAD_TTL`), with the CPU time other programs [used](CpuLoad::used) since the
/// process's previous reading. Linux only: elsewhere the load is [unknown](CpuLoad::unknown),
/// and plans count every core as free.
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
    // Elsewhere `/proc` is not this machine's (under Wine, it is the Linux host's).
    if cfg!(not(target_os = "linux")) {
        return CpuLoad::unknown();
    }
    struct State {
        fresh: Fresh<CpuLoad>,
        usage: Option<Usage>,
    }
    static SHARING: OnceLock<Figure<Sharing>> = OnceLock::new();
    static STATE: Mutex<State> = Mutex::new(State {
        fresh: Fresh::new(),
        usage: None,
    });
    let mut state = STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let State { fresh, usage } = &mut *state;
    fresh.get(Instant::now(), LOAD_TTL, || {
        let mut fs = Fs::new(Path::new("/"));
        let sharing = SHARING.get_or_init(|| read_sharing(&mut Fs::new(Path::new("/"))));
        let mut load = read_competing(&mut fs, sharing.clone());
        let now = read_usage(&mut fs);
        if usage.is_none() {
            // No earlier reading to tell a passing thread from a steady load by the CPU time
            // used (a process's first plan): read again a moment later, and count the least.
            recheck(&mut load, |fs| read_competing(fs, sharing.clone()), &mut fs);
        }
        match (*usage, now) {
            (Some(before), Some(after)) => {
                if let Some(used) = others_used(before, after) {
                    load.used = Figure::new(
                        Some(used),
                        Source::CpuTime {
                            stat: PathBuf::from(STAT),
                            own: PathBuf::from(SELF_STAT),
                        },
                    );
                }
                // Too soon, the older reading stays, to measure a longer interval next time.
                let cpus = u64::from(after.cpus.max(1));
                let soon = after.total >= before.total
                    && (after.total - before.total) / cpus < MIN_USAGE_TICKS;
                if !soon {
                    *usage = Some(after);
                }
            }
            (None, now) => *usage = now,
            (Some(_), None) => {}
        }
        load
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(n: u32) -> CpuLoad {
        CpuLoad {
            competing: Figure::new(
                Some(n),
                Source::Runnable {
                    loadavg: PathBuf::from(LOADAVG),
                    tasks: None,
                    readings: 1,
                },
            ),
            ..CpuLoad::unknown()
        }
    }

    #[test]
    fn a_first_reading_that_counts_others_is_taken_again_and_the_least_counts() {
        let fs = &mut Fs::new(Path::new("/nonexistent"));
        let counts = std::cell::Cell::new(vec![0, 1]);
        let next = |_: &mut Fs| {
            let mut left = counts.take();
            let n = left.pop().unwrap_or(9);
            counts.set(left);
            counting(n)
        };
        let mut load = counting(2);
        recheck(&mut load, next, fs);
        assert_eq!(load.competing().get(), Some(0));
        assert!(load.competing().source().to_string().contains("least of 3"));
        // A steady load stays counted, after at most FIRST_READINGS readings.
        let mut steady = counting(1);
        recheck(&mut steady, |_| counting(1), fs);
        assert_eq!(steady.competing().get(), Some(1));
        // Nothing counted: no second reading.
        let mut idle = counting(0);
        recheck(&mut idle, |_| panic!("read again"), fs);
        assert_eq!(idle.competing().get(), Some(0));
    }

    fn usage(busy: u64, total: u64, own: u64) -> Usage {
        Usage {
            busy,
            total,
            cpus: 2,
            own,
        }
    }

    #[test]
    fn others_used_is_the_busy_time_less_this_process() {
        // 1 s on 2 CPUs (200 ticks): 150 busy, 100 of them this process: others kept half a CPU.
        let used = others_used(usage(0, 0, 0), usage(150, 200, 100)).unwrap();
        assert!((used - 0.5).abs() < 1e-12);
        // This process's own time never makes the others' negative.
        assert_eq!(others_used(usage(0, 0, 0), usage(50, 200, 100)), Some(0.0));
    }

    #[test]
    fn intervals_too_short_too_long_or_backwards_say_nothing() {
        let before = usage(100, 1000, 10);
        assert_eq!(others_used(before, usage(110, 1010, 10)), None);
        assert_eq!(others_used(before, usage(100, 1000 + 2 * 600, 10)), None);
        assert_eq!(others_used(before, usage(50, 500, 10)), None);
        assert_eq!(others_used(before, usage(200, 1200, 5)), None);
    }

    #[test]
    fn the_estimate_is_the_snapshot_bounded_by_the_time_used() {
        let mut load = CpuLoad::unknown();
        load.competing = Figure::new(Some(3), Source::Absent);
        assert_eq!(load.estimate(), Some(3.0));
        // A short-lived burst: 3 runnable now, a tenth of a CPU used over the last interval.
        load.used = Figure::new(Some(0.1), Source::Absent);
        assert_eq!(load.estimate(), Some(0.1));
        // A load that just stopped: nothing runnable now, whatever was used before.
        load.competing = Figure::new(Some(0), Source::Absent);
        load.used = Figure::new(Some(1.0), Source::Absent);
        assert_eq!(load.estimate(), Some(0.0));
    }
}
